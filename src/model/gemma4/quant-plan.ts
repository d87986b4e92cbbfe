/**
 * Which format each Gemma 4 tensor is stored in, per weight mode (the rules shared by every family, llama.cpp's
 * "use more bits" layers and K-quant shape fallback included, are in src/model/stored-format.ts). Groups (HF names
 * under model.language_model.):
 * - embed:    embed_tokens (input embedding and tied LM head)
 * - pleTable: embed_tokens_per_layer (kept off the GPU, in CPU memory, as quantized rows: ple-table.ts)
 * - attn:     q/k/v/o_proj                    - mlp: gate/up/down_proj
 * - pleProj:  per_layer_model_projection, per_layer_input_gate, per_layer_projection
 * - small:    norms and layer_scalar: always f32.
 *
 * The q4 mode quantizes float checkpoints on load (on the GPU) into llama.cpp's Q4_K_M mix, except attention:
 * - mlp: q4k (4.5 bits/weight, error-minimising scale/min search); down_proj of the "use more bits" layers q6k
 *   (6.56); rows not whole 256-weight super-blocks (the tiny fixture; none in E2B/E4B) fall back as llama.cpp does:
 *   q4k → q5, q6k → q8;
 * - embed (input embedding and tied LM head): q6k (→ q8);
 * - attn: q8 — Q4_K_M's q4k/q6k attention doubles the fixture's KL (below); it is 0.28 B of E2B's parameters;
 * - pleProj: q8 (llama.cpp keeps per_layer_model_projection bf16 and puts the per-layer gate/projection in Q4_K;
 *   that measures worse here);
 * - pleTable: q4 (absmax, host memory; ple-table.ts `pleHostFormat`).
 * Measured (`bench/q4-families.ts --family gemma4 --plans-only`: float64 CPU reference on the CPU-quantized weights,
 * the GPU quantizers' definitions; gemma4-tiny-a, the 73 golden positions; mean KL(golden ‖ ours) / top-1 / bits
 * per weight over every text-decoder tensor, 1-D in f32, host PLE table included / GPU GB at real E2B / E4B size,
 * 4,096-token context, src/model/gemma4/memory-estimate.ts's count). The fixture's rows (96 … 384 weights) are not
 * whole super-blocks, so each K-quant plan is measured twice: with llama.cpp's fallback (what a load of the fixture
 * does: q5 = 5.5 bits, q8) and with the K-quant formats themselves, super-blocks run across the short rows (every
 * 32 / 16-weight sub-block still inside one row; the bits E2B/E4B pay):
 *                                                     fallback                 K-quants across rows    E2B / E4B GB
 *   the absmax plan before (mlp, PLE q4; rest q8)     3.092 / 0.329 / 5.672                            1.797 / 3.556
 *   the same with mlp q4k                             1.559 / 0.411 / 6.320    2.475 / 0.315 / 5.672   1.797 / 3.556
 *   Q4_K_M mirror (attn q4k, more-bits v q6k too)     2.906 / 0.370 / 6.221    6.102 / 0.137 / 5.231   1.627 / 3.245
 *     … pleProj as llama.cpp (gate/proj q4k)          2.890 / 0.315 / 6.095    5.925 / 0.123 / 5.036   1.613 / 3.218
 *     … no more-bits layers                           3.316 / 0.315 / 5.870    6.067 / 0.123 / 4.982   1.560 / 3.100
 *     … q,k_proj q8                                   1.903 / 0.329 / 6.446    3.250 / 0.247 / 5.531   1.696 / 3.392
 *   THIS plan (mirror, attn q8)                       1.319 / 0.479 / 6.644    2.230 / 0.438 / 5.811   1.765 / 3.535
 *     … no more-bits layers                           1.559 / 0.411 / 6.320    2.488 / 0.342 / 5.582   1.699 / 3.393
 *     … pleProj as llama.cpp                          1.774 / 0.452 / 6.518    2.978 / 0.411 / 5.616   1.751 / 3.508
 *     … embed q8                                      1.319 / 0.479 / 6.644    2.152 / 0.438 / 5.901   1.863 / 3.698
 * Why this plan: at the bits E2B/E4B pay it cuts the fixture's KL from 3.09 to 2.23 and GPU memory by 32 / 21 MB
 * (the 6.56-bit embedding saves more than the more-bits down projections cost). Its fixture bits per weight (5.81
 * vs 5.67) are higher only because the fixture's embedding (512 rows) is a far smaller share of its weights than
 * E2B's (262,144 rows, a fifth of the GPU weights), so there the more-bits layers outweigh the embedding's saving.
 * Without the more-bits layers it would be smaller everywhere (5.58 bits, 1.699 / 3.393 GB) at KL 2.49; llama.cpp's
 * rule buys 0.26 of KL for 66 / 142 MB. Attention stays q8: this fixture's attention is unscaled with q/k norm
 * weights around 1 (sharp softmax), and every 4-bit attention variant measured, absmax or K-quant, at least doubles
 * the KL. On the fixture a load runs the fallback column (q5 MLP): on the GPU 1.318 / 0.479
 * (test/model/gemma4-quantized.test.ts). This plan's E2B / E4B bytes are also measured by a real-size load
 * (`npm run bench:memory -- --family gemma4`, = the count to the byte). Load-time cost: the searches run 3-4x the
 * absmax quantizer (src/model/gemma3n/quant-plan.ts has the figures); on a GPU far below download time.
 * The fixture is far more sensitive to weight noise than Gemma 3n's (all int8 flips 12 % of argmaxes). Per group
 * (absmax q4/q8, top-1 / mean KL; `bench/q4-families.ts --family gemma4` without --plans-only): all q8 0.877 /
 * 0.136, all q4 0.110 / 7.66; from all-q8 putting ONE group in q4: embed 0.123 / 5.72 · attn 0.151 / 5.59 (q,k
 * 0.192 / 4.56; v,o 0.342 / 2.98) · mlp 0.438 / 2.59 · pleProj 0.397 / 2.02 · pleTable 0.603 / 0.75.
 */
import type { WeightMode } from '../family.ts';
import { kQuantOrFallback, planFormat, planFormatForStored, usesMoreBits, type StoredFormat, type TensorFacts, type WeightPlan } from '../stored-format.ts';

export type Group = 'embed' | 'pleTable' | 'attn' | 'mlp' | 'pleProj' | 'small';

export function groupOf(name: string): Group {
  if (name.endsWith('embed_tokens.weight')) return 'embed';
  if (name.endsWith('embed_tokens_per_layer.weight')) return 'pleTable';
  if (/self_attn\.(q|k|v|o)_proj\.weight$/.test(name)) return 'attn';
  if (/mlp\.(gate|up|down)_proj\.weight$/.test(name)) return 'mlp';
  if (/per_layer_model_projection\.weight$|per_layer_input_gate\.weight$|per_layer_projection\.weight$/.test(name)) return 'pleProj';
  return 'small';
}

/** The q4 mode's format of a float-stored matrix (see the header). */
export function q4Format(name: string, group: Group, facts: TensorFacts): StoredFormat {
  const cols = facts.shape[1] ?? 0;
  switch (group) {
    case 'embed':
      return kQuantOrFallback('q6k', cols);
    case 'mlp':
      return kQuantOrFallback(usesMoreBits(name, facts.layers) ? 'q6k' : 'q4k', cols);
    case 'pleTable':
      return 'q4';
    case 'attn':
    case 'pleProj':
      return 'q8';
    default:
      return 'f32';
  }
}

const PLAN: WeightPlan<Group> = { groupOf, q4: q4Format, alwaysF32: ['small'] };

/**
 * Format of a checkpoint tensor stored as `dtype` (a GGUF's pre-quantized tensors keep their quantization, K-quants
 * included, in the GPU format that holds them losslessly). `facts`: the tensor's shape and the layer count.
 */
export function formatForStored(name: string, dtype: string | undefined, mode: WeightMode, f16: boolean, facts: TensorFacts): StoredFormat {
  return planFormatForStored(PLAN, name, dtype, mode, f16, facts);
}

/** Format of a tensor in a mode. */
export function formatFor(name: string, mode: WeightMode, f16: boolean, facts: TensorFacts): StoredFormat {
  return planFormat(PLAN, name, mode, f16, facts);
}
