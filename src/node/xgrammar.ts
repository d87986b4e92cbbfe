/**
 * Loads XGrammar's UMD build in Node. Node treats the package's `lib/index.js` as ESM (the package says
 * "type": "module"), where its Emscripten loader's `require` does not exist, so the file is evaluated as the
 * CommonJS script it is, with a real `require`, and the result handed to the runtime (src/runtime/constrained/xgrammar.ts).
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { provideXGrammar, type XGrammar } from '../runtime/constrained/xgrammar.ts';

let loaded: XGrammar | undefined;

export function loadXGrammarForNode(): XGrammar {
  if (loaded) return loaded;
  const require = createRequire(import.meta.url);
  const file = require.resolve('@mlc-ai/web-xgrammar');
  const module = { exports: {} as Record<string, unknown> };
  // The file is a UMD bundle from the package: evaluate it as CommonJS (what its own loader expects in Node).
  new Function('exports', 'module', 'require', '__filename', readFileSync(file, 'utf8'))(module.exports, module, require, file);
  loaded = module.exports as unknown as XGrammar;
  provideXGrammar(loaded);
  return loaded;
}
