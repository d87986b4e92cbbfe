/**
 * The audio sub-sampler's pieces against float64 references: the strided 2-D convolution with HF's padding (time
 * (0, kh - 1) at the end, frequency (1, 1)) and the cumulative group norm + ReLU (statistics accumulated over time,
 * each step centred on its own running mean). Shapes: Gemma 3n E2B's two convolutions (1 -> 128 and 128 -> 32
 * channels over 128 and 64 bins) on short clips, and odd sizes off every tile; outputs poisoned.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SubsampleConvKernel, subsampleConvOutput, convWeightForKernel, type SubsampleConvShape } from '../../src/kernels/subsample-conv.ts';
import { CumulativeGroupNormKernel } from '../../src/kernels/cumulative-group-norm.ts';
import { submitDispatches } from '../../src/gpu/pipeline.ts';
import { testGpu, poisonedBuffer, upload, download } from '../helpers/gpu.ts';
import { freshRng } from '../helpers/random.ts';
import { assertClose } from '../helpers/compare.ts';

/** float64 conv with PyTorch weight layout [co, ci, kh, kw] and explicit zero padding, as HF. */
function convRef(s: SubsampleConvShape, x: Float32Array, w: Float32Array): Float64Array {
  const { tOut, fOut } = subsampleConvOutput(s);
  const y = new Float64Array(tOut * fOut * s.co);
  const at = (t: number, f: number, c: number) => (t < s.tIn && f >= 0 && f < s.fIn ? x[(t * s.fIn + f) * s.ci + c] : 0);
  for (let t = 0; t < tOut; t++)
    for (let f = 0; f < fOut; f++)
      for (let o = 0; o < s.co; o++) {
        let acc = 0;
        for (let c = 0; c < s.ci; c++) for (let i = 0; i < s.kh; i++) for (let j = 0; j < s.kw; j++) acc += w[((o * s.ci + c) * s.kh + i) * s.kw + j] * at(t * s.sh + i, f * s.sw + j - s.padF, c);
        y[(t * fOut + f) * s.co + o] = acc;
      }
  return y;
}

/** float64 cumulative group norm + ReLU over [T, G], channel c = g % C. */
function cgnRef(x: ArrayLike<number>, T: number, G: number, w: Float32Array, eps: number): Float64Array {
  const C = w.length;
  const y = new Float64Array(T * G);
  let sum = 0, sq = 0;
  for (let t = 0; t < T; t++) {
    for (let g = 0; g < G; g++) sum += x[t * G + g];
    const count = (t + 1) * G;
    const mean = sum / count;
    for (let g = 0; g < G; g++) sq += (x[t * G + g] - mean) ** 2;
    const rstd = 1 / Math.sqrt(sq / count + eps);
    for (let g = 0; g < G; g++) y[t * G + g] = Math.max(0, (x[t * G + g] - mean) * rstd * w[g % C]);
  }
  return y;
}

const convCases: SubsampleConvShape[] = [
  { tIn: 23, fIn: 128, ci: 1, co: 128, kh: 3, kw: 3, sh: 2, sw: 2, padF: 1 }, // E2B conv_0
  { tIn: 12, fIn: 64, ci: 128, co: 32, kh: 3, kw: 3, sh: 2, sw: 2, padF: 1 }, // E2B conv_1 (even T)
  { tIn: 9, fIn: 17, ci: 3, co: 5, kh: 3, kw: 3, sh: 2, sw: 2, padF: 1 },
  { tIn: 1, fIn: 6, ci: 2, co: 3, kh: 3, kw: 3, sh: 2, sw: 2, padF: 1 },
  { tIn: 10, fIn: 11, ci: 4, co: 7, kh: 2, kw: 3, sh: 1, sw: 3, padF: 0 },
];

for (const s of convCases) {
  test(`subsample-conv ${JSON.stringify(s)}`, async () => {
    const ctx = await testGpu();
    const { rng, tag } = freshRng();
    const x = rng.normals(s.tIn * s.fIn * s.ci);
    const w = rng.normals(s.co * s.ci * s.kh * s.kw, 1 / Math.sqrt(s.ci * 9));
    const { tOut, fOut } = subsampleConvOutput(s);
    const y = poisonedBuffer(ctx, tOut * fOut * s.co * 4);
    const kernel = await SubsampleConvKernel.create(ctx);
    const d = kernel.bind({ ...s, x: upload(ctx, x), weight: upload(ctx, convWeightForKernel(w, s.co, s.ci, s.kh, s.kw)), y });
    submitDispatches(ctx.device, [d]);
    // f32 sums of <= 1152 products of unit-scale terms: 1e-5 is ~100 ulps of the output scale.
    assertClose(new Float32Array(await download(ctx, y, tOut * fOut * s.co * 4)), convRef(s, x, w), { atol: 1e-5, rtol: 1e-5, tag });
  });
}

test('subsample-conv output sizes match HF: E2B 2997 mel frames -> 1499 -> 750, 128 bins -> 64 -> 32', () => {
  const a = subsampleConvOutput({ tIn: 2997, fIn: 128, ci: 1, co: 128, kh: 3, kw: 3, sh: 2, sw: 2, padF: 1 });
  assert.deepEqual(a, { tOut: 1499, fOut: 64 });
  assert.deepEqual(subsampleConvOutput({ tIn: 1499, fIn: 64, ci: 128, co: 32, kh: 3, kw: 3, sh: 2, sw: 2, padF: 1 }), { tOut: 750, fOut: 32 });
  assert.deepEqual(subsampleConvOutput({ tIn: 100, fIn: 128, ci: 1, co: 8, kh: 3, kw: 3, sh: 2, sw: 2, padF: 1 }), { tOut: 50, fOut: 64 });
});

for (const c of [
  { T: 37, F: 64, C: 128 }, // E2B conv_0's group (8192 values per frame)
  { T: 301, F: 3, C: 5 }, // many frames: the running sums
  { T: 1, F: 7, C: 1 },
]) {
  test(`cumulative-group-norm T=${c.T} G=${c.F}x${c.C}`, async () => {
    const ctx = await testGpu();
    const { rng, tag } = freshRng();
    const G = c.F * c.C;
    // A drifting mean and scale, so the running statistics matter.
    const x = new Float32Array(c.T * G);
    for (let t = 0; t < c.T; t++) for (let g = 0; g < G; g++) x[t * G + g] = 0.3 * Math.sin(t / 7) + (1 + t / c.T) * rng.normal();
    const w = rng.normals(c.C, 1);
    const xb = upload(ctx, x, 'x');
    const kernel = await CumulativeGroupNormKernel.create(ctx);
    const d = kernel.bind({ x: xb, weight: upload(ctx, w), frames: c.T, group: G, channels: c.C, eps: 1e-3 });
    submitDispatches(ctx.device, [d]);
    // Running f32 sums over up to 301 x 15 or 37 x 8192 values: relative error ~1e-6..1e-5 of the statistics.
    assertClose(new Float32Array(await download(ctx, xb, x.byteLength)), cgnRef(x, c.T, G, w, 1e-3), { atol: 5e-5, rtol: 5e-5, tag });
    kernel.destroy();
  });
}
