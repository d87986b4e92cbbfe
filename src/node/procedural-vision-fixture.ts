/**
 * Writes the gemma3n-vision-procedural fixture's weights (src/model/vision/procedural.ts, through the registry) as an ordinary Hugging Face
 * checkpoint directory: `config.json` + one bf16 `model.safetensors` (the generator's values are bf16, so the file
 * is exact), so the same loader reads it as any real checkpoint. `npm run fixture:vision -- --out DIR` and the
 * tests' cached copy (test/helpers/vision-fixture.ts) both come through here.
 */
import { mkdir, open, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { MEDIA_ENCODERS } from '../model/registry.ts';

const procedural = MEDIA_ENCODERS.image.procedural;
type VisionArch = typeof procedural.arch;

/** Writes `dir/config.json` and `dir/model.safetensors` (through a temporary file, renamed when complete). */
export async function writeProceduralVisionCheckpoint(dir: string, arch: VisionArch = procedural.arch, textHidden = 2048): Promise<{ bytes: number; tensors: number }> {
  await mkdir(dir, { recursive: true });
  const specs = procedural.tensorSpecs(arch, textHidden);
  const header: Record<string, unknown> = { __metadata__: { format: 'pt', generator: 'gemma3n-vision-procedural (README: Procedural weights)' } };
  let offset = 0;
  for (const s of specs) {
    const bytes = s.shape.reduce((a, b) => a * b, 1) * 2;
    header[s.name] = { dtype: 'BF16', shape: s.shape, data_offsets: [offset, offset + bytes] };
    offset += bytes;
  }
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - (json.length % 8)) % 8); // data starts on 8 bytes, as the reference writer pads
  const head = new Uint8Array(8 + json.length);
  new DataView(head.buffer).setBigUint64(0, BigInt(json.length), true);
  head.set(new TextEncoder().encode(json), 8);
  const tmp = join(dir, `model.safetensors.partial-${process.pid}`);
  const file = await open(tmp, 'w');
  try {
    await file.write(head);
    for (const s of specs) {
      const bits = procedural.bf16(s.name, s.shape);
      await file.write(new Uint8Array(bits.buffer, bits.byteOffset, bits.byteLength));
    }
  } catch (err) {
    await file.close();
    await rm(tmp, { force: true });
    throw err;
  }
  await file.close();
  await writeFile(join(dir, 'config.json'), JSON.stringify(procedural.config(arch, textHidden), null, 2) + '\n');
  await rename(tmp, join(dir, 'model.safetensors'));
  return { bytes: head.length + offset, tensors: specs.length };
}
