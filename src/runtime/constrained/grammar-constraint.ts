/**
 * Structured output as a TokenConstraint: XGrammar's matcher computes which ids keep the text a valid prefix of
 * the grammar, the UTF-8 guard keeps the bytes well-formed (the engine admits ill-formed sequences in places), the
 * string-bounds tracker narrows that inside length-bounded strings, and the mask goes to the GPU sampler. Grammars
 * are compiled once per (vocabulary, grammar text) and cached; a constraint is a fresh matcher.
 *
 * Formats: `json_object` (any JSON object), `json_schema` (exact, see json-schema.ts; unsupported constructs are
 * rejected before any token), `grammar` (XGrammar's EBNF dialect, GBNF-like: `root ::= ...`; its non-ASCII
 * character classes are rewritten exactly, see user-grammar.ts).
 */
import { GemmaError } from '../../errors.ts';
import type { TokenConstraint } from '../token-constraint.ts';
import { ANY_OBJECT, type SchemaNode, checkSchemaTree, hasBoundedString, readSchema, schemaEbnf } from './json-schema.ts';
import { StringBoundsTracker, lengthTables } from './string-bounds.ts';
import { exactClasses } from './user-grammar.ts';
import { Utf8Guard } from './utf8-guard.ts';
import type { GrammarVocabulary } from './vocabulary.ts';
import { type XGrammar, type XGrammarCompiled, type XGrammarCompiler, type XGrammarMatcher, loadXGrammar } from './xgrammar.ts';

import type { ResponseFormat } from '../protocol.ts';

export type { ResponseFormat };

/** What a constraint is compiled from: grammar text plus, for JSON, the schema tree the length check follows. */
export interface GrammarSpec {
  ebnf: string;
  schema?: SchemaNode;
}

/** The grammar spec of a response format (throws GemmaError for unsupported schemas); null for 'text'. */
export function responseFormatSpec(format: ResponseFormat): GrammarSpec | null {
  switch (format.type) {
    case 'text':
      return null;
    case 'json_object':
      return schemaSpec(ANY_OBJECT);
    case 'json_schema':
      return schemaSpec(readSchema(format.schema));
    case 'grammar':
      if (typeof format.grammar !== 'string' || !format.grammar.includes('::=')) {
        throw new GemmaError('invalid-argument', "responseFormat.grammar must be an EBNF grammar string with a `root ::= ...` rule.");
      }
      return { ebnf: exactClasses(format.grammar) };
    default:
      throw new GemmaError('invalid-argument', `Unknown responseFormat type ${JSON.stringify((format as { type: unknown }).type)}: use 'text', 'json_object', 'json_schema' or 'grammar'.`);
  }
}

export function schemaSpec(node: SchemaNode): GrammarSpec {
  checkSchemaTree(node);
  return { ebnf: schemaEbnf(node), schema: node };
}

interface Compiled {
  grammar: XGrammarCompiled;
  ms: number;
}

/** Compiles and caches grammars for one vocabulary. Create once per loaded model (~0.25 s for Gemma's 262k ids). */
export class ConstraintCompiler {
  private readonly cache = new Map<string, Promise<Compiled>>();

  private constructor(
    private readonly xg: XGrammar,
    private readonly compiler: XGrammarCompiler,
    readonly vocab: GrammarVocabulary,
  ) {}

  static async create(vocab: GrammarVocabulary): Promise<ConstraintCompiler> {
    const xg = await loadXGrammar();
    const info = await xg.TokenizerInfo.createTokenizerInfo([...vocab.pieces], 'byte_fallback', false, vocab.vocabSize, [...vocab.stopTokenIds]);
    const compiler = await xg.GrammarCompiler.createGrammarCompiler(info, true);
    return new ConstraintCompiler(xg, compiler, vocab);
  }

  /** Compiles (or reuses) the grammar; resolves with the compile time of the first compile, in ms. */
  async compile(spec: GrammarSpec): Promise<number> {
    return (await this.compiled(spec)).ms;
  }

  private compiled(spec: GrammarSpec): Promise<Compiled> {
    let p = this.cache.get(spec.ebnf);
    if (!p) {
      p = (async () => {
        const t0 = performance.now();
        try {
          const grammar = await this.compiler.compileGrammar(spec.ebnf);
          return { grammar, ms: performance.now() - t0 };
        } catch (err) {
          throw new GemmaError('invalid-argument', `The grammar does not compile: ${(err as Error).message}`, { cause: err });
        }
      })();
      p.catch(() => this.cache.delete(spec.ebnf));
      this.cache.set(spec.ebnf, p);
    }
    return p;
  }

  /** A fresh constraint (its own matcher) for one generation. */
  async constraint(spec: GrammarSpec): Promise<GrammarConstraint> {
    const { grammar } = await this.compiled(spec);
    const matcher = await this.xg.GrammarMatcher.createGrammarMatcher(grammar, [...this.vocab.stopTokenIds]);
    const tracker = spec.schema && hasBoundedString(spec.schema) ? new StringBoundsTracker(spec.schema, lengthTables(this.vocab)) : undefined;
    return new GrammarConstraint(matcher, this.vocab, tracker);
  }
}

interface RawMatcher {
  GetNextTokenBitmask(vocabSize: number): { size(): number; get(i: number): number; delete(): void };
}

/** One generation's grammar state. */
export class GrammarConstraint implements TokenConstraint {
  private mask: Uint32Array | undefined;
  private readonly stop: Uint32Array;
  private readonly words: number;
  private readonly utf8: Utf8Guard;
  /** Tokens accepted so far. */
  readonly tokens: number[] = [];
  private disposed = false;

  constructor(
    private readonly matcher: XGrammarMatcher,
    private readonly vocab: GrammarVocabulary,
    private readonly tracker?: StringBoundsTracker,
  ) {
    this.words = Math.ceil(vocab.vocabSize / 32);
    this.utf8 = new Utf8Guard(vocab);
    this.stop = new Uint32Array(this.words);
    for (const id of vocab.stopTokenIds) this.stop[id >>> 5] |= 1 << (id & 31);
  }

  nextMask(): Uint32Array {
    if (!this.mask) {
      // Synchronous path: copy XGrammar's std::vector word by word (the async API returns a typed-array view).
      const vec = (this.matcher as unknown as { handle: RawMatcher }).handle.GetNextTokenBitmask(this.vocab.vocabSize);
      const n = vec.size();
      const mask = new Uint32Array(this.words);
      for (let i = 0; i < n; i++) mask[i] = vec.get(i);
      vec.delete();
      this.mask = this.finish(mask);
    }
    return this.mask;
  }

  async prepare(): Promise<void> {
    if (this.mask) return;
    const raw = await this.matcher.getNextTokenBitmask();
    this.mask ??= this.finish(new Uint32Array(raw.buffer, raw.byteOffset, this.words));
  }

  private finish(mask: Uint32Array): Uint32Array {
    if (!anySet(mask)) throw deadEnd();
    this.utf8.refine(mask);
    if (!anySet(mask)) {
      throw new GemmaError('invalid-argument', 'The grammar allows only ill-formed UTF-8 here (a byte sequence that is no character): check its character classes and byte escapes.');
    }
    this.tracker?.refine(mask);
    if (!anySet(mask)) throw deadEnd();
    return mask;
  }

  accept(id: number): void {
    if (this.disposed) throw new GemmaError('internal', 'accept() on a disposed constraint');
    const mask = this.nextMask();
    if (!((mask[id >>> 5] >>> (id & 31)) & 1)) throw new GemmaError('internal', `Token ${id} was sampled but the constraint's mask does not allow it (sampler ignored the mask?).`);
    if (!this.matcher.acceptToken(id)) throw new GemmaError('internal', `The grammar engine rejected token ${id} that its mask allowed.`);
    this.tokens.push(id);
    this.utf8.feed(this.vocab.tokenBytes(id));
    this.tracker?.feed(this.vocab.tokenBytes(id));
    this.mask = undefined;
  }

  /** Complete: a stop id was accepted, or nothing but the stop ids may follow. */
  isComplete(): boolean {
    if (this.matcher.isTerminated()) return true;
    const mask = this.nextMask();
    for (let i = 0; i < mask.length; i++) if ((mask[i] & ~this.stop[i]) !== 0) return false;
    return true;
  }

  /** Whether a stop id may come next (the text so far is a whole sentence of the grammar). */
  canStop(): boolean {
    const mask = this.nextMask();
    return this.vocab.stopTokenIds.some((id) => (mask[id >>> 5] >>> (id & 31)) & 1);
  }

  rollback(n: number): void {
    if (n <= 0) return;
    this.matcher.rollBack(n);
    this.tokens.length -= n;
    this.utf8.rollback(n);
    this.tracker?.rollback(n);
    this.mask = undefined;
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.matcher.dispose();
  }
}

function anySet(mask: Uint32Array): boolean {
  for (let i = 0; i < mask.length; i++) if (mask[i] !== 0) return true;
  return false;
}

function deadEnd(): GemmaError {
  return new GemmaError('internal', 'The grammar allows no token here (a dead end): please report the schema or grammar.');
}
