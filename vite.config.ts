import { defineConfig } from 'vite';
import { resolve } from 'node:path';
import { demoAssets } from './demo/vite-demo-assets.ts';

const LIBRARY_EXTERNALS = ['@huggingface/transformers', 'comlink', 'webgpu', /^node:/];

// `vite` serves and builds the demo (demo/); `vite build --mode lib` builds the library into dist/.
export default defineConfig(({ mode }) => {
  if (mode === 'lib') {
    return {
      build: {
        outDir: 'dist',
        emptyOutDir: true,
        target: 'es2022',
        lib: {
          entry: { 'gemma3n-webgpu': resolve(import.meta.dirname, 'src/index.ts'), core: resolve(import.meta.dirname, 'src/core.ts') },
          formats: ['es'],
        },
        rollupOptions: { external: LIBRARY_EXTERNALS },
      },
      // The worker is its own bundle: keep the dependencies external there too, so the app's bundler resolves them
      // once (otherwise onnxruntime's wasm is inlined into a 70 MB worker chunk).
      worker: { format: 'es', rollupOptions: { external: LIBRARY_EXTERNALS } },
    };
  }
  return {
    root: 'demo',
    base: './',
    // Copies the Gemma tokenizer into the demo and writes the service worker's precache list.
    plugins: [demoAssets(import.meta.dirname)],
    build: { outDir: resolve(import.meta.dirname, 'demo-dist'), emptyOutDir: true, target: 'es2022' },
    worker: { format: 'es' },
    server: { host: '127.0.0.1', fs: { allow: [resolve(import.meta.dirname)] } },
  };
});
