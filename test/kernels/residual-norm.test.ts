import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ResidualNormKernel } from '../../src/kernels/residual-norm.ts';
import { submitDispatches } from '../../src/gpu/pipeline.ts';
import { testGpu, poisonedBuffer, upload, download } from '../helpers/gpu.ts';
import { freshRng, type Rng } from '../helpers/random.ts';
import { assertClose } from '../helpers/compare.ts';

const EPS = 1e-6;

/** float64 RMSNorm of row t (width dim, at element offset off) times w. */
function normRow(a: Float32Array, off: number, t: number, dim: number, w: Float32Array): Float64Array {
  let ss = 0;
  for (let d = 0; d < dim; d++) ss += a[off + t * dim + d] ** 2;
  const inv = 1 / Math.sqrt(ss / dim + EPS);
  return Float64Array.from({ length: dim }, (_, d) => a[off + t * dim + d] * inv * w[d]);
}

interface Case {
  name: string;
  T: number;
  dim: number;
  x2: boolean;
  plain: boolean;
  scale: boolean;
  inPlace: boolean;
  count: number;
  out: boolean;
  alpha: number;
  beta: number;
  /** out is the 4 dots P·RMSNorm(row) per token (Gemma 3n's router logits), with a [5, dim] weight (w, then P). */
  projected?: boolean;
}

// The model's uses at E2B's D = 2048 (Gemma 3n's attention/LAuReL combine, its PLE branch into 3 streams; Gemma 4's
// in-place add with a layer scalar and the next norm), plus widths off the 256-thread workgroup.
const cases: Case[] = [
  { name: 'combine (x, x2, plain, base, out)', T: 3, dim: 2048, x2: true, plain: true, scale: false, inPlace: false, count: 1, out: true, alpha: Math.SQRT1_2, beta: Math.SQRT1_2 },
  { name: 'three streams in place', T: 5, dim: 1000, x2: false, plain: false, scale: false, inPlace: true, count: 3, out: false, alpha: 1, beta: 1 },
  { name: 'streams 1..3 in place', T: 4, dim: 2048, x2: false, plain: false, scale: false, inPlace: true, count: 3, out: false, alpha: 1, beta: 1 },
  { name: 'in place, scale, out', T: 7, dim: 33, x2: false, plain: false, scale: true, inPlace: true, count: 1, out: true, alpha: 1, beta: 1 },
  { name: 'base, out, one token', T: 1, dim: 2048, x2: false, plain: false, scale: false, inPlace: false, count: 1, out: true, alpha: 1, beta: 1 },
  { name: 'base, projected out (router logits)', T: 3, dim: 2048, x2: false, plain: false, scale: false, inPlace: false, count: 1, out: true, alpha: 1, beta: 1, projected: true },
  { name: 'in place, projected out', T: 7, dim: 333, x2: false, plain: false, scale: false, inPlace: true, count: 1, out: true, alpha: 1, beta: 1, projected: true },
];

function rows(rng: Rng, n: number, scale: number): Float32Array {
  return rng.normals(n, scale);
}

for (const c of cases) {
  test(`residual-norm: ${c.name} T=${c.T} dim=${c.dim}`, async () => {
    const ctx = await testGpu();
    const { rng, tag } = freshRng();
    const { T, dim } = c;
    const n = T * dim;
    // xs: x at 0, x2 after a gap (offsets off the row), plain after that. Residual-sized values (Gemma's reach 1e2).
    const xOff = 5, x2Off = xOff + n + 3, plainOff = x2Off + n + 7;
    const xs = rows(rng, plainOff + n, 3);
    const stride = c.count > 1 ? T * dim + 11 : 0;
    const yOff = 2;
    const yLen = yOff + (c.count - 1) * stride + n;
    const base = rows(rng, yLen, 100);
    const [wx, wx2, s] = [0, 1, 2].map(() => rng.normals(dim, 1));
    const wout = rng.normals(c.projected ? 5 * dim : dim, 1); // projected: the norm weight, then P's 4 rows
    const outOff = 4;

    const kernel = await ResidualNormKernel.create(ctx);
    const y = c.inPlace ? upload(ctx, base, 'y') : poisonedBuffer(ctx, yLen * 4);
    const out = poisonedBuffer(ctx, (outOff + n) * 4);
    const d = kernel.bind({
      dim, eps: EPS, tokens: T, xs: upload(ctx, xs),
      x: { offset: xOff, weight: upload(ctx, wx) },
      x2: c.x2 ? { offset: x2Off, weight: upload(ctx, wx2) } : undefined,
      plain: c.plain ? plainOff : undefined,
      alpha: c.alpha, beta: c.beta,
      scale: c.scale ? upload(ctx, s) : undefined,
      base: c.inPlace ? undefined : { buffer: upload(ctx, base), offset: yOff },
      y: { buffer: y, offset: yOff }, count: c.count, streamStride: stride,
      out: c.out ? { buffer: out, offset: outOff, weight: upload(ctx, wout), projected: c.projected } : undefined,
    });
    submitDispatches(ctx.device, [d]);

    const yRef = Float64Array.from(base);
    for (let t = 0; t < T; t++) {
      const nx = normRow(xs, xOff, t, dim, wx);
      const nx2 = c.x2 ? normRow(xs, x2Off, t, dim, wx2) : undefined;
      for (let i = 0; i < c.count; i++) {
        for (let e = 0; e < dim; e++) {
          const at = yOff + i * stride + t * dim + e;
          let h = base[at] + nx[e] + (c.plain ? xs[plainOff + t * dim + e] : 0);
          h = c.alpha * h + (nx2 ? c.beta * nx2[e] : 0);
          yRef[at] = c.scale ? h * s[e] : h;
        }
      }
    }
    const gotY = new Float32Array(await download(ctx, y, yLen * 4));
    // Untouched elements (before y_off, stream gaps) must keep what was there: poison (NaN) when y is a separate
    // output, the base when in place; compare only the written rows.
    const idx: number[] = [];
    for (let i = 0; i < c.count; i++) for (let e = 0; e < n; e++) idx.push(yOff + i * stride + e);
    // Residual magnitude ~1e2 plus normed terms ~3: f32 rounding of the sum, a few ulps of 1e2 (~1e-5 each).
    assertClose(idx.map((i) => gotY[i]), idx.map((i) => yRef[i]), { atol: 1e-4, rtol: 1e-5, tag: `${tag} y ${c.name}` });
    if (c.out && c.projected) {
      const gotOut = new Float32Array(await download(ctx, out, (outOff + n) * 4));
      const y32 = Float32Array.from(yRef.subarray(0, yOff + n));
      const ref = new Float64Array(T * 4), mag = new Float64Array(T * 4);
      for (let t = 0; t < T; t++) {
        const normed = normRow(y32, yOff, t, dim, wout);
        for (let k = 0; k < 4; k++) {
          for (let e = 0; e < dim; e++) {
            const term = wout[(1 + k) * dim + e] * normed[e];
            ref[t * 4 + k] += term;
            mag[t * 4 + k] += Math.abs(term);
          }
        }
      }
      // f32 dots of dim terms (a thread's strided sum, then the 8-level tree) and the norm: within ~16 roundings of
      // the terms' absolute sum, so the error over that sum stays below 2e-6 (a wrong row or weight is O(1) there).
      assertClose(Float64Array.from(gotOut.subarray(outOff, outOff + T * 4), (v, i) => v / mag[i]), ref.map((v, i) => v / mag[i]), { atol: 2e-6, tag: `${tag} logits ${c.name}` });
      assert.ok(gotOut.subarray(0, outOff).every(Number.isNaN) && gotOut.subarray(outOff + T * 4).every(Number.isNaN), `${tag} logits written outside [T, 4]`);
    } else if (c.out) {
      const gotOut = new Float32Array(await download(ctx, out, (outOff + n) * 4)).subarray(outOff);
      const y32 = Float32Array.from(yRef.subarray(0, yOff + n));
      const outRef = new Float64Array(n);
      for (let t = 0; t < T; t++) outRef.set(normRow(y32, yOff, t, dim, wout), t * dim);
      // A norm of f32 rows: relative error ~1e-6 of |w| ~ 1 (inputs rounded to f32 before the norm, as the kernel's y).
      assertClose(gotOut, outRef, { atol: 3e-5, rtol: 3e-5, tag: `${tag} out ${c.name}` });
    }
  });
}

test('residual-norm rejects an out with several targets and aliasing', async () => {
  const ctx = await testGpu();
  const kernel = await ResidualNormKernel.create(ctx);
  const b = (n: number) => poisonedBuffer(ctx, n * 4);
  const w = b(8), xs = b(64), y = b(64);
  const assertThrows = (f: () => unknown, re: RegExp) => {
    try {
      f();
    } catch (e) {
      if (!re.test((e as Error).message)) throw e;
      return;
    }
    throw new Error(`expected ${re}`);
  };
  assertThrows(() => kernel.bind({ dim: 8, eps: EPS, tokens: 1, xs, x: { weight: w }, y: { buffer: y }, count: 2, streamStride: 8, out: { buffer: b(8), weight: w } }), /single target/);
  assertThrows(() => kernel.bind({ dim: 8, eps: EPS, tokens: 1, xs, x: { weight: w }, y: { buffer: y }, out: { buffer: b(8), weight: w, projected: true } }), /needs 40/);
  assertThrows(() => kernel.bind({ dim: 8, eps: EPS, tokens: 1, xs: y, x: { weight: w }, y: { buffer: y } }), /must not be the output/);
  assertThrows(() => kernel.bind({ dim: 8, eps: EPS, tokens: 9, xs, x: { weight: w }, y: { buffer: y } }), /xs \(x\) holds 64 floats, needs 72/);
});
