/**
 * The vision encoder's wiring on a small architecture of the same block kinds as MobileNet-V5-300M (edge residual,
 * UIR with and without depthwise convolutions, attention with and without downsampled K/V, skips and no skips,
 * the MSFA and embed_vision), procedural weights, against an independent float64 forward written here from the
 * fixture README's description (PyTorch weight layouts read directly, NCHW-style indexing, explicit softmax), and
 * its memory() against the GPU buffers it holds (weights, activations, the kernels' buffers, each to the byte). The
 * real architecture runs once per suite in vision-golden.test.ts; this runs in seconds.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { testGpu } from '../helpers/gpu.ts';
import { assertWithin } from '../helpers/vision-ref.ts';
import { freshRng } from '../helpers/random.ts';
import { trackLiveBuffers } from '../helpers/live-buffers.ts';
import { assertEncoderMemoryAndDestroy } from '../helpers/encoder-memory.ts';
import { VisionEncoder } from '../../src/model/vision/encoder.ts';
import { MOBILENETV5_300M_ENC, TOWER_PREFIX, EMBED_PREFIX, type VisionArch } from '../../src/model/vision/arch.ts';
import { proceduralVisionCheckpoint } from '../../src/model/vision/procedural.ts';
import { readF32, type Checkpoint } from '../../src/io/checkpoint.ts';
import { GemmaError } from '../../src/errors.ts';

const SMALL: VisionArch = {
  ...MOBILENETV5_300M_ENC,
  name: 'test-small',
  imageSize: 64,
  stem: { cout: 8, kernel: 3, stride: 2 },
  stages: [
    [{ kind: 'er', kernel: 3, stride: 2, cin: 8, mid: 16, cout: 8 }, { kind: 'er', kernel: 3, stride: 1, cin: 8, mid: 32, cout: 8 }],
    [{ kind: 'uir', dwStart: 3, dwMid: 5, stride: 2, cin: 8, mid: 24, cout: 12 }, { kind: 'uir', dwStart: 5, dwMid: 0, stride: 1, cin: 12, mid: 16, cout: 12 }],
    [
      { kind: 'uir', dwStart: 5, dwMid: 5, stride: 2, cin: 12, mid: 24, cout: 16 },
      { kind: 'uir', dwStart: 0, dwMid: 0, stride: 1, cin: 16, mid: 16, cout: 16 },
      { kind: 'mqa', channels: 16, heads: 2, keyDim: 8, kvStride: 2, dwKernel: 3 },
      { kind: 'uir', dwStart: 0, dwMid: 0, stride: 1, cin: 16, mid: 32, cout: 16 },
    ],
    [
      { kind: 'uir', dwStart: 5, dwMid: 5, stride: 2, cin: 16, mid: 32, cout: 24 },
      { kind: 'mqa', channels: 24, heads: 3, keyDim: 8, kvStride: 1, dwKernel: 3 },
      { kind: 'uir', dwStart: 0, dwMid: 0, stride: 1, cin: 24, mid: 32, cout: 24 },
    ],
  ],
  msfa: { mid: 48, cout: 32, outputSize: 2 },
};
const TEXT_HIDDEN = 20;

/** A tensor [C, H, W] in float64. */
interface T3 {
  c: number;
  h: number;
  w: number;
  d: Float64Array;
}

const at = (t: T3, c: number, y: number, x: number) => t.d[(c * t.h + y) * t.w + x];

/** Reference forward in float64 from PyTorch-layout weights. */
class Reference {
  private constructor(private readonly w: Map<string, Float64Array>, private readonly eps: number) {}

  static async create(ckpt: Checkpoint): Promise<Reference> {
    const w = new Map<string, Float64Array>();
    for (const n of ckpt.tensorNames()) w.set(n, Float64Array.from(await readF32(ckpt, n)));
    return new Reference(w, 1e-6);
  }

  get(name: string): Float64Array {
    const v = this.w.get(TOWER_PREFIX + name) ?? this.w.get(name);
    if (!v) throw new Error(`reference: no ${name}`);
    return v;
  }

  /** Conv with TF SAME padding; groups 1 or C (depthwise); weight [out, in/groups, k, k]. */
  conv(x: T3, name: string, out: number, k: number, stride: number, depthwise = false, bias?: Float64Array): T3 {
    const W = this.get(name);
    const oh = Math.ceil(x.h / stride), ow = Math.ceil(x.w / stride);
    const pt = Math.floor(Math.max((oh - 1) * stride + k - x.h, 0) / 2);
    const pl = Math.floor(Math.max((ow - 1) * stride + k - x.w, 0) / 2);
    const y: T3 = { c: out, h: oh, w: ow, d: new Float64Array(out * oh * ow) };
    const cin = depthwise ? 1 : x.c;
    for (let o = 0; o < out; o++)
      for (let oy = 0; oy < oh; oy++)
        for (let ox = 0; ox < ow; ox++) {
          let s = bias ? bias[o] : 0;
          for (let ci = 0; ci < cin; ci++) {
            const c = depthwise ? o : ci;
            for (let ky = 0; ky < k; ky++) {
              const iy = oy * stride - pt + ky;
              if (iy < 0 || iy >= x.h) continue;
              for (let kx = 0; kx < k; kx++) {
                const ix = ox * stride - pl + kx;
                if (ix < 0 || ix >= x.w) continue;
                s += at(x, c, iy, ix) * W[((o * cin + ci) * k + ky) * k + kx];
              }
            }
          }
          y.d[(o * oh + oy) * ow + ox] = s;
        }
    return y;
  }

  norm(x: T3, name: string | undefined, gelu = false): T3 {
    const W = name ? this.get(name) : undefined;
    const y: T3 = { ...x, d: new Float64Array(x.d.length) };
    const P = x.h * x.w;
    for (let p = 0; p < P; p++) {
      let ss = 0;
      for (let c = 0; c < x.c; c++) ss += x.d[c * P + p] ** 2;
      const inv = 1 / Math.sqrt(ss / x.c + this.eps);
      for (let c = 0; c < x.c; c++) {
        const v = x.d[c * P + p] * inv * (W ? W[c] : 1);
        y.d[c * P + p] = gelu ? 0.5 * v * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (v + 0.044715 * v ** 3))) : v;
      }
    }
    return y;
  }

  forward(pixels: Float32Array, arch: VisionArch): { features: T3; tokens: Float64Array } {
    const S = arch.imageSize;
    let x: T3 = { c: 3, h: S, w: S, d: Float64Array.from(pixels) };
    x = this.norm(this.conv(x, 'conv_stem.conv.weight', arch.stem.cout, 3, 2, false, this.get('conv_stem.conv.bias')), 'conv_stem.bn.weight', true);
    const outs: T3[] = [];
    arch.stages.forEach((stage, s) => {
      stage.forEach((b, i) => {
        const p = `blocks.${s}.${i}.`;
        if (b.kind === 'er') {
          let h = this.norm(this.conv(x, p + 'conv_exp.weight', b.mid, b.kernel, b.stride), p + 'bn1.weight', true);
          h = this.norm(this.conv(h, p + 'conv_pwl.weight', b.cout, 1, 1), p + 'bn2.weight');
          x = b.stride === 1 && b.cin === b.cout ? { ...h, d: h.d.map((v, j) => v + x.d[j]) } : h;
        } else if (b.kind === 'uir') {
          let h = x;
          if (b.dwStart) h = this.norm(this.conv(h, p + 'dw_start.conv.weight', b.cin, b.dwStart, 1, true), p + 'dw_start.bn.weight');
          h = this.norm(this.conv(h, p + 'pw_exp.conv.weight', b.mid, 1, 1), p + 'pw_exp.bn.weight', true);
          if (b.dwMid) h = this.norm(this.conv(h, p + 'dw_mid.conv.weight', b.mid, b.dwMid, b.stride, true), p + 'dw_mid.bn.weight', true);
          h = this.norm(this.conv(h, p + 'pw_proj.conv.weight', b.cout, 1, 1), p + 'pw_proj.bn.weight');
          const g = this.get(p + 'layer_scale.gamma');
          const P = h.h * h.w;
          const scaled = h.d.map((v, j) => v * g[Math.floor(j / P)]);
          x = b.stride === 1 && b.cin === b.cout ? { ...h, d: scaled.map((v, j) => v + x.d[j]) } : { ...h, d: scaled };
        } else {
          const xn = this.norm(x, p + 'norm.weight');
          const q = this.conv(xn, p + 'attn.query.proj.weight', b.heads * b.keyDim, 1, 1);
          const kv = (which: string) => {
            let src = xn;
            if (b.kvStride > 1) src = this.norm(this.conv(xn, p + `attn.${which}.down_conv.weight`, b.channels, b.dwKernel, b.kvStride, true), p + `attn.${which}.norm.weight`);
            return this.conv(src, p + `attn.${which}.proj.weight`, b.keyDim, 1, 1);
          };
          const K = kv('key');
          const V = kv('value');
          const P = x.h * x.w;
          const J = K.h * K.w;
          const d = b.keyDim;
          const o: T3 = { c: b.heads * d, h: x.h, w: x.w, d: new Float64Array(b.heads * d * P) };
          for (let hd = 0; hd < b.heads; hd++)
            for (let i = 0; i < P; i++) {
              const logits = new Float64Array(J);
              for (let j = 0; j < J; j++) {
                let s = 0;
                for (let e = 0; e < d; e++) s += q.d[(hd * d + e) * P + i] * d ** -0.5 * K.d[e * J + j];
                logits[j] = s;
              }
              const m = Math.max(...logits);
              const ex = logits.map((v) => Math.exp(v - m));
              const sum = ex.reduce((a, v) => a + v, 0);
              for (let e = 0; e < d; e++) {
                let s = 0;
                for (let j = 0; j < J; j++) s += (ex[j] / sum) * V.d[e * J + j];
                o.d[(hd * d + e) * P + i] = s;
              }
            }
          const out = this.conv(o, p + 'attn.output.proj.weight', b.channels, 1, 1);
          const g = this.get(p + 'layer_scale.gamma');
          x = { ...x, d: x.d.map((v, j) => v + g[Math.floor(j / P)] * out.d[j]) };
        }
      });
      outs.push(x);
    });
    // MSFA: concat(stage -2, nearest-upsampled stage -1), FFN, avg pool, norm.
    const a = outs[outs.length - 2];
    const b = outs[outs.length - 1];
    const f = a.h / b.h;
    const cat: T3 = { c: a.c + b.c, h: a.h, w: a.w, d: new Float64Array((a.c + b.c) * a.h * a.w) };
    cat.d.set(a.d);
    for (let c = 0; c < b.c; c++) for (let y = 0; y < a.h; y++) for (let xx = 0; xx < a.w; xx++) cat.d[((a.c + c) * a.h + y) * a.w + xx] = at(b, c, Math.floor(y / f), Math.floor(xx / f));
    let h = this.norm(this.conv(cat, 'msfa.ffn.pw_exp.conv.weight', arch.msfa.mid, 1, 1), 'msfa.ffn.pw_exp.bn.weight', true);
    h = this.norm(this.conv(h, 'msfa.ffn.pw_proj.conv.weight', arch.msfa.cout, 1, 1), 'msfa.ffn.pw_proj.bn.weight');
    const O = arch.msfa.outputSize;
    const k = h.h / O;
    const pooled: T3 = { c: h.c, h: O, w: O, d: new Float64Array(h.c * O * O) };
    for (let c = 0; c < h.c; c++)
      for (let y = 0; y < O; y++)
        for (let xx = 0; xx < O; xx++) {
          let s = 0;
          for (let dy = 0; dy < k; dy++) for (let dx = 0; dx < k; dx++) s += at(h, c, y * k + dy, xx * k + dx);
          pooled.d[(c * O + y) * O + xx] = s / (k * k);
        }
    const features = this.norm(pooled, 'msfa.norm.weight');
    // Soft tokens: x sqrt(C), RMSNorm with the soft weight, projection, scale-free RMSNorm.
    const C = features.c;
    const T = O * O;
    const soft = this.get(EMBED_PREFIX + 'soft_embedding_norm.weight');
    const proj = this.get(EMBED_PREFIX + 'embedding_projection.weight');
    const D = proj.length / C;
    const tokens = new Float64Array(T * D);
    for (let t = 0; t < T; t++) {
      const e = new Float64Array(C);
      for (let c = 0; c < C; c++) e[c] = features.d[c * T + t] * Math.sqrt(C);
      const inv = 1 / Math.sqrt(e.reduce((s, v) => s + v * v, 0) / C + 1e-6);
      for (let c = 0; c < C; c++) e[c] *= inv * soft[c];
      const pr = new Float64Array(D);
      for (let n = 0; n < D; n++) for (let c = 0; c < C; c++) pr[n] += proj[n * C + c] * e[c];
      const inv2 = 1 / Math.sqrt(pr.reduce((s, v) => s + v * v, 0) / D + 1e-6);
      for (let n = 0; n < D; n++) tokens[t * D + n] = pr[n] * inv2;
    }
    return { features, tokens };
  }
}

test('vision encoder on a small architecture of every block kind matches a float64 reference; memory() counts every GPU byte it holds', async () => {
  const ctx = await testGpu();
  const { rng, tag } = freshRng();
  const ckpt = proceduralVisionCheckpoint(SMALL, TEXT_HIDDEN);
  const { live, stop } = trackLiveBuffers(ctx.device);
  const encoder = await VisionEncoder.load(ctx, ckpt, { arch: SMALL });
  try {
    const S = SMALL.imageSize;
    const pixels = new Float32Array(3 * S * S).map(() => Math.fround(rng.int(0, 256) * Math.fround(1 / 255)));
    const { features, softTokens } = await encoder.encode(pixels);
    const r = (await Reference.create(ckpt)).forward(pixels, SMALL);
    const C = SMALL.msfa.cout;
    const P = SMALL.msfa.outputSize ** 2;
    const refFeaturesHwc = new Float64Array(P * C);
    for (let p = 0; p < P; p++) for (let c = 0; c < C; c++) refFeaturesHwc[p * C + c] = r.features.d[c * P + p];
    // Values are RMS-normalised (|x| <= ~4); f32 vs f64 through ~40 ops of short sums: ~1e-6. 2e-4 leaves room
    // for the attention's peaked softmax amplifying rounding, while a wiring error (a skipped residual, a wrong
    // head split, a transposed weight) moves outputs by O(0.1).
    assertWithin(features, refFeaturesHwc, 2e-4, `${tag} features`);
    assertWithin(softTokens, r.tokens, 2e-4, `${tag} soft tokens`);
    assert.deepEqual([encoder.config.softTokens, encoder.config.textHidden], [P, TEXT_HIDDEN]);
    // Each dispatch owns one parameter uniform (its kernel's arena); the kernels' other buffers are placeholders.
    const dispatches = encoder.plan.reduce((s, step) => s + step.dispatches.length, 0);
    assert.equal([...live].filter((b) => b.usage & GPUBufferUsage.UNIFORM).length, dispatches);
    const mem = assertEncoderMemoryAndDestroy(encoder, live, 'vision/');
    assert.ok(mem.weights > 0 && mem.scratch > 0);
    console.log(`# vision encoder (test-small, ${dispatches} dispatches): memory() ${JSON.stringify(mem)}`);
  } finally {
    stop();
    encoder.destroy();
  }
});

test('vision encoder: typed errors for a checkpoint without a tower and for bad pixel input', async () => {
  const ctx = await testGpu();
  const full = proceduralVisionCheckpoint(SMALL, TEXT_HIDDEN);
  const noTower: Checkpoint = { ...full, tensor: (n) => (n.startsWith(TOWER_PREFIX) ? undefined : full.tensor(n)), tensorNames: () => full.tensorNames().filter((n) => !n.startsWith(TOWER_PREFIX)) };
  await assert.rejects(VisionEncoder.load(ctx, noTower, { arch: SMALL }), (e: unknown) => e instanceof GemmaError && e.code === 'unsupported-input');
  await assert.rejects(VisionEncoder.load(ctx, full), (e: unknown) => e instanceof GemmaError && e.code === 'unsupported-config' && /test-small/.test(e.message));
  const encoder = await VisionEncoder.load(ctx, full, { arch: SMALL });
  await assert.rejects(encoder.encode(new Float32Array(10)), (e: unknown) => e instanceof GemmaError && e.code === 'invalid-argument');
  const aborted = AbortSignal.abort();
  await assert.rejects(encoder.encode(new Float32Array(3 * 64 * 64), { signal: aborted }), /abort/i);
  encoder.destroy();
  await assert.rejects(encoder.encode(new Float32Array(3 * 64 * 64)), (e: unknown) => e instanceof GemmaError && e.code === 'disposed');
});
