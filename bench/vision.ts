/**
 * Vision encoder benchmark (`npm run bench:vision [-- --json FILE] [-- --formats]`): one 768x768 image through the
 * real-size MobileNet-V5-300M tower and embed_vision with the fixture's procedural weights (generated in memory,
 * bf16 on the GPU): ms per image, GFLOP/s (2 x 435.7 GMAC per image, from arch.ts), the ratio to the adapter's f32
 * FMA ceiling measured in the same run (bench/fma-ceiling.ts), the time per part of the tower (wall clock, the queue
 * drained after each step), and the GPU bytes of weights, activations and the buffers the kernels own (each
 * dispatch's parameters, placeholders). One image (minutes on SwiftShader); `--memory`: the GPU bytes alone, after
 * the load (all of them are allocated there), no image.
 *
 * `--formats`: the weight storage choice, measured: image A through the tower with the weights stored as bf16, f16,
 * f32, and int8 (emulated: q8 group-32 values, llama.cpp Q8_0's rules via cpu-quant.ts, uploaded as f32; no int8
 * convolution kernel exists), max abs error of the features and soft tokens against the goldens.
 *
 * On SwiftShader (a CPU, shared with others) read the ratio to the ceiling, not the absolute numbers.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createNodeGpuContext } from '../src/node/gpu.ts';
import { proceduralBf16, proceduralVisionCheckpoint } from '../src/model/vision/procedural.ts';
import { VisionEncoder } from '../src/model/vision/encoder.ts';
import { MOBILENETV5_300M_ENC, towerMacs } from '../src/model/vision/arch.ts';
import { pixelValuesFromRgb } from '../src/model/vision/preprocess.ts';
import type { VisionWeightFormat } from '../src/model/vision/weights.ts';
import type { Checkpoint, TensorBytes } from '../src/io/checkpoint.ts';
import { tensorBytesToF32 } from '../src/io/checkpoint.ts';
import { quantizeCpu } from '../src/model/cpu-quant.ts';
import { dequantize } from '../src/formats/weight-format.ts';
import { bf16ArrayToF32, f16BitsToF32, f32ToF16Bits } from '../src/io/half.ts';
import { measureFmaCeiling } from './fma-ceiling.ts';
import { profilePlan, profileTables } from './vision-profile.ts';
import { openSafetensorsCheckpoint } from '../src/io/safetensors.ts';
import { directoryFiles } from '../src/node/checkpoint-files.ts';

const args = process.argv.slice(2);
const jsonIdx = args.indexOf('--json');
const jsonFile = jsonIdx >= 0 ? args[jsonIdx + 1] : undefined;
const fixture = fileURLToPath(new URL('../test/fixtures/gemma3n-vision-procedural/', import.meta.url));
const ctx = await createNodeGpuContext();
const readF32 = (name: string) => {
  const b = readFileSync(join(fixture, name));
  return new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
};
const imageA = pixelValuesFromRgb(new Uint8Array(readFileSync(join(fixture, 'image_a.rgb8'))), 768, 768);
const mb = (n: number) => `${(n / 2 ** 20).toFixed(1)} MiB`;

/** The procedural checkpoint with every convolution / projection weight replaced by its q8 (group 32) values, as F32. */
function int8Checkpoint(base: Checkpoint): Checkpoint {
  return {
    ...base,
    async read(name, rows): Promise<TensorBytes> {
      const t = await base.read(name, rows);
      const shape = base.tensor(name)!.shape;
      const convLike = (shape.length === 4 && shape[1] > 1) || (shape.length === 2 && !name.endsWith('.embedding.weight'));
      if (!convLike) return t;
      const w = tensorBytesToF32(t);
      const r = shape[0];
      const c = w.length / r;
      const q = dequantize('q8', quantizeCpu('q8', w, r, c), r, c, f16BitsToF32);
      return { dtype: 'F32', bytes: new Uint8Array(q.buffer) };
    },
  };
}

function maxAbsFeatures(hwc: Float32Array, chw: Float32Array): number {
  let m = 0;
  for (let p = 0; p < 256; p++) for (let c = 0; c < 2048; c++) m = Math.max(m, Math.abs(hwc[p * 2048 + c] - chw[c * 256 + p]));
  return m;
}

function maxAbs(a: Float32Array, b: Float32Array): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

/** Weight-level error of each storage format over every convolution / projection weight (no GPU). */
function weightErrors(): Record<string, { changed: number; maxAbs: number; maxRel: number }> {
  const ckpt = proceduralVisionCheckpoint();
  const out: Record<string, { changed: number; maxAbs: number; maxRel: number }> = {
    f16: { changed: 0, maxAbs: 0, maxRel: 0 },
    int8: { changed: 0, maxAbs: 0, maxRel: 0 },
  };
  const note = (k: string, w: number, v: number) => {
    const e = Math.abs(w - v);
    if (e === 0) return;
    out[k].changed++;
    out[k].maxAbs = Math.max(out[k].maxAbs, e);
    out[k].maxRel = Math.max(out[k].maxRel, e / Math.abs(w));
  };
  for (const name of ckpt.tensorNames()) {
    const shape = ckpt.tensor(name)!.shape;
    if (!((shape.length === 4 && shape[1] > 1) || (shape.length === 2 && !name.endsWith('.embedding.weight')))) continue;
    const bits = proceduralBf16(name, shape);
    const w = bf16ArrayToF32(bits);
    for (let i = 0; i < w.length; i++) note('f16', w[i], f16BitsToF32(f32ToF16Bits(w[i])));
    const r = shape[0];
    const q = dequantize('q8', quantizeCpu('q8', w, r, w.length / r), r, w.length / r, f16BitsToF32);
    for (let i = 0; i < w.length; i++) note('int8', w[i], q[i]);
  }
  return out;
}

if (args.includes('--formats')) {
  console.log(JSON.stringify({ weightErrors: weightErrors() }));
  const goldenF = readF32('a.features.f32');
  const goldenT = readF32('a.soft_tokens.f32');
  const rows: unknown[] = [];
  const only = args.includes('--only') ? args[args.indexOf('--only') + 1].split(',') : ['bf16', 'f16', 'f32', 'int8'];
  for (const format of (['bf16', 'f16', 'f32', 'int8'] as const).filter((f) => only.includes(f))) {
    const base = proceduralVisionCheckpoint();
    const ckpt = format === 'int8' ? int8Checkpoint(base) : base;
    const storage: VisionWeightFormat = format === 'int8' ? 'f32' : format;
    const enc = await VisionEncoder.load(ctx, ckpt, { weights: storage });
    const { features, softTokens } = await enc.encode(imageA);
    const row = { format, gpuStorage: format === 'int8' ? 'f32 (int8 values)' : format, weightBytes: enc.memory().gpu.weights, featuresMaxAbs: maxAbsFeatures(features, goldenF), softTokensMaxAbs: maxAbs(softTokens, goldenT) };
    enc.destroy();
    console.log(JSON.stringify(row));
    rows.push(row);
  }
  if (jsonFile) writeFileSync(jsonFile, JSON.stringify({ adapter: ctx.adapterName, formats: rows }, null, 2));
  process.exit(0);
}

/** `--model DIR`: the procedural checkpoint as written by `npm run fixture:vision` (faster to load than generating it). */
async function benchCheckpoint(): Promise<Checkpoint> {
  const i = args.indexOf('--model');
  return i >= 0 ? openSafetensorsCheckpoint(directoryFiles(args[i + 1])) : proceduralVisionCheckpoint();
}

if (args.includes('--memory')) {
  const enc = await VisionEncoder.load(ctx, await benchCheckpoint(), { weights: 'bf16' });
  const dispatches = enc.plan.reduce((n, step) => n + step.dispatches.length, 0);
  const { gpu } = enc.memory();
  console.log(`vision encoder GPU memory (bf16 weights, ${dispatches} dispatches): weights ${gpu.weights} B (${mb(gpu.weights)}), activations ${gpu.scratch} B (${mb(gpu.scratch)}), the kernels' buffers ${gpu.kernels} B (${mb(gpu.kernels)}), total ${gpu.total} B (${mb(gpu.total)})`);
  if (jsonFile) writeFileSync(jsonFile, JSON.stringify({ adapter: ctx.adapterName, dispatches, memory: gpu }, null, 2));
  enc.destroy();
  process.exit(0);
}

if (args.includes('--profile')) {
  const enc = await VisionEncoder.load(ctx, await benchCheckpoint(), { weights: 'bf16' });
  // Uploads image A and runs the stem (the probe stops the encode there), so the steps below read real activations.
  await enc.encode(imageA, { onTensor: async () => { throw new Error('stop after the stem'); } }).catch(() => undefined);
  const profile = await profilePlan(ctx, enc.plan, { log: (l) => console.log(l) });
  console.log(`vision encoder profile, ${ctx.adapterName} (CPU time per image, every distinct step run once)`);
  console.log(profileTables(profile));
  if (jsonFile) writeFileSync(jsonFile, JSON.stringify({ adapter: ctx.adapterName, ...profile }, null, 2));
  enc.destroy();
  process.exit(0);
}

const ceiling = await measureFmaCeiling(ctx);
const t0 = performance.now();
const enc = await VisionEncoder.load(ctx, await benchCheckpoint(), { weights: 'bf16' });
const loadMs = performance.now() - t0;
// Pipelines are compiled at load (createComputePipelineAsync), so the first image is representative. The queue is
// drained after every step to time the parts (a real GPU would overlap steps a little more without the drains).
const flop = 2 * towerMacs(MOBILENETV5_300M_ENC);
const parts = new Map<string, number>();
const t1 = performance.now();
let last = t1;
const { softTokens } = await enc.encode(imageA, {
  onTensor: async (t) => {
    await ctx.device.queue.onSubmittedWorkDone();
    const now = performance.now();
    const part = t.name === 'stem' ? 'stem' : t.name.startsWith('blocks.') ? `stage ${t.name.split('.')[1]}` : t.name;
    parts.set(part, (parts.get(part) ?? 0) + now - last);
    last = now;
  },
});
const ms = performance.now() - t1;
const tokensErr = maxAbs(softTokens, readF32('a.soft_tokens.f32'));
const memory = enc.memory();
const result = {
  adapter: ctx.adapterName,
  fmaCeilingGflops: ceiling.flopsPerSecond / 1e9,
  msPerImage: ms,
  gflops: flop / ms / 1e6,
  ratioToCeiling: flop / ms / 1e6 / (ceiling.flopsPerSecond / 1e9),
  loadMs,
  weightBytes: memory.gpu.weights,
  activationBytes: memory.gpu.scratch,
  kernelBytes: memory.gpu.kernels,
  softTokensMaxAbsErrImageA: tokensErr,
  partsMs: Object.fromEntries(parts),
};
console.log(`vision encoder, ${ctx.adapterName}`);
console.log(`| ms / image | GFLOP/s | f32 FMA ceiling | ratio | weights (GPU) | activations (GPU) | kernels' buffers (GPU) |`);
console.log(`| ${ms.toFixed(0)} | ${result.gflops.toFixed(2)} | ${result.fmaCeilingGflops.toFixed(2)} GFLOP/s | ${(100 * result.ratioToCeiling).toFixed(1)} % | ${mb(memory.gpu.weights)} | ${mb(memory.gpu.scratch)} | ${mb(memory.gpu.kernels)} |`);
console.log(`parts (ms, queue drained per step): ${[...parts].map(([k, v]) => `${k} ${v.toFixed(0)}`).join(', ')}`);
console.log(`load ${(loadMs / 1000).toFixed(1)} s (procedural weights generated on the CPU); image A soft tokens max abs err ${tokensErr.toExponential(2)}`);
if (jsonFile) writeFileSync(jsonFile, JSON.stringify(result, null, 2));
enc.destroy();
process.exit(0);
