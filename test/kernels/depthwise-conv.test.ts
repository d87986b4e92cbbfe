import { test } from 'node:test';
import { DepthwiseConvKernel } from '../../src/kernels/depthwise-conv.ts';
import { samePad } from '../../src/kernels/conv2d.ts';
import { submitDispatches } from '../../src/gpu/pipeline.ts';
import { testGpu, poisonedBuffer, upload, download } from '../helpers/gpu.ts';
import { freshRng } from '../helpers/random.ts';
import { assertWithin, depthwiseRef } from '../helpers/vision-ref.ts';

// MobileNet-V5's depthwise shapes at small sizes: k3/k5, stride 1 and 2 (SAME padding: at stride 2 the odd
// padding row/column goes after), odd and even images, channel counts that are multiples of 4 but not of 8.
const cases = [
  { H: 11, W: 9, C: 12, k: 3, stride: 1 },
  { H: 12, W: 12, C: 8, k: 5, stride: 2 },
  { H: 13, W: 7, C: 4, k: 5, stride: 1 },
  { H: 10, W: 10, C: 20, k: 3, stride: 2 },
];

for (const c of cases) {
  test(`depthwise-conv k${c.k} s${c.stride} C${c.C} ${c.H}x${c.W}`, async () => {
    const ctx = await testGpu();
    const { rng, tag } = freshRng();
    const kernel = await DepthwiseConvKernel.create(ctx);
    const x = rng.normals(c.H * c.W * c.C, 2);
    const w = rng.normals(c.k * c.k * c.C, 0.5);
    const py = samePad(c.H, c.k, c.stride);
    const px = samePad(c.W, c.k, c.stride);
    const bytes = py.out * px.out * c.C * 4;
    const y = poisonedBuffer(ctx, bytes);
    submitDispatches(ctx.device, [kernel.bind({ x: upload(ctx, x), height: c.H, width: c.W, channels: c.C, weight: upload(ctx, w), kernel: c.k, stride: c.stride, y })]);
    const got = new Float32Array(await download(ctx, y, bytes));
    const ref = depthwiseRef(x, c.H, c.W, c.C, w, c.k, c.stride, py.before, px.before, py.out, px.out);
    assertWithin(got, ref.y, ref.bound, `${tag} ${JSON.stringify(c)}`);
  });
}
