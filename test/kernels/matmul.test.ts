import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MatmulKernel, type GemmTiling, type MatmulPath } from '../../src/kernels/matmul.ts';
import { createRandomWeight, destroyWeight } from '../../src/kernels/upload-weight.ts';
import type { WeightFormat } from '../../src/formats/weight-format.ts';
import { submitDispatches } from '../../src/gpu/pipeline.ts';
import { f32ArrayToF16, f16ArrayToF32, f32ToF16Bits } from '../../src/io/half.ts';
import { testGpu, poisonedBuffer, upload, download, f16SkipReason } from '../helpers/gpu.ts';
import { freshRng, type Rng } from '../helpers/random.ts';
import { quantizeRef } from '../helpers/quantize-ref.ts';
import { uploadHostWeight, downloadWeight, refMatmul, type HostWeight } from '../helpers/weights.ts';

// Tolerance: the kernels use the exact dequantized weights (q * f16 scale is exact in f32), so the only error is
// f32 accumulation. Summing K products with rounding error 2^-24 relative to each partial sum gives an error of
// order 2^-24 * sum_k |x_k w_k| (random-walk partial sums); we allow 1e-5 * sum_k |x_k w_k| (~170 ulps of that
// scale) + 1e-30, comfortably above the observed error and far below any indexing or dequantization mistake
// (one wrong weight of a typical row changes y by ~ sum |x w| / K >= 1e-4 relative for K <= 8192).
const REL = 1e-5;

function checkY(got: Float32Array, ref: { y: Float64Array; mag: Float64Array }, tag: string, rel = REL): number {
  assert.equal(got.length, ref.y.length, `length ${tag}`);
  let worst = 0;
  for (let i = 0; i < got.length; i++) {
    if (!Number.isFinite(got[i])) assert.fail(`y[${i}] = ${got[i]} (expected ${ref.y[i]}): not written ${tag}`);
    const err = Math.abs(got[i] - ref.y[i]);
    const tol = rel * ref.mag[i] + 1e-30;
    if (err > tol) assert.fail(`y[${i}] = ${got[i]}, expected ${ref.y[i]} (err ${err} > ${tol}) ${tag}`);
    worst = Math.max(worst, err / (ref.mag[i] || 1));
  }
  return worst;
}

/** A random weight in `format` built on the CPU (the reference packers / quantizer, not the GPU quantizer). */
function hostWeight(rng: Rng, format: WeightFormat, rows: number, cols: number, std = 0.1): HostWeight {
  const w = rng.normals(rows * cols, std);
  if (format === 'f32') return { format, rows, cols, data: new Uint32Array(w.buffer) };
  if (format === 'f16') {
    const h = new Uint16Array(Math.ceil((rows * cols) / 2) * 2);
    h.set(f32ArrayToF16(w));
    return { format, rows, cols, data: new Uint32Array(h.buffer) };
  }
  if (format !== 'q4' && format !== 'q8') throw new Error(`hostWeight: ${format} is tested in kquant.test.ts`);
  const q = quantizeRef(format, w, rows, cols);
  return { format, rows, cols, data: q.packed.data, scales: q.scales };
}

interface Case {
  format: WeightFormat;
  K: number;
  N: number;
  T: number;
  path: MatmulPath;
  xOffset?: number;
  yOffset?: number;
  accumulate?: boolean;
  split?: number[];
  /** GEMV workgroup shape (default: the adapter's). */
  gemv?: [rows: number, lanes: number];
  /** GEMM tiling (default: the adapter's, defaultGemmTiling: 'quad' on SwiftShader). */
  gemm?: GemmTiling;
}

async function runCase(c: Case): Promise<void> {
  const ctx = await testGpu();
  const { rng, tag: seedTag } = freshRng();
  const tag = `${seedTag} ${JSON.stringify(c)}`;
  const kernel = await MatmulKernel.create(ctx, 'f32', [c.format], { activations: 'f32', gemm: c.gemm, ...(c.gemv && { gemvRows: c.gemv[0], gemvLanes: c.gemv[1] }) });
  const hw = hostWeight(rng, c.format, c.N, c.K);
  const weight = uploadHostWeight(ctx, hw, c.split);
  const x = rng.normals(c.T * c.K, 1);
  const xo = c.xOffset ?? 0, yo = c.yOffset ?? 0;
  const xAll = new Float32Array(xo + x.length).fill(NaN); // a NaN before x would show up if offsets were ignored
  xAll.set(x, xo);
  const ySize = (yo + c.T * c.N) * 4;
  const yBuf = poisonedBuffer(ctx, ySize);
  let y0: Float32Array | undefined;
  if (c.accumulate) {
    y0 = rng.normals(c.T * c.N, 1);
    ctx.device.queue.writeBuffer(yBuf, yo * 4, y0);
  }
  const d = kernel.bind({ x: upload(ctx, xAll), weight, y: yBuf, rows: c.T, xOffset: xo, yOffset: yo, accumulate: c.accumulate, path: c.path });
  assert.equal(d.path, c.path === 'auto' ? (c.T <= MatmulKernel.GEMV_MAX_T ? 'gemv' : 'gemm') : c.path);
  submitDispatches(ctx.device, [d]);
  const all = new Float32Array(await download(ctx, yBuf, ySize));
  for (let i = 0; i < yo; i++) assert.ok(Number.isNaN(all[i]), `y before yOffset was written at ${i} ${tag}`);
  const ref = refMatmul(x, c.T, hw);
  if (y0) for (let i = 0; i < ref.y.length; i++) { ref.y[i] += y0[i]; ref.mag[i] += Math.abs(y0[i]); }
  checkY(all.subarray(yo), ref, tag);
  destroyWeight(weight);
  d.destroy();
}

// Sizes that are multiples of nothing: K = 80 (q4/q8: a padded last group; f16: rows not 16-byte aligned), K = 33
// (f32 unaligned too), N = 37 (not a multiple of the 8-row GEMV block or the 64-wide GEMM tile), T = 1, 3, 13, 67.
const small: Case[] = [];
for (const format of ['f32', 'f16', 'q4', 'q8'] as const) {
  for (const [K, N] of [[80, 37], [33, 70]]) {
    for (const T of [1, 3, 13]) small.push({ format, K, N, T, path: 'gemv' });
    for (const T of [3, 67]) small.push({ format, K, N, T, path: 'gemm' });
  }
  small.push({ format, K: 96, N: 37, T: 2, path: 'auto', xOffset: 5, yOffset: 7, accumulate: true });
  small.push({ format, K: 96, N: 130, T: 67, path: 'auto', xOffset: 3, yOffset: 1, accumulate: true });
  // A weight split into parts (as upload-weight.ts does beyond maxStorageBufferBindingSize): 3 parts.
  small.push({ format, K: 64, N: 100, T: 1, path: 'gemv', split: [36, 72] });
  small.push({ format, K: 64, N: 100, T: 70, path: 'gemm', split: [36, 72] });
  // The GPU GEMV shape (8 rows x 32 lanes; SwiftShader defaults to 64 x 4) and a lane-per-row one.
  small.push({ format, K: 1000, N: 37, T: 1, path: 'gemv', gemv: [8, 32] });
  small.push({ format, K: 96, N: 37, T: 3, path: 'gemv', gemv: [256, 1] });
  // Every GEMM tiling whatever the adapter: 'wide' (GPUs, 256 threads of 4 x 4), 'regs' (64 threads of 8 x 8) and
  // 'quad' (32 threads of 16 x 8, with subgroups): T, N and K off the 64 x 64 tile and the K step of 32.
  for (const gemm of ['wide', 'regs', 'quad'] as const) small.push({ format, K: 80, N: 70, T: 67, path: 'gemm', gemm });
}
for (const c of small) {
  test(`matmul ${c.format} K=${c.K} N=${c.N} T=${c.T} ${c.path}${c.accumulate ? ' accumulate' : ''}${c.split ? ' parts' : ''}${c.gemv ? ` gemv ${c.gemv.join('x')}` : ''}${c.gemm ? ` gemm ${c.gemm}` : ''}`, async (t) => {
    if (c.gemm === 'quad' && !(await testGpu()).subgroups) return t.skip('the quad GEMM tiling needs subgroups');
    await runCase(c);
  });
}

/** E2B-shaped weight drawn on the GPU (createRandomWeight), read back for the reference. */
/**
 * Random q4 bits for a big weight, made on the host with a fast seeded generator (GPU quantization of 537 M values
 * takes minutes on SwiftShader): random nibbles, f16 scales in [0.001, 0.003), both signs.
 */
function randomQ4Host(rng: Rng, rows: number, cols: number): HostWeight {
  const G = Math.ceil(cols / 32);
  const data = new Uint32Array(rows * G * 4);
  let s = rng.int(1, 2 ** 31);
  for (let i = 0; i < data.length; i++) {
    s ^= s << 13; s ^= s >>> 17; s ^= s << 5; // xorshift32
    data[i] = s >>> 0;
  }
  const scales = new Uint16Array(rows * G);
  for (let i = 0; i < scales.length; i++) scales[i] = f32ToF16Bits((rng.next() < 0.5 ? -1 : 1) * (0.001 + 0.002 * rng.next()));
  return { format: 'q4', rows, cols, data, scales };
}

async function e2bCase(format: WeightFormat, K: number, N: number, T: number, path: MatmulPath, sampleRows?: number, hostRandom = false) {
  const ctx = await testGpu();
  const { rng, tag: seedTag } = freshRng();
  const tag = `${seedTag} ${format} ${K}->${N} T=${T} ${path}`;
  // The host-made weight is split into two parts (as upload-weight.ts does past the binding size limit).
  const weight = hostRandom
    ? uploadHostWeight(ctx, randomQ4Host(rng, N, K), [N / 2 + 1000])
    : await createRandomWeight(ctx, { rows: N, cols: K, format, seed: rng.int(0, 2 ** 31), std: 0.02 });
  const kernel = await MatmulKernel.create(ctx, 'f32', [format], { activations: 'f32' });
  const x = rng.normals(T * K, 1);
  const yBuf = poisonedBuffer(ctx, T * N * 4);
  const d = kernel.bind({ x: upload(ctx, x), weight, y: yBuf, rows: T, path });
  submitDispatches(ctx.device, [d]);
  const got = new Float32Array(await download(ctx, yBuf, T * N * 4));
  for (let i = 0; i < got.length; i++) if (!Number.isFinite(got[i])) assert.fail(`y[${i}] = ${got[i]}: not written ${tag}`);
  const hw = await downloadWeight(ctx, weight);
  destroyWeight(weight);
  // Huge N: the reference covers a sample of rows (all tokens), including the first, last and a part boundary.
  let rows: number[] | undefined;
  if (sampleRows) {
    const s = new Set([0, 1, N - 1, N - 2]);
    for (const p of weight.parts) s.add(p.rowStart);
    while (s.size < sampleRows) s.add(rng.int(0, N));
    rows = [...s].sort((a, b) => a - b);
  }
  const ref = refMatmul(x, T, hw, rows);
  const sel = new Float32Array(T * ref.rows.length);
  for (let t = 0; t < T; t++) ref.rows.forEach((n, j) => (sel[t * ref.rows.length + j] = got[t * N + n]));
  const worst = checkY(sel, ref, tag);
  console.log(`# ${tag}: worst |err| / sum|xw| = ${worst.toExponential(2)}`);
  d.destroy();
}

// Real Gemma 3n E2B shapes (hidden 2048, FFN 8192, vocab 262,400): decode GEMV in q4 (all three), q8 and f32;
// prefill GEMM at T = 67 (not a tile multiple). The vocab-sized reference checks 512 sampled rows.
test('matmul E2B q4 2048->8192 decode (gemv)', () => e2bCase('q4', 2048, 8192, 1, 'auto'));
test('matmul E2B q4 8192->2048 decode (gemv)', () => e2bCase('q4', 8192, 2048, 1, 'auto'));
test('matmul E2B q4 2048->262400 decode (gemv, LM head, 2 parts)', () => e2bCase('q4', 2048, 262400, 1, 'auto', 512, true));
test('matmul E2B q8 2048->8192 decode (gemv)', () => e2bCase('q8', 2048, 8192, 1, 'auto'));
test('matmul E2B f32 8192->2048 decode (gemv)', () => e2bCase('f32', 8192, 2048, 1, 'auto'));
test('matmul E2B q4 2048->8192 prefill T=67 (gemm)', () => e2bCase('q4', 2048, 8192, 67, 'auto', 1024));

test('matmul validates shapes and buffers', async () => {
  const ctx = await testGpu();
  const kernel = await MatmulKernel.create(ctx, 'f32', ['q4'], { activations: 'f32' });
  const { rng } = freshRng();
  const weight = uploadHostWeight(ctx, hostWeight(rng, 'q4', 16, 64));
  const x = upload(ctx, new Float32Array(2 * 64));
  const y = poisonedBuffer(ctx, 2 * 16 * 4);
  assert.throws(() => kernel.bind({ x, weight, y: x, rows: 1 }), /different buffers/);
  assert.throws(() => kernel.bind({ x, weight, y, rows: 3 }), /x holds .* 3 tokens need/);
  assert.throws(() => kernel.bind({ x, weight, y, rows: 2, yOffset: 1 }), /y holds/);
  const f32w = uploadHostWeight(ctx, hostWeight(rng, 'f32', 16, 64));
  assert.throws(() => kernel.bind({ x, weight: f32w, y, rows: 1 }), /not compiled/);
  const d = kernel.bind({ x, weight, y, rows: 1 });
  assert.throws(() => d.setRows(5), /tokens need/);
  assert.throws(() => kernel.bind({ x, weight: { ...weight, parts: weight.parts.map((p) => ({ ...p, rows: p.rows - 1 })) }, y, rows: 1 }), /cover/);
});

test('matmul f16 activations variant', async (t) => {
  const skip = await f16SkipReason();
  if (skip) return t.skip(skip);
  const ctx = await testGpu();
  const { rng, tag } = freshRng();
  for (const format of ['q4', 'f16'] as const) {
    for (const T of [1, 3, 67]) {
      const K = 2048, N = 70;
      const hw = hostWeight(rng, format, N, K);
      const weight = uploadHostWeight(ctx, hw);
      const kernel = await MatmulKernel.create(ctx, 'f16', [format], { activations: 'f32' });
      const x16 = f32ArrayToF16(rng.normals(T * K, 1));
      const y = poisonedBuffer(ctx, T * N * 2);
      submitDispatches(ctx.device, [kernel.bind({ x: upload(ctx, x16), weight, y, rows: T })]);
      const got = f16ArrayToF32(new Uint16Array(await download(ctx, y, T * N * 2)));
      const ref = refMatmul(f16ArrayToF32(x16), T, hw);
      // f32 accumulation, then one rounding to f16 (2^-11 relative of |y|, plus the accumulation bound).
      for (let i = 0; i < ref.y.length; i++) {
        const tol = REL * ref.mag[i] + 2 ** -11 * Math.abs(ref.y[i]) + 1e-7;
        assert.ok(Math.abs(got[i] - ref.y[i]) <= tol, `f16 ${format} T=${T} y[${i}] ${got[i]} vs ${ref.y[i]} ${tag}`);
      }
    }
  }
});
