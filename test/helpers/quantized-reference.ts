/** Reference weights quantized exactly as the GPU loader quantizes them (same rules, same plan), then dequantized. */
import { familyOf, type Family, type StoredFormat } from '../../src/model/gemma3n/quant-plan.ts';
import { quantizeCpu } from '../../src/model/cpu-quant.ts';
import { dequantize } from '../../src/formats/weight-format.ts';
import { f16BitsToF32 } from '../../src/io/half.ts';
import type { RefWeights } from './reference-gemma3n.ts';

/**
 * Each 2-D tensor whose family the plan puts in q4/q8 is replaced by its dequantized value. `hiddenSize`: the
 * loader folds 1/D into the AltUp router before quantizing; undo it identically here.
 */
export function quantizeRefWeights(w: RefWeights, shapes: Map<string, number[]>, plan: Partial<Record<Family, StoredFormat>>, hiddenSize?: number): RefWeights {
  const out: RefWeights = new Map();
  for (const [name, values] of w) {
    const fmt = plan[familyOf(name)];
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
