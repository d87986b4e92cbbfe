/**
 * The e2e test page: puts the public API and a few measuring helpers on `window.T` for Playwright's
 * page.evaluate (which can only move plain data).
 */
import { loadGemma, connectGemmaWorker, GemmaError, listCachedModels, deleteCachedModel, clearCache, cacheUsage, type GenerationStream, type GemmaClient } from '../../src/index.ts';
import { wrap } from 'comlink';
import { ModelCache } from '../../src/io/cache.ts';
import { createGpuContext } from '../../src/gpu/device.ts';
import type { Gemma3nModel } from '../../src/model/gemma3n/model.ts';
import { Engine } from '../../src/runtime/engine.ts';
import type { LoadProgress } from '../../src/runtime/protocol.ts';
import { createWorkerApi } from '../../src/runtime/worker-host.ts';
import { testFactory } from './factories.ts';
import { defaultModelFactory } from '../../src/runtime/loading/model-factory.ts';
import { measuredLoad } from './measure-load.ts';
import type { Delta, GenerateRequest, GenerationStats, LoadRequest } from '../../src/runtime/protocol.ts';
import { recordAudio, decodeAudioSource } from '../../src/index.ts';
import { prepareMessages } from '../../src/runtime/media/prepare.ts';
import { encodeWav } from '../../src/audio/wav.ts';
import { sampleVideoFrames } from '../../src/index.ts';
import { prepareImageSource } from '../../src/runtime/media/image-input.ts';
import { decodeImagePayload } from '../../src/runtime/media/image-decode.ts';
import { MEDIA_ENCODERS } from '../../src/model/registry.ts';

/**
 * The library's own image preprocessing on this page (the same createImageBitmap + OffscreenCanvas decode the
 * worker runs, then the Pillow-exact resize): the resized RGB pixels, and what the decode gave.
 */
async function preprocessOnPage(image: Blob, size = 768) {
  const { payload } = await prepareImageSource(image, 'test image');
  const decoded = await decodeImagePayload(payload, 'test image');
  const rgb = new Uint8Array(decoded.width * decoded.height * 3);
  for (let i = 0; i < decoded.width * decoded.height; i++) for (let c = 0; c < 3; c++) rgb[3 * i + c] = decoded.data[i * decoded.channels + c];
  return { width: decoded.width, height: decoded.height, channels: decoded.channels, rgb, resized: MEDIA_ENCODERS.image.resize(rgb, decoded.width, decoded.height, 3, size, size) };
}

/**
 * A compressed clip made by Chromium itself: an oscillator (a chirp) played into a MediaStream and recorded with the
 * library's recorder (MediaRecorder, Opus), then decoded by the library (Web Audio) on stop.
 */
async function chromiumRecording(seconds: number) {
  const ctx = new AudioContext({ sampleRate: 48000 });
  await ctx.resume();
  const osc = ctx.createOscillator();
  osc.frequency.setValueAtTime(300, ctx.currentTime);
  osc.frequency.linearRampToValueAtTime(3000, ctx.currentTime + seconds);
  const destination = ctx.createMediaStreamDestination();
  osc.connect(destination);
  osc.start();
  const recording = await recordAudio({ stream: destination.stream, maxSeconds: seconds });
  try {
    return await recording.done;
  } finally {
    osc.stop();
    await ctx.close();
  }
}

export interface Collected {
  deltas: Delta[];
  /** ms since the stream was created, per delta. */
  arrivals: number[];
  stats: GenerationStats | null;
  error: { name: string; code?: string; message: string } | null;
  text: string;
}

/** Drains a stream into plain data; `onDelta` may abort etc. */
async function collect(stream: GenerationStream, onDelta?: (d: Delta, i: number) => void): Promise<Collected> {
  const t0 = performance.now();
  const out: Collected = { deltas: [], arrivals: [], stats: null, error: null, text: '' };
  try {
    for await (const d of stream) {
      out.deltas.push(d);
      out.arrivals.push(performance.now() - t0);
      out.text += d.text;
      onDelta?.(d, out.deltas.length - 1);
    }
    out.stats = await stream.stats;
  } catch (err) {
    out.error = plainError(err);
  }
  return out;
}

function plainError(err: unknown) {
  const e = err as { name?: string; code?: string; message?: string };
  return { name: e?.name ?? 'unknown', code: e instanceof GemmaError ? e.code : undefined, message: e?.message ?? String(err) };
}

/** The engine API in this thread (no worker, no messages), for worker-overhead measurements. */
async function directApi(load: LoadRequest, factory: 'test' | 'gemma3n' = 'test') {
  const api = createWorkerApi(factory === 'test' ? testFactory : defaultModelFactory);
  await api.load(load);
  const engine = api.engine()!;
  return {
    async run(request: GenerateRequest): Promise<{ stats: GenerationStats; tokens: number }> {
      let tokens = 0;
      const stream = request.kind === 'chat' ? engine.chat(request.messages, request.options) : engine.generate(request.prompt, request.options);
      for await (const d of stream) tokens += d.tokenIds.length;
      return { stats: await stream.stats, tokens };
    },
    reset: () => api.reset(),
    dispose: () => api.dispose(),
  };
}

/** Loads, runs one request and disposes, all in this thread. */
async function directGenerate(load: LoadRequest, request: GenerateRequest, factory: 'test' | 'gemma3n' = 'test'): Promise<{ stats: GenerationStats; tokens: number }> {
  const api = await directApi(load, factory);
  try {
    return await api.run(request);
  } finally {
    await api.dispose();
  }
}

/** How a load ends within `timeoutMs`: 'loaded' (the client is disposed), 'hang', or the error as plain data. */
async function outcome(p: Promise<GemmaClient>, timeoutMs = 20_000): Promise<'loaded' | 'hang' | ReturnType<typeof plainError>> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const hang = new Promise<'hang'>((resolve) => (timer = setTimeout(() => resolve('hang'), timeoutMs)));
  try {
    return await Promise.race([
      p.then(async (client) => {
        await client.dispose();
        return 'loaded' as const;
      }, plainError),
      hang,
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/** Watches main-thread responsiveness: animation frames and the longest gap between 5 ms timer ticks. */
/**
 * Watches the main thread: every gap between timer/frame callbacks is recorded. `p95Gap` is what a user feels
 * (a shared CI machine can still deschedule the whole browser once in a while, which `maxGap` shows).
 */
function watchMainThread(): () => { frames: number; maxGap: number; p95Gap: number } {
  let frames = 0;
  const gaps: number[] = [];
  let last = performance.now();
  let running = true;
  const tick = () => {
    const now = performance.now();
    gaps.push(now - last);
    last = now;
  };
  const frame = () => {
    frames++;
    tick();
    if (running) requestAnimationFrame(frame);
  };
  requestAnimationFrame(frame);
  const timer = setInterval(tick, 5);
  return () => {
    running = false;
    clearInterval(timer);
    tick();
    const sorted = [...gaps].sort((a, b) => a - b);
    return { frames, maxGap: sorted.at(-1) ?? 0, p95Gap: sorted[Math.floor(sorted.length * 0.95)] ?? 0 };
  };
}

/** Every folder in the cache (committed or not), to check nothing half-written stays behind. */
async function cacheFolders(): Promise<string[]> {
  return (await (await ModelCache.open())?.backend.listFolders()) ?? [];
}

/**
 * Loads with the worker's own factory on this thread (so the model object is reachable): the last prompt
 * position's logits, greedy tokens, timed progress events and the peak JS heap seen while loading.
 */
async function pageModel(load: LoadRequest, prompt: number[], n: number) {
  const events: (LoadProgress & { t: number })[] = [];
  const heap = () => (performance as Performance & { memory?: { usedJSHeapSize: number } }).memory?.usedJSHeapSize ?? 0;
  const heapBefore = heap();
  let heapPeak = heapBefore;
  const timer = setInterval(() => (heapPeak = Math.max(heapPeak, heap())), 20);
  let gpu: Awaited<ReturnType<typeof createGpuContext>> | undefined;
  const t0 = performance.now();
  try {
    const loaded = await defaultModelFactory({
      request: load,
      gpu: async () => (gpu ??= await createGpuContext()),
      onProgress: (p) => {
        heapPeak = Math.max(heapPeak, heap());
        events.push({ ...p, t: performance.now() - t0 });
      },
    });
    const loadMs = performance.now() - t0;
    clearInterval(timer);
    const model = loaded.model as Gemma3nModel;
    const logits = (await model.prefill(prompt, { allLogits: true }))!.at(-1)!;
    const engine = new Engine({ model });
    const tokens: number[] = [];
    const stream = engine.generate(prompt, { temperature: 0, maxNewTokens: n });
    for await (const d of stream) tokens.push(...d.tokenIds);
    await stream.stats;
    engine.dispose();
    return { events, loadMs, cache: loaded.cache, warnings: loaded.warnings, logits: Array.from(logits), tokens, heapBefore, heapPeak };
  } finally {
    clearInterval(timer);
    gpu?.device.destroy();
  }
}

const T = {
  listCachedModels,
  deleteCachedModel,
  clearCache,
  cacheUsage,
  cacheFolders,
  pageModel,
  measuredLoad,
  watchMainThread,
  outcome,
  loadGemma,
  connectGemmaWorker,
  GemmaError,
  collect,
  plainError,
  directGenerate,
  directApi,
  recordAudio,
  decodeAudioSource,
  prepareMessages,
  encodeWav,
  chromiumRecording,
  prepareImageSource,
  preprocessOnPage,
  sampleVideoFrames,
  testWorker: () => new Worker(new URL('./test-worker.ts', import.meta.url), { type: 'module', name: 'gemma-test' }),
  /** The test worker's extra endpoint (test-worker.ts): destroy its GPU device, read its requestAdapter options. */
  testWorkerControl: (worker: Worker) => wrap<{ loseDevice(): boolean; adapterOptions(): GPURequestAdapterOptions | undefined }>(worker),
  clients: {} as Record<string, GemmaClient>,
};
(window as unknown as { T: typeof T }).T = T;
export type TestApi = typeof T;
