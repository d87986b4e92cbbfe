// model.memory() against the GPU buffers a load really holds, and the pre-flight estimates
// (src/model/gemma3n/memory-estimate.ts, src/model/gemma4/memory-estimate.ts) against model.memory(): on the tiny
// fixtures in both modes (int8 activations, so the int8 GEMV's scratch exists) and from Gemma 3n's Q4_K_M GGUF (mixed
// stored types), and against bench:memory's measured E2B / E4B figures (README); the pre-flight decisions
// (src/runtime/loading/preflight.ts).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { openSafetensorsCheckpoint } from '../../src/io/safetensors.ts';
import { directoryFiles } from '../../src/node/checkpoint-files.ts';
import { fileSource } from '../../src/node/file-source.ts';
import { openGgufCheckpoint } from '../../src/model/registry.ts';
import { Gemma3nModel } from '../../src/model/gemma3n/model.ts';
import { estimateGemma3nMemory } from '../../src/model/gemma3n/memory-estimate.ts';
import { Gemma4Model } from '../../src/model/gemma4/model.ts';
import { estimateGemma4Memory } from '../../src/model/gemma4/memory-estimate.ts';
import { createGemma4RandomCheckpoint } from '../../src/model/gemma4/random-checkpoint.ts';
import { createRandomCheckpoint } from '../../src/model/gemma3n/random-checkpoint.ts';
import type { Checkpoint } from '../../src/io/checkpoint.ts';
import { preflight } from '../../src/runtime/loading/preflight.ts';
import { GemmaError } from '../../src/errors.ts';
import { testGpu } from '../helpers/gpu.ts';
import { fixtureDir } from '../helpers/fixtures.ts';
import { bufferBytes, trackLiveBuffers } from '../helpers/live-buffers.ts';
import type { GpuContext } from '../../src/gpu/device.ts';
import type { MemoryReport } from '../../src/model/language-model.ts';
import type { DecoderLoadOptions } from '../../src/model/gpu-decoder.ts';

type Loaded = { memory(): MemoryReport; feed(input: { ids: number[] }): Promise<void>; greedyToken(): Promise<number>; dispose(): void };

/**
 * Loads a model (int8 activations), runs a decode step, and checks that memory().gpu.total is every byte of the GPU
 * buffers the model holds: those created since the load began, alive after the step and freed by dispose() (what
 * outlives dispose is per-device state: the shared weight quantizer's placeholders). Returns the report.
 */
async function heldMemory(ctx: GpuContext, name: string, load: (o: DecoderLoadOptions) => Promise<Loaded>, o: DecoderLoadOptions): Promise<MemoryReport> {
  const { live, stop } = trackLiveBuffers(ctx.device);
  try {
    const model = await load({ ...o, activations: 'int8' });
    let m: MemoryReport;
    const held = new Set<GPUBuffer>();
    try {
      await model.feed({ ids: [2, 3] });
      await model.feed({ ids: [4] });
      await model.greedyToken();
      m = model.memory();
      for (const b of live) held.add(b);
    } finally {
      model.dispose();
    }
    const survivors = [...live].filter((b) => held.has(b));
    assert.ok(survivors.every((b) => b.label.startsWith('quantize/')), `dispose() left ${survivors.map((b) => b.label).join(', ')}`);
    const bytes = bufferBytes(held) - bufferBytes(survivors);
    console.log(`# ${name} ${o.weights}: memory() ${JSON.stringify(m.gpu)}; live GPU buffers of the model ${bytes} B`);
    assert.equal(m.gpu.total, bytes, `memory().gpu.total misses ${bytes - m.gpu.total} B of the model's live GPU buffers`);
    assert.equal(m.gpu.total, m.gpu.weights + m.gpu.kvCache + m.gpu.scratch + m.gpu.kernels);
    return m;
  } finally {
    stop();
  }
}

async function check(ckpt: Checkpoint, weights: 'q4' | 'float') {
  const ctx = await testGpu();
  const m = await heldMemory(ctx, ckpt.name, (o) => Gemma3nModel.load(ctx, ckpt, o), { weights, maxContext: 64, chunk: 64 });
  // The estimate leaves out the kernels' own buffers (see memory-estimate.ts).
  const allocated = m.gpu.total - m.gpu.kernels;
  const e = estimateGemma3nMemory(ckpt, { weights, maxContext: 64, chunk: 64, f16: ctx.f16 });
  const rel = Math.abs(e.gpuBytes - allocated) / allocated;
  console.log(`# ${ckpt.name} ${weights}: estimated GPU ${e.gpuBytes} B vs allocated ${allocated} B (${(rel * 100).toFixed(2)} %) + ${m.gpu.kernels} B the kernels own; host ${e.hostBytes} vs ${m.host.total} + hard-token rows`);
  assert.ok(rel < 0.01, `GPU estimate off by ${(rel * 100).toFixed(2)} %`);
  assert.ok(e.hostBytes >= m.host.total && e.hostBytes - m.host.total <= 256 * 64 * 4 * 2, `host ${e.hostBytes} vs ${m.host.total}`);
}

test('memory() counts every GPU byte a load holds, and the estimate matches the tiny fixture\'s real loads (safetensors q4 / float, GGUF Q4_K_M)', async () => {
  const st = await openSafetensorsCheckpoint(directoryFiles(fixtureDir('gemma3n-tiny-a')));
  await check(st, 'q4');
  await check(st, 'float');
  await check(await openGgufCheckpoint(fileSource(join(fixtureDir('gguf-gemma3n-tiny-a'), 'gemma3n-tiny-a-Q4_K_M.gguf'))), 'q4');
});

test('Gemma 4: memory() counts every GPU byte a load holds; the estimate is what the tiny fixture\'s loads allocate (q4 / float)', async () => {
  const ctx = await testGpu();
  const ckpt = await openSafetensorsCheckpoint(directoryFiles(fixtureDir('gemma4-tiny-a')));
  for (const weights of ['q4', 'float'] as const) {
    const m = await heldMemory(ctx, 'gemma4-tiny-a', (o) => Gemma4Model.load(ctx, ckpt, o), { weights, maxContext: 64, chunk: 64 });
    const e = estimateGemma4Memory(ckpt, { weights, maxContext: 64, chunk: 64, f16: ctx.f16 });
    console.log(`# gemma4-tiny-a ${weights}: estimated GPU ${e.gpuBytes} B vs allocated ${m.gpu.total} B (${m.gpu.kernels} B of it the kernels'); host ${e.hostBytes} vs ${m.host.total}`);
    // The estimate leaves out the kernels' own buffers (see memory-estimate.ts); the rest it counts to the byte.
    assert.equal(e.gpuBytes, m.gpu.total - m.gpu.kernels);
    assert.equal(e.weightBytes, m.gpu.weights);
    assert.equal(e.hostBytes, m.host.total);
  }
});

test('E2B / E4B q4 at 4K, Gemma 3n and Gemma 4: the figures bench:memory measured (README; GPU: its total less the kernels\' buffers)', () => {
  for (const [preset, gpu, host] of [['e2b', 1.802e9, 1.132e9], ['e4b', 3.062e9, 1.321e9]] as const) {
    const e = estimateGemma3nMemory(createRandomCheckpoint({ preset }), { weights: 'q4', maxContext: 4096, chunk: 64, f16: false });
    assert.ok(Math.abs(e.gpuBytes - gpu) < 0.002 * gpu, `${preset} GPU ${e.gpuBytes}`);
    assert.ok(Math.abs(e.hostBytes - host) < 0.004 * host, `${preset} host ${e.hostBytes}`);
  }
  // Gemma 4: bench:memory --family gemma4 counts with the estimate itself and checks it against a real-size load.
  for (const [preset, gpu, host] of [['e2b', 1.765e9, 1.321e9], ['e4b', 3.535e9, 1.585e9]] as const) {
    const e = estimateGemma4Memory(createGemma4RandomCheckpoint({ preset }), { weights: 'q4', maxContext: 4096, chunk: 64, f16: false });
    assert.ok(Math.abs(e.gpuBytes - gpu) < 0.001 * gpu, `Gemma 4 ${preset} GPU ${e.gpuBytes}`);
    assert.ok(Math.abs(e.hostBytes - host) < 0.001 * host, `Gemma 4 ${preset} host ${e.hostBytes}`);
  }
});

test('pre-flight: iOS refuses, too little device memory refuses, tight memory warns, limits refuse; warn / off', () => {
  const estimate = { gpuBytes: 1.87e9, hostBytes: 1.13e9, largestGpuBuffer: 513 * 2 ** 20, weightBytes: 1.67e9 };
  const limits = { maxBufferSize: 2 ** 30, maxStorageBufferBindingSize: 2 ** 30 };
  const base = { estimate, model: 'google/gemma-3n-E2B-it', weights: 'q4', limits };
  const refused = (fn: () => unknown, pattern: RegExp) => assert.throws(fn, (e: unknown) => e instanceof GemmaError && e.code === 'limit-too-small' && pattern.test(e.message));
  refused(() => preflight({ ...base, platform: { ios: true } }), /iOS and iPadOS end a web page/);
  refused(() => preflight({ ...base, platform: { deviceMemoryGiB: 2 } }), /more than this device's 2 GB/);
  refused(() => preflight({ ...base, platform: {}, limits: { maxBufferSize: 256 * 2 ** 20, maxStorageBufferBindingSize: 2 ** 30 } }), /allows at most 256 MiB per buffer/);
  assert.deepEqual(preflight({ ...base, platform: { deviceMemoryGiB: 8 } }), []);
  const tight = preflight({ ...base, platform: { deviceMemoryGiB: 4 } });
  assert.equal(tight.length, 1);
  assert.match(tight[0], /70 % of this device's 4 GB/);
  assert.equal(preflight({ ...base, platform: { ios: true }, check: 'warn' }).length, 1);
  assert.deepEqual(preflight({ ...base, platform: { ios: true }, check: 'off' }), []);
});
