/**
 * The vocabulary as the grammar engine sees it: each id's piece in SentencePiece byte-fallback form (`▁` for a
 * space, `<0xNN>` for a raw byte), read from the checkpoint's tokenizer.json, with the ids a constrained reply
 * must never contain blanked to ''. XGrammar treats an empty piece as a special token: never allowed, except the
 * stop ids, which it allows where the grammar may end.
 *
 * Blanked on Gemma: the special tokens (<pad>, <eos>, <bos>, <unk>, turn and image markers), <mask>,
 * [multimodal] and the 6,242 <unusedN> pieces. Unblanked, these decode to their literal text in XGrammar's eyes
 * ("<unused7>" is fine inside a JSON string) while our detokenizer drops the special ones, so the grammar and the
 * text would disagree; the ids >= the tokenizer's size (the LM head's pad rows) are never allowed either.
 */
import { GemmaError } from '../../errors.ts';
import type { TokenizerVocabulary } from '../tokenizer.ts';

export interface GrammarVocabulary {
  /** Pieces by id in byte-fallback form; '' = never allowed. Length = the tokenizer's size. */
  readonly pieces: readonly string[];
  /** Rows of the logits (Gemma 3n: 262,400 >= pieces.length). */
  readonly vocabSize: number;
  /** Ids that end the reply; allowed only where the grammar may end. */
  readonly stopTokenIds: readonly number[];
  /** The UTF-8 bytes an id adds to the text (empty for blanked ids). */
  tokenBytes(id: number): Uint8Array;
  /** A stable key of the vocabulary (compiled grammars are cached per vocabulary). */
  readonly key: string;
}

interface TokenizerJson {
  model?: { vocab?: Record<string, number> | [string, number][]; byte_fallback?: boolean };
  added_tokens?: { id: number; content: string; special?: boolean }[];
}

const BYTE_PIECE = /^<0x([0-9A-Fa-f]{2})>$/;
const utf8 = new TextEncoder();

/** Whether an added token is a control / placeholder id that must never appear in constrained text. */
function isControlToken(t: { content: string; special?: boolean }): boolean {
  return t.special === true || /^<unused\d+>$/.test(t.content) || t.content === '<mask>' || t.content === '[multimodal]';
}

/**
 * Builds the grammar vocabulary of a SentencePiece byte-fallback tokenizer (Gemma's) from its parsed tokenizer.json.
 * `vocabSize`: the logits' row count; `stopTokenIds`: the ids that end a turn (Gemma: 1 <eos>, 106 <end_of_turn>).
 */
export function byteFallbackVocabulary(tokenizerJson: unknown, opts: { vocabSize: number; stopTokenIds: readonly number[] }): GrammarVocabulary {
  const json = tokenizerJson as TokenizerJson;
  const vocab = json.model?.vocab;
  if (!vocab) throw notByteFallback();
  const entries: [string, number][] = Array.isArray(vocab) ? vocab : Object.entries(vocab);
  let size = 0;
  for (const [, id] of entries) size = Math.max(size, id + 1);
  const pieces: string[] = new Array(size).fill('');
  for (const [piece, id] of entries) pieces[id] = piece;
  const addedTokens = (json.added_tokens ?? []).map((t) => ({ id: t.id, content: t.content, special: t.special === true }));
  return grammarVocabulary({ pieces, byteFallback: json.model?.byte_fallback === true, addedTokens }, opts);
}

/**
 * Control tokens a grammar may write (a family's native tool-call markers), each spelled as ONE ASCII control
 * character U+0001..U+0008 instead of blanked. XGrammar matches text, not ids, so a marker spelled by its literal
 * text (`<|"|>`) could also be written with ordinary tokens; these characters cannot: every other piece that could
 * write one (the byte pieces `<0x01>`..`<0x08>`, any piece holding such a character) is blanked, so the marker is
 * reachable through its own id only, as the model emits it. ASCII because XGrammar 0.1.27's character classes are
 * exact on ASCII only: a class or range over other code points (`[^\U0010ff03]`, `[\u00e0-\u00ff]`) admits the
 * wrong characters (measured: test/runtime/constrained/xgrammar-classes.test.ts), and a string rule must exclude the markers.
 */
export type ControlSpelling = ReadonlyMap<number, string>;

const CONTROL_CHARS = /[\u0001-\u0008]/;
const CONTROL_BYTES = /^<0x0[1-8]>$/;

/** The spelling of the k-th visible control token (U+0001 + k). */
export function controlCodePoint(k: number): string {
  if (!(k >= 0 && k < 8)) throw new GemmaError('internal', `control spelling index ${k} out of range`);
  return String.fromCharCode(1 + k);
}

/**
 * The grammar vocabulary of a loaded tokenizer's vocabulary (TextTokenizer.vocabulary()). `controls`: control
 * tokens the grammar may write, spelled as given (see ControlSpelling); every other control token stays blanked.
 */
export function grammarVocabulary(v: TokenizerVocabulary, opts: { vocabSize: number; stopTokenIds: readonly number[]; controls?: ControlSpelling }): GrammarVocabulary {
  if (!v.byteFallback) throw notByteFallback();
  let size = v.pieces.length;
  for (const t of v.addedTokens) size = Math.max(size, t.id + 1);
  if (size > opts.vocabSize) throw new GemmaError('unsupported-config', `The tokenizer has ${size} ids but the model only ${opts.vocabSize} logits: this tokenizer does not belong to this model.`);
  const pieces: string[] = new Array(size);
  for (let id = 0; id < size; id++) pieces[id] = v.pieces[id] ?? '';
  for (const t of v.addedTokens) pieces[t.id] = isControlToken(t) ? '' : t.content;
  const controls = opts.controls;
  if (!controls || controls.size === 0) return makeVocabulary(pieces, opts.vocabSize, opts.stopTokenIds);
  for (let id = 0; id < size; id++) if (CONTROL_BYTES.test(pieces[id]) || CONTROL_CHARS.test(pieces[id])) pieces[id] = '';
  for (const [id, spelling] of controls) {
    if (id >= size || spelling.length !== 1 || !CONTROL_CHARS.test(spelling)) throw new GemmaError('internal', `control token ${id} spelled ${JSON.stringify(spelling)}: needs an id of the tokenizer and one character U+0001..U+0008`);
    pieces[id] = spelling;
  }
  const vocab = makeVocabulary(pieces, opts.vocabSize, opts.stopTokenIds);
  const spelled = [...controls].map(([id, s]) => `${id}=${s.codePointAt(0)!.toString(16)}`).join(',');
  return { ...vocab, key: `${vocab.key}:controls:${spelled}` };
}

function notByteFallback(): GemmaError {
  return new GemmaError('unsupported-config', 'Constrained decoding needs a SentencePiece byte-fallback tokenizer (tokenizer.json with model.vocab and byte_fallback: true), as Gemma ships.');
}

/** A vocabulary from pieces directly (tests; other byte-fallback tokenizers). */
export function makeVocabulary(pieces: string[], vocabSize: number, stopTokenIds: readonly number[]): GrammarVocabulary {
  const cache: (Uint8Array | undefined)[] = new Array(pieces.length);
  const empty = new Uint8Array(0);
  let h = 2166136261;
  for (let i = 0; i < pieces.length; i += 97) for (const c of pieces[i]) h = Math.imul(h ^ c.codePointAt(0)!, 16777619) >>> 0;
  return {
    pieces,
    vocabSize,
    stopTokenIds: [...stopTokenIds],
    key: `${pieces.length}:${vocabSize}:${stopTokenIds.join(',')}:${h.toString(16)}`,
    tokenBytes(id: number): Uint8Array {
      if (id >= pieces.length || pieces[id] === '') return empty;
      let b = cache[id];
      if (!b) {
        const piece = pieces[id];
        const m = BYTE_PIECE.exec(piece);
        b = m ? Uint8Array.of(parseInt(m[1], 16)) : utf8.encode(piece.replaceAll('▁', ' '));
        cache[id] = b;
      }
      return b;
    },
  };
}
