/**
 * The worker side of the public API: an Engine behind comlink. `exposeGemmaWorker(factory)` is all a worker
 * script needs (src/runtime/worker.ts is the default one; bring-your-own workers and tests pass their own
 * model factory).
 *
 * Streaming: each generation gets its own MessagePort (transferred with the request). The worker posts
 * deltas on it without waiting for anything (no per-token round trip), then one 'done' or 'error' message;
 * the main thread posts 'abort' on the same port. Deltas produced while the previous post is younger than
 * `streamIntervalMs` are batched into one message.
 */
import { expose, releaseProxy } from 'comlink';
import { createGpuContext, type GpuContext } from '../gpu/device.ts';
import { GemmaError, serializeError } from '../errors.ts';
import { installErrorTransfer } from './comlink-errors.ts';
import { Engine } from './engine.ts';
import type { Delta, GenerateRequest, LoadProgress, LoadRequest, ModelInfo, StreamControl, StreamMessage, WorkerApi, WorkerEvent } from './protocol.ts';
import { memoryInfo, type ModelFactory } from './loading/model-factory.ts';
import { MediaEncoders } from './media/encoders.ts';
import { PromptBuilder } from './media/prompt-builder.ts';
import type { MediaModality } from './content.ts';

const MODALITIES: readonly MediaModality[] = ['audio', 'image'];

export interface WorkerHostOptions {
  /** Batch deltas posted less than this many ms after the previous post (default 0: post every token). */
  streamIntervalMs?: number;
}

/** The comlink-exposed object, usable without a worker too (tests, same-thread hosts). */
export function createWorkerApi(factory: ModelFactory, options: WorkerHostOptions = {}): WorkerApi & { engine(): Engine | undefined } {
  let engine: Engine | undefined;
  let encoders: MediaEncoders | undefined;
  let decoderMemory: ReturnType<typeof memoryInfo>;
  let loading = false;
  let gpuContext: GpuContext | undefined;
  let loadController: AbortController | undefined;
  /** Set once the loaded model's device is lost (not by our own dispose): every generation fails with it. */
  let lost: GemmaError | undefined;
  let events: ((e: WorkerEvent) => void) | undefined;
  const interval = options.streamIntervalMs ?? 0;
  /** The decoder's memory plus a line per loaded encoder. */
  const memoryNow = (): NonNullable<ModelInfo['memory']> => {
    const encoderBytes = encoders?.memory() ?? {};
    const m = decoderMemory ?? { gpuBytes: 0, hostBytes: 0 };
    return Object.keys(encoderBytes).length ? { ...m, encoders: encoderBytes } : { ...m };
  };
  const modality = (m: unknown): MediaModality => {
    if (!MODALITIES.includes(m as MediaModality)) throw new GemmaError('invalid-argument', `${JSON.stringify(m)} is not a media kind: pass ${MODALITIES.map((x) => `'${x}'`).join(' or ')}.`);
    return m as MediaModality;
  };

  /** Reports a device loss once, drops the engine (its buffers died with the device) and tells the page. */
  const watchDevice = (ctx: GpuContext) => {
    void ctx.device.lost.then((info) => {
      if (ctx !== gpuContext) return; // our own dispose, or a device replaced by a reload
      lost = new GemmaError(
        'device-lost',
        `The GPU device was lost (${info.reason === 'destroyed' ? 'destroyed' : info.reason || 'unknown reason'}: ${info.message || 'no message'}). ` +
          'This happens on a driver reset, when the GPU runs out of memory, or when a mobile browser suspends a background tab. Call client.reload() to load the model again.',
      );
      try {
        encoders?.dispose();
        engine?.dispose();
      } catch {
        // the buffers are gone with the device
      }
      encoders = undefined;
      engine = undefined;
      try {
        void events?.({ type: 'device-lost', message: lost.message });
      } catch {
        // the page went away
      }
    });
  };
  /** An error during generation on a lost device is the device loss (the loss may be reported a moment later). */
  const explain = async (err: unknown): Promise<unknown> => {
    if (lost || !gpuContext || (err instanceof GemmaError && err.code !== 'internal')) return lost ?? err;
    await Promise.race([gpuContext.device.lost, new Promise((r) => setTimeout(r, 100))]);
    return lost ?? err;
  };

  /**
   * A progress reporter for a page callback. Through comlink each call is a message on the callback's own port, which
   * is not ordered with the reply to load() / preload(): `delivered()` waits for the last call to have run on the page,
   * so no progress event arrives after the promise it reports on has resolved. The page runs the calls in order, so
   * the last one is enough. A throwing or missing callback never breaks loading.
   */
  const progressReporter = (onProgress: ((p: LoadProgress) => void) | undefined) => {
    let last: Promise<unknown> = Promise.resolve();
    const report = (p: LoadProgress) => {
      try {
        const r: unknown = onProgress?.(p);
        if (r instanceof Promise) last = r.catch(() => {});
      } catch {
        // a throwing progress callback must not break loading
      }
    };
    return { report, delivered: () => last };
  };

  const releaseEvents = () => {
    // Through comlink the callback is a proxy holding a MessagePort: release it when it is no longer needed.
    (events as { [releaseProxy]?: () => void } | undefined)?.[releaseProxy]?.();
    events = undefined;
  };

  return {
    engine: () => engine,

    async load(request: LoadRequest, onProgress?: (p: LoadProgress) => void, onEvent?: (e: WorkerEvent) => void): Promise<ModelInfo> {
      if (engine || loading) throw new GemmaError('busy', 'A model is already loaded (or loading) in this worker; dispose() it first, or use another worker.');
      loading = true;
      lost = undefined;
      const controller = (loadController = new AbortController());
      const reporter = progressReporter(onProgress);
      const progress = reporter.report;
      try {
        let gpuPromise: Promise<GpuContext> | undefined;
        const gpu = () =>
          (gpuPromise ??= (async () => {
            progress({ phase: 'device', loaded: 0, total: 1, file: '' });
            gpuContext = await createGpuContext(undefined, { allowF16: request.allowF16, powerPreference: request.powerPreference });
            progress({ phase: 'device', loaded: 1, total: 1, file: gpuContext.adapterName });
            return gpuContext;
          })());
        const loaded = await factory({ request, gpu, onProgress: progress, signal: controller.signal });
        if (controller.signal.aborted) {
          loaded.model.dispose();
          throw new GemmaError('aborted', 'Loading was aborted.');
        }
        const media = new MediaEncoders(gpuContext, loaded.media);
        const prompts = new PromptBuilder({ tokenizer: loaded.tokenizer, encoders: media, maxContext: loaded.model.maxContext });
        decoderMemory = memoryInfo(loaded.model);
        for (const m of request.preload ?? []) {
          media.onProgress = progress;
          try {
            await media.get(modality(m), controller.signal);
          } catch (err) {
            media.dispose();
            loaded.model.dispose();
            throw err;
          }
        }
        media.onProgress = () => {};
        encoders = media;
        engine = new Engine({ model: loaded.model, tokenizer: loaded.tokenizer, stopTokenIds: loaded.stopTokenIds, toolTokens: loaded.toolTokens, prompts });
        releaseEvents();
        events = onEvent;
        if (gpuContext) watchDevice(gpuContext);
        const memory = decoderMemory && memoryNow();
        const warnings = [...(loaded.warnings ?? []), ...media.warnings];
        await reporter.delivered();
        return {
          vocabSize: loaded.model.vocabSize,
          maxContext: loaded.model.maxContext,
          adapterName: loaded.adapterName ?? gpuContext?.adapterName ?? 'unknown',
          hasTokenizer: loaded.tokenizer !== undefined,
          memory,
          gpuBytes: memory?.gpuBytes,
          cache: loaded.cache,
          warnings: warnings.length ? warnings : undefined,
          media: MODALITIES.filter((m) => media.family(m) !== undefined),
          ...(loaded.slice ? { slice: loaded.slice } : {}),
        };
      } catch (err) {
        // A failed or aborted load may leave GPU buffers behind (a half-loaded model): destroying the device frees
        // them all, and the next load() opens a fresh one, so this worker stays usable.
        gpuContext?.device.destroy();
        gpuContext = undefined;
        throw controller.signal.aborted && !(err instanceof GemmaError && err.code === 'aborted') ? new GemmaError('aborted', 'Loading was aborted.', { cause: err }) : err;
      } finally {
        loading = false;
        loadController = undefined;
        // Through comlink the callback is a proxy holding a MessagePort: release it once loading is over.
        (onProgress as { [releaseProxy]?: () => void } | undefined)?.[releaseProxy]?.();
      }
    },

    async cancelLoad(): Promise<void> {
      loadController?.abort();
    },

    async generate(port: MessagePort, request: GenerateRequest): Promise<void> {
      const controller = new AbortController();
      port.onmessage = (e: MessageEvent<StreamControl>) => {
        if (e.data?.type === 'abort') controller.abort();
      };
      let pending: Delta[] = [];
      let lastPost = 0;
      const post = (m: StreamMessage) => port.postMessage(m);
      const flush = () => {
        if (pending.length) post({ type: 'delta', deltas: pending });
        pending = [];
        lastPost = performance.now();
      };
      const onDelta = (d: Delta) => {
        pending.push(d);
        if (interval <= 0 || performance.now() - lastPost >= interval) flush();
      };
      // The encoders' memory line as the client last received it. An encoder may also grow while it encodes (the
      // audio tower sizes its activations and binds its dispatches on its first clip): the line is posted again
      // before the generation ends when it changed.
      let encoderMemory = JSON.stringify(encoders?.memory() ?? {});
      const postMemory = () => {
        const memory = memoryNow();
        encoderMemory = JSON.stringify(encoders?.memory() ?? {});
        post({ type: 'memory', memory });
      };
      const refreshMemory = () => {
        if (JSON.stringify(encoders?.memory() ?? {}) !== encoderMemory) postMemory();
      };
      if (encoders) {
        // A media encoder loading on first use reports on this generation's port.
        encoders.onProgress = (progress) => post({ type: 'progress', progress });
        encoders.onChange = postMemory;
      }
      try {
        if (lost) throw lost;
        if (!engine) throw new GemmaError('invalid-argument', 'No model is loaded in this worker: call load() first.');
        const options = { ...request.options, signal: controller.signal };
        const stream = request.kind === 'chat' ? engine.chat(request.messages, options) : engine.generate(request.prompt, options);
        const prompt = await stream.started.catch(() => undefined);
        if (prompt) post({ type: 'start', prompt });
        for await (const delta of stream) onDelta(delta);
        const stats = await stream.stats;
        flush();
        refreshMemory();
        post({ type: 'done', stats });
      } catch (err) {
        flush();
        refreshMemory();
        post({ type: 'error', error: serializeError(await explain(err)) });
      } finally {
        if (encoders) {
          encoders.onProgress = () => {};
          encoders.onChange = () => {};
        }
        port.onmessage = null;
        port.close();
      }
    },

    async preload(m: MediaModality, onProgress?: (p: LoadProgress) => void): Promise<NonNullable<ModelInfo['memory']>> {
      if (lost) throw lost;
      if (!encoders) throw new GemmaError('invalid-argument', 'No model is loaded in this worker: call load() first.');
      const media = encoders;
      const reporter = progressReporter(onProgress);
      media.onProgress = reporter.report;
      try {
        await media.get(modality(m));
        await reporter.delivered();
        return memoryNow();
      } finally {
        media.onProgress = () => {};
        (onProgress as { [releaseProxy]?: () => void } | undefined)?.[releaseProxy]?.();
      }
    },

    async unload(m: MediaModality): Promise<NonNullable<ModelInfo['memory']>> {
      if (lost) throw lost;
      if (!encoders) throw new GemmaError('invalid-argument', 'No model is loaded in this worker: call load() first.');
      await encoders.unload(modality(m));
      return memoryNow();
    },

    async reset(): Promise<void> {
      await engine?.resetCache();
    },

    async dispose(): Promise<void> {
      encoders?.dispose();
      encoders = undefined;
      engine?.dispose();
      engine = undefined;
      const ctx = gpuContext;
      gpuContext = undefined; // before destroy(): the device.lost it causes is ours, not a loss to report
      ctx?.device.destroy();
      lost = undefined;
      releaseEvents();
    },
  };
}

export type { LoadedModel, ModelFactory, ModelFactoryContext } from './loading/model-factory.ts';

/** Call this in a worker script: exposes the engine API to the page's `loadGemma({ worker })`. */
export function exposeGemmaWorker(factory: ModelFactory, options?: WorkerHostOptions): void {
  installErrorTransfer();
  expose(createWorkerApi(factory, options));
}
