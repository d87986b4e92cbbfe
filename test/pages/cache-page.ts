/**
 * Test page for test/e2e/cache.test.ts: the offline cache (OPFS and Cache Storage), browser file sources and
 * the HTTP source, driven from Playwright through `window.C` (plain data in and out).
 */
import { ModelCache, type CacheKey } from '../../src/io/cache.ts';
import { cacheStorageBackend, opfsBackend } from '../../src/io/cache-storage.ts';
import { httpSource } from '../../src/io/http-source.ts';
import { blobSource, fileHandleSource } from '../../src/io/file-source.ts';
import { GemmaError } from '../../src/errors.ts';

/** Deterministic test bytes: byte i of file `seed` (cheap, position-dependent, differs per file). */
function pattern(seed: number, offset: number, length: number): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(length);
  for (let i = 0; i < length; i++) {
    const x = offset + i;
    out[i] = (Math.imul(x ^ (x >>> 7), 0x9e3779b1) >>> 24) ^ seed;
  }
  return out;
}

function* chunksOf(seed: number, size: number, chunk: number): Generator<Uint8Array> {
  for (let at = 0; at < size; at += chunk) yield pattern(seed, at, Math.min(chunk, size - at));
}

function same(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

function plain(err: unknown) {
  return { code: err instanceof GemmaError ? err.code : `not-gemma:${(err as Error)?.name}`, message: (err as Error)?.message ?? String(err) };
}

async function settle<T>(p: Promise<T>): Promise<{ ok: true; value: T } | { ok: false; error: ReturnType<typeof plain> }> {
  try {
    return { ok: true, value: await p };
  } catch (err) {
    return { ok: false, error: plain(err) };
  }
}

async function opfsRoot(): Promise<FileSystemDirectoryHandle> {
  return (await navigator.storage.getDirectory()).getDirectoryHandle('gemma3n-webgpu-cache', { create: true });
}

async function cacheOf(kind: 'opfs' | 'cache-storage' = 'opfs', blockSize?: number): Promise<ModelCache> {
  return new ModelCache(kind === 'opfs' ? opfsBackend(await opfsRoot()) : cacheStorageBackend('gemma3n-webgpu-test'), { blockSize });
}

interface FileSpec {
  name: string;
  size: number;
  seed: number;
}

const C = {
  async defaultKind() {
    return (await ModelCache.open())?.backend.kind;
  },

  /** A normal write: files, then a text file, then commit. */
  async writeEntry(key: CacheKey, files: FileSpec[], opts: { kind?: 'opfs' | 'cache-storage'; chunk?: number; blockSize?: number; expectedBytes?: number } = {}) {
    const cache = await cacheOf(opts.kind, opts.blockSize);
    return settle(
      (async () => {
        const writer = await cache.write(key, { expectedBytes: opts.expectedBytes });
        for (const f of files) await writer.writeFile(f.name, chunksOf(f.seed, f.size, opts.chunk ?? 1 << 20));
        await writer.writeFile('config.json', [new TextEncoder().encode('{"model_type":"gemma3n"}')]);
        return writer.commit({ commit: 'abc123', meta: { note: 'test' } });
      })(),
    );
  },

  /** Writes one file then leaves the entry uncommitted (a crashed tab). */
  async writeUncommitted(key: CacheKey) {
    const cache = await cacheOf();
    const writer = await cache.write(key);
    await writer.writeFile('w.bin', chunksOf(9, 1000, 100));
    return 'left open';
  },

  /**
   * A commit seen from another tab mid-way: the writer still holds its lock and its manifest file exists but is
   * empty (as OPFS leaves it between creating the file and closing the write). Lists there, then commits.
   */
  async listDuringCommit(key: CacheKey) {
    const cache = await cacheOf();
    const before = new Set(await cache.backend.listFolders());
    const writer = await cache.write(key);
    await writer.writeFile('w.bin', chunksOf(9, 1000, 100));
    const folder = (await cache.backend.listFolders()).find((f) => !before.has(f))!;
    const empty = await (await (await opfsRoot()).getDirectoryHandle(folder)).getFileHandle('manifest.json', { create: true });
    const listedMidCommit = (await cacheOf()).list();
    const midCommit = { listed: (await listedMidCommit).length, folderKept: (await cache.backend.listFolders()).includes(folder), emptyBytes: (await empty.getFile()).size };
    await writer.commit();
    return { midCommit, afterCommit: (await cacheOf().then((c) => c.list())).length };
  },

  /** A folder with a manifest that does not parse and no writer: listing removes it. */
  async listBrokenManifest() {
    const root = await opfsRoot();
    const folder = await root.getDirectoryHandle('broken+main+q4+x', { create: true });
    const writable = await (await folder.getFileHandle('manifest.json', { create: true })).createWritable();
    await writable.write('{"format":1,');
    await writable.close();
    return { listed: (await (await cacheOf()).list()).length, folders: await (await cacheOf()).backend.listFolders() };
  },

  async list(kind: 'opfs' | 'cache-storage' = 'opfs') {
    return (await cacheOf(kind)).list();
  },

  async folders(kind: 'opfs' | 'cache-storage' = 'opfs') {
    return (await cacheOf(kind)).backend.listFolders();
  },

  /** Reads `ranges` of a cached file and checks them against the pattern. */
  async readBack(key: CacheKey, spec: FileSpec, ranges: [number, number][], kind: 'opfs' | 'cache-storage' = 'opfs') {
    const entry = await (await cacheOf(kind)).read(key);
    if (!entry) return { ok: false as const, error: { code: 'absent', message: 'not cached' } };
    return settle(
      (async () => {
        const source = entry.open(spec.name);
        const results: boolean[] = [];
        for (const [offset, length] of ranges) results.push(same(await source.read(offset, length), pattern(spec.seed, offset, length)));
        return { results, size: await source.size(), config: await entry.json('config.json'), manifest: entry.manifest };
      })(),
    );
  },

  /** Flips one byte of a cached file in place, as disk corruption would. */
  async corrupt(key: CacheKey, name: string, offset: number) {
    const root = await opfsRoot();
    const prefix = `${encodeURIComponent(key.modelId)}+${encodeURIComponent(key.revision)}+${encodeURIComponent(key.weightMode)}+`;
    for await (const [folderName, handle] of root as unknown as AsyncIterable<[string, FileSystemDirectoryHandle]>) {
      if (!folderName.startsWith(prefix)) continue;
      const fh = await handle.getFileHandle(`f-${encodeURIComponent(name)}`);
      const old = new Uint8Array(await (await fh.getFile()).slice(offset, offset + 1).arrayBuffer());
      const w = await fh.createWritable({ keepExistingData: true });
      await w.write({ type: 'write', position: offset, data: new Uint8Array([old[0] ^ 0xff]) });
      await w.close();
      return true;
    }
    return false;
  },

  async truncate(key: CacheKey, name: string, size: number) {
    const root = await opfsRoot();
    const prefix = `${encodeURIComponent(key.modelId)}+`;
    for await (const [folderName, handle] of root as unknown as AsyncIterable<[string, FileSystemDirectoryHandle]>) {
      if (!folderName.startsWith(prefix)) continue;
      const w = await (await handle.getFileHandle(`f-${encodeURIComponent(name)}`)).createWritable({ keepExistingData: true });
      await w.truncate(size);
      await w.close();
    }
  },

  async remove(key: CacheKey, kind: 'opfs' | 'cache-storage' = 'opfs') {
    return (await cacheOf(kind)).delete(key);
  },

  async clear(kind: 'opfs' | 'cache-storage' = 'opfs') {
    await (await cacheOf(kind)).clear();
  },

  async estimate() {
    return (await cacheOf()).estimate();
  },

  /** Blob and FileSystemFileHandle sources read ranges exactly. */
  async fileSources() {
    const bytes = pattern(3, 0, 100_000);
    const blob = blobSource(new File([bytes], 'x.bin'));
    const root = await navigator.storage.getDirectory();
    const fh = await root.getFileHandle('file-source-test.bin', { create: true });
    const w = await fh.createWritable();
    await w.write(bytes);
    await w.close();
    const handle = fileHandleSource(fh);
    const ok = [
      blob.name === 'x.bin' && (await blob.size()) === 100_000,
      same(await blob.read(12_345, 1000), bytes.subarray(12_345, 13_345)),
      (await handle.size()) === 100_000 && same(await handle.read(99_000, 1000), bytes.subarray(99_000)),
    ];
    const past = await settle(blob.read(99_999, 2));
    await root.removeEntry('file-source-test.bin');
    return { ok, past };
  },

  /**
   * Throughput, same run: download `url` with range reads into the cache (as the loader would: chunks
   * streamed into writeFile), then read the cached copy back. MB/s for: network only, network + cache write,
   * cache read (verified).
   */
  async throughput(url: string, readSize: number) {
    const key = { modelId: 'bench', revision: 'main', weightMode: 'raw' };
    const mbps = (bytes: number, ms: number) => Math.round(bytes / 1e6 / (ms / 1000));
    const src = httpSource(url, { chunkSize: 16 << 20 });
    const size = await src.size();
    let t0 = performance.now();
    for (let at = 0; at < size; at += readSize) await src.read(at, Math.min(readSize, size - at));
    const network = mbps(size, performance.now() - t0);

    const cache = await cacheOf();
    t0 = performance.now();
    const writer = await cache.write(key);
    await writer.writeFile(
      'big.bin',
      (async function* () {
        for (let at = 0; at < size; at += readSize) yield await src.read(at, Math.min(readSize, size - at));
      })(),
    );
    await writer.commit();
    const networkToCache = mbps(size, performance.now() - t0);

    const entry = (await cache.read(key))!;
    const cached = entry.open('big.bin');
    t0 = performance.now();
    for (let at = 0; at < size; at += readSize) await cached.read(at, Math.min(readSize, size - at));
    const cacheRead = mbps(size, performance.now() - t0);
    await cache.delete(key);
    return { size, networkMBps: network, networkToCacheMBps: networkToCache, cacheReadMBps: cacheRead };
  },
};

(window as unknown as { C: typeof C }).C = C;
