/**
 * Managing the offline model cache from the page (main thread or any worker: OPFS is available in both). Models
 * are cached by loadGemma() itself; these list what is there, how much room it takes, and delete it.
 */
import { ModelCache, type CacheKey, type CachedModelInfo, type StorageEstimate } from './io/cache.ts';

export type { CacheKey, CachedModelInfo };

export interface CacheUsage {
  /** Bytes of all cached models. */
  bytes: number;
  models: number;
  /** Where they are kept: the origin private file system, Cache Storage, or nowhere (no storage here). */
  backend: 'opfs' | 'cache-storage' | 'none';
  /** The browser's estimate for this whole origin, when it gives one. */
  storage?: StorageEstimate;
}

/** Cached models, newest first: { modelId, revision, weightMode, slice?, bytes, createdAt, ... }. */
export async function listCachedModels(): Promise<CachedModelInfo[]> {
  const cache = await ModelCache.open();
  return cache ? cache.list() : [];
}

/** Deletes one cached model (pass an entry of listCachedModels(), or { modelId, revision, weightMode, slice? }). */
export async function deleteCachedModel(key: CacheKey): Promise<boolean> {
  const cache = await ModelCache.open();
  return cache ? cache.delete({ modelId: key.modelId, revision: key.revision, weightMode: key.weightMode, ...(key.slice !== undefined ? { slice: key.slice } : {}) }) : false;
}

/** Deletes every cached model. */
export async function clearCache(): Promise<void> {
  await (await ModelCache.open())?.clear();
}

/** What the cache holds and how much storage this origin has. */
export async function cacheUsage(): Promise<CacheUsage> {
  const cache = await ModelCache.open();
  if (!cache) return { bytes: 0, models: 0, backend: 'none' };
  const list = await cache.list();
  return { bytes: list.reduce((s, m) => s + m.bytes, 0), models: list.length, backend: cache.backend.kind, storage: await cache.estimate() };
}

/** Asks the browser not to evict the cache under storage pressure (it may prompt, or refuse: returns false). */
export async function persistCache(): Promise<boolean> {
  return (await (await ModelCache.open())?.persist()) ?? false;
}
