/**
 * A minimal in-memory Cache Storage (`globalThis.caches`) for Node tests: enough of open / keys / match / put /
 * delete for src/io/cache-storage.ts's Cache Storage backend, so the offline cache's load path (model-factory.ts,
 * model-cache.ts) runs in Node exactly as in a browser without OPFS.
 */
export function installMemoryCacheStorage(): { clear(): void } {
  const stores = new Map<string, Map<string, Blob>>();
  const store = (name: string) => {
    let s = stores.get(name);
    if (!s) stores.set(name, (s = new Map()));
    return s;
  };
  const urlOf = (r: RequestInfo | URL) => (typeof r === 'string' ? r : r instanceof URL ? r.href : r.url);
  const open = async (name: string) => {
    const s = store(name);
    return {
      keys: async () => [...s.keys()].map((url) => new Request(url)),
      match: async (r: RequestInfo | URL) => {
        const blob = s.get(urlOf(r));
        return blob && new Response(blob);
      },
      put: async (r: RequestInfo | URL, res: Response) => {
        s.set(urlOf(r), await res.blob());
      },
      delete: async (r: RequestInfo | URL) => s.delete(urlOf(r)),
    };
  };
  (globalThis as unknown as { caches: unknown }).caches = { open, delete: async (name: string) => stores.delete(name) };
  return { clear: () => stores.clear() };
}
