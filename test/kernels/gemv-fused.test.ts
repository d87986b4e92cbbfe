/**
 * The multi-output GEMV (shaders/matmul.wgsl with p.n_part2 / p.epilogue; MatmulArgs.also, .gelu) for every weight
 * format, with f32 and int8 activations and both GEMV shapes: one dispatch computes W x and W2 x over the same x
 * into two outputs, or the gated epilogue gelu_tanh(W x) ⊙ (W2 x) (a gated MLP), or gelu_tanh(W x) ⊙ m (Gemma 3n's
 * per-layer-input gate), against a float64 reference on the exact weights and x. Outputs are poisoned, N is off
 * every tile (37, 70 rows), K off the 32-block for the non-K formats and off 4 for the float ones (the unaligned
 * path), x and the outputs at element offsets, T = 3 (4-token blocks, 3 used).
 *
 * Tolerances: a plain row as matmul.test.ts (f32 accumulation: 1e-5 · Σ|w x|) plus, with int8 activations, the x
 * rounding bound of gemv-int8.test.ts (Σ |w| · absmax_block / 254 · (1 + 1e-5)). Gated: gelu' ∈ [−0.13, 1.13], so
 * |Δ(gelu(g) · u)| ≤ 1.13 · |u| · tol_g + |gelu(g)| · tol_u + tol_g · tol_u, plus 1e-6 relative for the exp in gelu.
 * The concatenated outputs are also compared bit for bit with the same kernel's separate dispatches (same rows,
 * same summation order). Prefill (T = 5, the GEMM path) writes W x and W2 x ungated (`fusedEpilogue` false).
 * f16 weights run through unpack2x16float (no shader-f16 needed); f16 activations are not covered (no shader-f16 here).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MatmulKernel, type MatmulOptions } from '../../src/kernels/matmul.ts';
import { isQuantFormat, type QuantFormat, type WeightFormat } from '../../src/formats/weight-format.ts';
import { submitDispatches } from '../../src/gpu/pipeline.ts';
import { f32ArrayToF16 } from '../../src/io/half.ts';
import { testGpu, poisonedBuffer, upload, download } from '../helpers/gpu.ts';
import { freshRng, type Rng } from '../helpers/random.ts';
import { uploadHostWeight, decodeRow, randomQuantWeight, type HostWeight } from '../helpers/weights.ts';
import type { GpuContext } from '../../src/gpu/device.ts';

const FLOAT: WeightFormat[] = ['f32', 'f16'];
const QUANT: QuantFormat[] = ['q4', 'q5', 'q8', 'q4k', 'q5k', 'q6k'];

function randomWeight(rng: Rng, format: WeightFormat, rows: number, cols: number): HostWeight {
  if (isQuantFormat(format)) return randomQuantWeight(rng, format, rows, cols);
  const w = rng.normals(rows * cols, 0.1);
  if (format === 'f32') return { format, rows, cols, data: new Uint32Array(w.buffer) };
  const h = new Uint16Array(Math.ceil((rows * cols) / 2) * 2);
  h.set(f32ArrayToF16(w));
  return { format, rows, cols, data: new Uint32Array(h.buffer) };
}

const gelu = (v: number) => 0.5 * v * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (v + 0.044715 * v ** 3)));

/** y = W x per token and row in float64, with the error bound of the f32 (and int8-activation) GEMV. */
function reference(hw: HostWeight, x: Float32Array, xOffset: number, T: number, int8: boolean): { y: Float64Array; tol: Float64Array } {
  const { rows: N, cols: K } = hw;
  const y = new Float64Array(T * N), tol = new Float64Array(T * N);
  const row = new Float64Array(K);
  const amax = new Float64Array(T * Math.ceil(K / 32));
  for (let t = 0; t < T; t++) {
    for (let k = 0; k < K; k++) {
      const b = t * Math.ceil(K / 32) + (k >> 5);
      amax[b] = Math.max(amax[b], Math.abs(x[xOffset + t * K + k]));
    }
  }
  for (let n = 0; n < N; n++) {
    decodeRow(hw, n, row);
    for (let t = 0; t < T; t++) {
      let s = 0, mag = 0, q = 0;
      for (let k = 0; k < K; k++) {
        const xv = x[xOffset + t * K + k];
        s += row[k] * xv;
        mag += Math.abs(row[k] * xv);
        if (int8) q += (Math.abs(row[k]) * amax[t * Math.ceil(K / 32) + (k >> 5)]) / 254;
      }
      y[t * N + n] = s;
      tol[t * N + n] = 1e-5 * mag + q * (1 + 1e-5) + 1e-30;
    }
  }
  return { y, tol };
}

function check(name: string, got: number, want: number, tol: number, tag: string): void {
  if (!(Math.abs(got - want) <= tol)) assert.fail(`${name} = ${got}, expected ${want} (|err| ${Math.abs(got - want)} > ${tol}) ${tag}`);
}

async function read(ctx: GpuContext, b: GPUBuffer, floats: number): Promise<Float32Array> {
  return new Float32Array(await download(ctx, b, floats * 4));
}

/** Every mode of one format on one kernel: concatenated outputs, the gated pair, the vector gate, prefill. */
async function checkFormat(ctx: GpuContext, kernel: MatmulKernel, format: WeightFormat, rng: Rng, tag: string, prefill: boolean): Promise<void> {
  const int8 = kernel.int8Activations && isQuantFormat(format);
  const K = format.endsWith('k') ? 288 : isQuantFormat(format) ? 80 : 83;
  const T = 3, xOffset = 5;
  const N1 = 37, N2 = 70;
  const x = rng.normals(xOffset + T * K, 1);
  x[xOffset + 7] = 30; // an outlier block (coarse int8 step)
  const xb = upload(ctx, x);
  const h1 = randomWeight(rng, format, N1, K), h2 = randomWeight(rng, format, N2, K), h3 = randomWeight(rng, format, N1, K);
  const w1 = uploadHostWeight(ctx, h1), w2 = uploadHostWeight(ctx, h2), w3 = uploadHostWeight(ctx, h3);
  const r1 = reference(h1, x, xOffset, T, int8), r2 = reference(h2, x, xOffset, T, int8), r3 = reference(h3, x, xOffset, T, int8);
  const label = `${format}${int8 ? ' int8' : ''}`;

  // Concatenated: W x → y1 (offset 2), W2 x → y2 (offset 3), one dispatch; == the separate dispatches bit for bit.
  const y1 = poisonedBuffer(ctx, (2 + T * N1) * 4), y2 = poisonedBuffer(ctx, (3 + T * N2) * 4);
  const s1 = poisonedBuffer(ctx, (2 + T * N1) * 4), s2 = poisonedBuffer(ctx, (3 + T * N2) * 4);
  assert.ok(kernel.canShare(w1, w2));
  const both = kernel.bind({ x: xb, xOffset, weight: w1, y: y1, yOffset: 2, rows: T, also: { weight: w2, y: y2, yOffset: 3 } });
  const a = kernel.bind({ x: xb, xOffset, weight: w1, y: s1, yOffset: 2, rows: T });
  const b = kernel.bind({ x: xb, xOffset, weight: w2, y: s2, yOffset: 3, rows: T });
  let dispatches = 0;
  both.encode({ setPipeline() {}, setBindGroup() {}, dispatchWorkgroups: () => void dispatches++ } as unknown as GPUComputePassEncoder);
  assert.equal(dispatches, 1, `${label}: one GEMV dispatch (int8 activations: quantized by the GEMV itself)`);
  submitDispatches(ctx.device, [both, a, b]);
  const [g1, g2, e1, e2] = [await read(ctx, y1, 2 + T * N1), await read(ctx, y2, 3 + T * N2), await read(ctx, s1, 2 + T * N1), await read(ctx, s2, 3 + T * N2)];
  for (let i = 0; i < T * N1; i++) check(`${label} concat y1[${i}]`, g1[2 + i], r1.y[i], r1.tol[i], tag);
  for (let i = 0; i < T * N2; i++) check(`${label} concat y2[${i}]`, g2[3 + i], r2.y[i], r2.tol[i], tag);
  assert.deepEqual(Array.from(g1), Array.from(e1), `${label}: W's rows differ from its own dispatch ${tag}`);
  assert.deepEqual(Array.from(g2), Array.from(e2), `${label}: W2's rows differ from its own dispatch ${tag}`);

  // Gated pair: gelu(W x) ⊙ (W3 x) into rows of stride 40 from offset 1.
  const stride = 40;
  const gy = poisonedBuffer(ctx, (1 + T * stride) * 4);
  const gated = kernel.bind({ x: xb, xOffset, weight: w1, y: s1, rows: T, also: { weight: w3, y: s2 }, gelu: { y: gy, yOffset: 1, rowStride: stride } });
  assert.ok(gated.fusedEpilogue);
  // Vector gate: gelu(W x) ⊙ m, m [T, N1] at offset 4, row stride 50.
  const m = rng.normals(4 + T * 50, 1);
  const vy = poisonedBuffer(ctx, T * N1 * 4);
  const vec = kernel.bind({ x: xb, xOffset, weight: w1, y: s1, rows: T, gelu: { y: vy, mul: { buffer: upload(ctx, m), offset: 4, rowStride: 50 } } });
  submitDispatches(ctx.device, [gated, vec]);
  const [gg, gv] = [await read(ctx, gy, 1 + T * stride), await read(ctx, vy, T * N1)];
  for (let t = 0; t < T; t++) {
    for (let n = 0; n < N1; n++) {
      const i = t * N1 + n;
      const g = r1.y[i], u = r3.y[i], tg = r1.tol[i], tu = r3.tol[i];
      const want = gelu(g) * u;
      check(`${label} gated y[${t}, ${n}]`, gg[1 + t * stride + n], want, 1.13 * Math.abs(u) * tg + Math.abs(gelu(g)) * tu + tg * tu + 1e-6 * Math.abs(want) + 1e-30, tag);
      const mv = m[4 + t * 50 + n];
      check(`${label} vector-gated y[${t}, ${n}]`, gv[i], gelu(g) * mv, Math.abs(mv) * (1.13 * tg + 1e-6 * Math.abs(gelu(g))) + 1e-30, tag);
    }
    // The row-stride gap stays poisoned (nothing written past the rows).
    for (let n = N1; n < stride && t + 1 < T; n++) assert.ok(Number.isNaN(gg[1 + t * stride + n]), `${label}: gated wrote past its rows ${tag}`);
  }

  if (prefill) {
    // T = 5: the GEMM path writes W x and W3 x ungated; the caller gates.
    const P = 5;
    const xp = rng.normals(P * K, 1);
    const py = poisonedBuffer(ctx, P * N1 * 4), pu = poisonedBuffer(ctx, P * N1 * 4), pg = poisonedBuffer(ctx, P * N1 * 4);
    const d = kernel.bind({ x: upload(ctx, xp), weight: w1, y: py, rows: P, also: { weight: w3, y: pu }, gelu: { y: pg } });
    assert.equal(d.path, 'gemm');
    assert.ok(!d.fusedEpilogue);
    submitDispatches(ctx.device, [d]);
    const rp = reference(h1, xp, 0, P, false), ru = reference(h3, xp, 0, P, false);
    const [gp, gu] = [await read(ctx, py, P * N1), await read(ctx, pu, P * N1)];
    for (let i = 0; i < P * N1; i++) {
      check(`${label} prefill y[${i}]`, gp[i], rp.y[i], rp.tol[i], tag);
      check(`${label} prefill also.y[${i}]`, gu[i], ru.y[i], ru.tol[i], tag);
    }
    d.destroy();
  }
  for (const d of [both, a, b, gated, vec]) d.destroy();
}

// The software adapter's shape (gemv_rows, what the models run here) for every format; the GPU shape (gemv, 8 x 32
// threads, epilogue 1 across the workgroup's row halves) for a few (each pipeline costs seconds to compile here).
const SHAPES: Array<[string, MatmulOptions, WeightFormat[], QuantFormat[]]> = [
  ['rows per thread', { gemvRows: 64, gemvLanes: 1 }, [...FLOAT, ...QUANT], QUANT],
  ['8 x 32', { gemvRows: 8, gemvLanes: 32 }, ['f32', 'q4', 'q6k'], ['q4k', 'q5']],
];

for (const [shape, options, floatActs, int8Acts] of SHAPES) {
  test(`fused GEMV (${shape}), f32 activations: two outputs, gelu(W x)·(W2 x), gelu(W x)·m, ${floatActs.join(' ')}; prefill ungated`, async () => {
    const ctx = await testGpu();
    const { rng, tag } = freshRng();
    const kernel = await MatmulKernel.create(ctx, 'f32', floatActs, { ...options, activations: 'f32' });
    for (const format of floatActs) await checkFormat(ctx, kernel, format, rng, tag, shape === 'rows per thread' && (format === 'f32' || format === 'q4k'));
    kernel.destroy();
  });

  test(`fused GEMV (${shape}), int8 activations: the same for ${int8Acts.join(' ')}`, async () => {
    const ctx = await testGpu();
    const { rng, tag } = freshRng();
    const kernel = await MatmulKernel.create(ctx, 'f32', int8Acts, { ...options, activations: 'int8', intDot: 'pack' });
    assert.ok(kernel.int8Activations);
    for (const format of int8Acts) await checkFormat(ctx, kernel, format, rng, tag, false);
    kernel.destroy();
  });
}

test('fused GEMV: refuses what it cannot fuse', async () => {
  const ctx = await testGpu();
  const { rng } = freshRng();
  const kernel = await MatmulKernel.create(ctx, 'f32', ['q4', 'q8'], { activations: 'f32' });
  const x = upload(ctx, rng.normals(80, 1));
  const a = uploadHostWeight(ctx, randomQuantWeight(rng, 'q4', 37, 80));
  const b = uploadHostWeight(ctx, randomQuantWeight(rng, 'q8', 37, 80));
  const split = uploadHostWeight(ctx, randomQuantWeight(rng, 'q4', 70, 80), [36]);
  const c = uploadHostWeight(ctx, randomQuantWeight(rng, 'q4', 70, 80));
  const y = poisonedBuffer(ctx, 4096), y2 = poisonedBuffer(ctx, 4096), g = poisonedBuffer(ctx, 4096);
  assert.ok(!kernel.canShare(a, b) && !kernel.canShare(a, split));
  assert.throws(() => kernel.bind({ x, weight: a, y, rows: 1, also: { weight: b, y: y2 } }), /cannot share this GEMV/);
  assert.throws(() => kernel.bind({ x, weight: a, y, rows: 1, also: { weight: c, y: y2 }, gelu: { y: g } }), /equal rows/);
  assert.throws(() => kernel.bind({ x, weight: a, y, rows: 1, gelu: { y: g } }), /exactly one of also and gelu.mul/);
  assert.throws(() => kernel.bind({ x, weight: a, y, rows: 1, also: { weight: a, y } }), /also.y must not be y/);
  assert.throws(() => kernel.bind({ x, weight: a, y, rows: 1, accumulate: true, also: { weight: a, y: y2 } }), /accumulate/);
  kernel.destroy();
});
