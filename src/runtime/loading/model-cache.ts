/**
 * The offline cache in the load path (model-factory.ts): reading a hit back as a Checkpoint, and caching a miss
 * while it loads.
 *
 * Policy:
 * - Key = model-source.ts `cacheKeyOf`: { model id (hub repo) or absolute URL, revision ('main' or the one asked
 *   for; 'url' for URLs, which are taken as immutable), weight mode ('q4', 'float-f16' or 'float-f32': float mode
 *   depends on shader-f16) }.
 * - A hit reads only local storage (phase 'cache-read'); nothing touches the network.
 * - A miss writes each converted tensor as it is produced (one tensor, or one 16 MiB readback slice, in memory at
 *   a time) and commits the manifest last. Any load error or abort aborts the entry: a truncated or corrupt
 *   download never becomes a cached model.
 * - Caching is best effort: a full quota (or any storage failure) drops the partial entry, the load still
 *   finishes, and ModelInfo says `cache: 'not-stored'` with the reason in `warnings`.
 */
import { GemmaError } from '../../errors.ts';
import { ModelCache, type CacheEntryReader, type CacheKey } from '../../io/cache.ts';
import type { Checkpoint } from '../../io/checkpoint.ts';
import { ProgressAggregator } from '../../io/progress.ts';
import type { ConvertedTensor } from '../../model/converted-tensor.ts';
import { ConvertedCacheWriter, ConvertedCheckpoint, convertedMeta, type ConvertedMeta } from './converted-cache.ts';
import type { LoadProgress, ModelInfo } from '../protocol.ts';
import type { TextTokenizer } from '../tokenizer.ts';
import { buildTokenizer } from './open-source.ts';

export interface CachedLoad {
  checkpoint: Checkpoint;
  tokenizer?: TextTokenizer;
  /** Ends the 'cache-read' phase (loaded === total). */
  finish(): void;
}

/** The cached entry for `key` as a Checkpoint (plus its tokenizer), or undefined when there is none. */
export async function readFromCache(key: CacheKey, tokenizerTag: string | undefined, onProgress: (p: LoadProgress) => void): Promise<CachedLoad | undefined> {
  const cache = await ModelCache.open().catch(() => undefined);
  const entry = cache && (await cache.read(key).catch(() => undefined));
  const meta = entry && convertedMeta(entry);
  if (!entry || !meta) return undefined;
  const reading = readingProgress(key, onProgress);
  reading.start(entry.manifest.totalBytes);
  return finishOpen(entry, meta, await ConvertedCheckpoint.open(entry, meta, reading.onBytes), tokenizerTag, reading);
}

/**
 * A sized load served from a cached entry of the same model that contains it (the whole model, or a bigger slice):
 * `cut` gets each candidate entry (smallest first) as a Checkpoint and returns the sliced view, or throws when the
 * entry does not hold the slice (exactly). Nothing is written: the bigger entry already holds every byte, and a
 * copy would only take storage. Undefined when no entry serves it.
 */
export async function readContainingFromCache<T>(
  key: CacheKey,
  tokenizerTag: string | undefined,
  onProgress: (p: LoadProgress) => void,
  cut: (checkpoint: Checkpoint) => T,
): Promise<{ cached: CachedLoad; result: T } | undefined> {
  const cache = await ModelCache.open().catch(() => undefined);
  const { slice: _slice, ...whole } = key;
  for (const entry of (await cache?.readAllSlices(whole).catch(() => [])) ?? []) {
    const meta = convertedMeta(entry);
    if (!meta || (tokenizerTag !== undefined && meta.tokenizerSource !== tokenizerTag)) continue;
    // (Progress starts once an entry is chosen: a candidate's config.json is not part of it.)
    const reading = readingProgress(key, onProgress);
    const checkpoint = await ConvertedCheckpoint.open(entry, meta, reading.onBytes).catch(() => undefined);
    if (!checkpoint) continue;
    let result: T;
    try {
      result = cut(checkpoint);
    } catch {
      continue;
    }
    return { cached: await finishOpen(entry, meta, checkpoint, tokenizerTag, reading), result };
  }
  return undefined;
}

/** 'cache-read' progress over an entry's bytes. */
function readingProgress(key: CacheKey, onProgress: (p: LoadProgress) => void) {
  const label = `${key.modelId} (cached)`;
  let progress: ProgressAggregator | undefined;
  return {
    label,
    start(total: number) {
      progress ??= new ProgressAggregator('cache-read', total, onProgress);
    },
    onBytes: (n: number) => progress?.advance(label, n),
    finish: () => progress?.finish(),
  };
}

/** The tokenizer (when the entry holds the one asked for), and the load's end. */
async function finishOpen(
  entry: CacheEntryReader,
  meta: ConvertedMeta,
  checkpoint: Checkpoint,
  tokenizerTag: string | undefined,
  reading: ReturnType<typeof readingProgress>,
): Promise<CachedLoad> {
  reading.start(entry.manifest.totalBytes);
  let tokenizer: TextTokenizer | undefined;
  if (tokenizerTag !== undefined && meta.tokenizerSource === tokenizerTag && meta.texts.includes('tokenizer.json')) {
    const texts = new Map<string, string>();
    for (const name of meta.texts) {
      const text = await entry.text(name);
      reading.onBytes(new TextEncoder().encode(text).byteLength);
      texts.set(name, text);
    }
    tokenizer = await buildTokenizer(texts, reading.label); // the chat template file wins, as on the first load
  }
  return { checkpoint, tokenizer, finish: reading.finish };
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
  tokenizerTag: string | undefined,
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
        await writer.commit(texts ? tokenizerTag : undefined, sourceCommit);
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
