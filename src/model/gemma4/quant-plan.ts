/**
 * Which format each Gemma 4 tensor is stored in, per weight mode (the rules shared by every family are in
 * src/model/stored-format.ts). Groups (HF names under model.language_model.):
 * - embed:    embed_tokens (input embedding and tied LM head)
 * - pleTable: embed_tokens_per_layer (kept off the GPU, in CPU memory, as quantized rows)
 * - attn:     q/k/v/o_proj                    - mlp: gate/up/down_proj
 * - pleProj:  per_layer_model_projection, per_layer_input_gate, per_layer_projection
 * - small:    norms and layer_scalar: always f32.
 *
 * The q4 plan follows Gemma 3n's rule — measure each group's sensitivity, keep the sensitive groups that are a small
 * share of the bytes in int8, put the bulk in int4 — measured on Gemma 4 (`bench/q4-families.ts --family gemma4`:
 * float64 CPU reference on per-group quantized weights, gemma4-tiny-a, the 73 golden positions, top-1 agreement /
 * mean KL(golden ‖ ours)):
 *   all f32 except one group in q8: embed 0.890 / 0.073 · q,k_proj 0.945 / 0.046 · mlp 0.945 / 0.014 ·
 *     pleTable 0.986 / 0.003.
 *   all q8 0.877 / 0.136;  all q4 0.110 / 7.66.  From all-q8, putting ONE group in q4:
 *     embed 0.123 / 5.72 · attn 0.151 / 5.59 (q,k 0.192 / 4.56; v,o 0.342 / 2.98) · mlp 0.438 / 2.59 ·
 *     pleProj 0.397 / 2.02 · pleTable 0.603 / 0.75.
 *   Gemma 3n's plan (attn also q4): 0.164 / 6.46.  THIS plan (mlp, pleTable q4; the rest q8): 0.329 / 3.09.
 * The fixture is far more sensitive to weight noise than Gemma 3n's (even all-int8 flips 12 % of argmaxes): its
 * attention is unscaled with q/k norm weights around 1, so softmax is sharp, and 8 random layers amplify noise.
 * What carries over is the ranking: the tied embedding (input and LM head) and attention are the sensitive groups,
 * and unlike in Gemma 3n attention is far more sensitive than the MLP. Attention is also a small share of the
 * bytes (E2B: 0.28 B of the 1.8 B attention + MLP parameters; int8 costs +139 MB of GPU memory over int4, E4B
 * +294 MB): int8. The MLP is the bulk (E2B: 1.54 B parameters with the double-wide shared layers): int4, that is
 * the point of q4 mode. The PLE projections are small and sensitive: int8. The PLE table lives in host memory and
 * is the least sensitive group: int4 (halves host memory: E2B 1.3 GB instead of 2.5 GB).
 */
import type { WeightMode } from '../family.ts';
import { planFormat, planFormatForStored, type StoredFormat, type TensorFacts, type WeightPlan } from '../stored-format.ts';

export type Group = 'embed' | 'pleTable' | 'attn' | 'mlp' | 'pleProj' | 'small';

export function groupOf(name: string): Group {
  if (name.endsWith('embed_tokens.weight')) return 'embed';
  if (name.endsWith('embed_tokens_per_layer.weight')) return 'pleTable';
  if (/self_attn\.(q|k|v|o)_proj\.weight$/.test(name)) return 'attn';
  if (/mlp\.(gate|up|down)_proj\.weight$/.test(name)) return 'mlp';
  if (/per_layer_model_projection\.weight$|per_layer_input_gate\.weight$|per_layer_projection\.weight$/.test(name)) return 'pleProj';
  return 'small';
}

/** The q4 mode's choice per group (see the header). */
export const Q4_PLAN: Record<Group, StoredFormat> = {
  embed: 'q8',
  pleTable: 'q4',
  attn: 'q8',
  mlp: 'q4',
  pleProj: 'q8',
  small: 'f32',
};

export function weightPlan(q4: Record<Group, StoredFormat> = Q4_PLAN): WeightPlan<Group> {
  return { groupOf, q4, alwaysF32: ['small'] };
}

/**
 * Format of a checkpoint tensor stored as `dtype` (a GGUF's pre-quantized tensors keep their quantization, K-quants
 * included, in the GPU format that holds them losslessly). `facts`: the tensor's shape and the layer count.
 */
export function formatForStored(name: string, dtype: string | undefined, mode: WeightMode, f16: boolean, facts: TensorFacts, q4: Record<Group, StoredFormat> = Q4_PLAN): StoredFormat {
  return planFormatForStored(weightPlan(q4), name, dtype, mode, f16, facts);
}

/** Format of a tensor in a mode. */
export function formatFor(name: string, mode: WeightMode, f16: boolean, facts: TensorFacts, q4: Record<Group, StoredFormat> = Q4_PLAN): StoredFormat {
  return planFormat(weightPlan(q4), name, mode, f16, facts);
}
