/**
 * A prompt as the engine caches it: a sequence of segments. Text segments are token ids; a media segment (an image's
 * or an audio clip's soft tokens) is a span of placeholder ids plus the content hash of what it encodes and a way to
 * compute its soft-token rows. Prefix reuse compares per-position keys, never ids alone: two different images put
 * the same placeholder ids into the prompt, and must not share a KV cache.
 */
import { GemmaError } from '../errors.ts';
import type { SoftTokens } from '../model/language-model.ts';

export interface TextSegment {
  type: 'text';
  ids: readonly number[];
}

export interface MediaSegment {
  type: 'media';
  modality: 'image' | 'audio';
  /** Identifies the content and how it was encoded (e.g. a hash of the pixels plus the preprocessing version). */
  hash: string;
  /** The placeholder ids of its positions (one per soft token). */
  ids: readonly number[];
  /** The soft-token rows [ids.length, width]; called only when some of the span must be computed. */
  embed(): Promise<Float32Array>;
}

export type PromptSegment = TextSegment | MediaSegment;

/** What identifies one cached position: the token id, or the media hash and index within its span. */
export type PositionKey = number | string;

export class Prompt {
  readonly ids: readonly number[];
  readonly keys: readonly PositionKey[];
  /** Media spans by start position. */
  private readonly media: Array<{ start: number; segment: MediaSegment; rows?: Promise<Float32Array> }> = [];

  constructor(readonly segments: readonly PromptSegment[]) {
    const ids: number[] = [];
    const keys: PositionKey[] = [];
    for (const seg of segments) {
      if (seg.type === 'media') {
        if (seg.ids.length === 0) throw new GemmaError('invalid-argument', `a ${seg.modality} segment has no positions`);
        this.media.push({ start: ids.length, segment: seg });
        seg.ids.forEach((id, i) => {
          ids.push(id);
          keys.push(`${seg.modality}:${seg.hash}:${i}`);
        });
      } else {
        for (const id of seg.ids) {
          ids.push(id);
          keys.push(id);
        }
      }
    }
    this.ids = ids;
    this.keys = keys;
  }

  static fromIds(ids: readonly number[]): Prompt {
    return new Prompt([{ type: 'text', ids }]);
  }

  get length(): number {
    return this.ids.length;
  }

  /** The soft tokens of positions [start, end), each span's rows computed once on first need. */
  async softTokens(start: number, end: number, width: number): Promise<SoftTokens[]> {
    const out: SoftTokens[] = [];
    for (const m of this.media) {
      const n = m.segment.ids.length;
      const from = Math.max(start, m.start);
      const to = Math.min(end, m.start + n);
      if (from >= to) continue;
      m.rows ??= m.segment.embed().then((rows) => {
        if (rows.length !== n * width) {
          throw new GemmaError('internal', `the ${m.segment.modality} encoder gave ${rows.length / width} rows of width ${width} for ${n} positions`);
        }
        return rows;
      });
      const rows = await m.rows;
      out.push({ offset: from - start, rows: rows.subarray((from - m.start) * width, (to - m.start) * width) });
    }
    return out;
  }
}

/** Length of the longest common prefix of two key sequences. */
export function commonPrefixLength(a: readonly PositionKey[], b: readonly PositionKey[]): number {
  const n = Math.min(a.length, b.length);
  let i = 0;
  while (i < n && a[i] === b[i]) i++;
  return i;
}
