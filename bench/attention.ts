/**
 * Decode attention at long context (E2B shape: H 8, Hkv 2, dh 256, a full cache) and the sampler at the Gemma
 * vocab. For each context and split count: time per call and the K/V bytes read per second (the kernel is
 * memory-bound: 2 * ctx * Hkv * dh * 4 bytes per call in f32), against the adapter's streaming-read rate.
 *
 * Timing: wall clock around `reps` dispatches in one submit → onSubmittedWorkDone, best of 3 after a warm-up.
 * Usage: node --import ./scripts/register.mjs bench/attention.ts [--quick]
 */
import { createNodeGpuContext } from '../src/node/gpu.ts';
import { AttentionKernel } from '../src/kernels/attention.ts';
import { KvCache } from '../src/kernels/kv-cache.ts';
import { SampleKernel } from '../src/kernels/sample.ts';
import { createStorageBuffer } from '../src/gpu/buffers.ts';
import type { Dispatch } from '../src/gpu/pipeline.ts';
import type { GpuContext } from '../src/gpu/device.ts';
import { measureReadBandwidth } from './read-bandwidth.ts';

async function time(ctx: GpuContext, d: Dispatch, reps: number): Promise<number> {
  let best = Infinity;
  for (let trial = 0; trial < 4; trial++) {
    const enc = ctx.device.createCommandEncoder();
    const pass = enc.beginComputePass();
    for (let i = 0; i < reps; i++) d.encode(pass);
    pass.end();
    const t0 = performance.now();
    ctx.device.queue.submit([enc.finish()]);
    await ctx.device.queue.onSubmittedWorkDone();
    if (trial > 0) best = Math.min(best, (performance.now() - t0) / reps);
  }
  return best; // ms per call
}

const quick = process.argv.includes('--quick');
const ctx = await createNodeGpuContext();
console.log(`adapter: ${ctx.adapterName}`);
const bw = await measureReadBandwidth(ctx, { bytes: quick ? 16 * 2 ** 20 : 256 * 2 ** 20 });
console.log(`streaming read: ${(bw.readBytesPerSecond / 1e9).toFixed(1)} GB/s`);

const H = 8, Hkv = 2, dh = 256;
const reps = quick ? 2 : 50;
const attn = await AttentionKernel.create(ctx, { headDim: dh, group: H / Hkv });
for (const context of quick ? [1024] : [512, 4096, 16384]) {
  const cache = KvCache.create(ctx, { kind: 'full', kvHeads: Hkv, headDim: dh, maxContext: context });
  const q = createStorageBuffer(ctx.device, H * dh * 4, 'q');
  const out = createStorageBuffer(ctx.device, H * dh * 4, 'out');
  const d = attn.bind({ q, out, cache, heads: H, maxSplits: 256 });
  const bytes = 2 * context * Hkv * dh * 4;
  for (const splits of [1, 4, 16, 32, 64, 128, 256, undefined]) {
    d.setStep(context - 1, 1, splits);
    const ms = await time(ctx, d, reps);
    console.log(`decode ctx ${context} splits ${splits ?? `auto(${d.splits})`} -> ${d.splits}: ${(ms * 1000).toFixed(1)} us, ${(bytes / ms / 1e6).toFixed(1)} GB/s K/V`);
  }
  cache.destroy();
}

const V = 262400;
const sampler = await SampleKernel.create(ctx);
const logits = createStorageBuffer(ctx.device, V * 4, 'logits');
const token = createStorageBuffer(ctx.device, 4, 'token');
const s = sampler.bind({ logits, out: token, batch: 1, vocab: V, maxTokenId: 262144 });
for (const params of [{ temperature: 0 }, { temperature: 1, topK: 64, topP: 0.95 }, { temperature: 1, topK: 1024, topP: 0.95 }]) {
  s.setSampling(params);
  const ms = await time(ctx, s, reps);
  console.log(`sample V=${V} ${JSON.stringify(params)}: ${(ms * 1000).toFixed(1)} us`);
}
