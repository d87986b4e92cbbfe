/**
 * The offline cache in the worker's load path (gemma3n-factory.ts): which key a load has, reading a hit back as
 * a Checkpoint, and caching a miss while it loads.
 *
 * Policy:
 * - Key = { model id (hub repo) or absolute URL, revision ('main' or the one asked for; 'url' for URLs, which are
 *   taken as immutable), weight mode ('q4', 'float-f16' or 'float-f32': float mode depends on shader-f16) }.
 * - A hit reads only local storage (phase 'cache-read'); nothing touches the network.
 * - A miss writes each converted tensor as it is produced (one tensor, or one 16 MiB readback slice, in memory at
 *   a time) and commits the manifest last. Any load error or abort aborts the entry: a truncated or corrupt
 *   download never becomes a cached model.
 * - Caching is best effort: a full quota (or any storage failure) drops the partial entry, the load still
 *   finishes, and ModelInfo says `cache: 'not-stored'` with the reason in `warnings`.
 */
import { GemmaError } from '../errors.ts';
import type { GpuContext } from '../gpu/device.ts';
import { ModelCache, type CacheKey } from '../io/cache.ts';
import type { Checkpoint } from '../io/checkpoint.ts';
import { ProgressAggregator } from '../io/progress.ts';
import { isRandomCheckpointSpec } from '../model/gemma3n/random-checkpoint.ts';
import type { ConvertedTensor } from '../model/gemma3n/weights.ts';
import { ConvertedCacheWriter, ConvertedCheckpoint, convertedMeta } from './converted-cache.ts';
import type { LoadProgress, LoadRequest, ModelInfo } from './protocol.ts';
import { tokenizerFromTexts, type TextTokenizer } from './tokenizer.ts';

/** The cache key of a load, or undefined for loads that are never cached (picked files, random checkpoints). */
export function cacheKeyFor(request: LoadRequest, gpu: Pick<GpuContext, 'f16'>): CacheKey | undefined {
  const spec = request.model;
  const weightMode = (request.weights ?? 'q4') === 'q4' ? 'q4' : gpu.f16 ? 'float-f16' : 'float-f32';
  if (isRandomCheckpointSpec(spec)) return undefined;
  if (typeof spec === 'string') {
    if (/^[A-Za-z0-9][\w.-]*\/[\w.-]+$/.test(spec) && !spec.includes('..') && !/\.gguf$/i.test(spec)) return { modelId: spec, revision: 'main', weightMode };
    try {
      return { modelId: new URL(spec, globalThis.location?.href).href, revision: 'url', weightMode };
    } catch {
      return undefined; // the factory reports the bad URL
    }
  }
  const hub = (spec as { hub?: unknown; revision?: unknown }) ?? {};
  if (typeof hub.hub === 'string') return { modelId: hub.hub, revision: typeof hub.revision === 'string' ? hub.revision : 'main', weightMode };
  return undefined;
}

/** Which tokenizer a load asks for, as recorded with a cache entry: 'model' (its own folder) or the folder URL. */
function tokenizerSourceOf(request: LoadRequest): string | undefined {
  if (request.tokenizer === false) return undefined;
  if (request.tokenizer === undefined) return 'model';
  return new URL(request.tokenizer, globalThis.location?.href).href;
}

export interface CachedLoad {
  checkpoint: Checkpoint;
  tokenizer?: TextTokenizer;
  /** Ends the 'cache-read' phase (loaded === total). */
  finish(): void;
}

/** The cached entry for `key` as a Checkpoint (plus its tokenizer), or undefined when there is none. */
export async function readFromCache(key: CacheKey, request: LoadRequest, onProgress: (p: LoadProgress) => void): Promise<CachedLoad | undefined> {
  const cache = await ModelCache.open().catch(() => undefined);
  const entry = cache && (await cache.read(key).catch(() => undefined));
  const meta = entry && convertedMeta(entry);
  if (!entry || !meta) return undefined;
  const label = `${key.modelId} (cached)`;
  const progress = new ProgressAggregator('cache-read', entry.manifest.totalBytes, onProgress);
  const onBytes = (n: number) => progress.advance(label, n);
  const checkpoint = await ConvertedCheckpoint.open(entry, meta, onBytes);
  let tokenizer: TextTokenizer | undefined;
  const wanted = tokenizerSourceOf(request);
  if (wanted !== undefined && meta.tokenizerSource === wanted && meta.texts.includes('tokenizer.json')) {
    const texts = new Map<string, string>();
    for (const name of meta.texts) {
      const text = await entry.text(name);
      onBytes(new TextEncoder().encode(text).byteLength);
      texts.set(name, text);
    }
    tokenizer = await tokenizerFromTexts(texts, label);
  }
  return { checkpoint, tokenizer, finish: () => progress.finish() };
}

export interface CacheSession {
  /** Pass to the loader: writes each converted tensor (failures turn into a warning, never a load error). */
  onConverted: (t: ConvertedTensor) => Promise<void>;
  /** After a successful load: the manifest goes last. */
  commit(sourceCommit?: string): Promise<{ cache: NonNullable<ModelInfo['cache']>; warnings: string[] }>;
  /** After a failed or aborted load: nothing stays behind. */
  abort(): Promise<void>;
}

/** Starts caching a miss; storage trouble (no storage, quota) only ever becomes a warning. */
export async function startCaching(
  key: CacheKey,
  device: GPUDevice,
  checkpoint: Checkpoint,
  texts: Map<string, string> | undefined,
  request: LoadRequest,
): Promise<CacheSession> {
  const warnings: string[] = [];
  const fail = async (err: unknown) => {
    const message = err instanceof GemmaError ? err.message : `could not write the model cache: ${(err as Error)?.message ?? err}`;
    warnings.push(`${message} The model was loaded without caching it; the next load downloads it again.`);
    console.warn(`gemma3n-webgpu: ${warnings.at(-1)}`);
    const w = writer;
    writer = undefined;
    await w?.abort();
  };
  let writer: ConvertedCacheWriter | undefined;
  const cache = await ModelCache.open().catch(() => undefined);
  if (cache) {
    try {
      writer = await ConvertedCacheWriter.start(await cache.write(key), device);
      await writer.addText('config.json', JSON.stringify(checkpoint.config));
      for (const [name, text] of texts ?? []) await writer.addText(name, text);
    } catch (err) {
      await fail(err);
    }
  }
  return {
    async onConverted(t) {
      if (!writer) return;
      try {
        await writer.add(t);
      } catch (err) {
        await fail(err);
      }
    },
    async commit(sourceCommit) {
      if (!cache) return { cache: 'off', warnings };
      if (!writer) return { cache: 'not-stored', warnings };
      try {
        await writer.commit(texts ? tokenizerSourceOf(request) : undefined, sourceCommit);
        return { cache: 'stored', warnings };
      } catch (err) {
        await fail(err);
        return { cache: 'not-stored', warnings };
      }
    },
    async abort() {
      await writer?.abort();
      writer = undefined;
    },
  };
}
