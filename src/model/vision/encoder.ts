/**
 * Gemma 3n's vision encoder on our WGSL kernels: pixel_values [3, 768, 768] -> MobileNet-V5 tower -> features
 * [2048, 16, 16] -> `get_image_features` (x sqrt(2048)) -> `embed_vision` soft path -> soft tokens [256, text
 * hidden]. Architecture and numerics: test/fixtures/gemma3n-vision-procedural/README.md ("Architecture"); the
 * block table is arch.ts.
 *
 * Layout: activations are f32, channels last (HWC, pixel-major), so a pointwise convolution is a GEMM over pixels,
 * every RMS norm normalises a contiguous row of channels, and the attention's queries are already [pixel, head,
 * dim]. The whole forward is bound once at load (fixed 768x768 input): `encode` uploads the pixels, records the
 * prebuilt dispatches block by block, and reads back the soft tokens. f32 activations and accumulation throughout
 * (the real checkpoint's conv weights reach |w| ~ 98: f16 activations overflow in this tower).
 *
 * Attention (mobile MQA, one shared K/V head): q = 1x1(norm x) [P, heads * d]; K, V = 1x1(norm(dw stride 2 (norm
 * x))) [P', d] (or 1x1(norm x) when kvStride is 1); scores = q.K^T as a GEMM over the P * heads query rows ([P *
 * heads, d] is q's own memory), row softmax with scale d^-0.5, o = p.V as a GEMM (V read in-major), then x +=
 * gamma * 1x1(o). The [P * heads, P'] score matrix (64 MB at stage 2) lives in a scratch buffer.
 *
 * The encoder is a model family of its own: loaded on first use from the same Checkpoint as the decoder, with its
 * own memory line (`memory()`), freed by `destroy()`. The soft tokens stay on the GPU in `softTokens` after each
 * encode (for a caller that copies them into the decoder's embeddings) and come back to the CPU as well.
 */
import type { GpuContext } from '../../gpu/device.ts';
import { GemmaError } from '../../errors.ts';
import type { Checkpoint } from '../../io/checkpoint.ts';
import { createStorageBuffer, readF32, type GpuBufferOwner } from '../../gpu/buffers.ts';
import type { Dispatch } from '../../gpu/pipeline.ts';
import { Conv2dKernel, samePad, type ConvWeight } from '../../kernels/conv2d.ts';
import { DepthwiseConvKernel } from '../../kernels/depthwise-conv.ts';
import { ChannelNormKernel, type ChannelNormEpilogue } from '../../kernels/channel-norm.ts';
import { ResampleKernel } from '../../kernels/resample.ts';
import { SoftmaxKernel } from '../../kernels/softmax.ts';
import { blockOut, msfaIn, type VisionArch } from './arch.ts';
import { parseVisionConfig, type VisionConfig } from './config.ts';
import { loadVisionWeights, type LoadVisionWeightsOptions, type DepthwiseWeights, type VisionWeightFormat, type VisionWeights } from './weights.ts';

export interface VisionEncoderOptions {
  /** GPU storage of the convolution weights (default 'bf16': lossless for bf16 checkpoints). */
  weights?: VisionWeightFormat;
  onProgress?: (loaded: number, total: number) => void;
  /** Each tensor as read, for the offline cache (weights.ts). */
  onConverted?: LoadVisionWeightsOptions['onConverted'];
  signal?: AbortSignal;
  /** Overrides the architecture the config names (tests: small architectures of the same block kinds). */
  arch?: VisionArch;
}

/** A tensor the forward produced, for debugging against the fixture's per-block summaries. */
export interface ProbedTensor {
  name: string;
  /** [channels, height, width]. */
  shape: [number, number, number];
  /** Reads it back, channels last ([height * width, channels]). */
  read(): Promise<Float32Array>;
}

export interface EncodeOptions {
  /** Checked between steps (stem, each block, MSFA, embed): an abort rejects with GemmaError('aborted'). */
  signal?: AbortSignal;
  /** Called after each block (stem, blocks.s.i, msfa) with its output; the forward waits for the promise. */
  onTensor?: (t: ProbedTensor) => Promise<void>;
}

export interface EncodeResult {
  /** [softTokens, textHidden] f32: token t is feature pixel (t / 16, t % 16). */
  softTokens: Float32Array;
  /** The tower's output channels last, [256, 2048] (HF's features [2048, 16, 16] transposed). */
  features: Float32Array;
}

/**
 * GPU bytes, in the shape every media encoder reports (src/model/media-encoder.ts): its own `info.memory` line.
 * `kernels`: the buffers its kernels own (each dispatch's parameters, placeholders for unused bindings).
 */
export interface VisionMemory {
  gpu: { weights: number; scratch: number; kernels: number; total: number };
}

interface Step {
  name: string;
  dispatches: Dispatch[];
  out?: { buffer: GPUBuffer; c: number; h: number; w: number };
}

/**
 * Whether the stem's output can live in a scratch buffer (the residual buffer then only needs the blocks' outputs,
 * half the stem's size): when the first block is an edge residual without skip, which reads its input once.
 */
function stemToScratch(arch: VisionArch): boolean {
  const first = arch.stages[0][0];
  return first.kind === 'er' && !(first.stride === 1 && first.cin === first.cout);
}

/** Activation buffer sizes (f32 elements) of one image, by role. */
function activationSizes(arch: VisionArch, textHidden: number): Record<string, number> {
  let s = samePad(arch.imageSize, arch.stem.kernel, arch.stem.stride).out;
  const size = { input: arch.imageSize ** 2 * 4, res: stemToScratch(arch) ? 0 : arch.stem.cout * s * s, scratch: arch.stem.cout * s * s, q: 4, kx: 4, kv: 4, concat: 0, features: 0, embed: 0, tokens: 0 };
  const fusedAt = arch.stages.length - 2;
  let fused = 0;
  arch.stages.forEach((stage, si) => {
    for (const b of stage) {
      if (b.kind === 'er') {
        const o = samePad(s, b.kernel, b.stride).out;
        size.scratch = Math.max(size.scratch, b.mid * o * o, b.cout * o * o);
        s = o;
      } else if (b.kind === 'uir') {
        const o = b.dwMid ? samePad(s, b.dwMid, b.stride).out : s;
        size.scratch = Math.max(size.scratch, b.cin * s * s, b.mid * s * s, b.mid * o * o, b.cout * o * o);
        s = o;
      } else {
        const kv = b.kvStride > 1 ? samePad(s, b.dwKernel, b.kvStride).out : s;
        size.scratch = Math.max(size.scratch, b.channels * s * s, b.heads * s * s * kv * kv);
        size.q = Math.max(size.q, b.heads * b.keyDim * s * s);
        size.kx = Math.max(size.kx, b.channels * kv * kv);
        size.kv = Math.max(size.kv, b.keyDim * kv * kv);
      }
      size.res = Math.max(size.res, blockOut(b) * s * s);
    }
    if (si === fusedAt) fused = s;
  });
  size.concat = msfaIn(arch) * fused * fused;
  size.scratch = Math.max(size.scratch, arch.msfa.mid * fused * fused, arch.msfa.cout * fused * fused);
  const tokens = arch.msfa.outputSize ** 2;
  size.features = arch.msfa.cout * tokens;
  size.embed = arch.msfa.cout * tokens;
  size.tokens = textHidden * tokens;
  return size;
}

export class VisionEncoder {
  /** Soft tokens of the last encode, [softTokens, textHidden] f32 on the GPU. */
  readonly softTokens: GPUBuffer;
  private disposed = false;
  private running = false;

  private constructor(
    private readonly ctx: GpuContext,
    readonly config: VisionConfig,
    private readonly weights: VisionWeights,
    private readonly buffers: Record<string, GPUBuffer>,
    private readonly steps: Step[],
    /** The kernels this encoder bound (each owns its dispatches' parameters and its placeholders). */
    private readonly kernels: GpuBufferOwner[],
    private readonly activationBytes: number,
  ) {
    this.softTokens = buffers.tokens;
  }

  /** Loads the tower and embedder weights from `ckpt` and binds the whole forward (GemmaError when it has no tower). */
  static async load(ctx: GpuContext, ckpt: Checkpoint, options: VisionEncoderOptions = {}): Promise<VisionEncoder> {
    const cfg = parseVisionConfig(ckpt, options.arch);
    const format = options.weights ?? 'bf16';
    const [conv, dw, norm, resample, softmax] = await Promise.all([
      Conv2dKernel.create(ctx, [[format, 'out-major'], ['f32', 'out-major'], ['f32', 'in-major']]),
      DepthwiseConvKernel.create(ctx),
      ChannelNormKernel.create(ctx),
      ResampleKernel.create(ctx),
      SoftmaxKernel.create(ctx),
    ]);
    const weights = await loadVisionWeights(ctx, ckpt, cfg, { format, onProgress: options.onProgress, onConverted: options.onConverted, signal: options.signal });
    const sizes = activationSizes(cfg.arch, cfg.textHidden);
    const buffers: Record<string, GPUBuffer> = {};
    let activationBytes = 0;
    ctx.device.pushErrorScope('out-of-memory');
    // Pairs: scratch0/1 (ping-pong intermediates, also the attention scores), q0/q1 (queries, attention output),
    // kx0/kx1 (downsampled key / value inputs), kv0/kv1 (K, V). The rest one each.
    for (const [role, n] of Object.entries(sizes)) {
      const count = ['scratch', 'q', 'kx', 'kv'].includes(role) ? 2 : 1;
      for (let i = 0; i < count; i++) {
        const name = count === 1 ? role : `${role}${i}`;
        buffers[name] = createStorageBuffer(ctx.device, n * 4, `vision/${name}`);
        activationBytes += buffers[name].size;
      }
    }
    const oom = await ctx.device.popErrorScope();
    const kernels = { conv, dw, norm, resample, softmax };
    if (oom) {
      for (const b of Object.values(buffers)) b.destroy();
      weights.destroy();
      for (const k of Object.values(kernels)) k.destroy();
      throw new GemmaError('limit-too-small', `vision encoder: the GPU is out of memory for ${(activationBytes / 2 ** 20).toFixed(0)} MiB of activations: ${oom.message}`);
    }
    const steps = buildForward(cfg, weights, buffers, kernels);
    return new VisionEncoder(ctx, cfg, weights, buffers, steps, Object.values(kernels), activationBytes);
  }

  /** The bound forward, step by step (benchmarks time its dispatches one at a time; see bench/vision.ts --profile). */
  get plan(): ReadonlyArray<{ readonly name: string; readonly dispatches: readonly Dispatch[] }> {
    return this.steps;
  }

  memory(): VisionMemory {
    const weights = this.weights.bytes;
    const scratch = this.disposed ? 0 : this.activationBytes;
    const kernels = this.kernels.reduce((s, k) => s + k.gpuBytes, 0); // 0 once destroyed: each arena is empty
    return { gpu: { weights, scratch, kernels, total: weights + scratch + kernels } };
  }

  /**
   * Runs one image: `pixelValues` is HF's pixel_values, float32 [3, S, S] channels first (S = 768), values in
   * [0, 1] (see preprocess.ts). Resolves with the soft tokens (also left in `softTokens` on the GPU).
   */
  async encode(pixelValues: Float32Array, options: EncodeOptions = {}): Promise<EncodeResult> {
    if (this.disposed) throw new GemmaError('disposed', 'the vision encoder was destroyed');
    if (this.running) throw new GemmaError('busy', 'the vision encoder is already encoding an image; await it first (one image at a time per encoder)');
    this.running = true;
    try {
      return await this.run(pixelValues, options);
    } finally {
      this.running = false;
    }
  }

  private async run(pixelValues: Float32Array, options: EncodeOptions): Promise<EncodeResult> {
    const { device } = this.ctx;
    const S = this.config.arch.imageSize;
    const C = this.config.arch.inChannels;
    if (pixelValues.length !== C * S * S) {
      throw new GemmaError('invalid-argument', `vision encoder: pixel_values must be [${C}, ${S}, ${S}] (${C * S * S} floats), got ${pixelValues.length}; resize with preprocess.ts first.`);
    }
    // CHW -> HWC with the channels padded to 4 (the stem's weights are padded to match).
    const hwc = new Float32Array(S * S * 4);
    for (let c = 0; c < C; c++) for (let i = 0; i < S * S; i++) hwc[i * 4 + c] = pixelValues[c * S * S + i];
    device.queue.writeBuffer(this.buffers.input, 0, hwc);
    const { signal } = options;
    const aborted = () => new GemmaError('aborted', 'Encoding the image was aborted.');
    for (const step of this.steps) {
      if (signal?.aborted) throw aborted();
      const encoder = device.createCommandEncoder({ label: `vision/${step.name}` });
      const pass = encoder.beginComputePass({ label: `vision/${step.name}` });
      for (const d of step.dispatches) d.encode(pass);
      pass.end();
      device.queue.submit([encoder.finish()]);
      // With a signal, each step waits for the GPU, so an abort stops the tower within one step of work (without
      // one, the steps are queued at once and only the readback waits).
      if (signal) await device.queue.onSubmittedWorkDone();
      if (options.onTensor && step.out) {
        const { buffer, c, h, w } = step.out;
        await options.onTensor({ name: step.name, shape: [c, h, w], read: () => readF32(device, buffer, c * h * w) });
      }
    }
    const tokens = this.config.softTokens;
    const [softTokens, features] = await Promise.all([readF32(device, this.buffers.tokens, tokens * this.config.textHidden), readF32(device, this.buffers.features, tokens * this.config.visionHidden)]);
    return { softTokens, features };
  }

  /** Frees the weights, activations and the kernels' buffers (an encode in flight finishes first on the GPU queue). */
  destroy(): void {
    if (this.disposed) return;
    this.disposed = true;
    for (const k of this.kernels) k.destroy();
    for (const b of Object.values(this.buffers)) b.destroy();
    this.weights.destroy();
  }
}

interface Kernels {
  conv: Conv2dKernel;
  dw: DepthwiseConvKernel;
  norm: ChannelNormKernel;
  resample: ResampleKernel;
  softmax: SoftmaxKernel;
}

/** Binds every dispatch of one image's forward, grouped in steps (stem, each block, msfa, embed). */
function buildForward(cfg: VisionConfig, w: VisionWeights, buf: Record<string, GPUBuffer>, k: Kernels): Step[] {
  const { arch, eps } = cfg;
  const steps: Step[] = [];
  let current: Dispatch[] = [];
  const track = (d: Dispatch): Dispatch => {
    current.push(d);
    return d;
  };
  const finish = (name: string, out?: Step['out']) => {
    steps.push({ name, dispatches: current, out });
    current = [];
  };
  const norm = (x: GPUBuffer, y: GPUBuffer, pixels: number, channels: number, weight: GPUBuffer | undefined, epilogue: ChannelNormEpilogue = 'none', alpha?: number) =>
    track(k.norm.bind({ x, y, weight, pixels, channels, eps, epilogue, alpha }));
  const conv = (x: GPUBuffer, size: number, weight: ConvWeight, y: GPUBuffer, opts: { stride?: number; bias?: GPUBuffer; scale?: GPUBuffer; accumulate?: boolean } = {}) =>
    track(k.conv.bind({ x, height: size, width: size, weight, y, ...opts }));
  const depthwise = (x: GPUBuffer, size: number, channels: number, dw: DepthwiseWeights, stride: number, y: GPUBuffer, epilogue: ChannelNormEpilogue) => {
    track(k.dw.bind({ x, height: size, width: size, channels, weight: dw.weight, kernel: dw.kernel, stride, y }));
    const o = samePad(size, dw.kernel, stride).out;
    norm(y, y, o * o, channels, dw.norm, epilogue);
    return o;
  };
  const { res, scratch0: a, scratch1: b } = buf;

  // Stem: GELU(norm(conv3x3/2(pixels) + bias)).
  let s = samePad(arch.imageSize, arch.stem.kernel, arch.stem.stride).out;
  conv(buf.input, arch.imageSize, w.stem.conv, a, { stride: arch.stem.stride, bias: w.stem.bias });
  let input = stemToScratch(arch) ? b : res; // the current block's input: the residual stream after the first block
  norm(a, input, s * s, arch.stem.cout, w.stem.norm, 'gelu');
  let c = arch.stem.cout;
  finish('stem', { buffer: input, c, h: s, w: s });

  const fusedAt = arch.stages.length - 2;
  let fusedSize = 0;
  arch.stages.forEach((stage, si) => {
    stage.forEach((block, bi) => {
      const bw = w.blocks[si][bi];
      if (block.kind === 'er' && bw.kind === 'er') {
        const o = samePad(s, block.kernel, block.stride).out;
        conv(input, s, bw.convExp, a, { stride: block.stride });
        norm(a, a, o * o, block.mid, bw.bn1, 'gelu');
        conv(a, o, bw.convPwl, b);
        const skip = block.stride === 1 && block.cin === block.cout;
        norm(b, res, o * o, block.cout, bw.bn2, skip ? 'add' : 'none');
        s = o;
      } else if (block.kind === 'uir' && bw.kind === 'uir') {
        let src = res;
        if (bw.dwStart) {
          depthwise(res, s, block.cin, bw.dwStart, 1, a, 'none');
          src = a;
        }
        conv(src, s, bw.pwExp, b);
        norm(b, b, s * s, block.mid, bw.pwExpNorm, 'gelu');
        let mid = b;
        let o = s;
        if (bw.dwMid) {
          o = depthwise(b, s, block.mid, bw.dwMid, block.stride, a, 'gelu');
          mid = a;
        }
        const proj = mid === a ? b : a;
        conv(mid, o, bw.pwProj, proj);
        const skip = block.stride === 1 && block.cin === block.cout;
        norm(proj, res, o * o, block.cout, bw.pwProjNorm, skip ? 'add' : 'none');
        s = o;
      } else if (block.kind === 'mqa' && bw.kind === 'mqa') {
        const C = block.channels;
        const d = block.keyDim;
        const P = s * s;
        norm(res, a, P, C, bw.norm);
        conv(a, s, bw.query, buf.q0);
        const kvOf = (kvw: typeof bw.key, dst: GPUBuffer, down: GPUBuffer): number => {
          let src = a;
          let kv = s;
          if (kvw.down) {
            kv = depthwise(a, s, C, kvw.down, block.kvStride, down, 'none');
            src = down;
          }
          conv(src, kv, kvw.proj, dst);
          return kv;
        };
        const kv = kvOf(bw.key, buf.kv0, buf.kx0);
        kvOf(bw.value, buf.kv1, buf.kx1);
        const keys = kv * kv;
        const rows = P * block.heads;
        // scores [P * heads, keys] = q [P * heads, d] . K^T, K [keys, d] read out-major.
        track(k.conv.bindGemm({ x: buf.q0, rows, weight: { format: 'f32', layout: 'out-major', cout: keys, cin: d, kh: 1, kw: 1, data: buf.kv0 }, y: b }));
        track(k.softmax.bind({ y: b, rows, cols: keys, alpha: Math.fround(d ** -0.5) }));
        // o [P * heads, d] = p . V, V [keys, d] read in-major; o is [P, heads * d], head h at channels h*d..
        track(k.conv.bindGemm({ x: b, rows, weight: { format: 'f32', layout: 'in-major', cout: d, cin: keys, kh: 1, kw: 1, data: buf.kv1 }, y: buf.q1 }));
        conv(buf.q1, s, bw.output, res, { scale: bw.gamma, accumulate: true });
      } else throw new Error(`vision: block ${si}.${bi} weights do not match the architecture`);
      c = blockOut(block);
      input = res;
      finish(`blocks.${si}.${bi}`, { buffer: res, c, h: s, w: s });
    });
    if (si === fusedAt) {
      // The MSFA's first input: stage si's output into channels [0, c) of the concatenation.
      fusedSize = s;
      track(k.resample.bind({ mode: 'nearest', x: res, height: s, width: s, channels: c, outHeight: s, outWidth: s, y: buf.concat, yStride: msfaIn(arch) }));
      finish(`msfa.input.${si}`);
    }
  });

  // MSFA: nearest-upsample the last stage into channels [C2, C2 + C3), 1x1 FFN (no skip), avg-pool, norm.
  const f = fusedSize;
  const cin = msfaIn(arch);
  track(k.resample.bind({ mode: 'nearest', x: res, height: s, width: s, channels: c, outHeight: f, outWidth: f, y: buf.concat, yOffset: cin - c, yStride: cin }));
  conv(buf.concat, f, w.msfa.pwExp, a);
  norm(a, a, f * f, arch.msfa.mid, w.msfa.pwExpNorm, 'gelu');
  conv(a, f, w.msfa.pwProj, b);
  norm(b, b, f * f, arch.msfa.cout, w.msfa.pwProjNorm);
  const out = arch.msfa.outputSize;
  track(k.resample.bind({ mode: 'avg-pool', x: b, height: f, width: f, channels: arch.msfa.cout, outHeight: out, outWidth: out, y: a }));
  norm(a, buf.features, out * out, arch.msfa.cout, w.msfa.norm);
  finish('msfa', { buffer: buf.features, c: arch.msfa.cout, h: out, w: out });

  // Soft tokens: RMSNorm(features * sqrt(2048)) * w, projection, scale-free RMSNorm (HF: f32 even for bf16 models).
  const tokens = out * out;
  norm(buf.features, buf.embed, tokens, arch.msfa.cout, w.embed.softNorm, 'none', Math.fround(Math.sqrt(cfg.visionHidden)));
  track(k.conv.bindGemm({ x: buf.embed, rows: tokens, weight: w.embed.projection, y: buf.tokens }));
  norm(buf.tokens, buf.tokens, tokens, cfg.textHidden, undefined);
  finish('embed_vision', { buffer: buf.tokens, c: cfg.textHidden, h: out, w: out });
  return steps;
}
