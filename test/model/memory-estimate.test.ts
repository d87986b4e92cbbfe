// The pre-flight estimates (src/model/gemma3n/memory-estimate.ts, src/model/gemma4/memory-estimate.ts) against what
// a load really allocates (model.memory()), on the tiny fixtures in both modes and from Gemma 3n's Q4_K_M GGUF (mixed
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

async function check(ckpt: Checkpoint, weights: 'q4' | 'float') {
  const ctx = await testGpu();
  const model = await Gemma3nModel.load(ctx, ckpt, { weights, maxContext: 64, chunk: 64 });
  try {
    const m = model.memory();
    const e = estimateGemma3nMemory(ckpt, { weights, maxContext: 64, chunk: 64, f16: ctx.f16 });
    const rel = Math.abs(e.gpuBytes - m.gpu.total) / m.gpu.total;
    console.log(`# ${ckpt.name} ${weights}: estimated GPU ${e.gpuBytes} B vs allocated ${m.gpu.total} B (${(rel * 100).toFixed(2)} %); host ${e.hostBytes} vs ${m.host.total} + hard-token rows`);
    assert.ok(rel < 0.01, `GPU estimate off by ${(rel * 100).toFixed(2)} %`);
    assert.ok(e.hostBytes >= m.host.total && e.hostBytes - m.host.total <= 256 * 64 * 4 * 2, `host ${e.hostBytes} vs ${m.host.total}`);
  } finally {
    model.dispose();
  }
}

test('the estimate matches the tiny fixture\'s real loads (safetensors q4 / float, GGUF Q4_K_M)', async () => {
  const st = await openSafetensorsCheckpoint(directoryFiles(fixtureDir('gemma3n-tiny-a')));
  await check(st, 'q4');
  await check(st, 'float');
  await check(await openGgufCheckpoint(fileSource(join(fixtureDir('gguf-gemma3n-tiny-a'), 'gemma3n-tiny-a-Q4_K_M.gguf'))), 'q4');
});

test('Gemma 4: the estimate is what the tiny fixture\'s loads allocate (q4 / float)', async () => {
  const ctx = await testGpu();
  const ckpt = await openSafetensorsCheckpoint(directoryFiles(fixtureDir('gemma4-tiny-a')));
  for (const weights of ['q4', 'float'] as const) {
    const model = await Gemma4Model.load(ctx, ckpt, { weights, maxContext: 64, chunk: 64 });
    try {
      const m = model.memory();
      const e = estimateGemma4Memory(ckpt, { weights, maxContext: 64, chunk: 64, f16: ctx.f16 });
      console.log(`# gemma4-tiny-a ${weights}: estimated GPU ${e.gpuBytes} B vs allocated ${m.gpu.total} B; host ${e.hostBytes} vs ${m.host.total}`);
      assert.equal(e.gpuBytes, m.gpu.total);
      assert.equal(e.weightBytes, m.gpu.weights);
      assert.equal(e.hostBytes, m.host.total);
    } finally {
      model.dispose();
    }
  }
});

test('E2B / E4B q4 at 4K, Gemma 3n and Gemma 4: the figures bench:memory measured (README)', () => {
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
