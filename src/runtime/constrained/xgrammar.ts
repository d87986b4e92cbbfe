/**
 * Access to XGrammar's WebAssembly build (npm `@mlc-ai/web-xgrammar`, what WebLLM uses): the grammar engine
 * behind structured output. Its package entry is a UMD file: a plain side-effect import works in browsers and
 * bundlers (the wasm is embedded, no network) and leaves the API on `globalThis.xgrammar`; Node cannot import it
 * as ESM (it calls `require`), so Node hosts load it with src/node/xgrammar.ts and hand it over here.
 */
import type * as XGrammarModule from '@mlc-ai/web-xgrammar';
import { GemmaError } from '../../errors.ts';

export type XGrammar = Pick<typeof XGrammarModule, 'GrammarCompiler' | 'GrammarMatcher' | 'TokenizerInfo' | 'Grammar' | 'CompiledGrammar'>;
export type XGrammarMatcher = XGrammarModule.GrammarMatcher;
export type XGrammarCompiled = XGrammarModule.CompiledGrammar;
export type XGrammarCompiler = XGrammarModule.GrammarCompiler;
export type XGrammarTokenizerInfo = XGrammarModule.TokenizerInfo;

let provided: XGrammar | undefined;

/** Hands over an already loaded module (Node: src/node/xgrammar.ts). */
export function provideXGrammar(module: XGrammar): void {
  provided = module;
}

function fromGlobal(): XGrammar | undefined {
  const g = (globalThis as { xgrammar?: XGrammar }).xgrammar;
  return g && typeof g.GrammarCompiler === 'function' ? g : undefined;
}

/** The XGrammar API, loading the package on first use. */
export async function loadXGrammar(): Promise<XGrammar> {
  provided ??= fromGlobal();
  if (provided) return provided;
  try {
    await import('@mlc-ai/web-xgrammar');
  } catch (err) {
    throw new GemmaError(
      'internal',
      `Could not load the grammar engine (@mlc-ai/web-xgrammar): ${(err as Error).message}. In Node, call loadXGrammarForNode() from src/node/xgrammar.ts first.`,
      { cause: err },
    );
  }
  provided = fromGlobal();
  if (!provided) throw new GemmaError('internal', '@mlc-ai/web-xgrammar loaded but did not define globalThis.xgrammar (a bundler rewrote its UMD entry?).');
  return provided;
}
