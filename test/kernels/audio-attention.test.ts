/**
 * The audio attention kernel (a direct per-query formulation) against a float64 transcription of HF's blocked one:
 * queries in blocks of `chunk`, key context unfolded with (past, future + chunk - 1) zero padding, term_bd through
 * the pad / reshape / slice relative shift, the local causal mask built from the two tril masks, masked logits at
 * finfo.min (so a query with nothing to attend to gets a uniform softmax over its block context), softcap, then
 * softmax and the block matmul. Shapes: the tiny fixture's, E2B's (8 heads of 192, chunk 12, 12 past), one with
 * future context and odd sizes, and one where a long padded run leaves queries fully masked. Outputs poisoned.
 */
import { test } from 'node:test';
import { AudioAttentionKernel, type AudioAttentionShape } from '../../src/kernels/audio-attention.ts';
import { submitDispatches } from '../../src/gpu/pipeline.ts';
import { testGpu, poisonedBuffer, upload, download } from '../helpers/gpu.ts';
import { freshRng } from '../helpers/random.ts';
import { assertClose } from '../helpers/compare.ts';

const F32_MIN = -3.4028234663852886e38;

/** float64 HF-style blocked attention. q, k, v [T, N*H]; rel [F, N*H]; qScale [H]; valid [T]. */
function hfReference(s: AudioAttentionShape, T: number, q: Float32Array, k: Float32Array, v: Float32Array, rel: Float32Array, qScale: Float32Array, valid: Uint32Array): Float64Array {
  const { heads: N, headDim: H, chunk: W, past: P, future: R, cap } = s;
  const C = W + P + R;
  const F = P + R + 1;
  const U = Math.ceil(T / W);
  const D = N * H;
  const out = new Float64Array(T * D);
  const qAt = (t: number, n: number, d: number) => (t < T ? q[t * D + n * H + d] * qScale[d] : 0);
  const ctx = (a: Float32Array, u: number, c: number, n: number, d: number) => {
    const s2 = u * W + c - P; // padded index u*W + c minus the left padding
    return s2 >= 0 && s2 < T ? a[s2 * D + n * H + d] : 0;
  };
  const ctxValid = (u: number, c: number) => {
    const s2 = u * W + c - P;
    return s2 >= 0 && s2 < T && valid[s2] !== 0;
  };
  for (let n = 0; n < N; n++) {
    for (let u = 0; u < U; u++) {
      // term_bd unshifted [W, F], then padded to [W, C + 1], flattened, first W*C kept, reshaped [W, C].
      const padded = new Float64Array(W * (C + 1));
      for (let w = 0; w < W; w++) for (let f = 0; f < F; f++) {
        let acc = 0;
        for (let d = 0; d < H; d++) acc += qAt(u * W + w, n, d) * rel[f * D + n * H + d];
        padded[w * (C + 1) + f] = acc;
      }
      for (let w = 0; w < W; w++) {
        const t = u * W + w;
        const logits = new Float64Array(C);
        for (let c = 0; c < C; c++) {
          let ac = 0;
          for (let d = 0; d < H; d++) ac += qAt(t, n, d) * ctx(k, u, c, n, d);
          const bd = padded[w * C + c];
          let l = cap * Math.tanh((ac + bd) / cap);
          const lower = w <= c; // tril(ones(C, W)).T
          const upper = c <= w + P + R; // tril(ones(W, C), diagonal = P + R)
          if (!(lower && upper && ctxValid(u, c))) l = F32_MIN;
          logits[c] = l;
        }
        const mx = Math.max(...logits);
        const e = logits.map((l) => Math.exp(l - mx));
        const sum = e.reduce((a, b) => a + b, 0);
        if (t >= T) continue;
        for (let d = 0; d < H; d++) {
          let acc = 0;
          for (let c = 0; c < C; c++) acc += (e[c] / sum) * ctx(v, u, c, n, d);
          out[t * D + n * H + d] = acc;
        }
      }
    }
  }
  return out;
}

const cases: Array<AudioAttentionShape & { T: number; invalid: (t: number) => boolean; name: string }> = [
  { name: 'tiny fixture shape', heads: 4, headDim: 8, chunk: 4, past: 4, future: 0, cap: 50, T: 25, invalid: (t) => t >= 22 },
  { name: 'E2B shape', heads: 8, headDim: 192, chunk: 12, past: 12, future: 0, cap: 50, T: 37, invalid: (t) => t >= 33 },
  { name: 'future context, odd sizes', heads: 3, headDim: 13, chunk: 5, past: 3, future: 2, cap: 5, T: 23, invalid: (t) => t % 7 === 3 },
  { name: 'fully masked queries', heads: 2, headDim: 16, chunk: 4, past: 3, future: 0, cap: 50, T: 30, invalid: (t) => t >= 10 && t < 26 },
];

for (const c of cases) {
  test(`audio-attention ${c.name}: ${JSON.stringify({ ...c, invalid: undefined })}`, async () => {
    const ctx = await testGpu();
    const { rng, tag } = freshRng();
    const D = c.heads * c.headDim;
    const F = c.past + c.future + 1;
    // Scales that make the soft cap matter (logits of tens when cap = 50 for the first cases, above cap for the third).
    const q = rng.normals(c.T * D, 1.5), k = rng.normals(c.T * D, 1.5), v = rng.normals(c.T * D);
    const rel = rng.normals(F * D, 1);
    const qScale = Float32Array.from({ length: c.headDim }, () => rng.uniform(0.5, 2) / Math.sqrt(c.headDim));
    const valid = Uint32Array.from({ length: c.T }, (_, t) => (c.invalid(t) ? 0 : 1));
    const out = poisonedBuffer(ctx, c.T * D * 4);
    const kernel = await AudioAttentionKernel.create(ctx);
    const d = kernel.bind({ ...c, q: upload(ctx, q), k: upload(ctx, k), v: upload(ctx, v), rel: upload(ctx, rel), qScale: upload(ctx, qScale), valid: upload(ctx, valid), out, length: c.T });
    submitDispatches(ctx.device, [d]);
    // f32 dot products of <= 192 terms feeding a softmax over <= 24 slots: ~1e-6 relative; 2e-5 absolute on unit values.
    assertClose(new Float32Array(await download(ctx, out, c.T * D * 4)), hfReference(c, c.T, q, k, v, rel, qScale, valid), { atol: 2e-5, rtol: 1e-5, tag });
  });
}
