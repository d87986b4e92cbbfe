/**
 * Reference weights as the GPU holds them: quantized by the CPU definitions of the loader's quantizers (same rules,
 * same plan) then dequantized, or read back from the GPU as the loader converted them (`recordHeldWeights`: exact
 * where the GPU's error-minimising searches and their CPU definitions differ in near-ties).
 */
import { familyOf, formatForStored, type Family, type StoredFormat } from '../../src/model/gemma3n/quant-plan.ts';
import { quantizeCpu } from '../../src/model/cpu-quant.ts';
import { dequantize, type QuantFormat, type WeightFormat } from '../../src/formats/weight-format.ts';
import { dequantizeK, isKFormat } from '../../src/formats/kquant.ts';
import { quantizeK, quantizeQ5 } from './quantize-search.ts';
import { f16BitsToF32 } from '../../src/io/half.ts';
import type { Checkpoint } from '../../src/io/checkpoint.ts';
import type { GpuContext } from '../../src/gpu/device.ts';
import type { ConvertedTensor } from '../../src/model/converted-tensor.ts';
import { loadRefWeights, type RefWeights } from './reference-gemma3n.ts';
import { decodeRow, downloadWeight } from './weights.ts';

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
 * `values` [rows, cols] quantized into `format` by the CPU definition of the loader's quantizer (q4/q8 absmax:
 * src/model/cpu-quant.ts; q5 and the K-quants: the error-minimising searches of ./quantize-search.ts, which the GPU
 * follows up to near-ties) and dequantized back to f32; f32 returns `values`.
 */
export function quantizeHeld(format: WeightFormat, values: Float32Array, rows: number, cols: number): Float32Array {
  if (format === 'f32') return values;
  if (isKFormat(format)) return dequantizeK(format, quantizeK(format, values, rows, cols), rows, cols, f16BitsToF32);
  if (format === 'q5') return dequantize('q5', quantizeQ5(values, rows, cols), rows, cols, f16BitsToF32);
  if (format === 'q4' || format === 'q8') return dequantize(format, quantizeCpu(format, values, rows, cols), rows, cols, f16BitsToF32);
  throw new Error(`quantizeHeld: no CPU quantizer for ${format}`);
}

/** Each 2-D tensor replaced by its value held in `formatOf(name)` (quantizeHeld); 1-D tensors stay. */
export function quantizeRefWeightsBy(w: RefWeights, shapes: Map<string, readonly number[]>, formatOf: (name: string) => WeightFormat): RefWeights {
  const out: RefWeights = new Map();
  for (const [name, values] of w) {
    const shape = shapes.get(name)!;
    out.set(name, shape.length === 2 ? quantizeHeld(formatOf(name), values, shape[0], shape[1]) : values);
  }
  return out;
}

/**
 * Records, through a load's `onConverted`, every quantized or float matrix and the PLE table as the GPU (or the host
 * table) holds them, dequantized to f32; `overlay(w)` puts them over reference weights `w` (the 1-D tensors stay).
 */
export function recordHeldWeights(ctx: GpuContext): { onConverted: (t: ConvertedTensor) => Promise<void>; held: Map<string, Float32Array>; overlay: (w: RefWeights) => RefWeights } {
  const held = new Map<string, Float32Array>();
  const onConverted = async (t: ConvertedTensor) => {
    if (t.kind === 'gpu') {
      const hw = await downloadWeight(ctx, t.weight);
      const [rows, cols] = t.shape;
      const out = new Float32Array(rows * cols), row = new Float64Array(cols);
      for (let r = 0; r < rows; r++) out.set(decodeRow(hw, r, row), r * cols);
      held.set(t.name, out);
    } else if (t.kind === 'ple' && t.blocks[0]?.format !== 'f16') {
      // Host rows in blocks (src/model/ple-table.ts), each a packed table of its own.
      const parts = t.blocks.map((b) => dequantize(b.format as QuantFormat, { data: new Uint32Array(b.data.buffer, b.data.byteOffset, b.data.byteLength / 4), scales: b.scales! }, b.rows, b.cols, f16BitsToF32));
      const all = new Float32Array(parts.reduce((s, p) => s + p.length, 0));
      let at = 0;
      for (const p of parts) {
        all.set(p, at);
        at += p.length;
      }
      held.set(t.name, all);
    }
  };
  const overlay = (w: RefWeights): RefWeights => {
    const out: RefWeights = new Map(w);
    for (const [name, values] of held) out.set(name, values);
    return out;
  };
  return { onConverted, held, overlay };
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
    const format = formatForStored(name, info.dtype, 'float', false, { shape: info.shape, layers: 0 });
    if ((format === 'q4' || format === 'q8') && info.shape.length === 2 && !(await ckpt.readPackedAs?.(name, format))) {
      const [rows, cols] = info.shape;
      w.set(name, dequantize(format, quantizeCpu(format, values, rows, cols), rows, cols, f16BitsToF32));
    }
  }
  return w;
}
