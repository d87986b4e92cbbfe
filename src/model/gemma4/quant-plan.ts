/**
 * Which format each Gemma 4 tensor is stored in, per weight mode (the rules shared by every family are in
 * src/model/stored-format.ts). Groups (HF names under model.language_model.):
 * - embed:    embed_tokens (input embedding and tied LM head)
 * - pleTable: embed_tokens_per_layer (kept off the GPU, in CPU memory, as quantized rows)
 * - attn:     q/k/v/o_proj                    - mlp: gate/up/down_proj
 * - pleProj:  per_layer_model_projection, per_layer_input_gate, per_layer_projection
 * - small:    norms and layer_scalar: always f32.
 *
 * The q4 plan is Gemma 3n's, measured again on Gemma 4 (bench/gemma4-q4-plan.ts: float64 CPU reference on
 * per-group quantized weights, gemma4-tiny-a, the 73 golden positions, top-1 agreement / mean KL(golden ‖ ours)):
 *   MEASURE
 * As in Gemma 3n the tied embedding is the most sensitive group (it is both the input and the LM head): int8. The
 * PLE projections are small (E2B: 35 × (2 × 1536 × 256) + 8960 × 1536 ≈ 41 M params) and cheap in int8. MLP and
 * attention are most of the layer bytes: int4. The PLE table lives in host memory; int4 costs it almost nothing
 * (MEASURE) and halves host memory. The random tiny checkpoint is far more sensitive
 * to weight noise than a trained model.
 */
import type { WeightMode } from '../family.ts';
import { planFormat, planFormatForStored, type StoredFormat, type WeightPlan } from '../stored-format.ts';

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
  attn: 'q4',
  mlp: 'q4',
  pleProj: 'q8',
  small: 'f32',
};

export function weightPlan(q4: Record<Group, StoredFormat> = Q4_PLAN): WeightPlan<Group> {
  return { groupOf, q4, alwaysF32: ['small'] };
}

/** Format of a checkpoint tensor stored as `dtype` (a GGUF's pre-quantized tensors keep their quantization). */
export function formatForStored(name: string, dtype: string | undefined, mode: WeightMode, f16: boolean, q4: Record<Group, StoredFormat> = Q4_PLAN): StoredFormat {
  return planFormatForStored(weightPlan(q4), name, dtype, mode, f16);
}

/** Format of a tensor in a mode. */
export function formatFor(name: string, mode: WeightMode, f16: boolean, q4: Record<Group, StoredFormat> = Q4_PLAN): StoredFormat {
  return planFormat(weightPlan(q4), name, mode, f16);
}
