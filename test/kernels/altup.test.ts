import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AltUpKernel } from '../../src/kernels/altup.ts';
import { submitDispatches } from '../../src/gpu/pipeline.ts';
import { testGpu, poisonedBuffer, upload, download } from '../helpers/gpu.ts';
import { freshRng, type Rng } from '../helpers/random.ts';
import { assertClose } from '../helpers/compare.ts';

// Error model for all AltUp checks: every output is a short f32 expression (<= ~10 roundings) of terms whose
// absolute sum is M (computed alongside the float64 reference); tanh is within ~3 ulp. So |error| <= ~16 ulp
// of M = 1e-6 * M (for coefficient sums, M uses sum |W m| since those sums may cancel). We compare err / M
// against atol 1e-6; a wrong coefficient, orientation or +1 is O(1) there.
function assertScaled(got: ArrayLike<number>, ref: Float64Array, mag: Float64Array, tag: string, tol = 1e-6) {
  const a = Float64Array.from(got, (v, i) => v / mag[i]);
  const e = Float64Array.from(ref, (v, i) => v / mag[i]);
  assertClose(a, e, { atol: tol, tag });
}

/** Streams [4][cap][D] with Gemma-like magnitudes (stream 0 ~ 30, others ~ 5-60), unused capacity poisoned-ish. */
function makeStreams(rng: Rng, cap: number, T: number, D: number): Float32Array {
  const x = new Float32Array(4 * cap * D).fill(NaN);
  for (let i = 0; i < 4; i++) x.set(rng.normals(T * D, [30, 5, 60, 12][i]), i * cap * D);
  return x;
}

/** float64 router logits r[t, k] = W_r · RMSNorm_{w_r}(x_0[t]) from a router table [5, D], and Σ_d |terms| per logit. */
function routerLogitsRef(x0: Float32Array, table: Float32Array, T: number, D: number, eps = 1e-6): { r: Float64Array; rMag: Float64Array } {
  const r = new Float64Array(T * 4), rMag = new Float64Array(T * 4);
  for (let t = 0; t < T; t++) {
    let ss = 0;
    for (let d = 0; d < D; d++) ss += x0[t * D + d] ** 2;
    const inv = 1 / Math.sqrt(ss / D + eps);
    for (let k = 0; k < 4; k++) {
      for (let d = 0; d < D; d++) {
        const term = table[(1 + k) * D + d] * x0[t * D + d] * inv * table[d];
        r[t * 4 + k] += term;
        rMag[t * 4 + k] += Math.abs(term);
      }
    }
  }
  return { r, rMag };
}

function routerRef(r: Float32Array, t: number, D: number): number[] {
  return [0, 1, 2, 3].map((k) => Math.tanh(Math.fround(r[t * 4 + k] * Math.fround(1 / D))));
}

const shapes = [
  { T: 3, D: 2048, cap: 4 },
  { T: 13, D: 80, cap: 16 },
];

for (const { T, D, cap } of shapes) {
  test(`altup router + predict + input norm T=${T} D=${D} (capacity ${cap}), with and without coef clip`, async () => {
    const ctx = await testGpu();
    const { rng, tag } = freshRng();
    const ss = cap * D;
    const x = makeStreams(rng, cap, T, D);
    // Router table [5, D]: w_r, then W_r. Rows of 0.7·√D make r = W_r·RMSNorm(x_0) ~ 0.7·D, so r / D spans both
    // branches of our tanh.
    const table = new Float32Array(5 * D);
    table.set(rng.normals(D, 1));
    table.set(rng.normals(4 * D, 0.7 * Math.sqrt(D)), D);
    const { r, rMag } = routerLogitsRef(x, table, T, D);
    const W = rng.normals(64, 0.7);
    W[5] = 200; W[17] = -300; // beyond HF's clip of 120
    const kernel = await AltUpKernel.create(ctx);
    const xBuf = upload(ctx, x), tableBuf = upload(ctx, table), wBuf = upload(ctx, W);
    const normW = rng.normals(D, 1);
    const normAt = 3; // n sits at an element offset of its buffer (the forward's shared block)
    for (const clip of [undefined, 120]) {
      const out = poisonedBuffer(ctx, 4 * ss * 4);
      const normed = poisonedBuffer(ctx, (normAt + T * D + 1) * 4);
      const norm = { weight: upload(ctx, normW), eps: 1e-6, out: normed, offset: normAt };
      submitDispatches(ctx.device, [kernel.bindPredict({ streams: xBuf, routerTable: tableBuf, coefs: wBuf, out, tokens: T, dim: D, streamStride: ss, coefClip: clip, norm })]);
      const got = new Float32Array(await download(ctx, out, 4 * ss * 4));
      // n = RMSNorm_w(x̂_0) of the x̂_0 the kernel wrote (itself checked below): f64 norm, tolerance as the rmsnorm test's.
      const gotN = new Float32Array(await download(ctx, normed, (normAt + T * D + 1) * 4));
      const refN = new Float64Array(T * D);
      for (let t = 0; t < T; t++) {
        let sq = 0;
        for (let d = 0; d < D; d++) sq += got[t * D + d] ** 2;
        const inv = 1 / Math.sqrt(sq / D + 1e-6);
        for (let d = 0; d < D; d++) refN[t * D + d] = got[t * D + d] * inv * normW[d];
      }
      assertClose(gotN.subarray(normAt, normAt + T * D), refN, { atol: 2e-5, rtol: 2e-5, tag: `${tag} n clip=${clip}` });
      assert.ok(Number.isNaN(gotN[normAt + T * D]) && Number.isNaN(gotN[0]), `n written outside its rows ${tag}`);
      const ref = new Float64Array(4 * T * D), mag = new Float64Array(4 * T * D), act = new Float32Array(4 * T * D);
      for (let t = 0; t < T; t++) {
        const m = [0, 1, 2, 3].map((k) => Math.tanh(r[t * 4 + k] / D));
        const wc = (j: number, k: number) => (clip ? Math.max(-clip, Math.min(clip, W[j * 4 + k])) : W[j * 4 + k]);
        const c = Array.from({ length: 16 }, (_, j) => [0, 1, 2, 3].reduce((s, k) => s + wc(j, k) * m[k], 0));
        // The coefficients' own error scales with sum |W m|, not |c| (their sums can cancel); the kernel's logits, f32
        // dots of D terms (≤ ~16 roundings each on the workgroup's path), are within 2e-6 of their absolute sum rMag,
        // so tanh(r / D) moves by ≤ 2e-6 rMag / D: that term enters at 2 rMag / D per unit of the 1e-6 scale.
        const cMag = Array.from({ length: 16 }, (_, j) => [0, 1, 2, 3].reduce((s, k) => s + Math.abs(wc(j, k)) * (Math.abs(m[k]) + (2 * rMag[t * 4 + k]) / D), 0));
        for (let d = 0; d < D; d++) {
          const xs = [0, 1, 2, 3].map((k) => x[k * ss + t * D + d]);
          for (let i = 0; i < 4; i++) {
            const o = i * T * D + t * D + d;
            ref[o] = xs[i] + [0, 1, 2, 3].reduce((s, k) => s + c[4 * i + k] * xs[k], 0);
            mag[o] = Math.abs(xs[i]) + [0, 1, 2, 3].reduce((s, k) => s + cMag[4 * i + k] * Math.abs(xs[k]), 0);
            act[o] = got[i * ss + t * D + d];
          }
        }
      }
      assertScaled(act, ref, mag, `${tag} clip=${clip}`);
      for (let i = 0; i < 4; i++) assert.ok(Number.isNaN(got[i * ss + T * D]), `wrote beyond T ${tag}`);
    }
  });

  test(`altup correct T=${T} D=${D} (+1 on the coefficients, u = x~_0 * s)`, async () => {
    const ctx = await testGpu();
    const { rng, tag } = freshRng();
    const ss = cap * D;
    const xh = makeStreams(rng, cap, T, D);
    const g = rng.normals(T * D, 40);
    const r = rng.normals(T * 4, 1500);
    const W = rng.normals(16, 0.7);
    W[6] = -500;
    const s = rng.normals(D, 1);
    const kernel = await AltUpKernel.create(ctx);
    const out = poisonedBuffer(ctx, 4 * ss * 4);
    const u = poisonedBuffer(ctx, T * D * 4);
    const d0 = kernel.bindCorrect({
      predicted: upload(ctx, xh), activated: upload(ctx, g), router: upload(ctx, r), coefs: upload(ctx, W), out,
      outputScale: upload(ctx, s), scaledOut: u, tokens: T, dim: D, streamStride: ss, coefClip: 120,
    });
    d0.setTokens(1);
    d0.setTokens(T);
    submitDispatches(ctx.device, [d0]);
    const got = new Float32Array(await download(ctx, out, 4 * ss * 4));
    const gotU = new Float32Array(await download(ctx, u, T * D * 4));
    const ref = new Float64Array(5 * T * D), mag = new Float64Array(5 * T * D), act = new Float32Array(5 * T * D);
    for (let t = 0; t < T; t++) {
      const m = routerRef(r, t, D);
      const wc = (i: number, j: number) => Math.max(-120, Math.min(120, W[i * 4 + j]));
      const kc = [0, 1, 2, 3].map((i) => [0, 1, 2, 3].reduce((acc, j) => acc + wc(i, j) * m[j], 0) + 1);
      const kMag = [0, 1, 2, 3].map((i) => [0, 1, 2, 3].reduce((acc, j) => acc + Math.abs(wc(i, j) * m[j]), 0) + 1);
      for (let d = 0; d < D; d++) {
        const x0 = xh[t * D + d], delta = g[t * D + d] - x0;
        for (let i = 0; i < 4; i++) {
          const o = i * T * D + t * D + d, xi = xh[i * ss + t * D + d];
          ref[o] = xi + kc[i] * delta;
          mag[o] = Math.abs(xi) + kMag[i] * (Math.abs(g[t * D + d]) + Math.abs(x0));
          act[o] = got[i * ss + t * D + d];
        }
        const o = 4 * T * D + t * D + d;
        ref[o] = ref[t * D + d] * s[d];
        mag[o] = mag[t * D + d] * Math.abs(s[d]);
        act[o] = gotU[t * D + d];
      }
    }
    assertScaled(act, ref, mag, tag);
  });

  test(`altup rescale T=${T} D=${D}: stream init (ref = stream 0, in place) and final mean (separate ref)`, async () => {
    const ctx = await testGpu();
    const { rng, tag } = freshRng();
    const ss = cap * D;
    const x = makeStreams(rng, cap, T, D);
    // Row 0 of stream 3 all zero and row 0 of stream 1 tiny: both hit the 1e-5 floor on mean(y^2).
    x.fill(0, 3 * ss, 3 * ss + D);
    for (let d = 0; d < D; d++) x[ss + d] = 1e-3 * rng.normal();
    const rescaleRef = (ref: (t: number, d: number) => number, y: (i: number, t: number, d: number) => number) => {
      const out = new Float64Array(3 * T * D);
      for (let t = 0; t < T; t++) {
        let s0 = 0;
        for (let d = 0; d < D; d++) s0 += ref(t, d) ** 2;
        for (let i = 0; i < 3; i++) {
          let si = 0;
          for (let d = 0; d < D; d++) si += y(i, t, d) ** 2;
          const f = Math.sqrt(s0 / D) / Math.sqrt(Math.max(si / D, 1e-5));
          for (let d = 0; d < D; d++) out[i * T * D + t * D + d] = y(i, t, d) * f;
        }
      }
      return out;
    };
    const kernel = await AltUpKernel.create(ctx);

    // Stream init: targets 1..3 in place, ref = stream 0 of the same buffer.
    const buf = upload(ctx, x);
    submitDispatches(ctx.device, [kernel.bindRescale({ streams: buf, tokens: T, dim: D, streamStride: ss })]);
    const got = new Float32Array(await download(ctx, buf, 4 * ss * 4));
    const ref = rescaleRef((t, d) => x[t * D + d], (i, t, d) => x[(i + 1) * ss + t * D + d]);
    const act = new Float32Array(3 * T * D);
    for (let i = 0; i < 3; i++) for (let t = 0; t < T; t++) act.set(got.subarray((i + 1) * ss + t * D, (i + 1) * ss + t * D + D), i * T * D + t * D);
    // f32 sums of D squares (tree) carry <= ~log2(D) ulp: 2e-6 relative.
    assertClose(act, ref, { atol: 0, rtol: 2e-6, tag: `${tag} init` });
    assert.deepEqual(Array.from(got.subarray(0, T * D)), Array.from(x.subarray(0, T * D)), 'stream 0 changed');

    // Final merge: ref in its own buffer at an offset, targets read from streams 1..3, mean written out.
    const refRows = rng.normals(7 + T * D, 25);
    const mean = poisonedBuffer(ctx, T * D * 4);
    const buf2 = upload(ctx, x);
    submitDispatches(ctx.device, [kernel.bindRescale({ streams: buf2, ref: upload(ctx, refRows), refOffset: 7, mean, tokens: T, dim: D, streamStride: ss })]);
    const gotMean = new Float32Array(await download(ctx, mean, T * D * 4));
    const resc = rescaleRef((t, d) => refRows[7 + t * D + d], (i, t, d) => x[(i + 1) * ss + t * D + d]);
    const meanRef = new Float64Array(T * D), mag = new Float64Array(T * D);
    for (let j = 0; j < T * D; j++) {
      meanRef[j] = (refRows[7 + j] + resc[j] + resc[T * D + j] + resc[2 * T * D + j]) / 4;
      mag[j] = (Math.abs(refRows[7 + j]) + Math.abs(resc[j]) + Math.abs(resc[T * D + j]) + Math.abs(resc[2 * T * D + j])) / 4;
    }
    assertScaled(gotMean, meanRef, mag, `${tag} mean`, 2e-6);
    assert.deepEqual(Array.from(new Float32Array(await download(ctx, buf2, 4 * ss * 4))).map(String), Array.from(x).map(String), 'streams changed in mean mode');
  });
}

test('altup PLE combine: E2B 30 layers x 256, T=3 and an odd 5 x 80 case', async () => {
  const ctx = await testGpu();
  const { rng, tag } = freshRng();
  const kernel = await AltUpKernel.create(ctx);
  for (const { T, L, n, D } of [{ T: 3, L: 30, n: 256, D: 2048 }, { T: 13, L: 5, n: 80, D: 80 }]) {
    const proj = rng.normals(T * L * n, 40); // W_plmp e before the D^-1/2 scale
    const ztok = rng.normals(T * L * n, 16 * 0.05);
    const w = rng.normals(n, 1);
    const z = upload(ctx, ztok);
    const pre = D ** -0.5;
    submitDispatches(ctx.device, [kernel.bindPleCombine({ proj: upload(ctx, proj), weight: upload(ctx, w), z, tokens: T, layers: L, dim: n, preScale: pre })]);
    const got = new Float32Array(await download(ctx, z, T * L * n * 4));
    const ref = new Float64Array(T * L * n), mag = new Float64Array(T * L * n);
    for (let row = 0; row < T * L; row++) {
      let s = 0;
      for (let j = 0; j < n; j++) s += (pre * proj[row * n + j]) ** 2;
      const inv = 1 / Math.sqrt(s / n + 1e-6);
      for (let j = 0; j < n; j++) {
        const a = pre * proj[row * n + j] * inv * w[j], b = ztok[row * n + j];
        ref[row * n + j] = (a + b) * Math.SQRT1_2;
        mag[row * n + j] = (Math.abs(a) + Math.abs(b)) * Math.SQRT1_2;
      }
    }
    assertScaled(got, ref, mag, `${tag} L=${L} n=${n}`, 2e-6);
  }
});
