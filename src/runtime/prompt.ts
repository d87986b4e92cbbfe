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
  /** The ids of its positions (the modality's placeholder id at each soft token). */
  ids: readonly number[];
  /**
   * Positions [0, softLength) take the encoder's rows (default: all of them); later ones keep their ids' embeddings
   * (Gemma 3n pads a short audio clip's span with embed_audio's last hard token, which the decoder embeds itself).
   */
  softLength?: number;
  /** Where it came from, for messages ('message 1, part 2 (audio)'). */
  label?: string;
  /** ms the last embed() spent encoding (the encoder's own time, without loading it), when it says. */
  encodeMs?: number;
  /**
   * The soft-token rows [softLength, width]; called only when some of the span must be computed. Rejects with
   * GemmaError('aborted') when `signal` aborts it.
   */
  embed(signal?: AbortSignal): Promise<Float32Array>;
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
        const soft = seg.softLength ?? seg.ids.length;
        if (!(Number.isInteger(soft) && soft >= 0 && soft <= seg.ids.length)) throw new GemmaError('internal', `a ${seg.modality} segment's softLength ${soft} is outside [0, ${seg.ids.length}]`);
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

  /** Media segments in order, with their start positions. */
  get mediaSpans(): ReadonlyArray<{ start: number; segment: MediaSegment }> {
    return this.media;
  }

  /** ms the media encoders spent on this prompt's spans so far (soft tokens computed by softTokens()). */
  encodeMs = 0;

  /**
   * The soft tokens of positions [start, end), each span's rows computed once on first need. An abort through
   * `signal` rejects with GemmaError('aborted'); the span is computed afresh when asked again.
   */
  async softTokens(start: number, end: number, width: number, signal?: AbortSignal): Promise<SoftTokens[]> {
    const out: SoftTokens[] = [];
    for (const m of this.media) {
      const n = m.segment.softLength ?? m.segment.ids.length;
      const from = Math.max(start, m.start);
      const to = Math.min(end, m.start + n);
      if (from >= to) continue;
      if (!m.rows) {
        const rows = m.segment.embed(signal).then((rows) => {
          if (rows.length !== n * width) {
            throw new GemmaError('internal', `the ${m.segment.modality} encoder gave ${rows.length / width} rows of width ${width} for ${n} positions`);
          }
          this.encodeMs += m.segment.encodeMs ?? 0;
          return rows;
        });
        m.rows = rows;
        rows.catch(() => {
          if (m.rows === rows) m.rows = undefined;
        });
      }
      const rows = await m.rows;
      out.push({ offset: from - start, rows: rows.subarray((from - m.start) * width, (to - m.start) * width) });
    }
    softTokenProbe()?.(start, out);
    return out;
  }
}

/**
 * Observability for tests: a function a test puts on the worker's global scope (`__gemma3nSoftTokenProbe`, e.g.
 * through Playwright's worker.evaluate) sees every soft-token chunk on its way to the decoder (the chunk's first
 * position, then the rows by offset): what the decoder receives at media positions, through the shipped worker.
 */
function softTokenProbe(): ((start: number, soft: readonly SoftTokens[]) => void) | undefined {
  const probe = (globalThis as { __gemma3nSoftTokenProbe?: unknown }).__gemma3nSoftTokenProbe;
  return typeof probe === 'function' ? (probe as (start: number, soft: readonly SoftTokens[]) => void) : undefined;
}

/** Length of the longest common prefix of two key sequences. */
export function commonPrefixLength(a: readonly PositionKey[], b: readonly PositionKey[]): number {
  const n = Math.min(a.length, b.length);
  let i = 0;
  while (i < n && a[i] === b[i]) i++;
  return i;
}
