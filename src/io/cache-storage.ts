/**
 * Where the model cache keeps its bytes: the Origin Private File System (preferred: real files, written in
 * place, read back by range without copying) or, where OPFS cannot be written, Cache Storage. Both are reduced
 * to the few operations src/io/cache.ts needs: folders of named files, written as streams, read back as Blobs
 * (Blob.slice() reads only the range asked for).
 */

/** Where one file's bytes go while it is being written. */
export interface FileSink {
  write(chunk: Uint8Array): Promise<void>;
  /** Makes the file visible under its name (for OPFS writable streams this is an atomic swap). */
  close(): Promise<void>;
  abort(): Promise<void>;
}

export interface CacheStorageBackend {
  readonly kind: 'opfs' | 'cache-storage';
  /** Names of all entry folders. */
  listFolders(): Promise<string[]>;
  /** A file's bytes, or undefined when it does not exist. */
  readFile(folder: string, name: string): Promise<Blob | undefined>;
  createFile(folder: string, name: string): Promise<FileSink>;
  removeFolder(folder: string): Promise<void>;
  removeAll(): Promise<void>;
}

const ROOT_NAME = 'gemma3n-webgpu-cache';

/** The best backend this context has, or undefined when there is no persistent storage at all. */
export async function defaultCacheBackend(): Promise<CacheStorageBackend | undefined> {
  const storage = (globalThis.navigator as Navigator | undefined)?.storage;
  if (storage?.getDirectory && canWriteOpfs()) {
    try {
      const root = await storage.getDirectory();
      return opfsBackend(await root.getDirectoryHandle(ROOT_NAME, { create: true }));
    } catch {
      // getDirectory() is refused in some private-browsing modes: fall through to Cache Storage.
    }
  }
  if (globalThis.caches) return cacheStorageBackend(ROOT_NAME);
  return undefined;
}

function canWriteOpfs(): boolean {
  if (typeof FileSystemFileHandle === 'undefined') return false;
  const proto = FileSystemFileHandle.prototype as unknown as Record<string, unknown>;
  // Writable streams work everywhere they exist; sync access handles only in dedicated workers (Safari < 26).
  return 'createWritable' in proto || ('createSyncAccessHandle' in proto && isDedicatedWorker());
}

function isDedicatedWorker(): boolean {
  return typeof (globalThis as { DedicatedWorkerGlobalScope?: unknown }).DedicatedWorkerGlobalScope !== 'undefined' && globalThis instanceof (globalThis as unknown as { DedicatedWorkerGlobalScope: new () => object }).DedicatedWorkerGlobalScope;
}

/** OPFS: one directory per entry under `root`. */
export function opfsBackend(root: FileSystemDirectoryHandle): CacheStorageBackend {
  const folder = (name: string, create = false) => root.getDirectoryHandle(name, { create });
  return {
    kind: 'opfs',
    async listFolders() {
      const names: string[] = [];
      for await (const [name, handle] of (root as unknown as AsyncIterable<[string, FileSystemHandle]>)) {
        if (handle.kind === 'directory') names.push(name);
      }
      return names;
    },
    async readFile(dir, name) {
      try {
        return await (await (await folder(dir)).getFileHandle(name)).getFile();
      } catch (err) {
        if (isNotFound(err)) return undefined;
        throw err;
      }
    },
    async createFile(dir, name) {
      const handle = await (await folder(dir, true)).getFileHandle(name, { create: true });
      const h = handle as FileSystemFileHandle & { createSyncAccessHandle?: () => Promise<SyncAccessHandle> };
      if (typeof handle.createWritable === 'function') {
        // A writable stream writes to a swap file; close() replaces the target atomically.
        const writable = await handle.createWritable({ keepExistingData: false });
        return {
          write: (chunk) => writable.write(chunk as Uint8Array<ArrayBuffer>),
          close: () => writable.close(),
          abort: () => writable.abort().catch(() => {}),
        };
      }
      const sync = await h.createSyncAccessHandle!();
      let at = 0;
      return {
        async write(chunk) {
          const n = sync.write(chunk, { at });
          if (n !== chunk.length) throw new DOMException(`short write (${n} of ${chunk.length} bytes)`, 'QuotaExceededError');
          at += n;
        },
        async close() {
          sync.flush();
          sync.close();
        },
        async abort() {
          sync.close();
        },
      };
    },
    async removeFolder(dir) {
      try {
        await root.removeEntry(dir, { recursive: true });
      } catch (err) {
        if (!isNotFound(err)) throw err;
      }
    },
    async removeAll() {
      for (const name of await this.listFolders()) await this.removeFolder(name);
      for await (const [name] of (root as unknown as AsyncIterable<[string, FileSystemHandle]>)) await root.removeEntry(name, { recursive: true }).catch(() => {});
    },
  };
}

/** The subset of FileSystemSyncAccessHandle we use (typed here: older DOM typings lack it in window scope). */
interface SyncAccessHandle {
  write(buffer: Uint8Array, options?: { at?: number }): number;
  flush(): void;
  close(): void;
}

/** Cache Storage: one Response per file, under https://gemma3n-webgpu.invalid/{folder}/{name}. */
export function cacheStorageBackend(cacheName: string): CacheStorageBackend {
  const origin = 'https://gemma3n-webgpu.invalid/';
  const open = () => caches.open(cacheName);
  const urlOf = (dir: string, name: string) => `${origin}${encodeURIComponent(dir)}/${encodeURIComponent(name)}`;
  const folderOf = (url: string) => decodeURIComponent(url.slice(origin.length).split('/')[0] ?? '');
  return {
    kind: 'cache-storage',
    async listFolders() {
      const keys = await (await open()).keys();
      return [...new Set(keys.map((r) => folderOf(r.url)))];
    },
    async readFile(dir, name) {
      const res = await (await open()).match(urlOf(dir, name));
      return res ? await res.blob() : undefined;
    },
    async createFile(dir, name) {
      const cache = await open();
      const { readable, writable } = new TransformStream<Uint8Array, Uint8Array>();
      const writer = writable.getWriter();
      // put() consumes the stream as we write it, so the file never sits whole in memory.
      const stored = cache.put(urlOf(dir, name), new Response(readable as ReadableStream<Uint8Array<ArrayBuffer>>));
      stored.catch(() => {});
      return {
        async write(chunk) {
          // A failed put() (quota) stops reading the stream; surface its error instead of waiting forever.
          await Promise.race([writer.write(chunk), stored.then(() => {})]);
        },
        async close() {
          await writer.close();
          await stored;
        },
        async abort() {
          await writer.abort().catch(() => {});
          await cache.delete(urlOf(dir, name)).catch(() => {});
        },
      };
    },
    async removeFolder(dir) {
      const cache = await open();
      const prefix = `${origin}${encodeURIComponent(dir)}/`;
      for (const req of await cache.keys()) if (req.url.startsWith(prefix)) await cache.delete(req);
    },
    async removeAll() {
      await caches.delete(cacheName);
    },
  };
}

function isNotFound(err: unknown): boolean {
  const name = (err as DOMException | undefined)?.name;
  return name === 'NotFoundError' || name === 'TypeMismatchError';
}
