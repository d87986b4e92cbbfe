/**
 * Which GPU format a checkpoint tensor is kept in, for any family: a family names its tensor groups and the q4 mode's
 * format per group (its quant plan, e.g. src/model/gemma3n/quant-plan.ts); the rules below are the same for every
 * family, so they live here once:
 * - a tensor stored pre-quantized (a GGUF block type) keeps the file's choice, as src/io/gguf-types.ts `gpuFormatFor`
 *   maps it: Q4_0 → q4 (repacked losslessly), Q8_0 → q8 (lossless), any other block type (K-quants, Q5_0, …) →
 *   dequantized and requantized to q8;
 * - float mode: f16 matrices on shader-f16 adapters, else f32; q4 mode: the plan's format; q8 mode: the plan's
 *   format with q8 wherever it says q4;
 * - the plan's always-f32 groups (norms, scales, coefficients) are f32 in every mode.
 */
import { gpuFormatFor } from '../io/gguf-types.ts';
import type { WeightMode } from './family.ts';

export type StoredFormat = 'f32' | 'f16' | 'q4' | 'q8';

/** A family's weight plan: the group of each tensor and the q4 mode's format per group. */
export interface WeightPlan<G extends string> {
  groupOf(name: string): G;
  q4: Record<G, StoredFormat>;
  /** Groups kept in f32 whatever the mode (and whatever a GGUF stores them as). */
  alwaysF32: readonly G[];
}

/** Stored dtypes the loader reads as floats; any other (a GGUF block type: Q4_0, Q8_0, Q4_K, …) is pre-quantized. */
const FLOAT_DTYPES = new Set(['F32', 'F16', 'BF16']);

/** Format of tensor `name` in `mode` (float-stored). */
export function planFormat<G extends string>(plan: WeightPlan<G>, name: string, mode: WeightMode, f16: boolean): StoredFormat {
  const group = plan.groupOf(name);
  if (plan.alwaysF32.includes(group)) return 'f32';
  if (mode === 'float') return f16 ? 'f16' : 'f32';
  const q4 = plan.q4[group];
  return mode === 'q8' && q4 === 'q4' ? 'q8' : q4;
}

/** Format of a checkpoint tensor stored as `dtype` (undefined: not in the checkpoint; random weights). */
export function planFormatForStored<G extends string>(plan: WeightPlan<G>, name: string, dtype: string | undefined, mode: WeightMode, f16: boolean): StoredFormat {
  if (dtype !== undefined && !FLOAT_DTYPES.has(dtype) && !plan.alwaysF32.includes(plan.groupOf(name))) {
    return gpuFormatFor(dtype) === 'q4' ? 'q4' : 'q8';
  }
  return planFormat(plan, name, mode, f16);
}
