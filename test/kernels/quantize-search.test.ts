/**
 * The GPU's error-minimising quantizers (shaders/quantize.wgsl quantize_q5 / quantize_q4k / quantize_q6k, through
 * upload-weight.ts createWeight: chunked, split into parts) against their CPU definition
 * (test/helpers/quantize-search.ts), on fresh normal weights from every source dtype:
 * - the same codes and scales almost everywhere: the two follow the same steps, but the GPU divides to ~2.5 ulp and
 *   sums in another order, so a near-tie between two candidate scales (or a value at a rounding midpoint) may go the
 *   other way (the CPU sums in float64). Measured: 1-6 % of the weights dequantize differently; at most 10 % may;
 * - the same quality: relative RMS error |deq − w| / |w| within 1 % of the CPU's (a tipped tie picks a candidate of
 *   nearly equal error; measured ≤ 0.1 %), below a bound per format (normal weights: measured q5 0.040, q4k 0.072,
 *   q6k 0.018), and the search beats the plain rule it improves on (q5: llama.cpp Q5_0's d = max / −16).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createWeight, destroyWeight } from '../../src/kernels/upload-weight.ts';
import { dequantize, type QuantFormat } from '../../src/formats/weight-format.ts';
import { quantizeK, quantizeQ5 } from '../helpers/quantize-search.ts';
import { dequantizeK } from '../../src/formats/kquant.ts';
import { bf16ArrayToF32, f16BitsToF32, f32ToBf16Bits, f32ToF16Bits } from '../../src/io/half.ts';
import type { SourceDType } from '../../src/kernels/quantize.ts';
import { testGpu } from '../helpers/gpu.ts';
import { freshRng } from '../helpers/random.ts';
import { downloadWeight, decodeRow } from '../helpers/weights.ts';

function source(dtype: SourceDType, values: Float32Array): { bytes: Uint8Array; exact: Float32Array } {
  if (dtype === 'f32') return { bytes: new Uint8Array(values.buffer), exact: values };
  const bits = new Uint16Array(values.length);
  for (let i = 0; i < values.length; i++) bits[i] = dtype === 'bf16' ? f32ToBf16Bits(values[i]) : f32ToF16Bits(values[i]);
  const exact = dtype === 'bf16' ? bf16ArrayToF32(bits) : Float32Array.from(bits, f16BitsToF32);
  return { bytes: new Uint8Array(bits.buffer), exact };
}

function cpuDequantized(format: 'q5' | 'q4k' | 'q6k', w: Float32Array, rows: number, cols: number): Float32Array {
  if (format === 'q5') return dequantize('q5', quantizeQ5(w, rows, cols), rows, cols, f16BitsToF32);
  return dequantizeK(format, quantizeK(format, w, rows, cols), rows, cols, f16BitsToF32);
}

function relRms(a: ArrayLike<number>, w: Float32Array): number {
  let e = 0, n = 0;
  for (let i = 0; i < w.length; i++) {
    e += (a[i] - w[i]) ** 2;
    n += w[i] ** 2;
  }
  return Math.sqrt(e / n);
}

/** Relative RMS error bound of each format on normal weights (step/√12 of its grid, with room for clipping). */
const MAX_REL_RMS: Record<string, number> = { q5: 0.05, q4k: 0.1, q6k: 0.025 };

const shapes: Array<[QuantFormat & ('q5' | 'q4k' | 'q6k'), number, number]> = [
  ['q5', 37, 96], ['q5', 21, 2048],
  ['q4k', 37, 288], ['q4k', 9, 2048],
  ['q6k', 37, 256], ['q6k', 9, 2048],
];
for (const [format, rows, cols] of shapes) {
  for (const dtype of ['bf16', 'f32'] as const) {
    test(`GPU search quantizer ${dtype} -> ${format} [${rows}, ${cols}] (chunked, parts) == CPU definition within ties`, async () => {
      const ctx = await testGpu();
      const { rng, tag } = freshRng();
      const { bytes, exact } = source(dtype, rng.normals(rows * cols, 0.02));
      const w = await createWeight(ctx, { label: 'w', rows, cols, format, dtype, bytes, stagingBytes: 2 * 8 * cols * (dtype === 'f32' ? 4 : 2), maxPartBytes: 16 * 1024 });
      const hw = await downloadWeight(ctx, w);
      const parts = w.parts.length;
      destroyWeight(w);
      const gpu = new Float32Array(rows * cols);
      const row = new Float64Array(cols);
      for (let r = 0; r < rows; r++) gpu.set(decodeRow(hw, r, row), r * cols);
      const cpu = cpuDequantized(format, exact, rows, cols);
      let differ = 0;
      for (let i = 0; i < gpu.length; i++) {
        if (!Number.isFinite(gpu[i])) assert.fail(`element ${i} is ${gpu[i]} ${tag}`);
        if (gpu[i] !== cpu[i]) differ++;
      }
      const eGpu = relRms(gpu, exact), eCpu = relRms(cpu, exact);
      console.log(`# ${format} ${dtype} [${rows}, ${cols}] in ${parts} part(s): rel RMS GPU ${eGpu.toFixed(5)} CPU ${eCpu.toFixed(5)}; ${differ} of ${gpu.length} values differ`);
      assert.ok(differ <= 0.1 * gpu.length, `${differ} values differ from the CPU definition ${tag}`);
      assert.ok(Math.abs(eGpu - eCpu) <= 0.01 * eCpu, `rel RMS GPU ${eGpu} vs CPU ${eCpu} ${tag}`);
      assert.ok(eGpu <= MAX_REL_RMS[format], `rel RMS ${eGpu} > ${MAX_REL_RMS[format]} ${tag}`);
    });
  }
}

test('search quantizers beat the plain rules on normal weights (CPU definitions): q5 vs d = max / −16', () => {
  const { rng, tag } = freshRng();
  const rows = 64, cols = 256;
  const w = rng.normals(rows * cols, 1);
  const plain = new Float32Array(w.length);
  for (let g = 0; g < w.length / 32; g++) {
    let m = 0;
    for (let i = 0; i < 32; i++) if (Math.abs(w[32 * g + i]) > Math.abs(m)) m = w[32 * g + i];
    const d = f16BitsToF32(f32ToF16Bits(m / -16));
    for (let i = 0; i < 32; i++) plain[32 * g + i] = d * Math.min(15, Math.max(-16, Math.round(w[32 * g + i] / d)));
  }
  const search = cpuDequantized('q5', w, rows, cols);
  assert.ok(relRms(search, w) < relRms(plain, w), `q5 search ${relRms(search, w)} vs plain ${relRms(plain, w)} ${tag}`);
});
