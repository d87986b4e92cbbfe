import { test } from 'node:test';
import { ConformerNormKernel, AUDIO_TOWER_NORM_VARIANTS, type ConformerNormVariant } from '../../src/kernels/conformer-norm.ts';
import { submitDispatches } from '../../src/gpu/pipeline.ts';
import { testGpu, poisonedBuffer, upload, download } from '../helpers/gpu.ts';
import { freshRng } from '../helpers/random.ts';
import { assertClose } from '../helpers/compare.ts';

interface Case extends ConformerNormVariant {
  rows: number;
  dim: number;
  stride: number;
  clip?: number;
  alpha?: number;
}

/** float64 reference of shaders/conformer-norm.wgsl: returns the expected y (or x for inPlace) and x after. */
function reference(c: Case, x: Float32Array, w: Float32Array, m: Uint32Array, y0: Float32Array, eps: number): { y: Float64Array; x: Float64Array } {
  const xAfter = Float64Array.from(x);
  const y = Float64Array.from(y0);
  const clip = c.clip ?? Infinity;
  for (let r = 0; r < c.rows; r++) {
    const keep = (c.mask ?? 'none') === 'none' || m[r] !== 0;
    const v = Array.from({ length: c.dim }, (_, i) => Math.min(clip, Math.max(-clip, keep ? x[r * c.stride + i] : 0)));
    const inv = 1 / Math.sqrt(v.reduce((s, a) => s + a * a, 0) / c.dim + eps);
    for (let i = 0; i < c.dim; i++) {
      let n = v[i] * inv * w[i];
      if (c.act === 'silu') n = n / (1 + Math.exp(-n));
      if (c.mask === 'writeBack' && !keep) xAfter[r * c.stride + i] = 0;
      if (c.out === 'write') y[r * c.dim + i] = n;
      else if (c.out === 'accumulate') y[r * c.dim + i] += (c.alpha ?? 1) * n;
      else xAfter[r * c.stride + i] = n;
    }
  }
  return { y, x: xAfter };
}

// Real E2B width (1536), sizes off the 256-thread workgroup, a row stride of 4 rows (time reduction), clipping
// that bites (clip 0.8 on unit normals), masked rows, each of the tower's six variants.
const cases: Case[] = [
  { out: 'write', rows: 9, dim: 1536, stride: 1536, clip: 1e10 },
  { out: 'accumulate', rows: 7, dim: 1000, stride: 1000, clip: 0.8, alpha: 0.5 },
  { out: 'write', mask: 'writeBack', rows: 11, dim: 33, stride: 33 },
  { out: 'write', act: 'silu', rows: 5, dim: 1536, stride: 1536, clip: 1e10 },
  { out: 'inPlace', rows: 13, dim: 257, stride: 257, clip: 0.8 },
  { out: 'write', mask: 'input', rows: 4, dim: 1536, stride: 4 * 1536 },
  { out: 'write', mask: 'input', rows: 3, dim: 7, stride: 29 },
];

for (const c of cases) {
  test(`conformer-norm ${JSON.stringify(c)}`, async () => {
    const ctx = await testGpu();
    const { rng, tag } = freshRng();
    const eps = 1e-6;
    const xLen = (c.rows - 1) * c.stride + c.dim;
    const x = rng.normals(xLen, 2);
    const w = rng.normals(c.dim, 1);
    const m = Uint32Array.from({ length: c.rows }, (_, r) => (r % 3 === 1 ? 0 : 1));
    const y0 = c.out === 'accumulate' ? rng.normals(c.rows * c.dim, 1) : new Float32Array(c.rows * c.dim);
    const kernel = await ConformerNormKernel.create(ctx, AUDIO_TOWER_NORM_VARIANTS);
    const xBuf = upload(ctx, x, 'x');
    const yBuf = c.out === 'accumulate' ? upload(ctx, y0, 'y') : poisonedBuffer(ctx, c.rows * c.dim * 4, 'y');
    const d = kernel.bind({ ...c, x: xBuf, weight: upload(ctx, w), rowMask: upload(ctx, m), y: c.out === 'inPlace' ? undefined : yBuf, eps, xStride: c.stride });
    submitDispatches(ctx.device, [d]);
    const want = reference(c, x, w, m, y0, eps);
    const xGot = new Float32Array(await download(ctx, xBuf, xLen * 4));
    // f32 sum of <= 1536 squares + rsqrt + one multiply (+ silu/residual): ~1e-6 relative of values of size ~3.
    const tol = { atol: 2e-5, rtol: 2e-5 };
    if (c.out === 'inPlace') {
      const rowsOnly = (a: ArrayLike<number>) => Array.from({ length: c.rows * c.dim }, (_, k) => a[Math.floor(k / c.dim) * c.stride + (k % c.dim)]);
      assertClose(rowsOnly(xGot), rowsOnly(want.x), { ...tol, tag });
    } else {
      assertClose(new Float32Array(await download(ctx, yBuf, c.rows * c.dim * 4)), want.y, { ...tol, tag });
      assertClose(xGot, want.x, { atol: 0, tag: `${tag} (x after)` });
    }
  });
}
