/**
 * Which GPU weight format holds a pre-quantized stored tensor without changing any value, by its dtype name as a
 * Checkpoint reports it (TensorInfo.dtype: ggml's type names for GGUF files, the same names in the offline cache).
 * The model's format plan (src/model/gemma3n/quant-plan.ts) asks here; io's GGUF repacker (src/io/gguf-types.ts)
 * implements the repacks. One table, so the two cannot disagree.
 *
 * - Q4_0 → q4 (same f16 scale, same nibbles); Q8_0 → q8 (same bytes); Q5_0 → q5 (same d, codes and fifth bits;
 *   also q8: its d·(q − 16) values are int8 codes −16..15 on q8's grid with the same scale);
 * - Q4_K → q4k, Q5_K → q5k, Q6_K → q6k (src/formats/kquant.ts: same scales, mins and codes, rearranged).
 * Other quantized types (Q4_1, Q5_1: w = d·q + m) have no lossless home: the loader dequantizes them and requantizes
 * to q8 (`undefined` here).
 */
import type { QuantFormat } from './weight-format.ts';

const LOSSLESS: Record<string, readonly QuantFormat[]> = {
  Q4_0: ['q4', 'q8'],
  Q8_0: ['q8'],
  Q5_0: ['q5', 'q8'],
  Q4_K: ['q4k'],
  Q5_K: ['q5k'],
  Q6_K: ['q6k'],
};

/** Every GPU format `dtype` repacks into losslessly, the most compact first (empty when none does). */
export function losslessFormatsOf(dtype: string): readonly QuantFormat[] {
  return LOSSLESS[dtype] ?? [];
}

/** The most compact GPU format that holds `dtype` losslessly, or undefined. */
export function losslessFormatOf(dtype: string): QuantFormat | undefined {
  return LOSSLESS[dtype]?.[0];
}
