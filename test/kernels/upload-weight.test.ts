import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createWeight, createRandomWeight, destroyWeight } from '../../src/kernels/upload-weight.ts';
import { dataBytes, scaleBytes, type WeightFormat } from '../../src/formats/weight-format.ts';
import type { SourceDType } from '../../src/kernels/quantize.ts';
import { bf16ArrayToF32, f16ArrayToF32, f32ToBf16Bits, f32ToF16Bits } from '../../src/io/half.ts';
import { testGpu } from '../helpers/gpu.ts';
import { freshRng } from '../helpers/random.ts';
import { quantizeRef } from '../helpers/quantize-ref.ts';
import { downloadWeight, decodeRow } from '../helpers/weights.ts';

/** Source bytes in `dtype` and the exact f32 values they hold. */
function sourceBytes(dtype: SourceDType, values: Float32Array): { bytes: Uint8Array; exact: Float32Array } {
  if (dtype === 'f32') return { bytes: new Uint8Array(values.buffer), exact: values };
  const bits = new Uint16Array(values.length);
  for (let i = 0; i < values.length; i++) bits[i] = dtype === 'bf16' ? f32ToBf16Bits(values[i]) : f32ToF16Bits(values[i]);
  return { bytes: new Uint8Array(bits.buffer), exact: dtype === 'bf16' ? bf16ArrayToF32(bits) : f16ArrayToF32(bits) };
}

/** What the weight's data must hold, bit for bit (weight-format.ts layouts of the exact source values). */
function expected(format: WeightFormat, exact: Float32Array, rows: number, cols: number): { data: Uint32Array; scales?: Uint16Array } {
  if (format === 'q4' || format === 'q8') {
    const q = quantizeRef(format, exact, rows, cols);
    return { data: q.packed.data, scales: q.scales };
  }
  if (format === 'f32') return { data: new Uint32Array(new Float32Array(exact).buffer) };
  const h = new Uint16Array(Math.ceil((rows * cols) / 2) * 2);
  for (let i = 0; i < exact.length; i++) h[i] = f32ToF16Bits(exact[i]);
  return { data: new Uint32Array(h.buffer) };
}

// Every source dtype into every format, on a shape with a padded last group and odd columns (f16: rows straddle
// words), uploaded in chunks of 4 rows (a 1-KiB staging budget) and split into parts of <= 10 rows (a small
// maxPartBytes standing in for maxStorageBufferBindingSize): the result must equal the CPU layout bit for bit.
for (const format of ['q4', 'q8', 'f16', 'f32'] as const) {
  for (const dtype of ['f32', 'bf16', 'f16'] as const) {
    test(`createWeight ${dtype} -> ${format}: chunked, split into parts, bit-exact`, async () => {
      const ctx = await testGpu();
      const { rng, tag } = freshRng();
      const rows = 37, cols = 81;
      const { bytes, exact } = sourceBytes(dtype, rng.normals(rows * cols, 0.5));
      const maxPartBytes = Math.max(dataBytes(format, 10, cols), scaleBytes(format, 10, cols)) + 15;
      const stagingBytes = 2 * 4 * cols * (dtype === 'f32' ? 4 : 2);
      const calls: Array<[number, number]> = [];
      const reader = async (row: number, n: number) => {
        calls.push([row, n]);
        return bytes.subarray(row * cols * (bytes.byteLength / exact.length), (row + n) * cols * (bytes.byteLength / exact.length));
      };
      for (const src of [bytes, reader]) {
        const w = await createWeight(ctx, { label: 'w', rows, cols, format, dtype, bytes: src, maxPartBytes, stagingBytes });
        assert.ok(w.parts.length >= 4, `expected >= 4 parts, got ${w.parts.length} ${tag}`);
        for (const p of w.parts) assert.ok(p.rows <= 10 && p.data.size <= maxPartBytes, `part too big ${tag}`);
        const got = await downloadWeight(ctx, w);
        const want = expected(format, exact, rows, cols);
        assert.deepEqual(got.data, want.data, `data ${dtype}->${format} ${tag}`);
        if (want.scales) assert.deepEqual(got.scales, want.scales, `scales ${dtype}->${format} ${tag}`);
        assert.equal(w.bytes, w.parts.reduce((s, p) => s + p.data.size + (p.scales?.size ?? 0), 0));
        destroyWeight(w);
        assert.equal(w.parts.length, 0);
      }
      // The reader was asked for bounded, in-order, non-overlapping row ranges covering the tensor.
      let next = 0;
      for (const [row, n] of calls) {
        assert.equal(row, next, `reader rows out of order ${tag}`);
        assert.ok(n <= 4, `chunk of ${n} rows exceeds the staging budget ${tag}`);
        next += n;
      }
      assert.equal(next, rows);
    });
  }
}

test('createWeight rejects wrong sizes and frees on reader errors', async () => {
  const ctx = await testGpu();
  await assert.rejects(createWeight(ctx, { label: 'w', rows: 4, cols: 32, format: 'q4', dtype: 'f32', bytes: new Uint8Array(100) }), /512/);
  await assert.rejects(
    createWeight(ctx, { label: 'w', rows: 4, cols: 32, format: 'q4', dtype: 'bf16', bytes: async (_r, n) => new Uint8Array(n * 64 - 2) }),
    /reader returned/,
  );
  await assert.rejects(createWeight(ctx, { label: 'w', rows: 0, cols: 32, format: 'q4', dtype: 'bf16', bytes: new Uint8Array(0) }), /bad shape/);
});

test('createRandomWeight: GPU-drawn, independent of chunking and parts, std as asked, E2B-size accounting', async () => {
  const ctx = await testGpu();
  const { rng, tag } = freshRng();
  const seed = rng.int(0, 2 ** 31);
  const rows = 2048, cols = 2048, std = 0.02;
  const a = await createRandomWeight(ctx, { rows, cols, format: 'q4', seed, std });
  // E2B q4 accounting for this [2048, 2048] (q_proj / o_proj): 16-byte blocks + 2-byte scales per 32 weights.
  assert.equal(a.bytes, rows * (cols / 32) * 18, `bytes ${tag}`);
  const b = await createRandomWeight(ctx, { rows, cols, format: 'q4', seed, std, stagingBytes: 64 * 1024, maxPartBytes: 1 << 20 });
  assert.ok(b.parts.length > 1);
  const ha = await downloadWeight(ctx, a);
  const hb = await downloadWeight(ctx, b);
  assert.deepEqual(ha.data, hb.data, `chunking/parts changed the weight ${tag}`);
  assert.deepEqual(ha.scales, hb.scales);
  const c = await createRandomWeight(ctx, { rows, cols, format: 'f32', seed, std });
  const hc = await downloadWeight(ctx, c);
  // The q4 weight is the quantization of the f32 one (same seed -> same normals).
  const q = quantizeRef('q4', new Float32Array(hc.data.buffer), 64, cols);
  assert.deepEqual(ha.data.subarray(0, q.packed.data.length), q.packed.data, `q4 random != quantize(f32 random) ${tag}`);
  let ss = 0;
  const row = new Float64Array(cols);
  for (let r = 0; r < rows; r += 8) for (const v of decodeRow(hc, r, row)) ss += v * v;
  const got = Math.sqrt(ss / ((rows / 8) * cols));
  assert.ok(Math.abs(got - std) < 0.02 * std, `std ${got} vs ${std} ${tag}`);
  for (const w of [a, b, c]) destroyWeight(w);
  // codes mode (benchmarks): uniform codes, same layout and size, std matched to within sampling error.
  for (const format of ['q4', 'q8'] as const) {
    const d = await createRandomWeight(ctx, { rows: 256, cols: 2048, format, seed, std, codes: true, maxPartBytes: 1 << 16 });
    assert.equal(d.bytes, 256 * 64 * (format === 'q4' ? 18 : 34));
    const hd = await downloadWeight(ctx, d);
    let s2 = 0;
    for (let r = 0; r < 256; r++) for (const v of decodeRow(hd, r, row)) s2 += v * v;
    const sd = Math.sqrt(s2 / (256 * cols));
    assert.ok(Math.abs(sd - std) < 0.03 * std, `codes ${format} std ${sd} vs ${std} ${tag}`);
    destroyWeight(d);
  }
});
