import { defineConfig } from 'vite';
import { resolve } from 'node:path';
import { demoAssets } from './demo/vite-demo-assets.ts';

// `vite` serves and builds the demo (demo/). The library itself is built by scripts/build-lib.mjs (`npm run build`).
export default defineConfig({
  root: 'demo',
  base: './',
  // Copies the Gemma tokenizer into the demo and writes the service worker's precache list.
  plugins: [demoAssets(import.meta.dirname)],
  build: { outDir: resolve(import.meta.dirname, 'demo-dist'), emptyOutDir: true, target: 'es2022' },
  worker: { format: 'es' },
  server: { host: '127.0.0.1', fs: { allow: [resolve(import.meta.dirname)] } },
});
