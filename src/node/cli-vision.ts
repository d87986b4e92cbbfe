/**
 * `gemma3n-webgpu embed-image --model DIR --image FILE [--size WxH] [--out FILE.f32] [--features FILE.f32]
 * [--weights bf16|f16|f32]`: the library's own preprocessing (Pillow-exact resize, rescale) and vision encoder on one
 * image; writes the soft tokens as raw float32 [256, D] (little-endian, row-major), optionally the tower's features
 * as HF lays them out (float32 [2048, 16, 16], channels first), and returns a one-line summary
 * `{"shape":[256,D],"out":...}`.
 *
 * Images: PNG/JPEG (anything sharp reads) are decoded with transformers.js `RawImage` (sharp's prebuilt binaries
 * ship as npm packages, no install script needed; exact: 0 levels from the fixture's decoded image C), or raw 8-bit
 * RGB (`.rgb8`, height x width x 3) with `--size WxH`.
 */
import { readFile, stat, writeFile } from 'node:fs/promises';
import { GemmaError } from '../errors.ts';
import { openSafetensorsCheckpoint } from '../io/safetensors.ts';
import { MEDIA_ENCODERS } from '../model/registry.ts';

type RgbImage = Parameters<typeof MEDIA_ENCODERS.image.preprocess>[0];
import { directoryFiles } from './checkpoint-files.ts';
import { createNodeGpuContext } from './gpu.ts';

export const EMBED_IMAGE_USAGE = '  gemma3n-webgpu embed-image --model DIR --image FILE(.png|.jpg|.rgb8) [--size WxH] [--out FILE.f32] [--features FILE.f32] [--weights bf16|f16|f32]';

function flags(argv: string[]): Map<string, string> {
  const out = new Map<string, string>();
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (!a.startsWith('--')) throw new GemmaError('invalid-argument', `unexpected argument ${a}\nusage:\n${EMBED_IMAGE_USAGE}`);
    const eq = a.indexOf('=');
    if (eq > 0) out.set(a.slice(2, eq), a.slice(eq + 1));
    else {
      const v = argv[i + 1];
      if (v === undefined || v.startsWith('--')) throw new GemmaError('invalid-argument', `${a} needs a value\nusage:\n${EMBED_IMAGE_USAGE}`);
      out.set(a.slice(2), v);
      i++;
    }
  }
  return out;
}

/** Decodes an image file to 8-bit pixels. */
export async function readImageFile(path: string, size?: string): Promise<RgbImage> {
  if (!(await stat(path).catch(() => undefined))?.isFile()) throw new GemmaError('bad-file', `--image ${path}: no such file`);
  if (path.endsWith('.rgb8')) {
    const m = /^(\d+)x(\d+)$/.exec(size ?? '');
    if (!m) throw new GemmaError('invalid-argument', `--image ${path}: a raw .rgb8 file needs --size WxH`);
    const [width, height] = [Number(m[1]), Number(m[2])];
    const data = new Uint8Array(await readFile(path));
    if (data.length !== width * height * 3) throw new GemmaError('bad-file', `--image ${path}: ${data.length} bytes, but ${width}x${height} RGB needs ${width * height * 3}`);
    return { data, width, height, channels: 3 };
  }
  let RawImage: typeof import('@huggingface/transformers').RawImage;
  try {
    ({ RawImage } = await import('@huggingface/transformers'));
  } catch (err) {
    throw new GemmaError(
      'invalid-argument',
      `--image ${path}: decoding PNG/JPEG in the CLI uses transformers.js' RawImage: run \`npm install @huggingface/transformers\`, or pass raw pixels (.rgb8) with --size WxH.`,
      { cause: err },
    );
  }
  let img: { data: Uint8Array | Uint8ClampedArray; width: number; height: number; channels: number };
  try {
    img = await RawImage.read(path);
  } catch (err) {
    throw new GemmaError('bad-file', `--image ${path}: cannot decode it as an image (${(err as Error).message})`, { cause: err });
  }
  return { data: img.data, width: img.width, height: img.height, channels: img.channels };
}

export async function runEmbedImage(argv: string[]): Promise<unknown> {
  const f = flags(argv);
  const model = f.get('model');
  const image = f.get('image');
  if (!model || !image) throw new GemmaError('invalid-argument', `--model and --image are required\nusage:\n${EMBED_IMAGE_USAGE}`);
  const family = MEDIA_ENCODERS.image;
  const weights = family.weightFormats.find((w) => w === (f.get('weights') ?? family.weightFormats[0]));
  if (!weights) throw new GemmaError('invalid-argument', `--weights ${f.get('weights')}: expected ${family.weightFormats.join(', ')}`);
  const s = await stat(model).catch(() => undefined);
  if (!s?.isDirectory()) {
    throw new GemmaError('invalid-argument', `--model ${model}: expected a checkpoint directory (config.json + safetensors); GGUF files carry no vision tower`);
  }
  const t0 = performance.now();
  const rgb = await readImageFile(image, f.get('size'));
  const t1 = performance.now();
  const pixels = family.preprocess(rgb);
  const t2 = performance.now();
  const ckpt = await openSafetensorsCheckpoint(directoryFiles(model));
  const ctx = await createNodeGpuContext();
  const encoder = await family.loadWith(ctx, ckpt, { weights });
  const t3 = performance.now();
  try {
    const { softTokens, features } = await encoder.encode(pixels);
    const t4 = performance.now();
    const out = f.get('out') ?? null;
    if (out) await writeFile(out, new Uint8Array(softTokens.buffer, softTokens.byteOffset, softTokens.byteLength));
    const featuresOut = f.get('features');
    if (featuresOut) {
      const C = encoder.config.visionHidden;
      const P = encoder.config.softTokens;
      const chw = new Float32Array(features.length);
      for (let p = 0; p < P; p++) for (let c = 0; c < C; c++) chw[c * P + p] = features[p * C + c];
      await writeFile(featuresOut, new Uint8Array(chw.buffer));
    }
    const ms = (a: number, b: number) => Math.round(b - a);
    return {
      shape: [encoder.config.softTokens, encoder.config.textHidden],
      out,
      ...(featuresOut ? { features: featuresOut } : {}),
      image: { width: rgb.width, height: rgb.height },
      ms: { decode: ms(t0, t1), preprocess: ms(t1, t2), load: ms(t2, t3), encode: ms(t3, t4) },
      memory: encoder.memory(),
    };
  } finally {
    encoder.destroy();
  }
}
