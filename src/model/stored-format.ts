/**
 * Which GPU format a checkpoint tensor is kept in, for any family: a family names its tensor groups and the q4 mode's
 * format per group or per tensor (its quant plan, e.g. src/model/gemma3n/quant-plan.ts); the rules below are the same
 * for every family, so they live here once:
 * - a tensor stored pre-quantized (a GGUF block type, the offline cache) keeps the file's quantization, in the GPU
 *   format that holds it losslessly (src/formats/stored-dtype.ts): Q4_0 → q4, Q8_0 → q8, Q5_0 → q5, Q4_K / Q5_K /
 *   Q6_K → q4k / q5k / q6k, so a Q4_K_M file takes its own size on the GPU; block types with no lossless home
 *   (Q4_1, Q5_1) are dequantized and requantized to q8;
 * - float mode: f16 matrices on shader-f16 adapters, else f32; q4 mode: the plan's format; q8 mode: the plan's
 *   format with q8 wherever it says a narrower quantized format (q4, q5, q4k, q5k, q6k);
 * - the plan's always-f32 groups (norms, scales, coefficients) are f32 in every mode.
 * Also here, the two llama.cpp Q4_K_M rules a family's q4 plan may follow (both depend only on HF tensor names and
 * shapes, which Gemma 3n and Gemma 4 share): the "use more bits" layers, and the K-quant shape fallback.
 */
import { losslessFormatOf } from '../formats/stored-dtype.ts';
import { isQuantFormat, type WeightFormat } from '../formats/weight-format.ts';
import type { WeightMode } from './family.ts';

export type StoredFormat = WeightFormat;

/** What a per-tensor plan needs besides a tensor's name: its shape [rows, cols] and the model's layer count. */
export interface TensorFacts {
  shape: readonly number[];
  layers: number;
}

/** The q4 mode's format of a float-stored tensor: one per group, or chosen per tensor from its facts. */
export type Q4Choice<G extends string> = Readonly<Record<G, StoredFormat>> | ((name: string, group: G, facts: TensorFacts) => StoredFormat);

/** A family's weight plan: the group of each tensor and the q4 mode's format per group (or per tensor). */
export interface WeightPlan<G extends string> {
  groupOf(name: string): G;
  q4: Q4Choice<G>;
  /** Groups kept in f32 whatever the mode (and whatever a GGUF stores them as). */
  alwaysF32: readonly G[];
}

/**
 * llama.cpp's Q4_K_M "use more bits" layers (docs/gemma3n-formats.md §3.4) for v_proj and down_proj (HF names
 * `layers.N.self_attn.v_proj.weight`, `layers.N.mlp.down_proj.weight`): i < L/8, i ≥ 7L/8, (i − L/8) mod 3 = 2.
 */
export function usesMoreBits(name: string, layers: number): boolean {
  const m = /layers\.(\d+)\.(self_attn\.v_proj|mlp\.down_proj)\.weight$/.exec(name);
  if (!m) return false;
  const i = Number(m[1]), e = Math.floor(layers / 8);
  return i < e || i >= Math.floor((7 * layers) / 8) || (i - e) % 3 === 2;
}

/**
 * `format` where a row of `cols` weights is whole 256-weight super-blocks, else the block format llama.cpp falls
 * back to for such rows: Q4_K → Q5_0 (our q5), Q6_K → Q8_0 (q8).
 */
export function kQuantOrFallback(format: 'q4k' | 'q6k', cols: number): StoredFormat {
  if (cols % 256 === 0) return format;
  return format === 'q4k' ? 'q5' : 'q8';
}

/** Stored dtypes the loader reads as floats; any other (a GGUF block type: Q4_0, Q8_0, Q4_K, …) is pre-quantized. */
const FLOAT_DTYPES = new Set(['F32', 'F16', 'BF16']);

/** Format of tensor `name` in `mode` (float-stored). `facts` feed a per-tensor q4 choice. */
export function planFormat<G extends string>(plan: WeightPlan<G>, name: string, mode: WeightMode, f16: boolean, facts: TensorFacts): StoredFormat {
  const group = plan.groupOf(name);
  if (plan.alwaysF32.includes(group)) return 'f32';
  if (mode === 'float') return f16 ? 'f16' : 'f32';
  const q4 = typeof plan.q4 === 'function' ? plan.q4(name, group, facts) : plan.q4[group];
  return mode === 'q8' && isQuantFormat(q4) ? 'q8' : q4;
}

/** Format of a checkpoint tensor stored as `dtype` (undefined: not in the checkpoint; random weights). */
export function planFormatForStored<G extends string>(
  plan: WeightPlan<G>,
  name: string,
  dtype: string | undefined,
  mode: WeightMode,
  f16: boolean,
  facts: TensorFacts,
): StoredFormat {
  if (dtype !== undefined && !FLOAT_DTYPES.has(dtype) && !plan.alwaysF32.includes(plan.groupOf(name))) {
    return losslessFormatOf(dtype) ?? 'q8';
  }
  return planFormat(plan, name, mode, f16, facts);
}
