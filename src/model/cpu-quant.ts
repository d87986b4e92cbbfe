/**
 * CPU quantization into the GPU q4/q8 layouts (src/formats/weight-format.ts; family-neutral), with the same scale
 * rules as the GPU quantizer (shaders/quantize.wgsl: q4 = llama.cpp Q4_0's d = m / −8 with m the element of largest |w|; q8 = Q8_0's
 * d = absmax / 127; d rounded to f16 first, q = round-half-even(w / d)). Used for what stays off the GPU (the PLE
 * table, kept in CPU memory as quantized rows) and by tests, to run the float reference on exactly the weights the
 * GPU sees.
 */
import { f16BitsToF32, f32ToF16Bits } from '../io/half.ts';
import { GROUP, groupsPerRow, type PackedWeight } from '../formats/weight-format.ts';

// f16 bit pattern → value, for the scales (a multi-GB table has tens of millions of groups).
let f16Values: Float32Array | undefined;
function f16Value(bits: number): number {
  if (!f16Values) {
    f16Values = new Float32Array(65536);
    for (let h = 0; h < 65536; h++) f16Values[h] = f16BitsToF32(h);
  }
  return f16Values[bits];
}

/**
 * Quantizes a row-major [rows, cols] f32 matrix (group 32 along cols), straight into the packed layout. Written for
 * speed (E2B's PLE table is 2 billion values, quantized here at load): one pass per group, no intermediate arrays;
 * the arithmetic is the definition's (test/model/cpu-quant.test.ts holds it to test/helpers/quantize-ref.ts).
 */
export function quantizeCpu(format: 'q4' | 'q8', w: Float32Array, rows: number, cols: number): PackedWeight {
  const G = groupsPerRow(cols);
  const scales = new Uint16Array(rows * G);
  const q4 = format === 'q4';
  const words = q4 ? new Uint32Array(rows * G * 4) : undefined;
  const bytes = q4 ? undefined : new Uint8Array(rows * G * 32);
  // q8 clamps to [-128, 127] as the GPU quantizer does: with a subnormal f16 scale (a group of values under ~8e-3),
  // d rounds far enough below absmax / 127 that w / d can round to ±128.
  const qmin = q4 ? -8 : -128, qmax = q4 ? 7 : 127;
  for (let r = 0; r < rows; r++) {
    for (let g = 0; g < G; g++) {
      const c0 = r * cols + g * GROUP;
      const n = Math.min(GROUP, cols - g * GROUP);
      // The first element of largest magnitude (NaN never wins a comparison).
      let m = 0, am = 0;
      for (let i = 0; i < n; i++) {
        const v = w[c0 + i];
        const a = v < 0 ? -v : v;
        if (a > am) {
          am = a;
          m = v;
        }
      }
      const dBits = am === 0 ? 0 : f32ToF16Bits(q4 ? m / -8 : am / 127); // +0 for an all-zero group, as the GPU writes
      const block = r * G + g;
      scales[block] = dBits;
      const d = f16Value(dBits);
      if (q4) {
        const base = block * 4;
        for (let i = 0; i < GROUP; i++) {
          let q = 0;
          if (i < n && d !== 0) {
            const x = w[c0 + i] / d;
            q = Math.round(x);
            if (q - x === 0.5 && q & 1) q--; // Math.round sends ties up: take the even neighbour
            q = q < qmin ? qmin : q > qmax ? qmax : q === q ? q : 0; // (NaN: 0)
          }
          words![base + (i >> 3)] |= (q + 8) << (4 * (i & 7));
        }
      } else {
        const base = block * 32;
        for (let i = 0; i < n; i++) {
          let q = 0;
          if (d !== 0) {
            const x = w[c0 + i] / d;
            q = Math.round(x);
            if (q - x === 0.5 && q & 1) q--;
            q = q < qmin ? qmin : q > qmax ? qmax : q === q ? q : 0; // (NaN: 0)
          }
          bytes![base + i] = q & 255;
        }
      }
    }
  }
  return { data: words ?? new Uint32Array(bytes!.buffer), scales };
}
