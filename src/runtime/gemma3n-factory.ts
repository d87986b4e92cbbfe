/**
 * The default model factory of the worker: opens the GPU device first (so a missing WebGPU, adapter, feature
 * or limit is reported before anything is downloaded), opens the checkpoint, loads it with src/model/gemma3n/
 * and adapts it to the engine's LanguageModel (gemma3n-model.ts).
 *
 * `LoadRequest.model` may be:
 * - a folder URL ('https://host/gemma-3n-E2B-it/', '/models/tiny/'): config.json, *.safetensors, tokenizer files;
 * - a Hugging Face repo id ('google/gemma-3n-E2B-it'; gated repos need `token`), or `{ hub, revision?, token? }`;
 * - a `.gguf` URL (pass `tokenizer: '<folder URL>'`: transformers.js cannot read a GGUF's tokenizer);
 * - `{ files: File[] }`: picked checkpoint files (a folder, or one .gguf plus the tokenizer files);
 * - `{ randomCheckpoint: { preset?, seed?, layers? } }`: random weights at real shapes, generated on the spot
 *   (pass `tokenizer`; see src/model/gemma3n/random-checkpoint.ts).
 */
import { GemmaError } from '../errors.ts';
import type { Checkpoint } from '../io/checkpoint.ts';
import { listCheckpoint, listWeightFiles } from '../io/checkpoint-listing.ts';
import { ProgressAggregator } from '../io/progress.ts';
import { blobSource, pickedFiles } from '../io/file-source.ts';
import { openGemma3nGguf } from '../io/gguf-gemma3n.ts';
import { httpSource } from '../io/http-source.ts';
import { hubFiles, urlFiles } from '../io/hub.ts';
import { openSafetensorsCheckpoint, type CheckpointFiles } from '../io/safetensors.ts';
import { Gemma3nModel } from '../model/gemma3n/model.ts';
import type { ConvertedTensor } from '../model/gemma3n/weights.ts';
import { createRandomCheckpoint, isRandomCheckpointSpec } from '../model/gemma3n/random-checkpoint.ts';
import { Gemma3nLanguageModel } from './gemma3n-model.ts';
import type { LoadProgress, LoadRequest } from './protocol.ts';
import { tokenizerFromTexts, type TextTokenizer } from './tokenizer.ts';
import type { LoadedModel, ModelFactory } from './worker-host.ts';
import type { GpuContext } from '../gpu/device.ts';
import { cacheKeyFor, readFromCache, startCaching, type CacheSession } from './model-cache-load.ts';

const DEFAULT_CONTEXT = 4096;
const PREFILL_CHUNK = 64;

interface Opened {
  checkpoint: Checkpoint;
  tokenizer?: TextTokenizer;
  /** The small text files to cache with the weights (tokenizer.json, tokenizer_config.json, chat template). */
  texts?: Map<string, string>;
  /** Ends the download phase (the weights have all been read by then). */
  download?: DownloadProgress;
  /** The exact commit the hub served, when it said. */
  commit?: () => string | undefined;
}

interface DownloadProgress {
  aggregator: ProgressAggregator | undefined;
  loaded: number;
}

export const gemma3nFactory: ModelFactory = async (ctx) => {
  const { request, onProgress } = ctx;
  const signal = ctx.signal ?? new AbortController().signal;
  const gpu = await ctx.gpu();
  const key = request.cache === false ? undefined : cacheKeyFor(request, gpu);
  // Cache hit: everything (config, tokenizer texts, converted weights) comes from local storage; no network.
  const cached = key && (await readFromCache(key, request, onProgress));
  if (cached) {
    const loaded = await loadGemma3n(gpu, cached.checkpoint, request, onProgress, { signal, tensorProgress: false });
    cached.finish();
    return { ...loaded, tokenizer: cached.tokenizer, cache: 'hit' };
  }
  const opened = await openCheckpoint(request, onProgress, signal);
  const session: CacheSession | undefined = key ? await startCaching(key, gpu.device, opened.checkpoint, opened.texts, request) : undefined;
  let loaded: LoadedModel;
  try {
    loaded = await loadGemma3n(gpu, opened.checkpoint, request, onProgress, { signal, onConverted: session?.onConverted });
    if (signal.aborted) {
      // Aborted while compiling: the entry would be complete, but the caller asked for nothing to be kept.
      loaded.model.dispose();
      throw new GemmaError('aborted', `Loading ${opened.checkpoint.name} was aborted.`);
    }
    opened.download?.aggregator?.finish();
  } catch (err) {
    await session?.abort(); // a truncated, corrupt or aborted download never enters the cache
    throw err;
  }
  const outcome = session ? await session.commit(opened.commit?.()) : { cache: 'off' as const, warnings: [] };
  return { ...loaded, tokenizer: opened.tokenizer, cache: outcome.cache, warnings: outcome.warnings.length ? outcome.warnings : undefined };
};

/** What loadGemma3n does besides loading (the worker's factory uses these; Node callers need none). */
export interface LoadHooks {
  /** Checked after every tensor: an aborted load stops and rejects with GemmaError('aborted'). */
  signal?: AbortSignal;
  /** Each converted tensor (the offline cache's writer). */
  onConverted?: (t: ConvertedTensor) => Promise<void>;
  /** Report 'quantize' progress per tensor (default true; a cache read reports its bytes instead). */
  tensorProgress?: boolean;
}

/**
 * Loads an opened checkpoint onto the GPU as the engine's LanguageModel (Node and custom hosts: open the
 * checkpoint your way, e.g. `openSafetensorsCheckpoint(directoryFiles(dir))`, then call this).
 */
export async function loadGemma3n(
  gpu: GpuContext,
  checkpoint: Checkpoint,
  options: Pick<LoadRequest, 'contextLength' | 'weights'> = {},
  onProgress: (p: LoadProgress) => void = () => {},
  hooks: LoadHooks = {},
): Promise<LoadedModel> {
  let model: Gemma3nModel;
  const { signal } = hooks;
  const checkAborted = () => {
    if (signal?.aborted) throw new GemmaError('aborted', `Loading ${checkpoint.name} was aborted.`);
  };
  try {
    const maxContext = Math.min(options.contextLength ?? DEFAULT_CONTEXT, maxPositions(checkpoint));
    model = await Gemma3nModel.load(gpu, checkpoint, {
      weights: options.weights ?? 'q4',
      maxContext,
      chunk: PREFILL_CHUNK,
      // The model's count is exact (KV-shared layers included), so the last event is done === total.
      onProgress: (done, total) => {
        checkAborted();
        if (hooks.tensorProgress !== false) onProgress({ phase: 'quantize', loaded: done, total, file: checkpoint.name });
      },
      onConverted: hooks.onConverted,
      onCompile: (done) => onProgress({ phase: 'compile', loaded: done ? 1 : 0, total: 1, file: checkpoint.name }),
    });
  } catch (err) {
    if (err instanceof GemmaError) throw err;
    // A GPU out-of-memory or validation failure while creating buffers: say what was being loaded.
    throw new GemmaError('internal', `Loading ${checkpoint.name} onto the GPU failed: ${(err as Error)?.message ?? err}`, { cause: err });
  }
  return {
    model: new Gemma3nLanguageModel(model, Math.min(PREFILL_CHUNK, model.maxContext)),
    stopTokenIds: model.config.eosTokenIds,
    adapterName: gpu.adapterName,
    memory: () => {
      const m = model.memory();
      return { gpuBytes: m.gpu.total, hostBytes: m.host.pleTable };
    },
  };
}

function maxPositions(checkpoint: Checkpoint): number {
  const c = checkpoint.config as { text_config?: { max_position_embeddings?: number }; max_position_embeddings?: number };
  return c.text_config?.max_position_embeddings ?? c.max_position_embeddings ?? 32768;
}

async function openCheckpoint(request: LoadRequest, onProgress: (p: LoadProgress) => void, signal: AbortSignal): Promise<Opened> {
  const spec = request.model;
  if (isRandomCheckpointSpec(spec)) return { checkpoint: createRandomCheckpoint(spec.randomCheckpoint) };
  // Download progress counts the weight files' bytes: a clean 0..total stream (ProgressAggregator) once their
  // sizes are known; before that raw bytes with total 0 = unknown.
  const download: DownloadProgress = { aggregator: undefined, loaded: 0 };
  const onBytes = (file: string, bytes: number) => {
    if (!/\.(safetensors|gguf)$/i.test(file.split(/[?#]/)[0])) return;
    if (download.aggregator) download.aggregator.advance(file, bytes);
    else onProgress({ phase: 'download', loaded: (download.loaded += bytes), total: 0, file });
  };
  if (typeof spec === 'string') {
    if (isGgufName(spec)) {
      const headers: Record<string, string> = request.token ? { Authorization: `Bearer ${request.token}` } : {};
      const url = new URL(spec, globalThis.location?.href).href;
      const source = httpSource(url, { headers, signal, onBytes: (n) => onBytes(url, n) });
      download.aggregator = new ProgressAggregator('download', await source.size(), onProgress);
      const texts = typeof request.tokenizer === 'string' ? await tokenizerTexts(urlFiles(request.tokenizer, { signal })) : undefined;
      return { checkpoint: await openGemma3nGguf(source), texts, download };
    }
    const files = isRepoId(spec) ? hubFiles(spec, { token: request.token, onBytes, signal }) : urlFiles(spec, { token: request.token, onBytes, signal });
    return openFolder(files, request, download, onProgress, signal);
  }
  if (typeof spec === 'object' && spec !== null && typeof (spec as { hub?: unknown }).hub === 'string') {
    const { hub, revision, token } = spec as { hub: string; revision?: string; token?: string };
    return openFolder(hubFiles(hub, { revision, token: token ?? request.token, onBytes, signal }), request, download, onProgress, signal);
  }
  if (typeof spec === 'object' && spec !== null && Array.isArray((spec as { files?: unknown }).files)) {
    const picked = (spec as { files: File[] }).files;
    const gguf = picked.find((f) => isGgufName(f.name));
    if (gguf) {
      const checkpoint = await openGemma3nGguf(blobSource(gguf));
      const files = pickedFiles(picked);
      const hasTokenizer = (await files.exists('tokenizer.json')) && (await files.exists('tokenizer_config.json'));
      return { checkpoint, tokenizer: hasTokenizer && request.tokenizer === undefined ? await readTokenizer(files) : undefined };
    }
    return openFolder(pickedFiles(picked), request);
  }
  throw new GemmaError(
    'invalid-argument',
    `loadGemma({ model }) got ${JSON.stringify(spec)}: pass a checkpoint folder URL, a Hugging Face repo id, a .gguf URL, { files } or { randomCheckpoint }.`,
  );
}

/** A safetensors folder; its own tokenizer unless `request.tokenizer` says otherwise. */
async function openFolder(files: CheckpointFiles, request: LoadRequest, download?: DownloadProgress, onProgress?: (p: LoadProgress) => void, signal?: AbortSignal): Promise<Opened> {
  const commit = (files as { commit?: () => string | undefined }).commit;
  if (request.tokenizer !== undefined) {
    const weightFiles = download && onProgress ? await listWeightFiles(files) : [];
    if (download && onProgress) download.aggregator = new ProgressAggregator('download', weightFiles.reduce((s, f) => s + f.size, 0), onProgress);
    // A separate tokenizer folder: read its texts here too, so a cached load has them offline.
    const texts = typeof request.tokenizer === 'string' && download ? await tokenizerTexts(urlFiles(request.tokenizer, { signal })) : undefined;
    return { checkpoint: await openSafetensorsCheckpoint(files), texts, download, commit };
  }
  const listing = await listCheckpoint(files); // config, tokenizer files, chat template; names what is missing
  if (download && onProgress) download.aggregator = new ProgressAggregator('download', listing.totalWeightBytes, onProgress);
  const [checkpoint, tokenizer] = await Promise.all([openSafetensorsCheckpoint(files), tokenizerFromTexts(listing.texts, files.name)]);
  return { checkpoint, tokenizer, texts: tokenizerTextsOf(listing.texts), download, commit };
}

const TOKENIZER_TEXTS = ['tokenizer.json', 'tokenizer_config.json', 'chat_template.jinja'];

function tokenizerTextsOf(texts: Map<string, string>): Map<string, string> {
  return new Map([...texts].filter(([name]) => TOKENIZER_TEXTS.includes(name)));
}

/** The tokenizer texts of a folder (the worker host still builds the tokenizer from its URL on this load). */
async function tokenizerTexts(files: CheckpointFiles): Promise<Map<string, string> | undefined> {
  const texts = new Map<string, string>();
  try {
    for (const name of TOKENIZER_TEXTS) {
      if (!(await files.exists(name))) continue;
      const source = files.open(name);
      texts.set(name, new TextDecoder().decode(await source.read(0, await source.size())));
    }
  } catch {
    return undefined; // the host's own tokenizer fetch reports the problem
  }
  return texts.has('tokenizer.json') && texts.has('tokenizer_config.json') ? texts : undefined;
}

async function readTokenizer(files: CheckpointFiles): Promise<TextTokenizer> {
  const texts = new Map<string, string>();
  for (const name of ['tokenizer.json', 'tokenizer_config.json', 'chat_template.jinja']) {
    if (!(await files.exists(name))) continue;
    const source = files.open(name);
    texts.set(name, new TextDecoder().decode(await source.read(0, await source.size())));
  }
  return tokenizerFromTexts(texts, files.name);
}

function isGgufName(s: string): boolean {
  return /\.gguf$/i.test(s.split(/[?#]/)[0]);
}

/** 'owner/name' (no scheme, no leading '/' or '.'): a Hugging Face repo id. */
function isRepoId(s: string): boolean {
  return /^[A-Za-z0-9][\w.-]*\/[\w.-]+$/.test(s) && !s.includes('..');
}
