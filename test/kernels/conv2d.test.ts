import { test } from 'node:test';
import { Conv2dKernel, samePad, type ConvTiling, type ConvWeightFormat, type ConvWeight } from '../../src/kernels/conv2d.ts';
import { submitDispatches } from '../../src/gpu/pipeline.ts';
import { testGpu, poisonedBuffer, upload, download } from '../helpers/gpu.ts';
import { freshRng } from '../helpers/random.ts';
import { assertWithin, convRef, randomWeights } from '../helpers/vision-ref.ts';

const variants: Array<[ConvWeightFormat, ConvWeight['layout']]> = [
  ['bf16', 'out-major'],
  ['f16', 'out-major'],
  ['f32', 'out-major'],
  ['f32', 'in-major'],
];
// Both tilings run here whatever the adapter (the quad one needs subgroups, which SwiftShader has).
const kernels: Record<ConvTiling, Promise<Conv2dKernel | undefined>> = {
  register: testGpu().then((ctx) => Conv2dKernel.create(ctx, variants, 'register')),
  quad: testGpu().then((ctx) => (ctx.subgroups ? Conv2dKernel.create(ctx, variants, 'quad') : undefined)),
};
const TILINGS: ConvTiling[] = ['register', 'quad'];
const skipQuad = async (tiling: ConvTiling) => ((await kernels[tiling]) ? false : 'adapter has no subgroups: quad tiling not tested here');

// Odd image sizes (pixel counts off the 8- and 16-pixel tiles), channel counts off 8 and off the quad tiling's
// 16-channel quad (padded channel blocks), several workgroups, SAME padding at stride 1 and 2 (stride
// 2 pads the odd row/column at the bottom/right), the stem's shape (3 channels padded to 4, bias), 5x5 kernels.
const cases: Array<{ H: number; W: number; C: number; N: number; k: number; stride: number; format: ConvWeightFormat; bias?: boolean }> = [
  { H: 13, W: 11, C: 8, N: 12, k: 3, stride: 2, format: 'bf16', bias: true },
  { H: 12, W: 10, C: 4, N: 64, k: 3, stride: 2, format: 'bf16', bias: true }, // the stem's shape, even input
  { H: 7, W: 9, C: 20, N: 4, k: 3, stride: 1, format: 'f32' },
  { H: 6, W: 5, C: 12, N: 8, k: 5, stride: 1, format: 'f16' },
  { H: 9, W: 9, C: 16, N: 36, k: 1, stride: 1, format: 'bf16' },
  { H: 17, W: 15, C: 24, N: 52, k: 1, stride: 1, format: 'bf16' },
  { H: 11, W: 13, C: 8, N: 40, k: 3, stride: 1, format: 'bf16', bias: true },
];

for (const tiling of TILINGS) for (const c of cases) {
  test(`conv2d ${tiling} ${c.format} k${c.k} s${c.stride} ${c.C}->${c.N} ${c.H}x${c.W}${c.bias ? ' +bias' : ''}`, { skip: await skipQuad(tiling) }, async () => {
    const ctx = await testGpu();
    const kernel = (await kernels[tiling])!;
    const { rng, tag } = freshRng();
    const x = rng.normals(c.H * c.W * c.C, 1.5);
    const wt = randomWeights(rng, c.N * c.k * c.k * c.C, 1 / Math.sqrt(c.k * c.k * c.C), c.format);
    const bias = c.bias ? rng.normals(c.N, 0.1) : undefined;
    const py = samePad(c.H, c.k, c.stride);
    const px = samePad(c.W, c.k, c.stride);
    const M = py.out * px.out;
    const weight: ConvWeight = { format: c.format, layout: 'out-major', cout: c.N, cin: c.C, kh: c.k, kw: c.k, data: upload(ctx, wt.bytes) };
    const y = poisonedBuffer(ctx, M * c.N * 4);
    submitDispatches(ctx.device, [kernel.bind({ x: upload(ctx, x), height: c.H, width: c.W, weight, bias: bias && upload(ctx, bias), stride: c.stride, y })]);
    const got = new Float32Array(await download(ctx, y, M * c.N * 4));
    const ref = convRef({ x, H: c.H, W: c.W, C: c.C, w: wt.values, N: c.N, kh: c.k, kw: c.k, stride: c.stride, padTop: py.before, padLeft: px.before, OH: py.out, OW: px.out, bias });
    assertWithin(got, ref.y, ref.bound, `${tag} ${JSON.stringify(c)}`);
  });
}

for (const tiling of TILINGS) test(`conv2d ${tiling} as GEMM: out-major bf16 with scale and accumulate into a strided slice, and in-major f32`, { skip: await skipQuad(tiling) }, async () => {
  const ctx = await testGpu();
  const kernel = (await kernels[tiling])!;
  const { rng, tag } = freshRng();
  const rows = 37, K = 20, N = 28, stride = 40, yOffset = 6;
  const x = rng.normals(rows * K, 1);
  // out-major: W [N, K] (bf16), y (prefilled) += x W^T, written at yOffset + m * stride.
  const wt = randomWeights(rng, N * K, 0.3, 'bf16');
  const before = rng.normals(yOffset + rows * stride, 1);
  const scale = rng.normals(N, 0.1, 0.25);
  const y = upload(ctx, before);
  submitDispatches(ctx.device, [
    kernel.bindGemm({ x: upload(ctx, x), rows, weight: { format: 'bf16', layout: 'out-major', cout: N, cin: K, kh: 1, kw: 1, data: upload(ctx, wt.bytes) }, scale: upload(ctx, scale), y, yOffset, yStride: stride, accumulate: true }),
  ]);
  const got = new Float32Array(await download(ctx, y, before.byteLength));
  const ref = Float64Array.from(before);
  const bound = new Float64Array(before.length);
  for (let m = 0; m < rows; m++)
    for (let n = 0; n < N; n++) {
      let s = 0, abs = 0;
      for (let k = 0; k < K; k++) {
        const t = x[m * K + k] * wt.values[n * K + k];
        s += t;
        abs += Math.abs(t);
      }
      const i = yOffset + m * stride + n;
      ref[i] += scale[n] * s;
      bound[i] = (K + 3) * 2 ** -24 * (Math.abs(scale[n]) * abs + Math.abs(before[i]));
    }
  assertWithin(got, ref, bound, `${tag} out-major accumulate`);

  // in-major: W(n, k) at k * N + n (f32, the values operand of p.V).
  const v = rng.normals(K * N, 1);
  const y2 = poisonedBuffer(ctx, rows * N * 4);
  submitDispatches(ctx.device, [kernel.bindGemm({ x: upload(ctx, x), rows, weight: { format: 'f32', layout: 'in-major', cout: N, cin: K, kh: 1, kw: 1, data: upload(ctx, v) }, y: y2 })]);
  const got2 = new Float32Array(await download(ctx, y2, rows * N * 4));
  const ref2 = new Float64Array(rows * N);
  const bound2 = new Float64Array(rows * N);
  for (let m = 0; m < rows; m++)
    for (let n = 0; n < N; n++) {
      let s = 0, abs = 0;
      for (let k = 0; k < K; k++) {
        const t = x[m * K + k] * v[k * N + n];
        s += t;
        abs += Math.abs(t);
      }
      ref2[m * N + n] = s;
      bound2[m * N + n] = (K + 1) * 2 ** -24 * abs;
    }
  assertWithin(got2, ref2, bound2, `${tag} in-major`);
});

test('conv2d rejects shapes it cannot run', async () => {
  const ctx = await testGpu();
  const kernel = (await kernels.register)!;
  const buf = poisonedBuffer(ctx, 4096);
  const w = (cin: number, cout: number): ConvWeight => ({ format: 'f32', layout: 'out-major', cout, cin, kh: 1, kw: 1, data: buf });
  const { throws } = await import('node:assert/strict');
  throws(() => kernel.bind({ x: upload(ctx, new Float32Array(64)), height: 4, width: 4, weight: w(3, 4), y: buf }), /multiples of 4/);
  throws(() => kernel.bind({ x: upload(ctx, new Float32Array(64)), height: 4, width: 4, weight: w(4, 4), y: poisonedBuffer(ctx, 16) }), /y holds/);
  throws(() => kernel.bind({ x: buf, height: 4, width: 4, weight: w(4, 4), y: buf }), /different buffers/);
});
