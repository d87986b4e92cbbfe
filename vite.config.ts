import { defineConfig } from 'vite';
import { resolve } from 'node:path';
import { demoAssets } from './demo/vite-demo-assets.ts';

// `vite` serves and builds the demo (demo/); `vite build --mode lib` builds the library into dist/.
export default defineConfig(({ mode }) => {
  if (mode === 'lib') {
    return {
      build: {
        outDir: 'dist',
        emptyOutDir: true,
        target: 'es2022',
        lib: {
          entry: { 'gemma-webgpu': resolve(__dirname, 'src/index.ts') },
          formats: ['es'],
        },
        rollupOptions: { external: ['@huggingface/transformers', 'comlink', 'webgpu', /^node:/] },
      },
      worker: { format: 'es' },
    };
  }
  return {
    root: 'demo',
    base: './',
    // Copies the Gemma tokenizer into the demo and writes the service worker's precache list.
    plugins: [demoAssets(__dirname)],
    build: { outDir: resolve(__dirname, 'demo-dist'), emptyOutDir: true, target: 'es2022' },
    worker: { format: 'es' },
    server: { host: '127.0.0.1', fs: { allow: [resolve(__dirname)] } },
  };
});
