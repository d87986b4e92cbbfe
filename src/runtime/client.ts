/**
 * GemmaClient: the main-thread handle on a model running in a Web Worker (see worker-host.ts for the other
 * side). Works with any worker that calls `exposeGemmaWorker()`.
 *
 * One generation at a time: `chat()`/`generate()` while another is running fails with GemmaError('busy'),
 * except when the running one has been aborted: then the new one starts as soon as it has wound down (at most
 * one token later), so "stop, then send the next message" just works.
 */
import { proxy, releaseProxy, transfer, wrap, type Remote } from 'comlink';
import { GemmaError, deserializeError } from '../errors.ts';
import { installErrorTransfer } from './comlink-errors.ts';
import { workerStartError } from './worker-start-error.ts';
import { GenerationStream } from './generation-stream.ts';
import { withAbsoluteUrls } from './loading/model-source.ts';
import { withPlatformHints } from './loading/preflight.ts';
import { prepareMessages, preparePrompt } from './media/prepare.ts';
import type { MediaModality } from './content.ts';
import type {
  ChatMessage,
  GenerateRequest,
  LoadProgress,
  LoadRequest,
  ModelInfo,
  PromptInput,
  StreamControl,
  StreamMessage,
  StreamOptions,
  WorkerApi,
  WorkerEvent,
} from './protocol.ts';

interface Active {
  done: Promise<void>;
  aborted: boolean;
  fail(error: GemmaError): void;
}

export class GemmaClient {
  private active: Active | undefined;
  private disposed = false;
  private crashed: GemmaError | undefined;
  /** Set when the worker reports that the GPU device was lost; cleared by reload(). */
  private lost: GemmaError | undefined;
  private current: ModelInfo;
  private readonly onWorkerError = (e: ErrorEvent) => {
    this.crashed = new GemmaError('internal', `The Gemma worker crashed: ${e.message || 'unknown error'}. Load the model again.`);
    this.active?.fail(this.crashed);
  };

  /** @internal use loadGemma() or connectGemmaWorker() */
  constructor(
    private readonly api: Remote<WorkerApi>,
    private readonly worker: Worker,
    info: ModelInfo,
    private readonly ownsWorker: boolean,
    /** The load request (URLs absolute), for reload(). */
    private readonly request: LoadRequest,
    private readonly events: WorkerEvents,
    /** Load progress of media encoders loaded later (on first use): the loadGemma() callback. */
    private readonly onProgress?: (p: LoadProgress) => void,
  ) {
    this.current = info;
    worker.addEventListener('error', this.onWorkerError);
    events.subscribe((e) => this.onWorkerEvent(e));
  }

  /**
   * What the loaded model reports: vocabulary, context length, adapter, tokenizer availability, memory, cache; and
   * `deviceLost` once the GPU device is lost (then call reload()).
   */
  get info(): ModelInfo {
    return this.current;
  }

  /**
   * Loads the model again in the same worker, on a fresh GPU device: after a device loss (`info.deviceLost`, or a
   * stream that failed with GemmaError('device-lost')), without a page refresh. A running generation is aborted
   * first. From the offline cache when the model was cached.
   */
  async reload(options: Pick<LoadOptions, 'onProgress' | 'signal'> = {}): Promise<ModelInfo> {
    this.checkUsable(false);
    if (this.active) {
      this.active.fail(new GemmaError('aborted', 'The model is being reloaded.'));
      await this.active.done;
    }
    await this.api.dispose();
    this.current = await loadInWorker(this.api, this.worker, this.request, options, this.events);
    this.lost = undefined;
    return this.current;
  }

  /**
   * Streams the model's reply to a conversation (rendered with the checkpoint's chat template). Content may be text
   * or parts: `[{ type: 'audio', audio: blobOrClip }, { type: 'text', text: 'Transcribe this.' }]`. Media is decoded
   * here (compressed audio needs the page's Web Audio) and its samples are transferred to the worker.
   */
  chat(messages: ChatMessage[], options: StreamOptions = {}): GenerationStream {
    const { signal, ...rest } = options;
    return this.start(
      prepareMessages(messages, signal).then((p) => ({ request: { kind: 'chat', messages: p.messages, options: rest }, transfer: p.transfer })),
      signal,
    );
  }

  /**
   * Streams the continuation of a plain text prompt (BOS added, no chat template), of token ids, or of a raw prompt
   * of ids and parts (token-exact: see PromptInput).
   */
  generate(prompt: PromptInput, options: StreamOptions = {}): GenerationStream {
    const { signal, ...rest } = options;
    return this.start(
      preparePrompt(prompt, signal).then((p) => ({ request: { kind: 'prompt', prompt: p.prompt, options: rest }, transfer: p.transfer })),
      signal,
    );
  }

  /**
   * Loads a media encoder now rather than on first use (progress as at load, with `component` set); `info.memory`
   * then has its line. Rejects with GemmaError('unsupported-input') when the model has no such encoder.
   */
  async preload(modality: MediaModality, options: { onProgress?: (p: LoadProgress) => void } = {}): Promise<void> {
    this.checkUsable();
    const onProgress = options.onProgress ?? this.onProgress;
    this.setMemory(await this.api.preload(modality, onProgress ? proxy(onProgress) : undefined));
  }

  /** Frees a media encoder's GPU memory ('audio'); it loads again when next needed. */
  async unload(modality: MediaModality): Promise<void> {
    this.checkUsable();
    this.setMemory(await this.api.unload(modality));
  }

  private setMemory(memory: NonNullable<ModelInfo['memory']>): void {
    this.current = { ...this.current, memory, gpuBytes: memory.gpuBytes };
  }

  /** Forgets the cached conversation (the next turn is prefilled from scratch). */
  async reset(): Promise<void> {
    this.checkUsable();
    await this.active?.done;
    await this.api.reset();
  }

  /** Frees the GPU memory and ends the worker (when loadGemma created it). */
  async dispose(): Promise<void> {
    if (this.disposed) return;
    this.disposed = true;
    this.active?.fail(new GemmaError('disposed', 'The model was disposed during generation.'));
    try {
      if (!this.crashed) await this.api.dispose();
    } finally {
      this.api[releaseProxy]();
      this.events.release();
      this.worker.removeEventListener('error', this.onWorkerError);
      if (this.ownsWorker) this.worker.terminate();
    }
  }

  private checkUsable(requireDevice = true): void {
    if (this.disposed) throw new GemmaError('disposed', 'This model was disposed; call loadGemma() again.');
    if (this.crashed) throw this.crashed;
    if (requireDevice && this.lost) throw this.lost;
  }

  private onWorkerEvent(e: WorkerEvent): void {
    if (e.type === 'device-lost') {
      this.lost = new GemmaError('device-lost', e.message);
      this.current = { ...this.current, deviceLost: { message: e.message } };
      this.active?.fail(this.lost);
    }
  }

  private start(prepared: Promise<{ request: GenerateRequest; transfer: Transferable[] }>, signal: AbortSignal | undefined): GenerationStream {
    prepared.catch(() => {}); // reported through the stream below
    const stream = new GenerationStream();
    try {
      this.checkUsable();
    } catch (err) {
      stream.fail(err as GemmaError);
      return stream;
    }
    const previous = this.active;
    if (previous && !previous.aborted) {
      stream.fail(
        new GemmaError('busy', 'A generation is already running on this model. Wait for its stream to end, or abort it (signal or stream.abort()) first.'),
      );
      return stream;
    }
    const channel = new MessageChannel();
    const port = channel.port1;
    let settle!: () => void;
    const entry: Active = {
      done: new Promise<void>((r) => (settle = r)),
      aborted: false,
      fail: (error) => {
        stream.fail(error);
        end();
      },
    };
    this.active = entry;
    const abort = () => {
      entry.aborted = true;
      port.postMessage({ type: 'abort' } satisfies StreamControl);
    };
    const end = () => {
      signal?.removeEventListener('abort', abort);
      port.onmessage = null;
      port.close();
      if (this.active === entry) this.active = undefined;
      settle();
    };
    stream.onAbort = abort;
    signal?.addEventListener('abort', abort, { once: true });
    if (signal?.aborted) abort();
    port.onmessage = (e: MessageEvent<StreamMessage>) => {
      const m = e.data;
      if (m.type === 'start') stream.begin(m.prompt);
      else if (m.type === 'delta') stream.push(m.deltas);
      else if (m.type === 'progress') {
        try {
          this.onProgress?.(m.progress);
        } catch {
          // a throwing progress callback must not break generation
        }
      } else if (m.type === 'memory') this.setMemory(m.memory);
      else if (m.type === 'done') {
        stream.finish(m.stats);
        end();
      } else if (m.type === 'error') {
        stream.fail(deserializeError(m.error));
        end();
      }
    };
    void (async () => {
      if (previous) await previous.done;
      if (stream.settled) return;
      let ready: { request: GenerateRequest; transfer: Transferable[] };
      try {
        ready = await prepared;
      } catch (err) {
        entry.fail(err instanceof GemmaError ? err : new GemmaError('invalid-argument', `The message content could not be prepared: ${(err as Error)?.message ?? err}`));
        return;
      }
      if (stream.settled) return;
      try {
        // The port and the media samples move to the worker (transferred, not copied).
        await this.api.generate(transfer(channel.port2, [channel.port2, ...ready.transfer]), ready.request);
      } catch (err) {
        // The worker reports generation errors on the port; this is a transport failure.
        entry.fail(err instanceof GemmaError ? err : new GemmaError('internal', `The Gemma worker did not respond: ${(err as Error)?.message ?? err}`));
      }
    })();
    return stream;
  }
}

/** Options of loadGemma() / connectGemmaWorker(). */
export interface LoadOptions extends LoadRequest {
  /** Loading progress: device, then download + quantize or cache-read, then compile (and tokenizer). */
  onProgress?: (progress: LoadProgress) => void;
  /**
   * Aborts the load (download, conversion, caching): the promise rejects with GemmaError('aborted') once the
   * worker has stopped and dropped any half-written cache entry.
   */
  signal?: AbortSignal;
}

/** How long an aborted load may take to wind down before the worker is given up on. */
const ABORT_GRACE_MS = 10_000;

/**
 * Loads a model in a worker you created (a script that calls `exposeGemmaWorker()`); the worker stays yours
 * (dispose() does not terminate it).
 */
export async function connectGemmaWorker(worker: Worker, options: LoadOptions, ownsWorker = false): Promise<GemmaClient> {
  installErrorTransfer();
  const { onProgress, signal, ...given } = options;
  let request: LoadRequest;
  try {
    // Relative model and tokenizer URLs are the page's: resolve them here, not against the worker script's URL.
    request = withPlatformHints(withAbsoluteUrls(given));
  } catch (err) {
    if (ownsWorker) worker.terminate();
    throw err;
  }
  const api = wrap<WorkerApi>(worker);
  const events = new WorkerEvents();
  try {
    const info = await loadInWorker(api, worker, request, { onProgress, signal }, events);
    return new GemmaClient(api, worker, info, ownsWorker, request, events, onProgress);
  } catch (err) {
    api[releaseProxy]();
    events.release();
    if (ownsWorker) worker.terminate();
    throw err;
  }
}

/** The worker's events (device loss), relayed to whoever subscribes; one comlink proxy for the client's life. */
class WorkerEvents {
  private listener: ((e: WorkerEvent) => void) | undefined;
  private readonly queued: WorkerEvent[] = [];
  readonly proxy = proxy((e: WorkerEvent) => {
    if (this.listener) this.listener(e);
    else this.queued.push(e);
  });

  subscribe(listener: (e: WorkerEvent) => void): void {
    this.listener = listener;
    for (const e of this.queued.splice(0)) listener(e);
  }

  release(): void {
    this.listener = undefined;
    (this.proxy as { [releaseProxy]?: () => void })[releaseProxy]?.();
  }
}

/** Runs the worker's load(), turning a crash, an abort or a stuck wind-down into GemmaErrors. */
async function loadInWorker(
  api: Remote<WorkerApi>,
  worker: Worker,
  request: LoadRequest,
  { onProgress, signal }: Pick<LoadOptions, 'onProgress' | 'signal'>,
  events: WorkerEvents,
): Promise<ModelInfo> {
  if (signal?.aborted) throw new GemmaError('aborted', 'Loading was aborted before it started.');
  // On abort the worker stops at the next tensor or network chunk and cleans up (cache entry, GPU memory); if it
  // does not answer within the grace period the load is given up on anyway.
  let onAbort: (() => void) | undefined;
  const aborted = new Promise<never>((_, reject) => {
    onAbort = () => {
      void api.cancelLoad().catch(() => {});
      setTimeout(() => reject(new GemmaError('aborted', 'Loading was aborted (the worker did not wind down in time).')), ABORT_GRACE_MS);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
  aborted.catch(() => {});
  let onError: ((e: ErrorEvent) => void) | undefined;
  const crashed = new Promise<never>((_, reject) => {
    onError = (e: ErrorEvent) => {
      e.preventDefault?.();
      reject(workerStartError(e));
    };
    worker.addEventListener('error', onError);
  });
  try {
    const info = await Promise.race([api.load(request, onProgress ? proxy(onProgress) : undefined, events.proxy), crashed, aborted]);
    if (signal?.aborted) throw new GemmaError('aborted', 'Loading was aborted.');
    return info;
  } catch (err) {
    if (signal?.aborted) throw err instanceof GemmaError && err.code === 'aborted' ? err : new GemmaError('aborted', 'Loading was aborted.', { cause: err });
    throw err instanceof GemmaError ? err : new GemmaError('internal', String((err as Error)?.message ?? err), { cause: err });
  } finally {
    if (onError) worker.removeEventListener('error', onError);
    if (onAbort) signal?.removeEventListener('abort', onAbort);
  }
}
