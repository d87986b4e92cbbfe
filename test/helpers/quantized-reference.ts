/** Reference weights quantized exactly as the GPU loader quantizes them (same rules, same plan), then dequantized. */
import { familyOf, formatForStored, type Family, type StoredFormat } from '../../src/model/gemma3n/quant-plan.ts';
import { quantizeCpu } from '../../src/model/cpu-quant.ts';
import { dequantize } from '../../src/formats/weight-format.ts';
import { f16BitsToF32 } from '../../src/io/half.ts';
import type { Checkpoint } from '../../src/io/checkpoint.ts';
import { loadRefWeights, type RefWeights } from './reference-gemma3n.ts';

/**
 * Each 2-D tensor whose family the plan puts in q4/q8 is replaced by its dequantized value. `hiddenSize`: the
 * loader folds 1/D into the AltUp router before quantizing; undo it identically here. `groupOf`: the family's tensor
 * groups (default Gemma 3n's; Gemma 4 passes src/model/gemma4/quant-plan.ts `groupOf`).
 */
export function quantizeRefWeights<G extends string = Family>(
  w: RefWeights,
  shapes: Map<string, number[]>,
  plan: Partial<Record<G, StoredFormat>>,
  hiddenSize?: number,
  groupOf: (name: string) => G = familyOf as (name: string) => G,
): RefWeights {
  const out: RefWeights = new Map();
  for (const [name, values] of w) {
    const fmt = plan[groupOf(name)];
    const shape = shapes.get(name)!;
    if ((fmt === 'q4' || fmt === 'q8') && shape.length === 2) {
      const [rows, cols] = shape;
      const fold = hiddenSize !== undefined && name.endsWith('altup.modality_router.weight') ? hiddenSize : 1;
      const v = fold === 1 ? values : values.map((x) => x / fold);
      const dq = dequantize(fmt, quantizeCpu(fmt, v, rows, cols), rows, cols, f16BitsToF32);
      out.set(name, fold === 1 ? dq : dq.map((x) => x * fold));
    } else out.set(name, values);
  }
  return out;
}

/**
 * The weights the GPU holds for a checkpoint loaded in float mode, as f32: a pre-quantized tensor (GGUF) keeps its
 * file's values when it repacks losslessly (readPackedAs), else its dequantized values are requantized to q8 by the
 * same CPU quantizer the loader uses; float tensors stay as they are.
 */
export async function gpuEquivalentWeights(ckpt: Checkpoint): Promise<RefWeights> {
  const w = await loadRefWeights(ckpt);
  for (const [name, values] of w) {
    const info = ckpt.tensor(name)!;
    const format = formatForStored(name, info.dtype, 'float', false);
    if ((format === 'q4' || format === 'q8') && info.shape.length === 2 && !(await ckpt.readPackedAs?.(name, format))) {
      const [rows, cols] = info.shape;
      w.set(name, dequantize(format, quantizeCpu(format, values, rows, cols), rows, cols, f16BitsToF32));
    }
  }
  return w;
}
