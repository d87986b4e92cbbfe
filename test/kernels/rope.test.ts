import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RopeKernel, ropeInvFreq } from '../../src/kernels/rope.ts';
import { submitDispatches } from '../../src/gpu/pipeline.ts';
import { testGpu, poisonedBuffer, upload, download, f16SkipReason } from '../helpers/gpu.ts';
import { freshRng } from '../helpers/random.ts';
import { assertClose } from '../helpers/compare.ts';
import { f32ArrayToF16, f16ArrayToF32 } from '../../src/io/half.ts';
import { writeBuffer } from '../../src/gpu/buffers.ts';

/**
 * float64 reference on HF's f32 angles: phi = f32(f32(pos) * inv_freq_f32[i]) (what HF's float32 rotary
 * embedding computes), then cos/sin and the rotation in double. Rotates rows of a [T, rowStride] array in place.
 */
function ropeRef(x: Float32Array, o: { tokens: number; heads: number; dh: number; theta: number; pos0: number; rowStride: number; offset: number }): Float64Array {
  const y = Float64Array.from(x);
  const inv = ropeInvFreq(o.theta, o.dh);
  const half = o.dh / 2;
  for (let t = 0; t < o.tokens; t++) {
    for (let h = 0; h < o.heads; h++) {
      for (let i = 0; i < half; i++) {
        const phi = Math.fround((o.pos0 + t) * inv[i]);
        const c = Math.cos(phi), s = Math.sin(phi);
        const lo = o.offset + t * o.rowStride + h * o.dh + i;
        const x0 = x[lo], x1 = x[lo + half];
        y[lo] = x0 * c - x1 * s;
        y[lo + half] = x1 * c + x0 * s;
      }
    }
  }
  return y;
}

// Our cos/sin are within 1e-7 absolute of the exact values at HF's f32 angle (see the shader header), and the
// f32 rotation adds ~2 roundings of |x|: for |x| <~ 5 the error is < 1e-6; atol 2e-6 + rtol 1e-6 leaves a 2x
// margin without hiding a wrong angle (a 1-ulp angle error at p = 3e4 is already 2e-3 rad).
const TOL = { atol: 2e-6, rtol: 1e-6 };

const cases = [
  { name: 'E2B q heads, sliding, p0=0', tokens: 3, heads: 8, dh: 256, theta: 10_000, pos0: 0 },
  { name: 'E2B k heads, full, p0=30000', tokens: 13, heads: 2, dh: 256, theta: 1_000_000, pos0: 30_000 },
  { name: 'odd shape dh=80, p0=131000', tokens: 5, heads: 3, dh: 80, theta: 10_000, pos0: 131_000 },
  { name: 'prefill T=129 p0=511', tokens: 129, heads: 2, dh: 256, theta: 10_000, pos0: 511 },
];

for (const c of cases) {
  test(`rope f32 ${c.name}`, async () => {
    const ctx = await testGpu();
    const { rng, tag } = freshRng();
    const n = c.tokens * c.heads * c.dh;
    const x = rng.normals(n, 1.5);
    const buf = upload(ctx, x);
    const kernel = await RopeKernel.create(ctx);
    submitDispatches(ctx.device, [kernel.bind({ x: buf, tokens: c.tokens, heads: c.heads, headDim: c.dh, theta: c.theta, pos0: c.pos0 })]);
    const got = new Float32Array(await download(ctx, buf, n * 4));
    const ref = ropeRef(x, { ...c, rowStride: c.heads * c.dh, offset: 0 });
    assertClose(got, ref, { ...TOL, tag: `${tag} ${c.name}` });
  });
}

test('rope f32 inside a fused QKV row (q at 0, k at 8*256), v untouched; setParams rebinds nothing', async () => {
  const ctx = await testGpu();
  const { rng, tag } = freshRng();
  const T = 4, dh = 256, rowStride = 12 * dh;
  const x = rng.normals(T * rowStride, 1);
  const buf = upload(ctx, x);
  const kernel = await RopeKernel.create(ctx);
  const q = kernel.bind({ x: buf, tokens: T, heads: 8, headDim: dh, theta: 1_000_000, rowStride, offset: 0 });
  const k = kernel.bind({ x: buf, tokens: T, heads: 2, headDim: dh, theta: 1_000_000, rowStride, offset: 8 * dh });
  q.setParams(T, 4321);
  k.setParams(T, 4321);
  submitDispatches(ctx.device, [q, k]);
  const got = new Float32Array(await download(ctx, buf, x.byteLength));
  let ref = ropeRef(x, { tokens: T, heads: 8, dh, theta: 1e6, pos0: 4321, rowStride, offset: 0 });
  ref = ropeRef(Float32Array.from(ref), { tokens: T, heads: 2, dh, theta: 1e6, pos0: 4321, rowStride, offset: 8 * dh });
  assertClose(got, ref, { ...TOL, tag });
  for (let t = 0; t < T; t++) {
    for (let i = 10 * dh; i < 12 * dh; i++) assert.equal(got[t * rowStride + i], x[t * rowStride + i], `v changed ${tag}`);
  }

  // Decode step: one token at a new position, same dispatch objects.
  const x1 = rng.normals(rowStride, 1);
  writeBuffer(ctx.device, buf, x1);
  q.setParams(1, 99_999);
  submitDispatches(ctx.device, [q]);
  const got1 = new Float32Array(await download(ctx, buf, rowStride * 4));
  assertClose(got1, ropeRef(x1, { tokens: 1, heads: 8, dh, theta: 1e6, pos0: 99_999, rowStride, offset: 0 }), { ...TOL, tag });
});

/**
 * Partial "proportional" RoPE (Gemma 4 full layers): float64 reference straight from HF's
 * _compute_proportional_rope_parameters — angles i < rotated use theta^(-2i/dh) over the WHOLE head dim (f32 chain
 * as HF), pairs (i, i + dh/2); the other dims must come back bit-identical.
 */
const partialCases = [
  { name: 'E2B full q: H=8 dh=512, 64 of 256 angles, theta 1e6, p0=30000', tokens: 3, heads: 8, dh: 512, rotated: 64, theta: 1_000_000, pos0: 30_000 },
  { name: 'E4B full k: H=2 dh=512, prefill T=67 at p0=509', tokens: 67, heads: 2, dh: 512, rotated: 64, theta: 1_000_000, pos0: 509 },
  { name: 'tiny fixture: dh=32, 4 of 16 angles, odd T=5 H=3', tokens: 5, heads: 3, dh: 32, rotated: 4, theta: 1_000_000, pos0: 11 },
  { name: 'odd: dh=40, 3 of 20 angles, strided row', tokens: 7, heads: 2, dh: 40, rotated: 3, theta: 10_000, pos0: 1000, rowStride: 130, offset: 7 },
];

for (const c of partialCases) {
  test(`rope f32 partial (proportional) ${c.name}`, async () => {
    const ctx = await testGpu();
    const { rng, tag } = freshRng();
    const rowStride = c.rowStride ?? c.heads * c.dh;
    const offset = c.offset ?? 0;
    const n = offset + c.tokens * rowStride;
    const x = rng.normals(n, 1.5);
    const buf = upload(ctx, x);
    const kernel = await RopeKernel.create(ctx);
    submitDispatches(ctx.device, [kernel.bind({ x: buf, tokens: c.tokens, heads: c.heads, headDim: c.dh, theta: c.theta, pos0: c.pos0, rotatedAngles: c.rotated, rowStride, offset })]);
    const got = new Float32Array(await download(ctx, buf, n * 4));
    const f = Math.fround;
    const half = c.dh / 2;
    const ref = Float64Array.from(x);
    for (let t = 0; t < c.tokens; t++) {
      for (let h = 0; h < c.heads; h++) {
        for (let i = 0; i < c.rotated; i++) {
          const inv = f(1 / f(Math.pow(c.theta, f((2 * i) / c.dh))));
          const phi = f((c.pos0 + t) * inv);
          const lo = offset + t * rowStride + h * c.dh + i;
          const x0 = x[lo], x1 = x[lo + half];
          ref[lo] = x0 * Math.cos(phi) - x1 * Math.sin(phi);
          ref[lo + half] = x1 * Math.cos(phi) + x0 * Math.sin(phi);
        }
      }
    }
    assertClose(got, ref, { ...TOL, tag: `${tag} ${c.name}` });
    // Unrotated pairs (and everything outside the heads) are untouched, bit for bit.
    for (let t = 0; t < c.tokens; t++) {
      for (let h = 0; h < c.heads; h++) {
        for (let i = c.rotated; i < half; i++) {
          for (const d of [i, i + half]) {
            const at = offset + t * rowStride + h * c.dh + d;
            assert.equal(got[at], x[at], `${tag}: unrotated element t=${t} h=${h} d=${d} changed`);
          }
        }
      }
    }
    for (let i = 0; i < offset; i++) assert.equal(got[i], x[i], `${tag}: element before the offset changed`);
  });
}

test('rope partial: bad rotatedAngles is refused; the table uses the whole head in the exponent', async () => {
  const ctx = await testGpu();
  const kernel = await RopeKernel.create(ctx);
  const buf = upload(ctx, new Float32Array(64));
  assert.throws(() => kernel.bind({ x: buf, tokens: 1, heads: 2, headDim: 32, theta: 1e6, rotatedAngles: 17 }), /rotatedAngles/);
  assert.throws(() => kernel.bind({ x: buf, tokens: 1, heads: 2, headDim: 32, theta: 1e6, rotatedAngles: 1.5 }), /rotatedAngles/);
  const inv = ropeInvFreq(1e6, 32, 4);
  const f = Math.fround;
  assert.equal(inv[1], f(1 / f(Math.pow(1e6, f(2 / 32)))), 'exponent 2i/dh over the whole head (not 2i/8)');
  assert.deepEqual([...inv.subarray(4)], new Array(12).fill(0));
});

test('rope inv_freq matches HF f32 values', () => {
  const inv = ropeInvFreq(10_000, 256);
  assert.equal(inv[0], 1);
  // theta^(-2*64/256) = 10000^-0.5 = 0.01 exactly in real arithmetic; HF's f32 chain gives fround(0.01).
  assert.equal(inv[64], Math.fround(0.01));
  assert.equal(inv.length, 128);
});

test('rope f16 variant', async (t) => {
  const skip = await f16SkipReason();
  if (skip) return t.skip(skip);
  const ctx = await testGpu();
  const { rng, tag } = freshRng();
  const T = 7, heads = 8, dh = 256;
  const xh = f32ArrayToF16(rng.normals(T * heads * dh, 1.5));
  const buf = upload(ctx, xh);
  const kernel = await RopeKernel.create(ctx, 'f16');
  submitDispatches(ctx.device, [kernel.bind({ x: buf, tokens: T, heads, headDim: dh, theta: 10_000, pos0: 20_000 })]);
  const got = f16ArrayToF32(new Uint16Array(await download(ctx, buf, xh.byteLength)));
  // f16 output rounding: 2^-11 relative of values up to ~8.
  assertClose(got, ropeRef(f16ArrayToF32(xh), { tokens: T, heads, dh, theta: 1e4, pos0: 20_000, rowStride: heads * dh, offset: 0 }), { atol: 4e-3, rtol: 1e-3, tag });
});

/** float64 per-head RMSNorm (times w) of every head row of a [T, heads * dh] block, the rest copied. */
function headNormRef(x: Float32Array, o: { tokens: number; heads: number; dh: number; rowStride: number; offset: number }, w: Float32Array, eps: number): Float64Array {
  const y = Float64Array.from(x);
  for (let t = 0; t < o.tokens; t++) {
    for (let h = 0; h < o.heads; h++) {
      const base = o.offset + t * o.rowStride + h * o.dh;
      let ss = 0;
      for (let i = 0; i < o.dh; i++) ss += x[base + i] ** 2;
      const inv = 1 / Math.sqrt(ss / o.dh + eps);
      for (let i = 0; i < o.dh; i++) y[base + i] = x[base + i] * inv * w[i];
    }
  }
  return y;
}

// q_norm + RoPE in one dispatch (the decoder's q path): E2B's q heads at a large position, and an odd head dim in a
// strided row whose other elements must come back bit for bit.
const normCases = [
  { name: 'E2B q: H=8 dh=256, p0=30000', tokens: 3, heads: 8, dh: 256, theta: 1_000_000, pos0: 30_000, rowStride: 8 * 256, offset: 0 },
  { name: 'odd: H=3 dh=80, strided row, T=9', tokens: 9, heads: 3, dh: 80, theta: 10_000, pos0: 77, rowStride: 250, offset: 6 },
];

for (const c of normCases) {
  test(`rope f32 with the per-head norm: ${c.name}`, async () => {
    const ctx = await testGpu();
    const { rng, tag } = freshRng();
    const n = c.offset + c.tokens * c.rowStride;
    const x = rng.normals(n, 40); // unnormed projections (the norm must bring them to ~|w|)
    const w = rng.normals(c.dh, 1);
    const buf = upload(ctx, x);
    const kernel = await RopeKernel.create(ctx);
    submitDispatches(ctx.device, [kernel.bind({ x: buf, tokens: c.tokens, heads: c.heads, headDim: c.dh, theta: c.theta, pos0: c.pos0, rowStride: c.rowStride, offset: c.offset, norm: { weight: upload(ctx, w), eps: 1e-6 } })]);
    const got = new Float32Array(await download(ctx, buf, n * 4));
    const normed = headNormRef(x, c, w, 1e-6);
    // The rotation of the normed values: their f32 rounding (~1e-7 relative of |w|·|x̂| <~ 4) and the norm's own
    // (~1e-6 relative) on top of rope's tolerance.
    assertClose(got, ropeRef(Float32Array.from(normed), c), { atol: 1e-5, rtol: 5e-6, tag: `${tag} ${c.name}` });
    for (let t = 0; t < c.tokens; t++) {
      for (let e = c.heads * c.dh; e < c.rowStride; e++) assert.equal(got[c.offset + t * c.rowStride + e], x[c.offset + t * c.rowStride + e], `${tag}: element outside the heads changed`);
    }
  });
}
