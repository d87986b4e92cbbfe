/**
 * CPU quantization into the GPU q4/q8 layouts (src/formats/weight-format.ts; family-neutral), with the same scale
 * rules as the GPU quantizer (shaders/quantize.wgsl: q4 = llama.cpp Q4_0's d = m / −8 with m the element of largest |w|; q8 = Q8_0's
 * d = absmax / 127; d rounded to f16 first, q = round-half-even(w / d)). Used for what stays off the GPU (the PLE
 * table, kept in CPU memory as quantized rows) and by tests, to run the float reference on exactly the weights the
 * GPU sees.
 */
import { f16BitsToF32, f32ToF16Bits } from '../io/half.ts';
import { GROUP, groupsPerRow, packQ4, packQ8, type PackedWeight } from '../formats/weight-format.ts';

function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/** Quantizes a row-major [rows, cols] f32 matrix (group 32 along cols). */
export function quantizeCpu(format: 'q4' | 'q8', w: Float32Array, rows: number, cols: number): PackedWeight {
  const G = groupsPerRow(cols);
  const scales = new Uint16Array(rows * G);
  const q = new Int32Array(rows * cols);
  const [qmin, qmax] = format === 'q4' ? [-8, 7] : [-127, 127];
  for (let r = 0; r < rows; r++) {
    for (let g = 0; g < G; g++) {
      const c0 = g * GROUP, c1 = Math.min(cols, c0 + GROUP);
      let m = 0;
      for (let c = c0; c < c1; c++) {
        const v = w[r * cols + c];
        if (Math.abs(v) > Math.abs(m)) m = v;
      }
      const dBits = f32ToF16Bits(format === 'q4' ? m / -8 : Math.abs(m) / 127);
      scales[r * G + g] = dBits;
      const d = f16BitsToF32(dBits);
      for (let c = c0; c < c1; c++) {
        const v = d === 0 ? 0 : roundHalfEven(w[r * cols + c] / d);
        q[r * cols + c] = Math.min(qmax, Math.max(qmin, v));
      }
    }
  }
  if (format === 'q4') {
    for (let i = 0; i < q.length; i++) q[i] += 8;
    return packQ4(q, scales, rows, cols);
  }
  return packQ8(q, scales, rows, cols);
}
