/** The CLI's `convert` command (src/node/convert.ts does the work; the usage text lives in cli.ts). */
import { GemmaError } from '../errors.ts';
import { parseTokenizerSource, type TokenizerSource } from '../runtime/loading/model-source.ts';
import { convertModel } from './convert.ts';
import { createNodeGpuContext } from './gpu.ts';
import { nodeModelSource } from './model-source.ts';

export async function runConvert(modelPath: string, flags: Map<string, string>, usage: string): Promise<unknown> {
  const out = flags.get('out');
  if (!out) throw new GemmaError('invalid-argument', `convert needs --out DIR\n${usage}`);
  const weights = flags.get('weights') ?? 'q4';
  if (weights !== 'q4' && weights !== 'q8') throw new GemmaError('invalid-argument', `convert --weights ${weights}: expected q4 or q8`);
  const shardMib = Number(flags.get('shard-mib') ?? 64);
  if (!(shardMib > 0) || !Number.isInteger(shardMib * 1024 * 1024)) throw new GemmaError('invalid-argument', `--shard-mib ${flags.get('shard-mib')}: expected a positive size in MiB`);
  const source = await nodeModelSource(modelPath, flags.get('token'));
  const tokenizer = await tokenizerFor(flags.get('tokenizer'), source);
  const gpu = await createNodeGpuContext();
  const manifest = await convertModel(gpu, source, out, { weights, shardBytes: shardMib * 1024 * 1024, tokenizer });
  return { out, weights, bytes: manifest.totalBytes, files: manifest.files.map((f) => ({ name: f.name, size: f.size })) };
}

/** --tokenizer none|URL; by default the source's own files where it has them (a folder with tokenizer.json, a URL or hub repo). */
async function tokenizerFor(flag: string | undefined, source: Awaited<ReturnType<typeof nodeModelSource>>): Promise<TokenizerSource> {
  if (flag === 'none') return { kind: 'none' };
  if (flag !== undefined) return parseTokenizerSource({ tokenizer: flag }, undefined);
  switch (source.kind) {
    case 'folder': return (await source.files.exists('tokenizer.json')) ? { kind: 'model' } : { kind: 'none' };
    case 'url':
    case 'hub': return { kind: 'model' };
    default: return { kind: 'none' };
  }
}
