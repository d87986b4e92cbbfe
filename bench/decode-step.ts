/**
 * Decode-step profile of the random `tiny` model (hidden 128, 4 layers, the full 262,400-token vocabulary) on the
 * Node adapter: load + pipeline compile time, then the wall time of fused decode steps (feed one token + GPU
 * sampling, only the id read back), greedy and top-k/top-p, and the LM-head pieces in isolation (q8 GEMV
 * 262400 x 128, softcap over 262,400 logits, the two samplers), timed as isolated dispatches (median of a few).
 *
 * Usage: node --import ./scripts/register.mjs bench/decode-step.ts [--vocab N] [--steps N]
 */
import { createNodeGpuContext } from '../src/node/gpu.ts';
import type { GpuContext } from '../src/gpu/device.ts';
import { createStorageBuffer } from '../src/gpu/buffers.ts';
import { Gemma3nModel } from '../src/model/gemma3n/model.ts';
import { createRandomCheckpoint, GEMMA3N_VOCAB_SIZE } from '../src/model/gemma3n/random-checkpoint.ts';
import { MatmulKernel } from '../src/kernels/matmul.ts';
import { ElementwiseKernel } from '../src/kernels/elementwise.ts';
import { SampleKernel } from '../src/kernels/sample.ts';
import { createRandomWeight, destroyWeight } from '../src/kernels/upload-weight.ts';

const argv = process.argv.slice(2);
const value = (k: string) => {
  const i = argv.indexOf(`--${k}`);
  return i >= 0 ? Number(argv[i + 1]) : undefined;
};
const V = value('vocab') ?? GEMMA3N_VOCAB_SIZE;
const steps = value('steps') ?? 4;
const median = (a: number[]) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)];

async function timeIt(ctx: GpuContext, encode: (pass: GPUComputePassEncoder) => void, iters = 3): Promise<number> {
  const samples: number[] = [];
  for (let i = 0; i <= iters; i++) {
    const enc = ctx.device.createCommandEncoder();
    const pass = enc.beginComputePass();
    encode(pass);
    pass.end();
    const t0 = performance.now();
    ctx.device.queue.submit([enc.finish()]);
    await ctx.device.queue.onSubmittedWorkDone();
    if (i > 0) samples.push(performance.now() - t0);
  }
  return median(samples);
}

const ctx = await createNodeGpuContext();
console.log(`adapter: ${ctx.adapterName}; vocab ${V}`);

// Isolated LM-head pieces.
{
  let t0 = performance.now();
  const mm = await MatmulKernel.create(ctx, 'f32', ['q8']);
  const ew = await ElementwiseKernel.create(ctx, 'f32');
  const sk = await SampleKernel.create(ctx);
  console.log(`compile matmul[q8] + elementwise + sample: ${(performance.now() - t0).toFixed(0)} ms`);
  const D = 128;
  const weight = await createRandomWeight(ctx, { rows: V, cols: D, format: 'q8', seed: 1, std: 0.02, codes: true });
  const x = createStorageBuffer(ctx.device, D * 4, 'x');
  const logits = createStorageBuffer(ctx.device, V * 4, 'logits');
  const out = createStorageBuffer(ctx.device, 16, 'out');
  const gemv = mm.bind({ x, weight, y: logits, rows: 1 });
  console.log(`LM-head GEMV q8 ${V}x${D}: ${(await timeIt(ctx, (p) => gemv.encode(p))).toFixed(1)} ms`);
  const cap = ew.bind({ op: 'softcap', a: logits, y: logits, cols: V, alpha: 30, rows: 1 });
  console.log(`softcap ${V}: ${(await timeIt(ctx, (p) => cap.encode(p))).toFixed(1)} ms`);
  const s = sk.bind({ logits, out, batch: 1, vocab: V, maxTokenId: V - 256 });
  s.setSampling({ temperature: 0 });
  console.log(`sample greedy: ${(await timeIt(ctx, (p) => s.encode(p))).toFixed(1)} ms`);
  s.setSampling({ temperature: 1, topK: 64, topP: 0.95 });
  console.log(`sample top-k 64 / top-p 0.95: ${(await timeIt(ctx, (p) => s.encode(p))).toFixed(1)} ms`);
  gemv.destroy();
  destroyWeight(weight);
  t0 = performance.now();
}

// The whole model.
let t0 = performance.now();
const model = await Gemma3nModel.load(ctx, createRandomCheckpoint({ preset: 'tiny', vocabSize: V }), { weights: 'q4', maxContext: 256, chunk: 16 });
console.log(`load (weights + pipelines): ${(performance.now() - t0).toFixed(0)} ms`);
t0 = performance.now();
let tok = await model.feedAndSample([2, 105, 2364], { temperature: 0, allowMultimodal: true });
console.log(`prefill 3 + greedy: ${(performance.now() - t0).toFixed(0)} ms`);
for (const [name, sampling] of [
  ['greedy', { temperature: 0, allowMultimodal: true }],
  ['top-k 64 / top-p 0.95', { temperature: 1, topK: 64, topP: 0.95, seed: 7 }],
] as const) {
  const times: number[] = [];
  for (let i = 0; i < steps; i++) {
    t0 = performance.now();
    tok = await model.feedAndSample([tok], sampling);
    times.push(performance.now() - t0);
  }
  console.log(`decode step (${name}): median ${median(times).toFixed(0)} ms [${times.map((t) => t.toFixed(0)).join(', ')}]`);
}
t0 = performance.now();
await model.feed({ ids: [tok] }); // resolves when the GPU is done
console.log(`forward only (no sampling): ${(performance.now() - t0).toFixed(0)} ms`);
t0 = performance.now();
await model.logits();
console.log(`logits readback: ${(performance.now() - t0).toFixed(0)} ms`);
model.dispose();
process.exit(0);
