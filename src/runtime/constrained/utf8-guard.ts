/**
 * Keeps a constrained generation's bytes well-formed UTF-8. Gemma's byte-fallback pieces (`<0xE0>`, ...) let a
 * model spell any byte, and the grammar engine admits ill-formed sequences in places (XGrammar 0.1.27's negated
 * classes accept overlong and surrogate forms and lead bytes up to 0xF7, see ebnf.ts), which a decoder turns into
 * U+FFFD: a string that breaks its schema's pattern or length. The guard follows the bytes accepted so far and, on
 * each mask, clears the ids whose bytes would make the text ill-formed: at a character boundary, the byte pieces
 * that cannot start a character; inside a character, everything but the bytes that may continue it (stop ids
 * included: a text never ends inside a character).
 *
 * Only ids whose bytes are not a whole well-formed string on their own are ever looked at (on Gemma, the 128 byte
 * pieces 0x80..0xFF), so a mask costs a walk over those.
 */
import type { GrammarVocabulary } from './vocabulary.ts';

/** Where the text stands: 0 at a character boundary, else need << 16 | lo << 8 | hi (continuation bytes still
 * needed, and the range of the next one). */
type Utf8State = number;

const BOUNDARY: Utf8State = 0;
const INVALID = -1;

const pending = (need: number, lo: number, hi: number): Utf8State => (need << 16) | (lo << 8) | hi;

/** The state after byte `b` (INVALID if `b` cannot come here); the ranges are Unicode's well-formed table. */
function step(s: Utf8State, b: number): Utf8State {
  if (s !== BOUNDARY) {
    if (b < ((s >> 8) & 0xff) || b > (s & 0xff)) return INVALID;
    const need = s >> 16;
    return need === 1 ? BOUNDARY : pending(need - 1, 0x80, 0xbf);
  }
  if (b < 0x80) return BOUNDARY;
  if (b >= 0xc2 && b <= 0xdf) return pending(1, 0x80, 0xbf);
  if (b === 0xe0) return pending(2, 0xa0, 0xbf); // no overlong 3-byte forms
  if (b === 0xed) return pending(2, 0x80, 0x9f); // no surrogates
  if (b >= 0xe1 && b <= 0xef) return pending(2, 0x80, 0xbf);
  if (b === 0xf0) return pending(3, 0x90, 0xbf); // no overlong 4-byte forms
  if (b >= 0xf1 && b <= 0xf3) return pending(3, 0x80, 0xbf);
  if (b === 0xf4) return pending(3, 0x80, 0x8f); // nothing above U+10FFFF
  return INVALID; // continuation bytes, 0xC0, 0xC1, 0xF5..0xFF
}

function walk(s: Utf8State, bytes: Uint8Array): Utf8State {
  for (let i = 0; i < bytes.length && s !== INVALID; i++) s = step(s, bytes[i]);
  return s;
}

/** Per vocabulary: the ids whose bytes are not a whole well-formed string by themselves, and of those the ones that
 * cannot even start at a character boundary (fixed per vocabulary, so found once). */
interface PartialIds {
  partial: Int32Array;
  invalidAtBoundary: Int32Array;
}

function partialIds(vocab: GrammarVocabulary): PartialIds {
  const partial: number[] = [];
  const invalidAtBoundary: number[] = [];
  for (let id = 0; id < vocab.pieces.length; id++) {
    const bytes = vocab.tokenBytes(id);
    if (bytes.length === 0) continue;
    const end = walk(BOUNDARY, bytes);
    if (end === BOUNDARY) continue;
    partial.push(id);
    if (end === INVALID) invalidAtBoundary.push(id);
  }
  return { partial: Int32Array.from(partial), invalidAtBoundary: Int32Array.from(invalidAtBoundary) };
}

const partialByVocab = new WeakMap<GrammarVocabulary, PartialIds>();

export class Utf8Guard {
  private readonly ids: PartialIds;
  private state: Utf8State = BOUNDARY;
  /** The state before each accepted token, for rollback. */
  private readonly history: Utf8State[] = [];

  constructor(private readonly vocab: GrammarVocabulary) {
    let ids = partialByVocab.get(vocab);
    if (!ids) partialByVocab.set(vocab, (ids = partialIds(vocab)));
    this.ids = ids;
  }

  /** Clears from `mask` the ids that would make the text ill-formed. */
  refine(mask: Uint32Array): void {
    if (this.state === BOUNDARY) {
      for (const id of this.ids.invalidAtBoundary) clear(mask, id);
      return;
    }
    const keep = Array.from(this.ids.partial).filter((id) => isSet(mask, id) && walk(this.state, this.vocab.tokenBytes(id)) !== INVALID);
    mask.fill(0);
    for (const id of keep) mask[id >>> 5] |= 1 << (id & 31);
  }

  /** Follows an accepted token's bytes (a stop id has none). */
  feed(bytes: Uint8Array): void {
    this.history.push(this.state);
    const next = walk(this.state, bytes);
    // refine() never lets such a token through; a caller that bypassed the mask gets the boundary back.
    this.state = next === INVALID ? BOUNDARY : next;
  }

  rollback(n: number): void {
    if (n <= 0) return;
    this.state = this.history[this.history.length - n];
    this.history.length -= n;
  }
}

function isSet(mask: Uint32Array, id: number): boolean {
  return ((mask[id >>> 5] >>> (id & 31)) & 1) === 1;
}

function clear(mask: Uint32Array, id: number): void {
  mask[id >>> 5] &= ~(1 << (id & 31));
}
