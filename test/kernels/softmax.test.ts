import { test } from 'node:test';
import { SoftmaxKernel } from '../../src/kernels/softmax.ts';
import { submitDispatches } from '../../src/gpu/pipeline.ts';
import { testGpu, upload, download } from '../helpers/gpu.ts';
import { freshRng } from '../helpers/random.ts';
import { assertWithin } from '../helpers/vision-ref.ts';

// Rows = (query pixel, head) pairs of the vision attention, cols = keys (576 in MobileNet-V5; 12 and 100 here),
// logits with a standard deviation of ~4 after scaling (the fixture's peaked softmax) and some far larger.
for (const [rows, cols, std, alpha] of [[37, 100, 32, 0.125], [5, 12, 400, 0.10206207261596575], [3, 576, 4, 1]]) {
  test(`softmax ${rows} x ${cols} (logit std ${std * alpha})`, async () => {
    const ctx = await testGpu();
    const { rng, tag } = freshRng();
    const kernel = await SoftmaxKernel.create(ctx);
    const x = rng.normals(rows * cols, std);
    const y = upload(ctx, x);
    submitDispatches(ctx.device, [kernel.bind({ y, rows, cols, alpha })]);
    const got = new Float32Array(await download(ctx, y, x.byteLength));
    const ref = new Float64Array(x.length);
    const bound = new Float64Array(x.length);
    for (let r = 0; r < rows; r++) {
      let m = -Infinity;
      for (let c = 0; c < cols; c++) m = Math.max(m, Math.fround(alpha) * x[r * cols + c]);
      let s = 0;
      for (let c = 0; c < cols; c++) s += Math.exp(Math.fround(alpha) * x[r * cols + c] - m);
      for (let c = 0; c < cols; c++) {
        const z = Math.fround(alpha) * x[r * cols + c] - m;
        const i = r * cols + c;
        ref[i] = Math.exp(z) / s;
        // exp of z (WGSL: 3 + 2|z| ulp), the rounding of z (|z| ulp of z feeds exp: |z| u relative), the sum of
        // `cols` terms in 4 lanes (cols/4 + 3) u, the division.
        bound[i] = ref[i] * ((3 + 3 * Math.abs(z)) * 2 ** -23 + (cols / 4 + 6) * 2 ** -24) + 1e-30;
      }
    }
    assertWithin(got, ref, bound, tag);
  });
}
