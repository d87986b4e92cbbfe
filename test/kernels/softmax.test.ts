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
    const u = 2 ** -24;
    for (let r = 0; r < rows; r++) {
      const a = Math.fround(alpha);
      let m = -Infinity;
      for (let c = 0; c < cols; c++) m = Math.max(m, a * x[r * cols + c]);
      let s = 0;
      for (let c = 0; c < cols; c++) s += Math.exp(a * x[r * cols + c] - m);
      // Relative error of each exponential: the logit a * x rounded (|a x| u), the max likewise (|m| u), the
      // subtraction (|z| u), then exp itself (WGSL: 3 + 2|z| ulp = 2 u each). The row sum inherits the worst term's
      // error plus its own f32 summation in 4 lanes ((cols / 4 + 3) u); one division.
      const rel = new Float64Array(cols);
      let worst = 0;
      for (let c = 0; c < cols; c++) {
        const ax = a * x[r * cols + c];
        const z = ax - m;
        rel[c] = (Math.abs(ax) + Math.abs(m) + Math.abs(z)) * u + (3 + 2 * Math.abs(z)) * 2 * u;
        worst = Math.max(worst, rel[c]);
      }
      for (let c = 0; c < cols; c++) {
        const i = r * cols + c;
        ref[i] = Math.exp(a * x[i] - m) / s;
        bound[i] = ref[i] * (rel[c] + worst + (cols / 4 + 4) * u) + 1e-30;
      }
    }
    assertWithin(got, ref, bound, tag);
  });
}
