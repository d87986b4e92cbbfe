import { test } from 'node:test';
import { ChannelNormKernel, type ChannelNormEpilogue } from '../../src/kernels/channel-norm.ts';
import { submitDispatches } from '../../src/gpu/pipeline.ts';
import { testGpu, poisonedBuffer, upload, download } from '../helpers/gpu.ts';
import { freshRng } from '../helpers/random.ts';
import { assertWithin, channelNormRef, geluTanh } from '../helpers/vision-ref.ts';

/**
 * Error bound relative to the normed value n: the f32 sum of C/4 squares per lane (all positive: relative error
 * <= (C/4 + 3) u), the rsqrt (WGSL inverseSqrt: 2 ulp), halving the mean's error, the products with alpha and w:
 * |n| (C/8 + 10) 2^-23 (twice the first-order sum). GELU adds |gelu'| <= 1.13 times that plus tanh_f32's few ulp
 * (times |n| / 2); the residual add one rounding of the sum.
 */
function bounds(n: Float64Array, C: number, epi: ChannelNormEpilogue, out: Float64Array): Float64Array {
  const rel = (C / 8 + 10) * 2 ** -23;
  return n.map((v, i) => {
    const b = Math.abs(v) * rel + 1e-30;
    if (epi === 'gelu') return 1.13 * b + 4 * 2 ** -24 * Math.abs(v) + 2 ** -24 * Math.abs(out[i]) + 1e-30;
    if (epi === 'add') return b + 2 ** -24 * Math.abs(out[i]);
    return b;
  });
}

const cases: Array<{ pixels: number; C: number; epi: ChannelNormEpilogue; inPlace?: boolean; weight?: boolean; alpha?: number; scale: number }> = [
  { pixels: 37, C: 3840, epi: 'gelu', weight: true, scale: 30 },
  { pixels: 101, C: 12, epi: 'none', weight: true, scale: 1 },
  { pixels: 65, C: 64, epi: 'gelu', inPlace: true, weight: true, scale: 3 },
  { pixels: 9, C: 2048, epi: 'none', weight: true, alpha: Math.fround(Math.sqrt(2048)), scale: 1 },
  { pixels: 23, C: 640, epi: 'add', weight: true, scale: 5 },
  { pixels: 17, C: 96, epi: 'none', inPlace: true, scale: 0.01 },
];

for (const c of cases) {
  test(`channel-norm C${c.C} x ${c.pixels} ${c.epi}${c.inPlace ? ' in place' : ''}${c.weight ? '' : ' no weight'}${c.alpha ? ' alpha' : ''}`, async () => {
    const ctx = await testGpu();
    const { rng, tag } = freshRng();
    const kernel = await ChannelNormKernel.create(ctx);
    const n = c.pixels * c.C;
    const x = rng.normals(n, c.scale, c.scale / 3);
    const w = c.weight ? rng.normals(c.C, 0.3, 1) : undefined;
    const prev = c.epi === 'add' ? rng.normals(n, 2) : undefined;
    const xBuf = upload(ctx, x);
    const y = c.inPlace ? xBuf : prev ? upload(ctx, prev) : poisonedBuffer(ctx, n * 4);
    submitDispatches(ctx.device, [kernel.bind({ x: xBuf, weight: w && upload(ctx, w), y, pixels: c.pixels, channels: c.C, eps: 1e-6, alpha: c.alpha, epilogue: c.epi })]);
    const got = new Float32Array(await download(ctx, y, n * 4));
    const normed = channelNormRef(x, c.pixels, c.C, w, 1e-6, c.alpha);
    const out = normed.map((v, i) => (c.epi === 'gelu' ? geluTanh(v) : c.epi === 'add' ? prev![i] + v : v));
    assertWithin(got, out, bounds(normed, c.C, c.epi, out), `${tag} ${JSON.stringify(c)}`);
  });
}

test('channel-norm GELU stays finite for huge normed values (tanh argument clamped)', async () => {
  const ctx = await testGpu();
  const kernel = await ChannelNormKernel.create(ctx);
  // One pixel, 4 channels: x = [1e6, 0, 0, 0] normalises to [2, 0, 0, 0]; weight 1e4 makes it 2e4 (tanh(~1e13)).
  const x = new Float32Array([1e6, 0, 0, 0, -1e6, 0, 0, 0]);
  const w = new Float32Array([1e4, 1, 1, 1]);
  const y = poisonedBuffer(ctx, 32);
  submitDispatches(ctx.device, [kernel.bind({ x: upload(ctx, x), weight: upload(ctx, w), y, pixels: 2, channels: 4, eps: 1e-6, epilogue: 'gelu' })]);
  const got = new Float32Array(await download(ctx, y, 32));
  assertWithin(got, [2e4, 0, 0, 0, 0, 0, 0, 0], 2e4 * 2 ** -20, 'clamped tanh');
});
