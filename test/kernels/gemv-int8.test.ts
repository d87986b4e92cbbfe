/**
 * Decode GEMV with int8 activations (shaders/matmul.wgsl gemv_rows_int8 / gemv_int8: each workgroup quantizes x
 * into its workgroup memory, chunk by chunk) for every quantized weight format, both integer products (packed
 * two-row multiplies, dot4I8Packed) and both workgroup shapes, against a float64 reference on the exact weights and
 * the exact x. K off the 32-block, one chunk and several (96 blocks per chunk with one token, 24 with 2-4 tokens,
 * the last chunk partial).
 *
 * Tolerance: the only approximation is x rounded to int8 per block of 32 (step sx = absmax / 127, error ≤ sx / 2 per
 * element; the GPU's 127 / absmax is within ~2.5 ulp, so a code may round the other way only when x / sx is within
 * 1e-6 of a half: ≤ sx / 2 · (1 + 1e-5)). The integer sums are exact, then f32 scale products and accumulation. So
 * |y − y_exact| ≤ Σ_k |w_k| · sx_block(k) / 2 · (1 + 1e-5) + 1e-5 · Σ_k |x_k w_k| (the f32 bound of matmul.test.ts).
 * An indexing or packing mistake (a wrong nibble, a lane overflow) breaks this by orders of magnitude. The measured
 * relative RMS error (|y − y_exact| / RMS(y)) is logged: ~0.5 % on normal x (the measurement).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MatmulKernel } from '../../src/kernels/matmul.ts';
import type { QuantFormat } from '../../src/formats/weight-format.ts';
import { K_FORMATS } from '../../src/formats/kquant.ts';
import { submitDispatches } from '../../src/gpu/pipeline.ts';
import { testGpu, poisonedBuffer, upload, download } from '../helpers/gpu.ts';
import { freshRng } from '../helpers/random.ts';
import { uploadHostWeight, decodeRow, randomQuantWeight as randomWeight, type HostWeight } from '../helpers/weights.ts';
import { packQ4, packQ8 } from '../../src/formats/weight-format.ts';

const FORMATS: QuantFormat[] = ['q4', 'q5', 'q8', ...K_FORMATS];

for (const format of FORMATS) {
  test(`int8-activation GEMV ${format}: packed multiply and dot4I8Packed, both shapes, == float64 within the int8 rounding bound`, async () => {
    const ctx = await testGpu();
    const { rng, tag } = freshRng();
    // The software-adapter default (packed multiplies, rows per thread) and the GPU one (dot4I8Packed, 8 x 32) for every
    // format; the other two combinations for q4 and q4k, and packed multiplies in 8 x 32 for q6k too (its rows
    // per thread have a loop of their own) (each pipeline costs seconds to compile here).
    const variants: Array<[string, Parameters<typeof MatmulKernel.create>[3]]> = [
      ['pack, rows', { activations: 'int8', intDot: 'pack', gemvRows: 64, gemvLanes: 1 }],
      ['dot4, 8x32', { activations: 'int8', intDot: 'dot4', gemvRows: 8, gemvLanes: 32 }],
    ];
    if (format === 'q6k') variants.push(['pack, 8x32', { activations: 'int8', intDot: 'pack', gemvRows: 8, gemvLanes: 32 }]);
    if (format === 'q4' || format === 'q4k') {
      variants.push(['dot4, rows', { activations: 'int8', intDot: 'dot4', gemvRows: 64, gemvLanes: 1 }], ['pack, 8x32', { activations: 'int8', intDot: 'pack', gemvRows: 8, gemvLanes: 32 }]);
    }
    // K: whole super-blocks and a partial one (K-quants need K % 32 == 0; 80 pads the last q4/q5/q8 group); the big
    // K spans two chunks with one token (96 + 8 or 35 blocks) and five with three (24 per token and chunk).
    const K = format.endsWith('k') ? 288 : 80;
    const bigK = format.endsWith('k') ? 3328 : 4176;
    for (const [name, options] of variants) {
      const kernel = await MatmulKernel.create(ctx, 'f32', [format], options);
      assert.ok(kernel.int8Activations);
      for (const [Kc, N, T] of [[K, 37, 1], [K, 70, 3], [2048, 40, 1], [bigK, 37, 1], [bigK, 21, 3]] as const) {
        const hw = randomWeight(rng, format, N, Kc);
        const weight = uploadHostWeight(ctx, hw, N > 40 ? [36] : []);
        const x = rng.normals(T * Kc, 1);
        // One block with an outlier: its step is coarse (the "activation outliers" case).
        x[5] = 40;
        const y = poisonedBuffer(ctx, T * N * 4);
        const d = kernel.bind({ x: upload(ctx, x), weight, y, rows: T, path: 'gemv' });
        submitDispatches(ctx.device, [d]);
        const got = new Float32Array(await download(ctx, y, T * N * 4));
        const row = new Float64Array(Kc);
        let se = 0, sy = 0;
        for (let n = 0; n < N; n++) {
          decodeRow(hw, n, row);
          for (let t = 0; t < T; t++) {
            let ref = 0, mag = 0, bound = 0;
            for (let b = 0; b < Kc; b += 32) {
              let amax = 0;
              for (let k = b; k < Math.min(Kc, b + 32); k++) amax = Math.max(amax, Math.abs(x[t * Kc + k]));
              for (let k = b; k < Math.min(Kc, b + 32); k++) {
                ref += row[k] * x[t * Kc + k];
                mag += Math.abs(row[k] * x[t * Kc + k]);
                bound += (Math.abs(row[k]) * amax) / 254;
              }
            }
            const g = got[t * N + n];
            const tol = bound * (1 + 1e-5) + 1e-5 * mag;
            if (!(Math.abs(g - ref) <= tol)) assert.fail(`${format} ${name} K=${Kc} N=${N} T=${T}: y[${t}, ${n}] = ${g}, exact ${ref}, |err| ${Math.abs(g - ref)} > ${tol} ${tag}`);
            se += (g - ref) ** 2;
            sy += ref ** 2;
          }
        }
        if (Kc === 2048) console.log(`# ${format} ${name} 2048->40: relative RMS error of y ${(100 * Math.sqrt(se / sy)).toFixed(3)} % (one outlier block)`);
        d.destroy();
      }
    }
  });
}

// One-hot weights (row n: weight 1 at column n, 0 elsewhere; scale 1) make y[t, n] = sx · c[t, n] exactly (one f32
// product of the block scale and a code), so the staged codes and scales are read back and compared bit for bit with
// the quantization the GEMV defines (and quantize_x, the dispatch it replaces, computed): sx = absmax / 127,
// c = clamp(round_half_even(x · (127 / absmax)), ±127), in f32. Each division may be correctly rounded or a multiply
// by the f32 reciprocal (SwiftShader turns absmax / 127 into absmax · f32(1 / 127)): both are accepted, nothing else.
function oneHot(format: 'q4' | 'q8', N: number): HostWeight {
  const codes = Array.from({ length: N * N }, (_, i) => (format === 'q4' ? 8 : 0) + (i % (N + 1) === 0 ? 1 : 0));
  const d = new Uint16Array(N * Math.ceil(N / 32)).fill(0x3c00);
  const p = format === 'q4' ? packQ4(codes, d, N, N) : packQ8(codes, d, N, N);
  return { format, rows: N, cols: N, data: p.data, scales: p.scales };
}

const roundHalfEven = (v: number) => {
  const r = Math.round(v);
  return r - v === 0.5 && r % 2 !== 0 ? r - 1 : r;
};

test('int8-activation GEMV: the staged codes and scales, bit for bit (ties to even, partial blocks, zero blocks), one dispatch per part', async () => {
  const ctx = await testGpu();
  const { rng, tag } = freshRng();
  for (const [name, options] of [
    ['pack, rows', { activations: 'int8', intDot: 'pack', gemvRows: 64, gemvLanes: 1 }],
    ['dot4, 8x32', { activations: 'int8', intDot: 'dot4', gemvRows: 8, gemvLanes: 32 }],
  ] as const) {
    const kernel = await MatmulKernel.create(ctx, 'f32', ['q4', 'q8'], options);
    for (const format of ['q4', 'q8'] as const) {
      // K = N = 144: 4.5 blocks; T = 3 (a 4-token workgroup) and T = 1, x at an element offset.
      for (const T of [1, 3]) {
        const N = 144, xOffset = 5;
        const x = new Float32Array(xOffset + T * N);
        for (let i = 0; i < x.length; i++) x[i] = rng.normal() * 3;
        // Token 0: block 1 holds exact ties (absmax 127: inv = 1, x = k + 0.5), block 2 is all zero.
        for (let i = 0; i < 32; i++) x[xOffset + 32 + i] = i === 0 ? 127 : ((i * 37) % 200) - 100 + 0.5;
        x.fill(0, xOffset + 64, xOffset + 96);
        const weight = uploadHostWeight(ctx, oneHot(format, N), [64]);
        const y = poisonedBuffer(ctx, T * N * 4);
        const d = kernel.bind({ x: upload(ctx, x), xOffset, weight, y, rows: T, path: 'gemv' });
        let dispatches = 0;
        d.encode({ setPipeline() {}, setBindGroup() {}, dispatchWorkgroups: () => void dispatches++ } as unknown as GPUComputePassEncoder);
        assert.equal(dispatches, 2, 'one GEMV dispatch per weight part, no quantization dispatch');
        submitDispatches(ctx.device, [d]);
        const got = new Float32Array(await download(ctx, y, T * N * 4));
        for (let t = 0; t < T; t++) {
          for (let b = 0; b < N; b += 32) {
            const xs = x.subarray(xOffset + t * N + b, xOffset + t * N + Math.min(N, b + 32));
            const amax = xs.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
            const f = Math.fround;
            const sxs = [f(amax / 127), f(amax * f(1 / 127))];
            const invs = amax > 0 ? [f(127 / amax), f(127 * f(1 / amax))] : [0];
            xs.forEach((v, i) => {
              const codes = invs.map((inv) => Math.min(127, Math.max(-127, roundHalfEven(f(v * inv)))));
              const wants = sxs.flatMap((sx) => codes.map((c) => f(sx * c)));
              const g = got[t * N + b + i];
              if (!wants.some((w) => w === g)) assert.fail(`${name} ${format} T=${T}: x[${t}, ${b + i}] = ${v}: sx·c = ${g}, want one of ${wants} (sx ${sxs}, c ${codes}) ${tag}`);
            });
          }
        }
        d.destroy();
      }
    }
    kernel.destroy();
  }
});
