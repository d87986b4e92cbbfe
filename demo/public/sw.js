/* The demo's service worker: the app works offline after the first visit.
 * - install: caches everything in precache.json (the built app, its Web Worker, the Gemma tokenizer; written by
 *   vite-demo-assets.ts at build time) under a cache named after the build's version;
 * - activate: deletes the caches of older builds;
 * - fetch: same-origin GETs are answered from that cache first, falling back to the network (and navigations to
 *   the cached page when offline). Model weights are not handled here: the library caches them in OPFS. */
const PREFIX = 'gemma-demo-';

self.addEventListener('install', (event) => {
  event.waitUntil(
    (async () => {
      const response = await fetch('./precache.json', { cache: 'no-store' });
      const { version, files } = await response.json();
      const cache = await caches.open(PREFIX + version);
      await cache.addAll(files);
      await self.skipWaiting();
    })(),
  );
});

self.addEventListener('activate', (event) => {
  event.waitUntil(
    (async () => {
      const current = await currentCacheName();
      for (const name of await caches.keys()) if (name.startsWith(PREFIX) && name !== current) await caches.delete(name);
      await self.clients.claim();
    })(),
  );
});

/** The newest precache (the one the active worker installed). */
async function currentCacheName() {
  const names = (await caches.keys()).filter((n) => n.startsWith(PREFIX));
  return names[names.length - 1];
}

self.addEventListener('fetch', (event) => {
  const request = event.request;
  if (request.method !== 'GET' || new URL(request.url).origin !== self.location.origin || request.headers.has('range')) return;
  event.respondWith(
    (async () => {
      const name = await currentCacheName();
      const cache = name ? await caches.open(name) : undefined;
      const cached = cache && (await cache.match(request, { ignoreSearch: request.mode === 'navigate' }));
      if (cached) return cached;
      try {
        return await fetch(request);
      } catch (err) {
        if (request.mode === 'navigate' && cache) {
          const page = await cache.match('./');
          if (page) return page;
        }
        throw err;
      }
    })(),
  );
});
