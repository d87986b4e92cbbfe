/**
 * Decode GEMV with int8 activations (shaders/matmul.wgsl quantize_x + gemv_rows / gemv with ACT = 1) for every
 * quantized weight format, both integer products (packed two-row multiplies, dot4I8Packed) and both workgroup
 * shapes, against a float64 reference on the exact weights and the exact x.
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
import { uploadHostWeight, decodeRow, randomQuantWeight as randomWeight } from '../helpers/weights.ts';

const FORMATS: QuantFormat[] = ['q4', 'q5', 'q8', ...K_FORMATS];

for (const format of FORMATS) {
  test(`int8-activation GEMV ${format}: packed multiply and dot4I8Packed, both shapes, == float64 within the int8 rounding bound`, async () => {
    const ctx = await testGpu();
    const { rng, tag } = freshRng();
    // The software-adapter default (packed multiplies, rows per thread) and the GPU one (dot4I8Packed, 8 x 32) for every
    // format; the other two combinations for q4 and q4k (each pipeline costs seconds to compile here).
    const variants: Array<[string, Parameters<typeof MatmulKernel.create>[3]]> = [
      ['pack, rows', { activations: 'int8', intDot: 'pack', gemvRows: 64, gemvLanes: 1 }],
      ['dot4, 8x32', { activations: 'int8', intDot: 'dot4', gemvRows: 8, gemvLanes: 32 }],
    ];
    if (format === 'q4' || format === 'q4k') {
      variants.push(['dot4, rows', { activations: 'int8', intDot: 'dot4', gemvRows: 64, gemvLanes: 1 }], ['pack, 8x32', { activations: 'int8', intDot: 'pack', gemvRows: 8, gemvLanes: 32 }]);
    }
    // K: whole super-blocks and a partial one (K-quants need K % 32 == 0; 80 pads the last q4/q5/q8 group).
    const K = format.endsWith('k') ? 288 : 80;
    for (const [name, options] of variants) {
      const kernel = await MatmulKernel.create(ctx, 'f32', [format], options);
      assert.ok(kernel.int8Activations);
      for (const [Kc, N, T] of [[K, 37, 1], [K, 70, 3], [2048, 40, 1]] as const) {
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

test('int8-activation GEMVs over one x share its quantization (sharesQuantizedX): same y bit for bit, one quantize_x', async () => {
  const ctx = await testGpu();
  const { rng, tag } = freshRng();
  const kernel = await MatmulKernel.create(ctx, 'f32', ['q4', 'q8'], { activations: 'int8' });
  assert.ok(kernel.int8Activations);
  // x at an element offset of a bigger buffer (the forward's shared rows), T = 3 tokens, K off the 32-block.
  const T = 3, K = 80, xOffset = 7;
  const x = upload(ctx, rng.normals(xOffset + T * K, 2));
  const wa = uploadHostWeight(ctx, randomWeight(rng, 'q4', 37, K), []);
  const wb = uploadHostWeight(ctx, randomWeight(rng, 'q8', 70, K), [36]);
  const ya = poisonedBuffer(ctx, T * 37 * 4), yb = poisonedBuffer(ctx, T * 70 * 4), yAlone = poisonedBuffer(ctx, T * 70 * 4);
  const a = kernel.bind({ x, xOffset, weight: wa, y: ya, rows: T });
  const b = kernel.bind({ x, xOffset, weight: wb, y: yb, rows: T, sharesQuantizedX: a });
  const alone = kernel.bind({ x, xOffset, weight: wb, y: yAlone, rows: T });
  let dispatches = 0;
  const counting = { setPipeline() {}, setBindGroup() {}, dispatchWorkgroups: () => void dispatches++ } as unknown as GPUComputePassEncoder;
  b.encode(counting);
  assert.equal(dispatches, 2, 'b: its two weight parts, no quantize_x');
  submitDispatches(ctx.device, [a, b, alone]);
  const got = new Float32Array(await download(ctx, yb, T * 70 * 4));
  const want = new Float32Array(await download(ctx, yAlone, T * 70 * 4));
  assert.ok(want.every(Number.isFinite), `the unshared GEMV left poison ${tag}`);
  assert.deepEqual(Array.from(got), Array.from(want), `shared quantized x changed y ${tag}`);
  assert.throws(() => kernel.bind({ x, xOffset: 0, weight: wb, y: yb, rows: T, sharesQuantizedX: a }), /sharesQuantizedX quantized another x/);
});
