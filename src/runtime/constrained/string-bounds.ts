/**
 * String minLength / maxLength, enforced on the mask instead of in the grammar. Written into the grammar a
 * length bound costs one compiled state per character (XGrammar: ~0.1 s each at the 262k Gemma vocabulary, 16 s
 * for maxLength 200), so the grammar keeps the string unbounded and this tracker follows the JSON text as it is
 * accepted: it knows which schema node each string belongs to (by key / index path, and by the anyOf option the
 * text has chosen so far) and, inside a bounded string, clears the ids that would overrun maxLength or close the
 * string before minLength. Lengths count code points (what validators count); the grammar's escapes never
 * encode surrogates, so one escape is one code point.
 *
 * Mask work per step: one AND with a precomputed "plain token of length <= r" mask, plus a byte walk of the
 * allowed tokens that contain a quote, a backslash or a control byte (~1,400 ids on Gemma).
 */
import type { GrammarVocabulary } from './vocabulary.ts';
import { type SchemaNode, flatten } from './json-schema.ts';

const QUOTE = 0x22;
const BACKSLASH = 0x5c;

/** Per-vocabulary tables: which ids are plain (no quote/backslash/control byte) and their code point counts. */
class LengthTables {
  readonly plainLength: Int32Array; // -1 = not plain
  readonly special: number[]; // non-plain ids with text
  readonly specialMask: Uint32Array;
  private readonly upTo = new Map<number, Uint32Array>();
  private readonly maxPlain: number;
  readonly words: number;

  constructor(readonly vocab: GrammarVocabulary) {
    const n = vocab.pieces.length;
    this.words = Math.ceil(vocab.vocabSize / 32);
    this.plainLength = new Int32Array(n).fill(-1);
    this.special = [];
    let maxPlain = 0;
    for (let id = 0; id < n; id++) {
      const bytes = vocab.tokenBytes(id);
      if (bytes.length === 0) continue;
      let len = 0;
      // A lone byte >= 0x80 (a byte-fallback piece) is part of a character split over tokens: counted with the
      // pieces after it the code point count could go wrong if the bytes end up invalid UTF-8, so inside bounded
      // strings these are treated as special and refused (see fits()).
      let plain = !(bytes.length === 1 && bytes[0] >= 0x80);
      for (const b of bytes) {
        if (b === QUOTE || b === BACKSLASH || b < 0x20) plain = false;
        if ((b & 0xc0) !== 0x80) len++;
      }
      if (plain) {
        this.plainLength[id] = len;
        maxPlain = Math.max(maxPlain, len);
      } else this.special.push(id);
    }
    this.maxPlain = maxPlain;
    this.specialMask = new Uint32Array(this.words);
    for (const id of this.special) this.specialMask[id >>> 5] |= 1 << (id & 31);
  }

  /** Mask of the plain ids adding at most r code points (r >= the longest: every plain id). */
  plainUpTo(r: number): Uint32Array {
    const key = Math.min(r, this.maxPlain);
    let m = this.upTo.get(key);
    if (!m) {
      m = new Uint32Array(this.words);
      for (let id = 0; id < this.plainLength.length; id++) {
        const len = this.plainLength[id];
        if (len >= 0 && len <= key) m[id >>> 5] |= 1 << (id & 31);
      }
      this.upTo.set(key, m);
    }
    return m;
  }
}

const tables = new WeakMap<GrammarVocabulary, LengthTables>();

export function lengthTables(vocab: GrammarVocabulary): LengthTables {
  let t = tables.get(vocab);
  if (!t) {
    t = new LengthTables(vocab);
    tables.set(vocab, t);
  }
  return t;
}

type Frame = { kind: 'object'; cands: SchemaNode[]; expectKey: boolean; key?: string } | { kind: 'array'; cands: SchemaNode[] };

interface OpenString {
  isKey: boolean;
  /** Schema nodes the string may belong to (values only). */
  cands: SchemaNode[];
  count: number;
  /** 0: plain; 1: after a backslash; 2..5: inside \uXXXX (hex digits left = esc - 1). */
  esc: number;
  min: number;
  max: number | undefined;
  bytes: number[];
}

function childCandidates(frame: Frame | undefined, root: SchemaNode): SchemaNode[] {
  if (!frame) return flatten(root);
  const out: SchemaNode[] = [];
  for (const c of frame.cands) {
    if (c.kind === 'any') out.push(c);
    else if (frame.kind === 'array' && c.kind === 'array') flatten(c.items, out);
    else if (frame.kind === 'object' && c.kind === 'object') {
      const p = c.props.find((x) => x.name === frame.key);
      if (p) flatten(p.node, out);
      else if (c.additional) flatten(c.additional, out);
    }
  }
  return out;
}

/** Follows accepted JSON text and refines masks inside length-bounded strings. */
export class StringBoundsTracker {
  private stack: Frame[] = [];
  private str: OpenString | undefined;
  private readonly history: Uint8Array[] = [];
  /** Set by byte() when a bounded string overruns maxLength or closes short of minLength. */
  private violated = false;
  private readonly decoder = new TextDecoder();

  constructor(
    private readonly root: SchemaNode,
    private readonly tables: LengthTables,
  ) {}

  feed(bytes: Uint8Array): void {
    this.history.push(bytes);
    for (const b of bytes) this.byte(b);
  }

  /** Forgets the last n fed tokens (replays the rest). */
  rollback(n: number): void {
    const keep = this.history.slice(0, Math.max(0, this.history.length - n));
    this.history.length = 0;
    this.stack = [];
    this.str = undefined;
    for (const b of keep) this.feed(b);
  }

  private byte(b: number): void {
    const s = this.str;
    if (s) {
      if (s.esc === 0) {
        if (b === QUOTE) {
          if (s.count < s.min) this.violated = true;
          return this.closeString();
        }
        if (b === BACKSLASH) {
          s.esc = 1;
          s.count++;
        } else if ((b & 0xc0) !== 0x80) s.count++;
        if (s.max !== undefined && s.count > s.max) this.violated = true;
      } else if (s.esc === 1) s.esc = b === 0x75 ? 5 : 0;
      else s.esc = s.esc === 2 ? 0 : s.esc - 1;
      s.bytes.push(b);
      return;
    }
    const top = this.stack[this.stack.length - 1];
    switch (b) {
      case QUOTE: {
        const isKey = top?.kind === 'object' && top.expectKey;
        const cands = isKey ? [] : childCandidates(top, this.root).filter((c) => c.kind === 'string' || c.kind === 'const' || c.kind === 'any');
        let min = 0;
        let max: number | undefined;
        for (const c of cands) {
          if (c.kind !== 'string') continue;
          min = Math.max(min, c.minLength);
          if (c.maxLength !== undefined) max = max === undefined ? c.maxLength : Math.min(max, c.maxLength);
        }
        this.str = { isKey, cands, count: 0, esc: 0, min, max, bytes: [] };
        return;
      }
      case 0x7b: // {
        this.stack.push({ kind: 'object', cands: childCandidates(top, this.root).filter((c) => c.kind === 'object' || c.kind === 'any'), expectKey: true });
        return;
      case 0x5b: // [
        this.stack.push({ kind: 'array', cands: childCandidates(top, this.root).filter((c) => c.kind === 'array' || c.kind === 'any') });
        return;
      case 0x7d: // }
      case 0x5d: // ]
        this.stack.pop();
        return;
      case 0x3a: // :
        if (top?.kind === 'object') top.expectKey = false;
        return;
      case 0x2c: // ,
        if (top?.kind === 'object') top.expectKey = true;
        return;
    }
  }

  private closeString(): void {
    const s = this.str!;
    this.str = undefined;
    const top = this.stack[this.stack.length - 1];
    if (top?.kind !== 'object') return;
    let value: unknown;
    try {
      value = JSON.parse(`"${this.decoder.decode(Uint8Array.from(s.bytes))}"`);
    } catch {
      return;
    }
    if (s.isKey) {
      top.key = value as string;
      return;
    }
    // The value picks among the object's options: drop those whose property cannot be this string.
    top.cands = top.cands.filter((c) => {
      if (c.kind !== 'object') return true;
      const p = c.props.find((x) => x.name === top.key);
      if (!p) return true;
      return flatten(p.node).some((n) => n.kind !== 'const' || n.values.includes(value));
    });
  }

  /**
   * Clears, in `mask`, the ids that would break a length bound: inside a bounded string by the plain-token tables
   * plus a walk of the allowed ids with quotes / backslashes; elsewhere only those ids can open a string and fill
   * it in the same token, so only they are walked.
   */
  refine(mask: Uint32Array): void {
    const s = this.str;
    const t = this.tables;
    if (s && s.esc !== 0 && !s.isKey && (s.min > 0 || s.max !== undefined)) {
      for (let w = 0; w < mask.length; w++) {
        for (let m = mask[w]; m !== 0; m &= m - 1) {
          const id = (w << 5) | (31 - Math.clz32(m & -m));
          if (!this.fits(id)) clearBit(mask, id);
        }
      }
      return;
    }
    if (s && !s.isKey && s.max !== undefined) {
      // Plain ids cannot close the string: only maxLength matters for them.
      const plain = t.plainUpTo(s.max - s.count);
      const special = t.specialMask;
      for (let w = 0; w < mask.length; w++) mask[w] &= plain[w] | special[w];
    }
    for (const id of t.special) if (maskBit(mask, id) && !this.fits(id)) clearBit(mask, id);
  }

  /** Whether appending id's bytes keeps every string within its bounds (walks a copy of the state). */
  private fits(id: number): boolean {
    const bytes = this.tables.vocab.tokenBytes(id);
    if (bytes.length === 1 && bytes[0] >= 0x80) return !(this.str && !this.str.isKey && (this.str.min > 0 || this.str.max !== undefined));
    const stack = this.stack;
    const str = this.str;
    this.stack = stack.map((f) => ({ ...f }));
    this.str = str && { ...str, bytes: [...str.bytes] };
    this.violated = false;
    for (const b of bytes) {
      this.byte(b);
      if (this.violated) break;
    }
    const ok = !this.violated;
    this.stack = stack;
    this.str = str;
    this.violated = false;
    return ok;
  }
}

function maskBit(mask: Uint32Array, id: number): boolean {
  return ((mask[id >>> 5] >>> (id & 31)) & 1) === 1;
}

function clearBit(mask: Uint32Array, id: number): void {
  mask[id >>> 5] &= ~(1 << (id & 31));
}
