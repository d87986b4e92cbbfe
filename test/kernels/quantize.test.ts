import { test } from 'node:test';
import assert from 'node:assert/strict';
import { QuantizeKernel, type SourceDType } from '../../src/kernels/quantize.ts';
import { dataBytes, scaleBytes, scalesAsWords, dequantize, groupsPerRow } from '../../src/formats/weight-format.ts';
import { submitDispatches } from '../../src/gpu/pipeline.ts';
import { bf16ArrayToF32, f16ArrayToF32, f16BitsToF32, f32ToBf16Bits, f32ToF16Bits } from '../../src/io/half.ts';
import { testGpu, poisonedBuffer, upload, download } from '../helpers/gpu.ts';
import { freshRng, type Rng } from '../helpers/random.ts';
import { quantizeRef, f16Value } from '../helpers/quantize-ref.ts';

/** Source values in `dtype`: the words to upload and the exact f32 values they stand for. */
function source(dtype: SourceDType, values: Float32Array): { words: ArrayBufferView; exact: Float32Array } {
  if (dtype === 'f32') return { words: values, exact: values };
  const bits = new Uint16Array(values.length);
  for (let i = 0; i < values.length; i++) bits[i] = dtype === 'bf16' ? f32ToBf16Bits(values[i]) : f32ToF16Bits(values[i]);
  return { words: bits, exact: dtype === 'bf16' ? bf16ArrayToF32(bits) : f16ArrayToF32(bits) };
}

/** Normal weights with a few planted special groups: all zeros, exact rounding ties, equal |max| of both signs. */
function weights(rng: Rng, rows: number, cols: number, std: number): Float32Array {
  const w = rng.normals(rows * cols, std);
  if (cols >= 32 && rows >= 3) {
    w.fill(0, 0, 32); // d = 0
    // Ties: max 8 * 2^-6 gives d = -2^-6 (q4) and values on exact half steps (k + 0.5) * d.
    const u = 2 ** -6;
    for (let i = 0; i < 32; i++) w[cols + i] = (i === 0 ? 8 : ((i % 15) - 7) + 0.5) * u;
    // |max| shared by +m and -m: the first one sets the sign of d (llama.cpp's rule).
    for (let i = 0; i < 32; i++) w[2 * cols + i] = (i % 2 ? 1 : -1) * (i < 2 ? 1 : rng.uniform(0, 0.99)) * std * 3;
  }
  return w;
}

async function gpuQuantize(format: 'q4' | 'q8', dtype: SourceDType, words: ArrayBufferView, rows: number, cols: number) {
  const ctx = await testGpu();
  const kernel = await QuantizeKernel.create(ctx);
  const data = poisonedBuffer(ctx, dataBytes(format, rows, cols));
  const scales = poisonedBuffer(ctx, scaleBytes(format, rows, cols));
  const d = await kernel.quantize({ src: upload(ctx, words), srcDType: dtype, rows, cols, format, data, scales });
  submitDispatches(ctx.device, [d]);
  return {
    data: new Uint32Array(await download(ctx, data, dataBytes(format, rows, cols))),
    scales: new Uint32Array(await download(ctx, scales, scaleBytes(format, rows, cols))),
  };
}

function firstMismatch(a: Uint32Array, b: Uint32Array): number {
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return i;
  return a.length === b.length ? -1 : a.length;
}

// Shapes: K = 80 (a padded last group) and 33, odd row counts (an odd number of groups, so the last scale word is
// half padding), E2B's hidden and FFN widths. The GPU rounds with exact integer-checked comparisons, so the
// expected result is bit-identical, ties included (rows 1 and 2 plant exact ties); no exceptions are allowed.
const cases: Array<{ rows: number; cols: number; std: number }> = [
  { rows: 37, cols: 80, std: 1 },
  { rows: 5, cols: 33, std: 300 },
  { rows: 48, cols: 2048, std: 0.02 },
  { rows: 7, cols: 8192, std: 0.05 },
];

for (const format of ['q4', 'q8'] as const) {
  for (const dtype of ['f32', 'bf16', 'f16'] as const) {
    for (const c of cases) {
      test(`quantize ${format} from ${dtype} [${c.rows}, ${c.cols}] is bit-exact vs the CPU reference`, async () => {
        const { rng, tag } = freshRng();
        const { words, exact } = source(dtype, weights(rng, c.rows, c.cols, c.std));
        const got = await gpuQuantize(format, dtype, words, c.rows, c.cols);
        const ref = quantizeRef(format, exact, c.rows, c.cols);
        const ms = firstMismatch(got.scales, scalesAsWords(ref.scales));
        assert.equal(ms, -1, `scale word ${ms}: got 0x${got.scales[ms]?.toString(16)}, want 0x${scalesAsWords(ref.scales)[ms]?.toString(16)} ${tag}`);
        const md = firstMismatch(got.data, ref.packed.data);
        assert.equal(md, -1, `data word ${md}: got 0x${got.data[md]?.toString(16)}, want 0x${ref.packed.data[md]?.toString(16)} ${tag}`);
      });
    }
  }
}

// Quantization error, bounded per element: |w - deq(q(w))| <= |d| / 2 where w / d is in range; elements clipped at
// the range end (q4: the side opposite the signed max) are off by |w| - qmax |d| <= ~|d|. Relative RMS error is
// printed and bounded loosely (int4 with group 32 on normal weights: ~0.086 measured; int8: ~0.005).
for (const format of ['q4', 'q8'] as const) {
  test(`quantize ${format} round-trip error`, async () => {
    const { rng, tag } = freshRng();
    const rows = 64, cols = 2048;
    const w = rng.normals(rows * cols, 0.02);
    const got = await gpuQuantize(format, 'f32', w, rows, cols);
    const scales = new Uint16Array(got.scales.buffer).slice(0, rows * groupsPerRow(cols));
    const deq = dequantize(format, { data: got.data, scales }, rows, cols, f16BitsToF32);
    const G = groupsPerRow(cols);
    const qmax = format === 'q4' ? 7 : 127;
    let se = 0, sw = 0;
    for (let r = 0; r < rows; r++) {
      for (let c = 0; c < cols; c++) {
        const i = r * cols + c;
        const d = Math.abs(f16Value(scales[r * G + (c >> 5)]));
        const err = Math.abs(w[i] - deq[i]);
        // 1e-7 relative slack: f32 products in dequantize.
        const bound = Math.max(d / 2, Math.abs(w[i]) - qmax * d) * (1 + 1e-7);
        assert.ok(err <= bound, `element ${i}: w ${w[i]} deq ${deq[i]} err ${err} > ${bound} (d ${d}) ${tag}`);
        se += err * err;
        sw += w[i] * w[i];
      }
    }
    const rel = Math.sqrt(se / sw);
    console.log(`# ${format} relative RMS round-trip error on N(0, 0.02) weights: ${rel.toFixed(5)}`);
    assert.ok(rel < (format === 'q4' ? 0.1 : 0.007), `${format} relative RMS error ${rel} ${tag}`);
  });
}

test('convert to f16 (from f32, bf16) and to f32 (from bf16, f16) bit-exactly, odd lengths', async () => {
  const ctx = await testGpu();
  const kernel = await QuantizeKernel.create(ctx);
  const { rng, tag } = freshRng();
  const n = 1001;
  const values = rng.normals(n, 10);
  values[0] = 70000; // overflows f16: inf, like src/io/half.ts
  values[1] = 3e-6; // f16 subnormal
  values[2] = 2 ** -11 + 2 ** -22; // just above an f16 rounding tie at 1 + 2^-11 scaled
  for (const dtype of ['f32', 'bf16'] as const) {
    const { words, exact } = source(dtype, values);
    const dst = poisonedBuffer(ctx, Math.ceil(n / 2) * 4);
    submitDispatches(ctx.device, [await kernel.toF16({ src: upload(ctx, words), srcDType: dtype, count: n, dst })]);
    const got = new Uint16Array(await download(ctx, dst, Math.ceil(n / 2) * 4));
    for (let i = 0; i < n; i++) assert.equal(got[i], f32ToF16Bits(exact[i]), `${dtype}->f16 element ${i} (${exact[i]}) ${tag}`);
    assert.equal(got[n], 0, `padding half of the last word ${tag}`);
  }
  for (const dtype of ['bf16', 'f16'] as const) {
    const { words, exact } = source(dtype, values);
    const dst = poisonedBuffer(ctx, n * 4);
    submitDispatches(ctx.device, [await kernel.toF32({ src: upload(ctx, words), srcDType: dtype, count: n, dst })]);
    const got = new Float32Array(await download(ctx, dst, n * 4));
    for (let i = 0; i < n; i++) assert.ok(Object.is(got[i], exact[i]), `${dtype}->f32 element ${i}: ${got[i]} vs ${exact[i]} ${tag}`);
  }
});

test('random normals: deterministic per (seed, index), mean ~0, std as asked', async () => {
  const ctx = await testGpu();
  const kernel = await QuantizeKernel.create(ctx);
  const { rng, tag } = freshRng();
  const seed = rng.int(0, 2 ** 31);
  const n = 1 << 16;
  const a = poisonedBuffer(ctx, n * 4);
  const b = poisonedBuffer(ctx, n * 4);
  submitDispatches(ctx.device, [
    await kernel.random({ dst: a, count: n, seed, std: 0.5 }),
    await kernel.random({ dst: b, count: n / 2, seed, std: 0.5, firstIndex: n / 2 }), // the second half alone
  ]);
  const va = new Float32Array(await download(ctx, a, n * 4));
  const vb = new Float32Array(await download(ctx, b, (n / 2) * 4));
  for (let i = 0; i < n / 2; i++) assert.equal(vb[i], va[n / 2 + i], `chunking changes values at ${i} ${tag}`);
  let s = 0, ss = 0;
  for (const v of va) {
    assert.ok(Number.isFinite(v), `non-finite random value ${tag}`);
    s += v;
    ss += v * v;
  }
  const mean = s / n, std = Math.sqrt(ss / n - mean * mean);
  // Standard errors for n = 65536: mean 0.5 / 256 ~ 0.002, std ~ 0.0014; 5 sigma-ish bounds.
  assert.ok(Math.abs(mean) < 0.01 && Math.abs(std - 0.5) < 0.01, `mean ${mean} std ${std} (seed ${seed}) ${tag}`);
});
