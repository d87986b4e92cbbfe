import { test } from 'node:test';
import { RmsNormKernel } from '../../src/kernels/rmsnorm.ts';
import { submitDispatches } from '../../src/gpu/pipeline.ts';
import { testGpu, poisonedBuffer, upload, download, f16SkipReason } from '../helpers/gpu.ts';
import { freshRng } from '../helpers/random.ts';
import { assertClose } from '../helpers/compare.ts';
import { f32ArrayToF16, f16ArrayToF32 } from '../../src/io/half.ts';

/** float64 reference. */
function rmsnormRef(x: Float32Array, w: Float32Array | undefined, rows: number, dim: number, eps: number): Float64Array {
  const y = new Float64Array(rows * dim);
  for (let r = 0; r < rows; r++) {
    let ss = 0;
    for (let i = 0; i < dim; i++) ss += x[r * dim + i] ** 2;
    const inv = 1 / Math.sqrt(ss / dim + eps);
    for (let i = 0; i < dim; i++) y[r * dim + i] = x[r * dim + i] * inv * (w ? w[i] : 1);
  }
  return y;
}

// Shapes: Gemma 3n E2B hidden (2048) and per-head (256 = head_dim, rows = tokens x heads), plus sizes that are
// not multiples of the 256-thread workgroup, and a large activation scale (Gemma's residuals reach 1e2..1e3).
const cases = [
  { rows: 7, dim: 2048, scale: 1, weight: true },
  { rows: 5 * 8, dim: 256, scale: 300, weight: true },
  { rows: 3, dim: 1000, scale: 1, weight: false },
  { rows: 1, dim: 33, scale: 0.01, weight: true },
  { rows: 129, dim: 16, scale: 1, weight: true },
];

for (const c of cases) {
  test(`rmsnorm f32 rows=${c.rows} dim=${c.dim} weight=${c.weight}`, async () => {
    const ctx = await testGpu();
    const { rng, tag } = freshRng();
    const x = rng.normals(c.rows * c.dim, c.scale);
    const w = c.weight ? rng.normals(c.dim, 1) : undefined;
    const kernel = await RmsNormKernel.create(ctx);
    const y = poisonedBuffer(ctx, x.byteLength);
    const d = kernel.bind({ x: upload(ctx, x), weight: w && upload(ctx, w), y, rows: c.rows, dim: c.dim, eps: 1e-6 });
    submitDispatches(ctx.device, [d]);
    const got = new Float32Array(await download(ctx, y, x.byteLength));
    // f32 accumulation of <= 2048 squares then one rsqrt: relative error ~1e-6 of the output magnitude.
    assertClose(got, rmsnormRef(x, w, c.rows, c.dim, 1e-6), { atol: 2e-5, rtol: 2e-5, tag: `${tag} ${JSON.stringify(c)}` });
  });
}

test('rmsnorm f16 variant', async (t) => {
  const skip = await f16SkipReason();
  if (skip) return t.skip(skip);
  const ctx = await testGpu();
  const { rng, tag } = freshRng();
  const rows = 9, dim = 2048;
  const x = f32ArrayToF16(rng.normals(rows * dim, 2));
  const w = rng.normals(dim, 1);
  const kernel = await RmsNormKernel.create(ctx, 'f16');
  const y = poisonedBuffer(ctx, x.byteLength);
  submitDispatches(ctx.device, [kernel.bind({ x: upload(ctx, x), weight: upload(ctx, w), y, rows, dim, eps: 1e-6 })]);
  const got = f16ArrayToF32(new Uint16Array(await download(ctx, y, x.byteLength)));
  // f16 output rounding: 2^-11 relative.
  assertClose(got, rmsnormRef(f16ArrayToF32(x), w, rows, dim, 1e-6), { atol: 1e-3, rtol: 2e-3, tag });
});
