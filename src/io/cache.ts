/**
 * Offline cache of converted, GPU-ready weights (and the small files a load needs: config, tokenizer, chat
 * template), so a second load reads only local storage and works with the network off.
 *
 * Layout: one folder per write attempt, named `{modelId}+{revision}+{weightMode}+{nonce}` (each part
 * URI-encoded, so '+' only separates). Files are written as streams, each hashed while it is written (XXH32 per
 * 4 MiB block); the entry is committed by writing manifest.json last. Readers ignore folders without a manifest,
 * so a crash or quota failure mid-write never shows up as a cached model, and every block is checked against the
 * manifest as it is read: a corrupt file drops the entry with an error naming the file.
 */
import { GemmaError } from '../errors.ts';
import type { ByteSource } from './byte-source.ts';
import { defaultCacheBackend, type CacheStorageBackend, type FileSink } from './cache-storage.ts';
import { XxHash32, xxhash32 } from './xxhash32.ts';
import { verifiedSource, type VerifiedSourceOptions } from './verified-source.ts';

/** What a cache entry is for: the same model, revision and weight mode give the same GPU-ready bytes. */
export interface CacheKey {
  /** "google/gemma-3n-E2B-it", a URL, or a name the app chooses for picked files. */
  modelId: string;
  /** The revision asked for ("main"); the manifest also records the exact commit when known. */
  revision: string;
  /** The converted format, e.g. "q4" or "f16": different modes are different entries. */
  weightMode: string;
  /** A sub-model cut at load time (a MatFormer size, e.g. "E2B"): each slice is its own entry; absent = whole. */
  slice?: string;
}

export interface CachedFile {
  name: string;
  size: number;
  /** Bytes per checksummed block (the last block may be shorter). */
  blockSize: number;
  /** XXH32 of each block. */
  blocks: number[];
  /** "xxh32:" + XXH32 over the block checksums (little-endian u32s): one value that covers the whole file. */
  checksum: string;
}

export interface CacheManifest {
  format: 1;
  modelId: string;
  revision: string;
  weightMode: string;
  /** CacheKey.slice. */
  slice?: string;
  /** The exact commit the weights came from, when the source said. */
  commit?: string;
  createdAt: string;
  totalBytes: number;
  files: CachedFile[];
  /** Anything the loader wants back next time (tensor table, config digest...). Plain JSON. */
  meta?: unknown;
}

export interface CachedModelInfo extends CacheKey {
  commit?: string;
  createdAt: string;
  /** Bytes of all files in the entry. */
  bytes: number;
  files: number;
}

export interface StorageEstimate {
  /** Bytes this origin uses (all storage, not just this cache). */
  usage: number;
  /** Bytes this origin may use. */
  quota: number;
  available: number;
}

/** The manifest's file name in an entry (and in a converted model's folder). */
export const MANIFEST = 'manifest.json';
const DEFAULT_BLOCK_SIZE = 4 * 1024 * 1024;
const LOCK_PREFIX = 'gemma3n-webgpu-cache:';

export interface ModelCacheOptions {
  /** Bytes per checksummed block (default 4 MiB): reads verify whole blocks, so this bounds read amplification. */
  blockSize?: number;
}

/** The cache of this origin. `ModelCache.open()` picks OPFS, else Cache Storage; undefined when neither exists. */
export class ModelCache {
  readonly backend: CacheStorageBackend;
  private readonly blockSize: number;

  constructor(backend: CacheStorageBackend, options: ModelCacheOptions = {}) {
    this.backend = backend;
    this.blockSize = options.blockSize ?? DEFAULT_BLOCK_SIZE;
  }

  static async open(options: ModelCacheOptions = {}): Promise<ModelCache | undefined> {
    const backend = await defaultCacheBackend();
    return backend && new ModelCache(backend, options);
  }

  /** Every complete entry, newest first. */
  async list(): Promise<CachedModelInfo[]> {
    const entries = await this.committedEntries();
    return entries.map(({ manifest: m }) => ({
      modelId: m.modelId,
      revision: m.revision,
      weightMode: m.weightMode,
      ...(m.slice !== undefined ? { slice: m.slice } : {}),
      commit: m.commit,
      createdAt: m.createdAt,
      bytes: m.totalBytes,
      files: m.files.length,
    }));
  }

  /** The entry for `key`, or undefined when it is not cached (or only half-written). */
  async read(key: CacheKey): Promise<CacheEntryReader | undefined> {
    const prefix = folderPrefix(key);
    const found = (await this.committedEntries()).find((e) => e.folder.startsWith(prefix));
    return found && new CacheEntryReader(this, found.folder, found.manifest);
  }

  /**
   * Starts writing the entry for `key`. Pass `expectedBytes` (the converted size) to fail early, before writing
   * anything, when storage is clearly too small. The entry becomes visible only at `commit()`.
   */
  async write(key: CacheKey, options: { expectedBytes?: number } = {}): Promise<CacheEntryWriter> {
    if (options.expectedBytes !== undefined) {
      const estimate = await this.estimate();
      if (estimate && options.expectedBytes > estimate.available) throw quotaError(key, options.expectedBytes, estimate);
    }
    const folder = `${folderPrefix(key)}${Math.random().toString(36).slice(2, 10)}${Date.now().toString(36)}`;
    const release = await holdLock(LOCK_PREFIX + folder);
    await this.removeAbandoned(folderPrefix(key));
    return new CacheEntryWriter(this, key, folder, this.blockSize, release);
  }

  /** Every complete entry of a model id, revision and weight mode, whatever its slice (smallest first). */
  async readAllSlices(key: Omit<CacheKey, 'slice'>): Promise<CacheEntryReader[]> {
    const found = (await this.committedEntries()).filter(
      ({ manifest: m }) => m.modelId === key.modelId && m.revision === key.revision && m.weightMode === key.weightMode,
    );
    return found.sort((a, b) => a.manifest.totalBytes - b.manifest.totalBytes).map((e) => new CacheEntryReader(this, e.folder, e.manifest));
  }

  /** Removes the entry for `key` (all its versions, complete or not). Returns whether anything was there. */
  async delete(key: CacheKey): Promise<boolean> {
    const prefix = folderPrefix(key);
    const folders = (await this.backend.listFolders()).filter((f) => f.startsWith(prefix));
    for (const f of folders) await this.backend.removeFolder(f);
    return folders.length > 0;
  }

  /** Removes every cached model. */
  async clear(): Promise<void> {
    await this.backend.removeAll();
  }

  /** navigator.storage.estimate(), or undefined where the browser has no estimate. */
  async estimate(): Promise<StorageEstimate | undefined> {
    const e = await globalThis.navigator?.storage?.estimate?.();
    if (!e || e.quota === undefined) return undefined;
    const usage = e.usage ?? 0;
    return { usage, quota: e.quota, available: Math.max(0, e.quota - usage) };
  }

  /** Asks the browser not to evict this origin's storage under pressure (it may ask the user, or refuse). */
  async persist(): Promise<boolean> {
    return (await globalThis.navigator?.storage?.persist?.()) ?? false;
  }

  /** @internal Drops a folder (a corrupt entry); the error that caused it is the caller's to throw. */
  async dropFolder(folder: string): Promise<void> {
    await this.backend.removeFolder(folder).catch(() => {});
  }

  /**
   * Committed entries with parseable manifests, newest first. A folder whose manifest does not parse is dropped
   * once no writer holds it: while a writer commits, its manifest file already exists, empty or part-written
   * (OPFS creates the file before the write lands), and listing from another tab or worker must not remove it.
   */
  private async committedEntries(): Promise<{ folder: string; manifest: CacheManifest }[]> {
    const out: { folder: string; manifest: CacheManifest }[] = [];
    for (const folder of await this.backend.listFolders()) {
      const manifest = (await this.readManifest(folder)) ?? (await this.dropIfUnheld(folder));
      if (manifest) out.push({ folder, manifest });
    }
    return out.sort((a, b) => b.manifest.createdAt.localeCompare(a.manifest.createdAt));
  }

  /** The folder's manifest when it is committed and parses; undefined when absent (not committed) or broken. */
  private async readManifest(folder: string): Promise<CacheManifest | undefined> {
    const blob = await this.backend.readFile(folder, MANIFEST).catch(() => undefined);
    return blob && parseManifest(await blob.text().catch(() => ''));
  }

  /**
   * Removes `folder` unless a live writer holds its lock or its manifest, read again under the lock (after any
   * writer finished), is now complete: then returns that manifest. Without Web Locks in-progress writes cannot be
   * told from abandoned ones, so nothing is removed.
   */
  private async dropIfUnheld(folder: string): Promise<CacheManifest | undefined> {
    const locks = globalThis.navigator?.locks;
    if (!locks) return undefined;
    return locks.request(LOCK_PREFIX + folder, { ifAvailable: true }, async (lock) => {
      if (!lock) return undefined;
      const manifest = await this.readManifest(folder);
      if (!manifest) await this.dropFolder(folder);
      return manifest;
    });
  }

  /** Removes uncommitted folders of this key that no live writer holds (a crashed or closed tab's leftovers). */
  private async removeAbandoned(prefix: string): Promise<void> {
    for (const folder of await this.backend.listFolders()) {
      if (!folder.startsWith(prefix) || (await this.backend.readFile(folder, MANIFEST).catch(() => undefined))) continue;
      await this.dropIfUnheld(folder);
    }
  }

  /** @internal After a commit: older complete versions of the same key are superseded. */
  async removeOlderVersions(key: CacheKey, keep: string): Promise<void> {
    const prefix = folderPrefix(key);
    for (const e of await this.committedEntries()) {
      if (e.folder !== keep && e.folder.startsWith(prefix)) await this.backend.removeFolder(e.folder);
    }
  }
}

/** Writes one entry: files as streams of chunks, then commit() (manifest last) or abort(). */
export class CacheEntryWriter {
  readonly key: CacheKey;
  private readonly cache: ModelCache;
  private readonly folder: string;
  private readonly blockSize: number;
  private readonly release: () => void;
  private readonly files: CachedFile[] = [];
  /** Files being written, by name: abort() must abort their sinks first (OPFS refuses to remove a locked file). */
  private readonly open = new Map<string, FileSink>();
  private finished = false;

  constructor(cache: ModelCache, key: CacheKey, folder: string, blockSize: number, release: () => void) {
    this.cache = cache;
    this.key = key;
    this.folder = folder;
    this.blockSize = blockSize;
    this.release = release;
  }

  /** Writes a whole file from chunks (an async generator of converted tensors, say); memory stays one chunk. */
  async writeFile(name: string, chunks: AsyncIterable<Uint8Array> | Iterable<Uint8Array>): Promise<CachedFile> {
    const file = await this.createFile(name);
    try {
      for await (const chunk of chunks) await file.write(chunk);
    } catch (err) {
      await this.abort();
      throw err;
    }
    return file.close();
  }

  /** A file written chunk by chunk; close() it before commit(). Any failure aborts the whole entry. */
  async createFile(name: string): Promise<CacheFileWriter> {
    this.checkOpen();
    if (name === MANIFEST || this.open.has(name) || this.files.some((f) => f.name === name)) {
      throw new GemmaError('invalid-argument', `cache entry file "${name}" is reserved or already written`);
    }
    const sink = await this.guard(() => this.cache.backend.createFile(this.folder, storedName(name)));
    this.open.set(name, sink);
    return new CacheFileWriter(name, sink, this.blockSize, (op) => this.guard(op), (info) => {
      this.open.delete(name);
      this.files.push(info);
    });
  }

  /** Makes the entry visible: writes the manifest (last), then drops older versions of the same key. */
  async commit(extra: { commit?: string; meta?: unknown } = {}): Promise<CacheManifest> {
    this.checkOpen();
    if (this.open.size > 0) throw new GemmaError('internal', `cache commit with unfinished files: ${[...this.open.keys()].join(', ')}`);
    const manifest: CacheManifest = {
      format: 1,
      ...this.key,
      commit: extra.commit,
      createdAt: new Date().toISOString(),
      totalBytes: this.files.reduce((s, f) => s + f.size, 0),
      files: this.files,
      meta: extra.meta,
    };
    await this.guard(async () => {
      const sink = await this.cache.backend.createFile(this.folder, MANIFEST);
      await sink.write(new TextEncoder().encode(JSON.stringify(manifest)));
      await sink.close();
    });
    this.finished = true;
    this.release();
    await this.cache.removeOlderVersions(this.key, this.folder).catch(() => {});
    return manifest;
  }

  /** Discards everything written so far. Safe to call more than once. */
  async abort(): Promise<void> {
    if (this.finished) return;
    this.finished = true;
    for (const sink of this.open.values()) await sink.abort().catch(() => {});
    this.open.clear();
    await this.cache.dropFolder(this.folder);
    this.release();
  }

  private checkOpen(): void {
    if (this.finished) throw new GemmaError('internal', `cache entry for ${this.key.modelId} was already committed or aborted`);
  }

  /** Runs a storage operation; on failure the half-written entry is removed and the error explained. */
  private async guard<T>(op: () => Promise<T>): Promise<T> {
    try {
      return await op();
    } catch (err) {
      await this.abort();
      if (err instanceof GemmaError) throw err;
      if (isQuotaError(err)) throw quotaError(this.key, undefined, await this.cache.estimate().catch(() => undefined), err);
      throw new GemmaError('internal', `could not write the model cache (${(err as Error)?.message ?? String(err)}); the partial entry was removed. The model still loads without the cache.`, { cause: err });
    }
  }
}

/** One file being written: hashes each block as its bytes go by. */
export class CacheFileWriter {
  readonly name: string;
  private readonly sink: FileSink;
  private readonly blockSize: number;
  private readonly guard: <T>(op: () => Promise<T>) => Promise<T>;
  private readonly done: (info: CachedFile) => void;
  private readonly blocks: number[] = [];
  private hasher = new XxHash32();
  private inBlock = 0;
  private size = 0;

  constructor(name: string, sink: FileSink, blockSize: number, guard: <T>(op: () => Promise<T>) => Promise<T>, done: (info: CachedFile) => void) {
    this.name = name;
    this.sink = sink;
    this.blockSize = blockSize;
    this.guard = guard;
    this.done = done;
  }

  async write(chunk: Uint8Array): Promise<void> {
    for (let at = 0; at < chunk.length; ) {
      const take = Math.min(this.blockSize - this.inBlock, chunk.length - at);
      this.hasher.update(chunk.subarray(at, at + take));
      this.inBlock += take;
      at += take;
      if (this.inBlock === this.blockSize) this.endBlock();
    }
    this.size += chunk.length;
    await this.guard(() => this.sink.write(chunk));
  }

  async close(): Promise<CachedFile> {
    if (this.inBlock > 0) this.endBlock();
    await this.guard(() => this.sink.close());
    const info: CachedFile = { name: this.name, size: this.size, blockSize: this.blockSize, blocks: this.blocks, checksum: fileChecksum(this.blocks) };
    this.done(info);
    return info;
  }

  private endBlock(): void {
    this.blocks.push(this.hasher.digest());
    this.hasher = new XxHash32();
    this.inBlock = 0;
  }
}

/** A committed entry: its manifest, and its files as verifying ByteSources. */
export class CacheEntryReader {
  readonly manifest: CacheManifest;
  private readonly cache: ModelCache;
  private readonly folder: string;

  constructor(cache: ModelCache, folder: string, manifest: CacheManifest) {
    this.cache = cache;
    this.folder = folder;
    this.manifest = manifest;
  }

  has(name: string): boolean {
    return this.manifest.files.some((f) => f.name === name);
  }

  /**
   * A file as a ByteSource. Each read fetches the whole checksummed blocks it touches and checks them; a
   * mismatch deletes the entry and rejects with GemmaError('bad-file') naming the file.
   */
  open(name: string, options: VerifiedSourceOptions = {}): ByteSource {
    const info = this.manifest.files.find((f) => f.name === name);
    if (!info) throw new GemmaError('bad-file', `the cached ${this.label()} has no ${name}; delete it and load again.`);
    let blob: Promise<Blob> | undefined;
    const file = () =>
      (blob ??= this.cache.backend.readFile(this.folder, storedName(name)).then(
        async (b) => {
          if (!b) return this.corrupt(name, 'the file is missing');
          if (b.size !== info.size) return this.corrupt(name, `it has ${b.size} bytes, the manifest says ${info.size}`);
          return b;
        },
        (err: unknown) => this.corrupt(name, `it cannot be read (${(err as Error)?.message})`),
      ));
    return verifiedSource(
      `${name} (cached ${this.label()})`,
      info,
      async (start, end) => {
        try {
          return new Uint8Array(await (await file()).slice(start, end).arrayBuffer());
        } catch (err) {
          if (err instanceof GemmaError) throw err;
          // NotReadableError / NotFoundError: deleted or changed underneath us (another tab cleared the cache).
          return this.corrupt(name, `it cannot be read (${(err as Error)?.message})`);
        }
      },
      (why) => this.corrupt(name, why),
      options,
    );
  }

  async text(name: string): Promise<string> {
    const source = this.open(name);
    return new TextDecoder().decode(await source.read(0, await source.size()));
  }

  async json<T = unknown>(name: string): Promise<T> {
    return JSON.parse(await this.text(name)) as T;
  }

  /** Reads and checks every file (e.g. from a settings page); throws like read() on the first corrupt one. */
  async verify(onBytes?: (bytes: number) => void): Promise<void> {
    for (const f of this.manifest.files) {
      const source = this.open(f.name, { onBytes });
      const step = 16 * f.blockSize;
      for (let at = 0; at < f.size; at += step) await source.read(at, Math.min(step, f.size - at));
    }
  }

  private label(): string {
    const m = this.manifest;
    return `${m.modelId}@${m.revision} (${m.weightMode})`;
  }

  private async corrupt(name: string, why: string): Promise<never> {
    await this.cache.dropFolder(this.folder);
    throw new GemmaError(
      'bad-file',
      `the cached copy of ${name} for ${this.label()} is corrupt: ${why}. The cache entry was deleted; load the model again with the network on to download and convert it again.`,
    );
  }
}

function folderPrefix(key: CacheKey): string {
  // A slice goes into the weight-mode part after a '@' (which encodeURIComponent always escapes), so one key's
  // prefix is never a prefix of another's.
  const mode = encodeURIComponent(key.weightMode) + (key.slice !== undefined ? `@${encodeURIComponent(key.slice)}` : '');
  return `${encodeURIComponent(key.modelId)}+${encodeURIComponent(key.revision)}+${mode}+`;
}

/** File names inside an entry: any string the loader uses, made safe for OPFS (no '/', not '.' or '..'). */
function storedName(name: string): string {
  return `f-${encodeURIComponent(name)}`;
}

/** The entry's own name of a stored file name (the inverse of storedName; the manifest keeps its name). */
export function entryFileName(stored: string): string {
  return stored.startsWith('f-') ? decodeURIComponent(stored.slice(2)) : stored;
}

function fileChecksum(blocks: number[]): string {
  const bytes = new Uint8Array(new Uint32Array(blocks).buffer);
  return `xxh32:${xxhash32(bytes).toString(16).padStart(8, '0')}`;
}

export function parseManifest(text: string): CacheManifest | undefined {
  try {
    const m = JSON.parse(text) as CacheManifest;
    const ok =
      m?.format === 1 &&
      typeof m.modelId === 'string' &&
      typeof m.revision === 'string' &&
      typeof m.weightMode === 'string' &&
      Array.isArray(m.files) &&
      m.files.every((f) => typeof f.name === 'string' && Number.isSafeInteger(f.size) && f.blockSize > 0 && Array.isArray(f.blocks) && f.blocks.length === Math.ceil(f.size / f.blockSize) && f.checksum === fileChecksum(f.blocks));
    return ok ? m : undefined;
  } catch {
    return undefined;
  }
}

function isQuotaError(err: unknown): boolean {
  const name = (err as DOMException | undefined)?.name;
  return name === 'QuotaExceededError' || name === 'NS_ERROR_DOM_QUOTA_REACHED' || /quota/i.test(String((err as Error)?.message));
}

function quotaError(key: CacheKey, needed: number | undefined, estimate: StorageEstimate | undefined, cause?: unknown): GemmaError {
  const mb = (n: number) => `${Math.round(n / 1e6)} MB`;
  const need = needed !== undefined ? ` (it needs about ${mb(needed)}` + (estimate ? `, ${mb(estimate.available)} of the ${mb(estimate.quota)} this site may use are free)` : ')') : estimate ? ` (${mb(estimate.available)} of the ${mb(estimate.quota)} this site may use are free)` : '';
  return new GemmaError(
    'quota',
    `not enough browser storage to cache ${key.modelId} (${key.weightMode})${need}; nothing was kept. Free space by deleting cached models you no longer need, free disk space (browsers grant each site a share of the free disk), or load without the cache.`,
    { cause },
  );
}

/** Holds a Web Lock for the lifetime of a write, so other tabs can tell a live write from an abandoned one. */
function holdLock(name: string): Promise<() => void> {
  const locks = globalThis.navigator?.locks;
  if (!locks) return Promise.resolve(() => {});
  return new Promise((granted) => {
    void locks.request(name, () => new Promise<void>((release) => granted(release)));
  });
}
