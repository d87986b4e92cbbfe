/**
 * Loads XGrammar's UMD build in Node. Node treats the package's `lib/index.js` as ESM (the package says
 * "type": "module"), where its Emscripten loader's `require` does not exist, so the file is evaluated as the
 * CommonJS script it is, with a real `require`, and the result handed to the runtime (src/runtime/constrained/xgrammar.ts).
 * The file: the package's (a development checkout has it), else the copy the built package ships as dist/xgrammar.js
 * (scripts/build-lib.mjs points the URL below at it from wherever this module's chunk lands).
 */
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { GemmaError } from '../errors.ts';
import { provideXGrammar, type XGrammar } from '../runtime/constrained/xgrammar.ts';

let loaded: XGrammar | undefined;

function xgrammarFile(require: NodeJS.Require): string {
  try {
    return require.resolve('@mlc-ai/web-xgrammar');
  } catch {
    const shipped = fileURLToPath(new URL('./xgrammar.js', import.meta.url));
    if (existsSync(shipped)) return shipped;
    throw new GemmaError('internal', `The grammar engine is missing: neither @mlc-ai/web-xgrammar nor ${shipped} is installed (a broken install of gemma3n-webgpu?).`);
  }
}

export function loadXGrammarForNode(): XGrammar {
  if (loaded) return loaded;
  const require = createRequire(import.meta.url);
  const file = xgrammarFile(require);
  const module = { exports: {} as Record<string, unknown> };
  // The file is a UMD bundle from the package: evaluate it as CommonJS (what its own loader expects in Node).
  new Function('exports', 'module', 'require', '__filename', readFileSync(file, 'utf8'))(module.exports, module, require, file);
  loaded = module.exports as unknown as XGrammar;
  provideXGrammar(loaded);
  return loaded;
}
