/**
 * Model factories for the e2e pages' workers: a fake model (test/runtime/fake-model.ts) for the runtime's own
 * behaviour, and the CPU reference forward over a tiny fixture for golden checks. Both use the real worker
 * host, comlink boundary and public client; only the LanguageModel differs from the shipped worker.
 */
import { defaultModelFactory, type ModelFactory } from '../../src/runtime/loading/model-factory.ts';
import type { GpuContext } from '../../src/gpu/device.ts';
import { separateTokenizer } from '../../src/runtime/loading/open-source.ts';
import { parseTokenizerSource } from '../../src/runtime/loading/model-source.ts';
import { FakeModel, type FakeModelOptions } from '../runtime/fake-model.ts';
import { ReferenceLanguageModel } from '../runtime/reference-model.ts';
import { urlFiles } from '../../src/io/hub.ts';
import { openSafetensorsCheckpoint } from '../../src/io/safetensors.ts';
import { parseGemma3nConfig } from '../../src/model/gemma3n/config.ts';
import { loadRefWeights } from '../helpers/reference-gemma3n.ts';

/** Breaks WebGPU inside this worker the way real machines do, before the device is opened. */
function breakGpu(how: 'none' | 'no-adapter' | 'small-limits'): void {
  const nav = navigator as Navigator & { gpu?: GPU };
  if (how === 'none') {
    Object.defineProperty(Object.getPrototypeOf(nav), 'gpu', { get: () => undefined, configurable: true });
  } else if (how === 'no-adapter') {
    nav.gpu!.requestAdapter = async () => null;
  } else {
    const original = nav.gpu!.requestAdapter.bind(nav.gpu);
    nav.gpu!.requestAdapter = async (options) => {
      const adapter = await original(options);
      if (!adapter) return adapter;
      const limits = new Proxy(adapter.limits, {
        get: (target, key) => (key === 'maxStorageBufferBindingSize' ? 64 * 1024 * 1024 : Reflect.get(target, key)),
      });
      return new Proxy(adapter, {
        get: (target, key) => (key === 'limits' ? limits : typeof Reflect.get(target, key) === 'function' ? Reflect.get(target, key).bind(target) : Reflect.get(target, key)),
      });
    };
  }
}

/** The GPU context of the last model this worker loaded (tests lose it on purpose). */
export let lastGpu: GpuContext | undefined;

export const testFactory: ModelFactory = async (ctx) => {
  const { request } = ctx;
  if (typeof request.model === 'string') {
    // A real checkpoint through the shipped factory; the device is kept so a test can destroy it mid-generation.
    return defaultModelFactory({ ...ctx, gpu: async () => (lastGpu = await ctx.gpu()) });
  }
  const spec = request.model as { fake?: FakeModelOptions; reference?: string; breakGpu?: 'none' | 'no-adapter' | 'small-limits' };
  if (spec.breakGpu) {
    breakGpu(spec.breakGpu);
    await ctx.gpu();
    throw new Error('test factory: the GPU was supposed to fail');
  }
  const { tokenizer } = await separateTokenizer(parseTokenizerSource(request));
  if (spec.fake) return { model: new FakeModel(spec.fake), tokenizer, stopTokenIds: [1, 106], adapterName: 'fake' };
  if (spec.reference) {
    const ckpt = await openSafetensorsCheckpoint(urlFiles(new URL(spec.reference, location.href).href));
    const cfg = parseGemma3nConfig(ckpt.config);
    const model = new ReferenceLanguageModel(cfg, await loadRefWeights(ckpt), request.contextLength ?? 256);
    return { model, tokenizer, stopTokenIds: cfg.eosTokenIds, adapterName: 'cpu-reference' };
  }
  throw new Error(`test factory: unknown model ${JSON.stringify(spec)}`);
};
