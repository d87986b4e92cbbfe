/**
 * Adapters with small limits load E2B: Android's 128 MiB storage binding and integrated GPUs' 256 MiB largest
 * buffer. The adapter's limits are capped (as such a GPU reports them), so the device is created with those limits
 * and every split decision follows them; E2B's real dimensions (262,400-row embedding / LM head, real layer widths,
 * 2 of its 30 layers) load with random q4 weights, run a prefill chunk and a decode step without a validation error,
 * and no buffer exceeds the cap.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createGpuContext } from '../../src/gpu/device.ts';
import { nodeGpu } from '../../src/node/gpu.ts';
import { Gemma3nModel } from '../../src/model/gemma3n/model.ts';
import { createRandomCheckpoint } from '../../src/model/gemma3n/random-checkpoint.ts';

const MiB = 2 ** 20;

/** The Node GPU, with every adapter reporting at most these limits. */
async function cappedGpu(caps: Record<string, number>): Promise<GPU> {
  const gpu = await nodeGpu();
  return {
    ...gpu,
    getPreferredCanvasFormat: () => gpu.getPreferredCanvasFormat(),
    wgslLanguageFeatures: gpu.wgslLanguageFeatures,
    async requestAdapter(options?: GPURequestAdapterOptions) {
      const adapter = await gpu.requestAdapter(options);
      if (!adapter) return adapter;
      const limits = new Proxy(adapter.limits, { get: (t, k) => (typeof k === 'string' && k in caps ? Math.min(caps[k], Reflect.get(t, k) as number) : Reflect.get(t, k)) });
      return new Proxy(adapter, {
        get: (t, k) => {
          if (k === 'limits') return limits;
          const v = Reflect.get(t, k);
          return typeof v === 'function' ? v.bind(t) : v;
        },
      });
    },
  } as GPU;
}

// One device with both: the smallest binding (Android) and the smallest largest-buffer (integrated GPUs) seen.
const CAPS: Array<Record<string, number>> = [{ maxStorageBufferBindingSize: 128 * MiB, maxBufferSize: 256 * MiB }];
for (const caps of CAPS) {
  test(`E2B dimensions load and run within ${JSON.stringify(caps)}`, async () => {
    const ctx = await createGpuContext(await cappedGpu(caps));
    const { device } = ctx;
    const cap = Math.min(caps.maxStorageBufferBindingSize, caps.maxBufferSize ?? Infinity);
    assert.ok(device.limits.maxStorageBufferBindingSize <= cap, `the device took the capped limit (${device.limits.maxStorageBufferBindingSize})`);
    let largest = 0;
    const create = device.createBuffer.bind(device);
    device.createBuffer = (d: GPUBufferDescriptor) => {
      largest = Math.max(largest, d.size);
      return create(d);
    };
    device.pushErrorScope('validation');
    const checkpoint = createRandomCheckpoint({ preset: 'e2b', layers: 2 });
    const model = await Gemma3nModel.load(ctx, checkpoint, { weights: 'q4', random: true, maxContext: 256, chunk: 64 });
    await model.prefill(Array.from({ length: 40 }, (_, i) => 1000 + i));
    const next = await model.feedAndSample([7], { temperature: 0 });
    const error = await device.popErrorScope();
    assert.ok(error === null, String(error?.message));
    assert.ok(Number.isInteger(next) && next >= 0 && next < model.vocabSize);
    console.log(`# caps ${JSON.stringify(caps)}: largest buffer ${(largest / MiB).toFixed(1)} MiB, GPU ${(model.memory().gpu.total / MiB).toFixed(0)} MiB`);
    assert.ok(largest <= cap, `a ${largest}-byte buffer exceeds the ${cap}-byte cap`);
    model.dispose();
    device.destroy();
  });
}
