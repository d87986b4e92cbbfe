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
 * The q4 mode quantizes float checkpoints on load (on the GPU) into llama.cpp's Q4_K_M mix, including the fallback
 * llama.cpp itself takes for rows that are not whole 256-weight super-blocks:
 * - attn / mlp: q4k (K-quant 4-bit with 6-bit sub-block scales and mins, error-minimising search: 4.5 bits/weight);
 *   v_proj and down_proj of the "use more bits" layers (i < L/8, i ≥ 7L/8, (i − L/8) mod 3 = 2) q6k (6.56);
 * - embed (input embedding and tied LM head): q6k;
 * - rows not a multiple of 256 (the tiny test checkpoints; none in E2B/E4B): q5 for q4k (as Q4_K → Q5_0) and q8 for
 *   q6k (as Q6_K → Q8_0);
 * - altup / laurel / pleProj: q8 (llama.cpp keeps them bf16; they are 3 % of E2B);
 * - pleTable: q4 (absmax, on the CPU; host memory, not GPU; llama.cpp: Q6_K).
 * Measured (bench/int4-plans.ts: float64 reference on the CPU-quantized weights, gemma3n-tiny-a, all 73 golden
 * positions, mean KL(golden ‖ ours) / top-1 / bits per weight over every text-decoder tensor):
 *   llama.cpp's Q4_K_M file (weights only) 0.343 / 0.699 / 7.31;  this plan 0.300 / 0.630 / 6.57;
 *   the same with the PLE table q6k/q8 0.321 / 6.93, without the more-bits layers 0.332 / 6.75, altup/laurel/pleProj
 *   in f16 0.302 / 7.45; the q5 fallback searching with w²-weighted error instead 0.361; q5k instead of q5 (one
 *   16-byte K-quant header per 64-weight row here) 0.265 / 8.10, over the bit budget;
 *   the plan before (q4 absmax attn/mlp/PLE, q8 rest) 0.700 / 0.521 / 5.70, the same with q4k 0.720 / 6.58.
 * Load-time cost (bench:kernels, SwiftShader): the searches run 3-4x q4's absmax quantizer (q4k 0.6-0.8, q6k 0.75,
 * q5 0.8 vs q4 2.2-2.5 M weights/s on a loaded 2-core machine); on a GPU either is far below download time.
 * On these random tiny checkpoints (hypersensitive: even all-q8 flips 8 % of argmaxes) 4-bit attention/MLP alone
 * stays near KL 0.70 whatever the scheme; Q4_K_M's quality here comes from its 5-bit fallback, which this plan
 * mirrors. On E2B every row is whole super-blocks: 4.5-bit q4k as Q4_K_M.
 * Earlier measurement (bench/q4-families.ts, from all-q8 putting ONE family in q4): embed 1.22 · altup 0.76 ·
 * mlp 0.65 · attn 0.50 · laurel 0.31 · pleProj 0.066 · pleTable 0.026: the tied embedding is the most sensitive.
 */
import type { WeightMode } from '../family.ts';
import { kQuantOrFallback, planFormat, planFormatForStored, usesMoreBits, type StoredFormat, type TensorFacts, type WeightPlan } from '../stored-format.ts';

export type { StoredFormat, TensorFacts };
export type Family = 'embed' | 'pleTable' | 'attn' | 'mlp' | 'altup' | 'laurel' | 'pleProj' | 'embedders' | 'small';

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

/** The q4 mode's format of a float-stored matrix (see the header). */
export function q4Format(name: string, family: Family, facts: TensorFacts): StoredFormat {
  const cols = facts.shape[1] ?? 0;
  switch (family) {
    case 'pleTable':
      return 'q4';
    case 'embed':
      return kQuantOrFallback('q6k', cols);
    case 'attn':
    case 'mlp':
      return kQuantOrFallback(usesMoreBits(name, facts.layers) ? 'q6k' : 'q4k', cols);
    case 'altup':
    case 'laurel':
    case 'pleProj':
      return 'q8';
    default:
      return 'f32';
  }
}

const PLAN: WeightPlan<Family> = { groupOf: familyOf, q4: q4Format, alwaysF32: ['small', 'embedders'] };

/**
 * Format of a checkpoint tensor stored as `dtype` (src/model/stored-format.ts): a pre-quantized tensor (GGUF, the
 * offline cache) keeps its file's quantization in the GPU format that holds it losslessly, so a Q4_K_M file takes
 * its own size on the GPU; float-stored tensors follow the mode's plan.
 */
export function formatForStored(name: string, dtype: string | undefined, mode: WeightMode, f16: boolean, facts: TensorFacts): StoredFormat {
  return planFormatForStored(PLAN, name, dtype, mode, f16, facts);
}

/** Format of a tensor in a mode. Float mode: f16 matrices on shader-f16 adapters, else f32; small tensors f32. */
export function formatFor(name: string, mode: WeightMode, f16: boolean, facts: TensorFacts): StoredFormat {
  return planFormat(PLAN, name, mode, f16, facts);
}
