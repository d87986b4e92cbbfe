/**
 * The error a worker's 'error' event means while a model loads. A script that cannot be fetched or evaluated
 * (404, an HTML fallback page, a bundler that did not emit the file, an import it cannot resolve) fires a plain
 * Event with no message; an exception thrown inside a running worker fires an ErrorEvent that carries one.
 */
import { GemmaError } from '../errors.ts';

/** The GemmaError for a worker 'error' event during load. */
export function workerStartError(event: Event): GemmaError {
  const message = (event as ErrorEvent).message;
  if (message) return new GemmaError('internal', `The Gemma worker failed: ${message}.`);
  return new GemmaError(
    'worker-load-failed',
    'The worker could not load its script (a missing file, a page served in its place, or an import it could not resolve). Check its URL and that it is served as JavaScript.',
  );
}

/** loadGemma()'s own worker did not load: where its file is expected, and the `worker:` fallback. */
export function defaultWorkerLoadError(cause: unknown): GemmaError {
  return new GemmaError(
    'worker-load-failed',
    'The Gemma worker script (gemma3n-webgpu/dist/gemma3n-webgpu-worker.js) could not be loaded (a missing file, or a page served in its place). ' +
      "loadGemma() starts it with new Worker(new URL('./gemma3n-webgpu-worker.js', import.meta.url), { type: 'module' }), " +
      'so node_modules/gemma3n-webgpu/dist/gemma3n-webgpu-worker.js (and dist/chunks/) must be served next to the library module; ' +
      'Vite, webpack 5 and bundler-free pages do this as they are, other setups may need to copy or emit the file. ' +
      'Or create the worker yourself and pass it: a module containing ' +
      "`import { exposeGemmaWorker, defaultModelFactory } from 'gemma3n-webgpu/core'; exposeGemmaWorker(defaultModelFactory);`, " +
      "started with `new Worker(new URL('./gemma-worker.js', import.meta.url), { type: 'module' })` and given as loadGemma({ worker, ... }).",
    { cause },
  );
}

/**
 * `new Worker()` threw: browsers start workers only from the page's origin, so a library imported from a CDN
 * cannot start its worker directly; a same-origin blob module that imports the worker script can.
 */
export function workerRefusedError(cause: unknown): GemmaError {
  return new GemmaError(
    'worker-load-failed',
    `The browser refused to start the Gemma worker (${(cause as Error)?.message ?? cause}). Browsers start workers only from the page's own origin, ` +
      'which fails when gemma3n-webgpu is imported from another origin (a CDN). Serve the package from your own origin, or start the worker ' +
      'through a same-origin blob and pass it: `const url = \'<the CDN URL of gemma3n-webgpu/dist/gemma3n-webgpu-worker.js>\'; ' +
      "const worker = new Worker(URL.createObjectURL(new Blob([`import ${JSON.stringify(url)};`], { type: 'text/javascript' })), { type: 'module' });` " +
      'then loadGemma({ worker, ... }).',
    { cause },
  );
}
