/**
 * Access to XGrammar's WebAssembly build (npm `@mlc-ai/web-xgrammar`, what WebLLM uses): the grammar engine
 * behind structured output. Its package entry is a UMD file: a plain side-effect import works in browsers and
 * bundlers (the wasm is embedded, no network) and leaves the API on `globalThis.xgrammar`; Node cannot import it
 * as ESM (it calls `require`), so Node hosts load it with src/node/xgrammar.ts and hand it over here.
 */
import { GemmaError } from '../../errors.ts';

// The part of the package's API we use, declared here: the package is not a dependency of the published library
// (its file ships as dist/xgrammar.js), so the published types must not name it.

/** XGrammar's preprocessed vocabulary. */
export interface XGrammarTokenizerInfo {
  dispose(): void;
}

export interface XGrammarCompiled {
  dispose(): void;
}

export interface XGrammarCompiler {
  compileGrammar(ebnf: string, rootRule?: string): Promise<XGrammarCompiled>;
  dispose(): void;
}

export interface XGrammarMatcher {
  acceptToken(tokenId: number, verbose?: boolean): boolean;
  /** The allowed ids as a bitmask (ceil(vocabSize / 32) words, as signed 32-bit integers). */
  getNextTokenBitmask(): Promise<Int32Array>;
  isTerminated(): boolean;
  rollBack(numTokens: number): void;
  dispose(): void;
}

/** The module (`globalThis.xgrammar` once its UMD file has run). */
export interface XGrammar {
  TokenizerInfo: {
    createTokenizerInfo(encodedVocab: string[], vocabType?: string, prependSpaceInTokenization?: boolean, vocabSize?: number, stopTokenIds?: number[] | number): Promise<XGrammarTokenizerInfo>;
  };
  GrammarCompiler: { createGrammarCompiler(tokenizerInfo: XGrammarTokenizerInfo, cacheEnabled?: boolean): Promise<XGrammarCompiler> };
  GrammarMatcher: {
    createGrammarMatcher(compiled: XGrammarCompiled, overrideStopTokens?: number[] | number, terminateWithoutStopToken?: boolean, maxRollbackTokens?: number): Promise<XGrammarMatcher>;
  };
}

let provided: XGrammar | undefined;

/** Hands over an already loaded module (Node: src/node/xgrammar.ts). */
export function provideXGrammar(module: XGrammar): void {
  provided = module;
}

function api(x: unknown): XGrammar | undefined {
  const g = x as Partial<XGrammar> | undefined;
  return g && typeof g.GrammarCompiler === 'function' ? (g as XGrammar) : undefined;
}

function fromGlobal(): XGrammar | undefined {
  return api((globalThis as { xgrammar?: unknown }).xgrammar);
}

/** The XGrammar API, loading the package on first use. */
export async function loadXGrammar(): Promise<XGrammar> {
  provided ??= fromGlobal();
  if (provided) return provided;
  let module: { default?: unknown } | undefined;
  try {
    module = await import('@mlc-ai/web-xgrammar');
  } catch (err) {
    throw new GemmaError(
      'internal',
      `Could not load the grammar engine (@mlc-ai/web-xgrammar): ${(err as Error).message}. In Node, call loadXGrammarForNode() from src/node/xgrammar.ts first.`,
      { cause: err },
    );
  }
  // Run as a script (a browser importing the file itself) the UMD defines the global; a bundler that wraps it as
  // CommonJS (Vite's, for the demo) hands its exports over as the module instead.
  provided = fromGlobal() ?? api(module) ?? api(module?.default);
  if (!provided) throw new GemmaError('internal', '@mlc-ai/web-xgrammar loaded but neither defined globalThis.xgrammar nor exported its API (a bundler rewrote its UMD entry?).');
  return provided;
}
