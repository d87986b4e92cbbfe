/**
 * Writes any in-memory Checkpoint (a random one, say) as an ordinary Hugging Face folder: config.json + one
 * model.safetensors with every tensor as the checkpoint reads it (BF16 / F16 / F32). For tests that need a
 * checkpoint served by URL (the offline cache keys URL and hub sources only). Small checkpoints only: each tensor
 * is read whole.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Checkpoint } from '../../src/io/checkpoint.ts';

export async function writeSafetensorsFolder(ckpt: Checkpoint, dir: string): Promise<{ bytes: number; tensors: number }> {
  await mkdir(dir, { recursive: true });
  const names = ckpt.tensorNames();
  const header: Record<string, unknown> = { __metadata__: { format: 'pt' } };
  const parts: Uint8Array[] = [];
  let offset = 0;
  for (const name of names) {
    const info = ckpt.tensor(name)!;
    const t = await ckpt.read(name);
    header[name] = { dtype: t.dtype, shape: info.shape, data_offsets: [offset, offset + t.bytes.byteLength] };
    parts.push(t.bytes);
    offset += t.bytes.byteLength;
  }
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - (json.length % 8)) % 8);
  const head = new Uint8Array(8 + json.length);
  new DataView(head.buffer).setBigUint64(0, BigInt(json.length), true);
  head.set(new TextEncoder().encode(json), 8);
  await writeFile(join(dir, 'model.safetensors'), Buffer.concat([head, ...parts]));
  await writeFile(join(dir, 'config.json'), JSON.stringify(ckpt.config, null, 2) + '\n');
  return { bytes: head.length + offset, tensors: names.length };
}
