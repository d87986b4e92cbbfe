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
  if (!vocab || json.model?.byte_fallback !== true) {
    throw new GemmaError('unsupported-config', 'Constrained decoding needs a SentencePiece byte-fallback tokenizer.json (model.vocab with byte_fallback: true), as Gemma ships.');
  }
  const entries: [string, number][] = Array.isArray(vocab) ? vocab : Object.entries(vocab);
  let size = 0;
  for (const [, id] of entries) size = Math.max(size, id + 1);
  for (const t of json.added_tokens ?? []) size = Math.max(size, t.id + 1);
  if (size > opts.vocabSize) throw new GemmaError('unsupported-config', `The tokenizer has ${size} ids but the model only ${opts.vocabSize} logits.`);
  const pieces: string[] = new Array(size).fill('');
  for (const [piece, id] of entries) pieces[id] = piece;
  for (const t of json.added_tokens ?? []) pieces[t.id] = isControlToken(t) ? '' : t.content;
  return makeVocabulary(pieces, opts.vocabSize, opts.stopTokenIds);
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
