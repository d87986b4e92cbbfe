/**
 * Offline support: registers the service worker (public/sw.js), which precaches the built app, its worker and the
 * Gemma tokenizer on the first visit and serves them from cache afterwards. Model weights are cached by the
 * library itself (OPFS / Cache Storage, src/io/cache.ts), not by the service worker.
 */
export async function registerOfflineSupport(): Promise<ServiceWorkerRegistration | undefined> {
  // The dev server's modules change on every edit: only the built app is cached.
  if (import.meta.env.DEV || !('serviceWorker' in navigator)) return undefined;
  try {
    return await navigator.serviceWorker.register('./sw.js', { scope: './' });
  } catch (err) {
    console.warn('Service worker registration failed; the demo will not work offline.', err);
    return undefined;
  }
}
