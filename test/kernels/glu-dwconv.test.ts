import { test } from 'node:test';
import { GluDwConvKernel } from '../../src/kernels/glu-dwconv.ts';
import { submitDispatches } from '../../src/gpu/pipeline.ts';
import { testGpu, poisonedBuffer, upload, download } from '../helpers/gpu.ts';
import { freshRng } from '../helpers/random.ts';
import { assertClose } from '../helpers/compare.ts';

/** float64 reference: HF's glu, F.pad(K - 1, 0) and a depthwise Conv1d. */
function reference(a: Float32Array, w: Float32Array, T: number, D: number, K: number): Float64Array {
  const g = new Float64Array(T * D);
  for (let t = 0; t < T; t++) for (let d = 0; d < D; d++) g[t * D + d] = a[t * 2 * D + d] / (1 + Math.exp(-a[t * 2 * D + D + d]));
  const y = new Float64Array(T * D);
  for (let t = 0; t < T; t++)
    for (let d = 0; d < D; d++) {
      let acc = 0;
      for (let j = 0; j < K; j++) {
        const s = t - (K - 1) + j;
        if (s >= 0) acc += w[d * K + j] * g[s * D + d];
      }
      y[t * D + d] = acc;
    }
  return y;
}

// E2B (1536 channels, kernel 5), the tiny fixture (32, 5), odd sizes, and fewer rows than the kernel.
for (const [T, D, K] of [[9, 1536, 5], [25, 32, 5], [7, 33, 3], [2, 19, 5]]) {
  test(`glu-dwconv T=${T} D=${D} K=${K}`, async () => {
    const ctx = await testGpu();
    const { rng, tag } = freshRng();
    const a = rng.normals(T * 2 * D, 2);
    const w = rng.normals(D * K, 0.5);
    const y = poisonedBuffer(ctx, T * D * 4);
    const kernel = await GluDwConvKernel.create(ctx);
    submitDispatches(ctx.device, [kernel.bind({ a: upload(ctx, a), weight: upload(ctx, w), y, rows: T, dim: D, kernel: K })]);
    // K <= 5 f32 products of sigmoid-gated values: a few ulps.
    assertClose(new Float32Array(await download(ctx, y, T * D * 4)), reference(a, w, T, D, K), { atol: 1e-5, rtol: 1e-5, tag });
  });
}
