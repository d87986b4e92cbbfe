/**
 * Which format each Gemma 3n tensor is stored in, per weight mode. One concept: the tensor → family → format map.
 *
 * Families (HF names under model.language_model. unless noted):
 * - embed:     embed_tokens (input embedding and tied LM head)
 * - pleTable:  embed_tokens_per_layer (kept off the GPU, in CPU memory, as quantized rows)
 * - attn:      q/k/v/o_proj                     - mlp:     gate/up/down_proj
 * - altup:     altup_projections, altup_unembed_projections, altup.modality_router
 * - laurel:    laurel.linear_left/right         - pleProj: per_layer_model_projection, per_layer_input_gate,
 *                                                            per_layer_projection
 * - embedders: model.embed_vision/embed_audio.* (hard-token rows are precomputed in f32 at load)
 * - small:     norms, correct_output_scale, the 4×4 and 16×4 AltUp coefficient matrices: always f32 (tiny, and
 *              §2.11 wants AltUp coefficient math in f32).
 *
 * The q4 plan was chosen by measurement (bench/q4-families.ts: float64 reference on per-family quantized weights,
 * gemma3n-tiny-a, 73 golden positions, top-1 / mean KL(golden‖ours)):
 *   all q8 0.918 / 0.018;  all q4 0.356 / 2.01.  From all-q8, putting ONE family in q4:
 *   embed 0.438 / 1.22 · altup 0.507 / 0.76 · mlp 0.603 / 0.65 · attn 0.671 / 0.50 · laurel 0.712 / 0.31 ·
 *   pleProj 0.808 / 0.066 · pleTable 0.863 / 0.026.
 * The tied embedding is by far the most sensitive (it is both the input and the LM head), then AltUp's
 * projections: both stay int8. LAuReL and the PLE projections are small (≈ 55 M params in E2B) and cheap in int8.
 * MLP and attention are 90 % of E2B's layer bytes: int4 (that is the point of q4 mode). The PLE table lives in
 * CPU memory, not on the GPU; int4 costs it only +0.009 KL and halves host memory (E2B: 1.1 GB instead of 2.1 GB),
 * which a browser tab needs. Result of this plan: top-1 0.521 / KL 0.700, the same as llama.cpp's own Q4_0 file
 * on this fixture (0.521 / 0.723, fixtures/gguf-gemma3n-tiny-a/README.md §5.5). These random tiny checkpoints are
 * far more sensitive to weight noise than a trained model (even all-int8 flips 8 % of argmaxes).
 */
import { losslessFormatOf } from '../../formats/stored-dtype.ts';
import type { WeightFormat } from '../../formats/weight-format.ts';

export type Family = 'embed' | 'pleTable' | 'attn' | 'mlp' | 'altup' | 'laurel' | 'pleProj' | 'embedders' | 'small';
export type StoredFormat = WeightFormat;
export type WeightMode = 'float' | 'q4';

export function familyOf(name: string): Family {
  if (name.startsWith('model.embed_vision.') || name.startsWith('model.embed_audio.')) return name.endsWith('_norm.weight') ? 'small' : 'embedders';
  if (name.endsWith('embed_tokens.weight')) return 'embed';
  if (name.endsWith('embed_tokens_per_layer.weight')) return 'pleTable';
  if (/self_attn\.(q|k|v|o)_proj\.weight$/.test(name)) return 'attn';
  if (/mlp\.(gate|up|down)_proj\.weight$/.test(name)) return 'mlp';
  if (/altup_(unembed_)?projections\.\d+\.weight$/.test(name) || name.endsWith('altup.modality_router.weight')) return 'altup';
  if (/laurel\.linear_(left|right)\.weight$/.test(name)) return 'laurel';
  if (/per_layer_model_projection\.weight$|per_layer_input_gate\.weight$|per_layer_projection\.weight$/.test(name)) return 'pleProj';
  return 'small';
}

/** The q4 mode's choice per family (see the header). */
export const Q4_PLAN: Record<Family, StoredFormat> = {
  embed: 'q8',
  pleTable: 'q4',
  attn: 'q4',
  mlp: 'q4',
  altup: 'q8',
  laurel: 'q8',
  pleProj: 'q8',
  embedders: 'f32',
  small: 'f32',
};

/** Stored dtypes the loader reads as floats; any other (a GGUF block type: Q4_0, Q8_0, Q4_K, …) is pre-quantized. */
const FLOAT_DTYPES = new Set(['F32', 'F16', 'BF16']);

/**
 * Format of a checkpoint tensor stored as `dtype`. A pre-quantized tensor (GGUF, the offline cache) keeps its
 * file's quantization, in the GPU format that holds it losslessly (src/formats/stored-dtype.ts): Q4_0 → q4,
 * Q8_0 / Q5_0 → q8, Q4_K / Q5_K / Q6_K → q4k / q5k / q6k, so a Q4_K_M file takes its own size on the GPU. Block types
 * with no lossless home (Q4_1, Q5_1) are dequantized and requantized to q8. Float-stored tensors follow the mode's
 * plan.
 */
export function formatForStored(name: string, dtype: string | undefined, mode: WeightMode, f16: boolean, plan: Record<Family, StoredFormat> = Q4_PLAN): StoredFormat {
  const family = familyOf(name);
  if (dtype !== undefined && !FLOAT_DTYPES.has(dtype) && family !== 'small' && family !== 'embedders') {
    return losslessFormatOf(dtype) ?? 'q8';
  }
  return formatFor(name, mode, f16, plan);
}

/** Format of a tensor in a mode. Float mode: f16 matrices on shader-f16 adapters, else f32; small tensors f32. */
export function formatFor(name: string, mode: WeightMode, f16: boolean, plan: Record<Family, StoredFormat> = Q4_PLAN): StoredFormat {
  const family = familyOf(name);
  if (family === 'small' || family === 'embedders') return 'f32';
  if (mode === 'float') return f16 ? 'f16' : 'f32';
  return plan[family];
}
