/**
 * Loading a model for the engine: the default factory of the worker (and of Node hosts). It parses the request's
 * source once (model-source.ts), opens the GPU first (so a missing WebGPU, adapter, feature or limit is reported
 * before anything is downloaded), serves the offline cache or opens the source (open-source.ts, tokenizer first),
 * and builds the decoder with the family the registry picks for the checkpoint. An AbortSignal stops it between
 * any two tensors or network chunks, and nothing half-written is cached.
 *
 * The types here (what a factory gets and returns) are shared with the worker host, which takes any factory.
 */
import type { GpuContext } from '../../gpu/device.ts';
import type { Checkpoint } from '../../io/checkpoint.ts';
import type { ConvertedTensor } from '../../model/converted-tensor.ts';
import type { ModelSize, SliceInfo, WeightMode } from '../../model/family.ts';
import type { ToolTokens } from '../../model/tool-tokens.ts';
import { GemmaError } from '../../errors.ts';
import type { LanguageModel, MemoryReport } from '../../model/language-model.ts';
import { familyForConfig } from '../../model/registry.ts';
import type { LoadProgress, LoadRequest, ModelInfo } from '../protocol.ts';
import type { TextTokenizer } from '../tokenizer.ts';
import { readContainingFromCache, readFromCache, startCaching, type CacheSession, type CachedLoad } from './model-cache.ts';
import { cacheKeyOf, describeSource, parseModelSize, parseModelSource, parseTokenizerSource, sliceCacheTag, tokenizerCacheTag, type ModelSource, type TokenizerSource } from './model-source.ts';
import { openSource, pinHubSource, type OpenOptions } from './open-source.ts';
import { convertedWeights, openConvertedSource, readConverted } from './converted-source.ts';
import { detectPlatform, preflight, type MemoryCheck, type PlatformHints } from './preflight.ts';
import type { MediaSource } from './media-source.ts';

/** KV-cache positions when the request does not say (at most the checkpoint's limit). */
export const DEFAULT_CONTEXT = 4096;

/** What a model factory produces. */
export interface LoadedModel {
  model: LanguageModel;
  /** Absent: token-id prompts only. */
  tokenizer?: TextTokenizer;
  /** The checkpoint's stop ids (config.json / generation_config.json `eos_token_id`). */
  stopTokenIds?: number[];
  /** The family's native tool-call markers (ModelFamily.toolTokens; Gemma 4), for the Engine. */
  toolTokens?: ToolTokens<string>;
  /** For ModelInfo (default the GPU context's name). */
  adapterName?: string;
  /** For ModelInfo.cache / warnings. */
  cache?: ModelInfo['cache'];
  warnings?: string[];
  /** Where media encoders (audio, vision) are loaded from on first use; absent: text only. */
  media?: MediaSource;
  /** For ModelInfo.slice: the sub-model, when the load asked for a size. */
  slice?: SliceInfo;
}

export interface ModelFactoryContext {
  request: LoadRequest;
  /** Opens (once) the WebGPU device with our feature/limit checks; fails with a typed GemmaError. */
  gpu(): Promise<GpuContext>;
  onProgress(p: LoadProgress): void;
  /** Aborted by cancelLoad(): stop reading, converting and caching, and reject with GemmaError('aborted'). */
  signal?: AbortSignal;
}

export type ModelFactory = (ctx: ModelFactoryContext) => Promise<LoadedModel>;

/** The default factory: any source the library reads, any registered family. */
export const defaultModelFactory: ModelFactory = async (ctx) => {
  const { request, onProgress } = ctx;
  const source = parseModelSource(request);
  const tokenizerSource = parseTokenizerSource(request);
  const size = parseModelSize(request);
  const signal = ctx.signal ?? new AbortController().signal;
  const gpu = await ctx.gpu();
  return loadFromSource(gpu, source, tokenizerSource, {
    weights: request.weights,
    contextLength: request.contextLength,
    cache: request.cache,
    size,
    onProgress,
    signal,
    memoryCheck: request.memoryCheck,
    platform: { ...detectPlatform(), ...request.platform },
  });
};

export interface SourceLoadOptions {
  weights?: WeightMode;
  contextLength?: number;
  /** Read and write the offline cache (default true; only URL and hub sources are ever cached). */
  cache?: boolean;
  /** A sub-model to cut at load time (MatFormer; LoadRequest.size). */
  size?: ModelSize;
  onProgress?: (p: LoadProgress) => void;
  signal?: AbortSignal;
  /** The pre-flight memory check (default 'refuse'; see LoadRequest.memoryCheck). */
  memoryCheck?: MemoryCheck;
  /** What is known about the device (default: what this context can see). */
  platform?: PlatformHints;
  /** Network tuning (tests: short timeouts and rate-limit pauses; a custom fetch). */
  http?: OpenOptions['http'];
}

/** Loads a parsed source onto `gpu` (the default factory's body; Node hosts call it with host-opened sources). */
export async function loadFromSource(gpu: GpuContext, source: ModelSource, tokenizerSource: TokenizerSource, options: SourceLoadOptions = {}): Promise<LoadedModel> {
  const onProgress = options.onProgress ?? (() => {});
  const signal = options.signal ?? new AbortController().signal;
  const weights = options.weights ?? 'q4';
  const weightMode = weights !== 'float' ? weights : gpu.f16 ? 'float-f16' : 'float-f32';
  const { size } = options;
  const key = options.cache === false ? undefined : cacheKeyOf(source, weightMode, size === undefined ? undefined : sliceCacheTag(size));
  const tokenizerTag = tokenizerCacheTag(tokenizerSource);
  const load = { weights, contextLength: options.contextLength };
  /** The checkpoint cut to the size asked for (a view of it: nothing is read yet), or as it is. */
  const sized = (checkpoint: Checkpoint, exact = false): { checkpoint: Checkpoint; slice?: SliceInfo } =>
    size === undefined ? { checkpoint } : sliceCheckpoint(checkpoint, size, exact);
  const check = (checkpoint: Checkpoint, mode: WeightMode = weights) =>
    checkMemory(gpu, checkpoint, { weights: mode, contextLength: options.contextLength, check: options.memoryCheck, platform: options.platform ?? detectPlatform(), model: describeSource(source) });
  const fromCache = async (cached: CachedLoad, cut: { checkpoint: Checkpoint; slice?: SliceInfo }): Promise<LoadedModel> => {
    const memoryWarnings = check(cut.checkpoint);
    const loaded = await loadModel(gpu, cut.checkpoint, load, { onProgress, signal, tensorProgress: false });
    cached.finish();
    // Encoders come from their own cache entries, or from the source opened again (without its tokenizer) on first use.
    let reopened: Promise<Checkpoint> | undefined;
    const checkpoint = (s?: AbortSignal) => (reopened ??= openSource(source, { kind: 'none' }, { onProgress: () => {}, signal: s, http: options.http }).then((o) => o.checkpoint));
    const media: MediaSource = { config: cut.checkpoint.config, weights, checkpoint, cacheKey: key };
    return { ...loaded, tokenizer: cached.tokenizer, cache: 'hit', warnings: memoryWarnings.length ? memoryWarnings : undefined, slice: cut.slice, media };
  };

  // Cache hit: everything (config, tokenizer texts, converted weights) comes from local storage; no network.
  // An entry cached with another tokenizer than this load asks for is not served (it is replaced below).
  // (A load that names no weight mode is also served by a cached converted q8 folder: such a folder decides the mode.)
  const cached = key && ((await readFromCache(key, tokenizerTag, onProgress)) ?? (options.weights === undefined ? await readFromCache({ ...key, weightMode: 'q8' }, tokenizerTag, onProgress) : undefined));
  if (cached && (tokenizerSource.kind === 'none' || cached.tokenizer)) return fromCache(cached, sized(cached.checkpoint));
  // A size inside a cached bigger entry of the same model (the whole E4B, or a bigger slice) is cut from it.
  const containing = key && size !== undefined ? await readContainingFromCache(key, tokenizerTag, onProgress, (c) => sized(c, true)) : undefined;
  if (containing && (tokenizerSource.kind === 'none' || containing.cached.tokenizer)) return fromCache(containing.cached, containing.result);

  // A converted folder (`gemma3n-webgpu convert`): GPU-ready bytes, checked and uploaded; no conversion phase.
  // A hub repo is pinned once, for this check and the load (no second pinning, no unpinned probe).
  const pinned = source.kind === 'hub' ? await pinHubSource(source, { signal, http: options.http }) : undefined;
  const converted = await openConvertedSource(source, { signal, files: pinned?.files });
  if (converted) {
    const mode = convertedWeights(converted, options.weights);
    const convertedKey = options.cache === false || size !== undefined ? undefined : cacheKeyOf(source, mode);
    const reading = await readConverted(converted, tokenizerSource, { onProgress, signal, cacheKey: convertedKey, tokenizerTag });
    let loaded: LoadedModel;
    let memoryWarnings: string[];
    try {
      const cut = sized(reading.checkpoint);
      memoryWarnings = check(cut.checkpoint, mode); // before any weight byte is read
      loaded = { ...(await loadModel(gpu, cut.checkpoint, { weights: mode, contextLength: options.contextLength }, { onProgress, signal, tensorProgress: false })), slice: cut.slice };
    } catch (err) {
      await reading.abort();
      throw err;
    }
    const outcome = await reading.finish().catch((err: unknown) => {
      loaded.model.dispose(); // aborted while the cache copy completed
      throw err;
    });
    const warnings = [...memoryWarnings, ...outcome.warnings];
    return { ...loaded, tokenizer: reading.tokenizer, cache: outcome.cache, warnings: warnings.length ? warnings : undefined };
  }

  const opened = await openSource(source, tokenizerSource, { onProgress, signal, http: options.http, pinned });
  let cut: { checkpoint: Checkpoint; slice?: SliceInfo };
  let memoryWarnings: string[];
  try {
    cut = sized(opened.checkpoint); // a size this checkpoint cannot give fails here, before any weight is read
    memoryWarnings = check(cut.checkpoint); // headers and tokenizer only so far: no weight byte fetched yet
  } catch (err) {
    opened.release();
    throw err;
  }
  const session: CacheSession | undefined = key ? await startCaching(key, gpu.device, cut.checkpoint, opened.tokenizerTexts, tokenizerTag) : undefined;
  let loaded: LoadedModel;
  // Every weight byte has been read once compiling starts: the download phase ends there, before 'compile'.
  const inOrder = (p: LoadProgress) => {
    if (p.phase === 'compile') opened.finishDownload();
    onProgress(p);
  };
  try {
    loaded = await loadModel(gpu, cut.checkpoint, load, { onProgress: inOrder, signal, onConverted: session?.onConverted });
    opened.finishDownload(); // already done at 'compile'; a family that reports no compile phase ends it here
  } catch (err) {
    opened.release();
    await session?.abort(); // a truncated, corrupt or aborted download never enters the cache
    throw err;
  }
  const outcome = session ? await session.commit(opened.commit()) : { cache: 'off' as const, warnings: [] };
  const warnings = [...memoryWarnings, ...outcome.warnings];
  const media: MediaSource = { config: cut.checkpoint.config, weights, checkpoint: async () => opened.checkpoint, cacheKey: key };
  return { ...loaded, tokenizer: opened.tokenizer, cache: outcome.cache, warnings: warnings.length ? warnings : undefined, slice: cut.slice, media };
}

/** The pre-flight check of a checkpoint about to be loaded (preflight.ts); warnings, or a GemmaError. */
function checkMemory(
  gpu: GpuContext,
  checkpoint: Checkpoint,
  o: { weights: WeightMode; contextLength?: number; check?: MemoryCheck; platform: PlatformHints; model: string },
): string[] {
  const family = familyForConfig(checkpoint.config, `${checkpoint.name}/config.json`);
  const limits = gpu.device.limits;
  const estimate = family.estimateMemory?.(checkpoint, { weights: o.weights, maxContext: o.contextLength ?? DEFAULT_CONTEXT, f16: gpu.f16, maxBufferBytes: Math.min(limits.maxBufferSize, limits.maxStorageBufferBindingSize) - 2 ** 20 });
  if (!estimate) return [];
  return preflight({ estimate, model: o.model, weights: o.weights, platform: o.platform, limits, check: o.check });
}

/** A checkpoint cut to `size` by its family (MatFormer families only; anything else is a clear error). */
export function sliceCheckpoint(checkpoint: Checkpoint, size: ModelSize, exact = false): { checkpoint: Checkpoint; slice: SliceInfo } {
  const family = familyForConfig(checkpoint.config, `${checkpoint.name}/config.json`);
  if (!family.slice) {
    throw new GemmaError('invalid-argument', `${checkpoint.name} is a ${family.name} model, which has no sizes to choose from: load it without \`size\`.`);
  }
  return family.slice(checkpoint, size, { exact });
}

/** What loadModel does besides loading (the factory uses these; Node callers need none). */
export interface LoadHooks {
  onProgress?: (p: LoadProgress) => void;
  /** Checked after every tensor: an aborted load stops and rejects with GemmaError('aborted'). */
  signal?: AbortSignal;
  /** Each converted tensor (the offline cache's writer). */
  onConverted?: (t: ConvertedTensor) => Promise<void>;
  /** Report 'quantize' progress per tensor (default true; a cache read reports its bytes instead). */
  tensorProgress?: boolean;
}

/**
 * Builds the decoder of an opened checkpoint on the GPU with its registered family (Node and custom hosts: open
 * the checkpoint your way, e.g. `openSafetensorsCheckpoint(directoryFiles(dir))`, then call this).
 */
export async function loadModel(
  gpu: GpuContext,
  checkpoint: Checkpoint,
  options: { weights?: WeightMode; contextLength?: number } = {},
  hooks: LoadHooks = {},
): Promise<LoadedModel> {
  const { signal } = hooks;
  const onProgress = hooks.onProgress ?? (() => {});
  const family = familyForConfig(checkpoint.config, `${checkpoint.name}/config.json`);
  const { model, eosTokenIds } = await family.load(gpu, checkpoint, {
    weights: options.weights ?? 'q4',
    maxContext: options.contextLength ?? DEFAULT_CONTEXT,
    // The family's count is exact (KV-shared layers included), so the last event is done === total.
    onTensor: (done, total) => {
      if (hooks.tensorProgress !== false) onProgress({ phase: 'quantize', loaded: done, total, file: checkpoint.name });
    },
    onConverted: hooks.onConverted,
    onCompile: (done) => onProgress({ phase: 'compile', loaded: done ? 1 : 0, total: 1, file: checkpoint.name }),
    signal,
  });
  return { model, stopTokenIds: eosTokenIds, adapterName: gpu.adapterName, toolTokens: family.toolTokens };
}

/** The memory a loaded model reports, as ModelInfo carries it. */
export function memoryInfo(model: LanguageModel): { gpuBytes: number; hostBytes: number } | undefined {
  const m: MemoryReport | undefined = model.memory?.();
  return m && { gpuBytes: m.gpu.total, hostBytes: m.host.total };
}
