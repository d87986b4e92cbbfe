/**
 * A load on the page thread with its memory watched: the default factory (the worker's own code path) with the
 * JS heap sampled every 20 ms and at every progress event, the largest typed array the page allocated meanwhile
 * (when the page was opened with ALLOCATION_PROBE as init script), a summary of each progress phase, and one
 * decode step to show the model works. Plain data comes back (page.evaluate).
 */
import { createGpuContext } from '../../src/gpu/device.ts';
import { defaultModelFactory } from '../../src/runtime/loading/model-factory.ts';
import type { LoadProgress, LoadRequest } from '../../src/runtime/protocol.ts';

/**
 * Init script: counts every typed array and ArrayBuffer the page allocates by length (views onto an existing
 * buffer are not allocations) and remembers the largest; `__allocations()` reads and resets it.
 */
export const ALLOCATION_PROBE = `(() => {
  let largest = 0;
  const AB = ArrayBuffer;
  const names = ['ArrayBuffer', 'Uint8Array', 'Int8Array', 'Uint16Array', 'Int16Array', 'Uint32Array', 'Int32Array', 'Float32Array', 'Float64Array', 'BigInt64Array', 'BigUint64Array'];
  for (const name of names) {
    const C = globalThis[name];
    globalThis[name] = new Proxy(C, {
      construct(target, args, newTarget) {
        const made = Reflect.construct(target, args, newTarget === globalThis[name] ? target : newTarget);
        if (!(args[0] instanceof AB)) largest = Math.max(largest, made.byteLength);
        return made;
      },
    });
  }
  globalThis.__allocations = () => { const l = largest; largest = 0; return { largest: l }; };
})();`;

export interface PhaseSummary {
  events: number;
  total: number;
  last: number;
  retries: number;
}

export async function measuredLoad(load: LoadRequest, prompt: number[] = [2]) {
  const heap = () => (performance as Performance & { memory?: { usedJSHeapSize: number } }).memory?.usedJSHeapSize ?? 0;
  const probe = (globalThis as { __allocations?: () => { largest: number } }).__allocations;
  probe?.();
  const heapBefore = heap();
  let heapPeak = heapBefore;
  const timer = setInterval(() => (heapPeak = Math.max(heapPeak, heap())), 20);
  const phases: Record<string, PhaseSummary> = {};
  const t0 = performance.now();
  const gpu = await createGpuContext();
  try {
    const loaded = await defaultModelFactory({
      request: load,
      gpu: async () => gpu,
      onProgress: (p: LoadProgress) => {
        heapPeak = Math.max(heapPeak, heap());
        const s = (phases[p.phase] ??= { events: 0, total: p.total, last: 0, retries: 0 });
        s.events++;
        s.total = p.total;
        s.last = p.loaded;
        if (p.retry) s.retries++;
      },
    });
    const loadMs = performance.now() - t0;
    clearInterval(timer);
    const largestAllocation = probe?.().largest;
    const memory = loaded.model.memory?.();
    await loaded.model.feed({ ids: prompt });
    const token = await loaded.model.sample({ temperature: 0, topK: 0, topP: 1, random: 0 });
    loaded.model.dispose();
    return { loadMs, heapBefore, heapPeak, largestAllocation, phases, memory, warnings: loaded.warnings, token };
  } finally {
    clearInterval(timer);
    gpu.device.destroy();
  }
}
