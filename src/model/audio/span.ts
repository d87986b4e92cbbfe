/**
 * The rows that replace one clip's audio placeholders in the prompt, as HF's Gemma3nModel.forward builds them: the
 * processor reserves `audio_soft_tokens_per_image` (188) placeholder ids per clip; the clip's soft tokens fill the
 * first `count` of them, except that padded ones (valid = 0) and every position past `count` get the embedding of
 * embed_audio's hard token vocab_size - 1 (text id 262399 in E2B/E4B: the text model's precomputed hard-token row).
 */
import { GemmaError } from '../../errors.ts';
import type { AudioEncoding } from './encoder.ts';

/** [span, width] f32: the clip's soft tokens with padding rows substituted and the span filled with `padRow`. */
export function audioSpanRows(encoding: AudioEncoding, span: number, padRow: Float32Array): Float32Array {
  const { width, count } = encoding;
  if (padRow.length !== width) throw new GemmaError('internal', `audio pad row has ${padRow.length} values, soft tokens have ${width}`);
  if (count > span) {
    throw new GemmaError('invalid-argument', `an audio clip gave ${count} soft tokens but the prompt reserves ${span} per clip (30 s); split longer clips into 30 s segments`);
  }
  const rows = new Float32Array(span * width);
  for (let j = 0; j < span; j++) {
    const fromClip = j < count && encoding.valid[j] === 1;
    rows.set(fromClip ? encoding.tokens.subarray(j * width, (j + 1) * width) : padRow, j * width);
  }
  return rows;
}
