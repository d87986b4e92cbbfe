import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ResampleKernel } from '../../src/kernels/resample.ts';
import { submitDispatches } from '../../src/gpu/pipeline.ts';
import { testGpu, poisonedBuffer, upload, download, POISON_U32 } from '../helpers/gpu.ts';
import { freshRng } from '../helpers/random.ts';
import { assertWithin } from '../helpers/vision-ref.ts';

test('resample nearest x2 into a channel slice (MSFA concat), copy (x1) into the other slice', async () => {
  const ctx = await testGpu();
  const { rng, tag } = freshRng();
  const kernel = await ResampleKernel.create(ctx);
  // Stage-3-like input [3, 5, 8] upsampled to [6, 10] into channels 12..19 of a 20-channel output; a stage-2-like
  // [6, 10, 12] copied into channels 0..11.
  const [H, W, C, C2] = [3, 5, 8, 12];
  const small = rng.normals(H * W * C, 1);
  const big = rng.normals(4 * H * W * C2, 1);
  const S = C + C2;
  const y = poisonedBuffer(ctx, 4 * H * W * S * 4);
  submitDispatches(ctx.device, [
    kernel.bind({ mode: 'nearest', x: upload(ctx, big), height: 2 * H, width: 2 * W, channels: C2, outHeight: 2 * H, outWidth: 2 * W, y, yStride: S }),
    kernel.bind({ mode: 'nearest', x: upload(ctx, small), height: H, width: W, channels: C, outHeight: 2 * H, outWidth: 2 * W, y, yOffset: C2, yStride: S }),
  ]);
  const got = new Float32Array(await download(ctx, y, 4 * H * W * S * 4));
  const ref = new Float32Array(got.length);
  for (let oy = 0; oy < 2 * H; oy++)
    for (let ox = 0; ox < 2 * W; ox++) {
      const m = oy * 2 * W + ox;
      for (let c = 0; c < C2; c++) ref[m * S + c] = big[m * C2 + c];
      for (let c = 0; c < C; c++) ref[m * S + C2 + c] = small[((oy >> 1) * W + (ox >> 1)) * C + c];
    }
  assert.deepEqual(Array.from(got), Array.from(ref), `exact copy ${tag}`); // NaN (poison) would not compare equal
});

test('resample avg-pool 3x3 stride 3 (MSFA 48 -> 16 at small size) and 2x2', async () => {
  const ctx = await testGpu();
  const { rng, tag } = freshRng();
  const kernel = await ResampleKernel.create(ctx);
  for (const [H, f, C] of [[12, 3, 8], [6, 2, 4]]) {
    const OH = H / f;
    const x = rng.normals(H * H * C, 2);
    const y = poisonedBuffer(ctx, OH * OH * C * 4);
    submitDispatches(ctx.device, [kernel.bind({ mode: 'avg-pool', x: upload(ctx, x), height: H, width: H, channels: C, outHeight: OH, outWidth: OH, y })]);
    const got = new Float32Array(await download(ctx, y, OH * OH * C * 4));
    const ref = new Float64Array(got.length);
    const bound = new Float64Array(got.length);
    for (let oy = 0; oy < OH; oy++)
      for (let ox = 0; ox < OH; ox++)
        for (let c = 0; c < C; c++) {
          let s = 0, abs = 0;
          for (let dy = 0; dy < f; dy++) for (let dx = 0; dx < f; dx++) {
            const v = x[((oy * f + dy) * H + ox * f + dx) * C + c];
            s += v;
            abs += Math.abs(v);
          }
          const i = (oy * OH + ox) * C + c;
          ref[i] = s / (f * f);
          // f*f - 1 additions, then one division.
          bound[i] = (f * f) * 2 ** -24 * abs / (f * f) + 2 ** -24 * Math.abs(ref[i]);
        }
    assertWithin(got, ref, bound, `${tag} H${H} f${f}`);
  }
  assert.ok(POISON_U32);
});

test('resample rejects non-integer factors', async () => {
  const ctx = await testGpu();
  const kernel = await ResampleKernel.create(ctx);
  const b = poisonedBuffer(ctx, 4096);
  assert.throws(() => kernel.bind({ mode: 'avg-pool', x: upload(ctx, new Float32Array(100 * 4)), height: 10, width: 10, channels: 4, outHeight: 3, outWidth: 3, y: b }), /integer factors/);
});
