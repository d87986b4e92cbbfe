/**
 * The bytes a load of a small safetensors fixture downloads: the span of the tensors the Gemma 3n loader reads
 * (src/model/gemma3n/weights.ts `readOrder`), one read-ahead window for a file this small. The header and unread
 * tensors at the file's ends (e.g. soft_embedding_norm) are not fetched.
 */
import { openSafetensorsCheckpoint } from '../../src/io/safetensors.ts';
import { directoryFiles } from '../../src/node/checkpoint-files.ts';
import { parseGemma3nConfig } from '../../src/model/gemma3n/config.ts';
import { readOrder } from '../../src/model/gemma3n/weights.ts';

export async function plannedDownloadBytes(dir: string): Promise<number> {
  const ckpt = await openSafetensorsCheckpoint(directoryFiles(dir));
  const ranges = readOrder(parseGemma3nConfig(ckpt.config).text).flatMap((n) => ckpt.locate!(n) ?? []);
  return Math.max(...ranges.map((r) => r.offset + r.length)) - Math.min(...ranges.map((r) => r.offset));
}
