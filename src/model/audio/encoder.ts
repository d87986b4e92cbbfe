/**
 * Gemma 3n's audio encoder on our kernels: log-mel features -> soft tokens in the text model's embedding space, as
 * HF's Gemma3nModel.get_audio_features (audio tower + embed_audio's soft path). A model family of its own: loaded
 * from the same Checkpoint as the text model when first needed, with its own memory line, freed by destroy().
 *
 * The forward pass, in order (HF modeling_gemma3n.py; kernels in brackets):
 *   sub-sampler   2 x [conv 3x3 stride 2 (time padded (0, 2) at the end, freq (1, 1))  (subsample-conv)
 *                      -> cumulative group norm over (freq, channels) -> ReLU]          (cumulative-group-norm)
 *                 -> flatten (freq, channels) -> input_proj_linear                       (matmul)
 *   mask          valid[t] = frame mask at frame t * 4 (the stride product), not a reduction over frames
 *   12 conformer blocks, each on the residual stream x [T_sub, D]:
 *     half-step FFN   x += 0.5 * norm(W2 silu(W1 norm(clamp x)))                          (conformer-norm, matmul, silu)
 *     attention       x += norm(Wo attn(norm(clamp x)))   chunked local, relative positions (audio-attention)
 *     light conv      x = x * valid;  x += W_end silu(norm(clamp dwconv(glu(W_start norm(x)))))  (glu-dwconv)
 *     half-step FFN   as above, its own weights
 *     x = norm(clamp x)
 *   time reduction  every 4th step; padded steps (valid = 0) zeroed
 *   embed_audio     rmsnorm(W_proj rmsnorm_w(h)) with no scale on the outer norm         (conformer-norm, matmul, rmsnorm)
 * All activations are f32; the big matrices are stored in the format the caller picks (weights.ts).
 *
 * Padded soft tokens come out as exact zeros (as HF's); HF then replaces them (and pads the clip's span up to
 * audio_soft_tokens_per_image) with embed_audio's hard token vocab_size - 1 when merging into the prompt: that is
 * the caller's step (AudioEncoding.valid says which rows).
 */
import type { GpuContext } from '../../gpu/device.ts';
import { createStorageBuffer, readF32, writeBuffer } from '../../gpu/buffers.ts';
import type { Dispatch } from '../../gpu/pipeline.ts';
import type { Checkpoint } from '../../io/checkpoint.ts';
import { GemmaError } from '../../errors.ts';
import { gemma3nLogMel } from '../../audio/log-mel.ts';
import { MatmulKernel } from '../../kernels/matmul.ts';
import { RmsNormKernel } from '../../kernels/rmsnorm.ts';
import { ElementwiseKernel } from '../../kernels/elementwise.ts';
import { ConformerNormKernel } from '../../kernels/conformer-norm.ts';
import { SubsampleConvKernel } from '../../kernels/subsample-conv.ts';
import { CumulativeGroupNormKernel } from '../../kernels/cumulative-group-norm.ts';
import { AudioAttentionKernel } from '../../kernels/audio-attention.ts';
import { GluDwConvKernel } from '../../kernels/glu-dwconv.ts';
import { attentionPast, audioLengths, parseAudioTowerConfig, SSCP_FREQ_PAD, type AudioLengths, type AudioTowerConfig } from './config.ts';
import { destroyAudioWeights, formatsOf, loadAudioWeights, type AudioTowerWeights, type AudioWeightPlan, type LoadAudioWeightsOptions } from './weights.ts';

/**
 * The storage the encoder uses unless told otherwise: int8 for every matrix. Measured on gemma3n-audio-tiny against
 * HF's soft tokens (bench/audio-formats.ts; relative RMS error ||ours - HF|| / ||HF||): f32 5.9e-7, all q8 1.35e-2,
 * all q4 0.236; from all-q8, one family in q4 costs 0.08..0.18 (ffn 0.113, attention 0.176, lconv 0.085, input
 * projection 0.083, embed 0.084). int4 anywhere costs 6-13x int8's error, so int8: E2B's tower takes 0.699 GB of
 * GPU memory with its scales and f32 tables (int4: 0.371 GB; both measured by loading random weights, bench/audio.ts).
 */
export const DEFAULT_AUDIO_WEIGHTS: AudioWeightPlan = 'q8';

export interface AudioEncoderOptions {
  /** Storage of the big matrices: 'f32', 'q8', 'q4', or one per family (weights.ts). Default DEFAULT_AUDIO_WEIGHTS. */
  weights?: AudioWeightPlan;
  /** Synthetic weights drawn on the GPU (benchmarks, memory accounting); only the config is read. */
  random?: boolean;
  /** (tensors done, tensors total) while loading. */
  onProgress?: (done: number, total: number) => void;
  /** Each tensor as the offline cache keeps it (weights.ts). */
  onConverted?: LoadAudioWeightsOptions['onConverted'];
  /** Checked between tensors: an aborted load frees what it made and rejects with GemmaError('aborted'). */
  signal?: AbortSignal;
}

export interface EncodeOptions {
  /**
   * Checked between the tower's stages (the sub-sampler, each conformer block, the embedding): an aborted encode
   * stops within one stage of GPU work and rejects with GemmaError('aborted'). Without a signal the clip goes to the
   * GPU in one submission.
   */
  signal?: AbortSignal;
}

/** Soft tokens of one clip. */
export interface AudioEncoding {
  /** [count, width] f32 row-major: the rows that replace the clip's audio placeholders. */
  tokens: Float32Array;
  count: number;
  /** Text hidden size. */
  width: number;
  /** Per token: 1 = from valid audio, 0 = padding (an exact zero row; HF substitutes embed_audio's last hard token). */
  valid: Uint8Array;
}

/** What the tower computed on the way (for tests against HF's intermediates). */
export interface AudioIntermediates {
  /** Sub-sampler output [steps, D]. */
  subsampled: Float32Array;
  /** Each conformer block's output [steps, D]. */
  layers: Float32Array[];
  /** The tower's output [tokens, D]: every reduction-th step, padded steps zeroed. */
  lastHidden: Float32Array;
  /** Conformer mask (1 = valid) per step. */
  stepValid: Uint8Array;
}

export interface AudioEncoderMemory {
  /**
   * GPU bytes of weights, of the activation buffers (sized for the longest clip encoded so far) and of the buffers
   * its kernels own (`kernels`: each dispatch's parameters, placeholders, the group norms' running statistics).
   */
  gpu: { weights: number; scratch: number; kernels: number; total: number };
}

interface Kernels {
  matmul: MatmulKernel;
  norm: ConformerNormKernel;
  rmsnorm: RmsNormKernel;
  elementwise: ElementwiseKernel;
  conv: SubsampleConvKernel;
  groupNorm: CumulativeGroupNormKernel;
  attention: AudioAttentionKernel;
  gluConv: GluDwConvKernel;
}

/** GPU buffers and recorded dispatches for clips of up to `capacity` mel frames. */
interface Plan {
  capacity: number;
  /** The kernels its dispatches were bound with (freed with the plan). */
  kernels: Kernels;
  buffers: GPUBuffer[];
  bytes: number;
  features: GPUBuffer;
  stepValid: GPUBuffer;
  tokenValid: GPUBuffer;
  stream: GPUBuffer;
  tokens: GPUBuffer;
  /** stages[0] = sub-sampler, stages[1 + l] = block l, last = reduction + embedding. */
  stages: Dispatch[][];
  /** Sets every dispatch to a clip's lengths. */
  resize(lengths: AudioLengths): void;
  destroy(): void;
}

export class AudioEncoder {
  private plan: Plan | undefined;
  private destroyed = false;

  private constructor(
    private readonly ctx: GpuContext,
    readonly config: AudioTowerConfig,
    private readonly weights: AudioTowerWeights,
    /** Kernels compiled at load, handed to the first plan (a later, bigger plan makes its own from the cache). */
    private firstKernels: Kernels | undefined,
  ) {}

  /** Reads the tower's config and weights from `checkpoint` (config.json with an audio_config) and compiles its kernels. */
  static async load(ctx: GpuContext, checkpoint: Checkpoint, opts: AudioEncoderOptions = {}): Promise<AudioEncoder> {
    const config = parseAudioTowerConfig(checkpoint.config);
    const plan = opts.weights ?? DEFAULT_AUDIO_WEIGHTS;
    const weights = await loadAudioWeights(ctx, checkpoint, config, { plan, random: opts.random, onProgress: opts.onProgress, onConverted: opts.onConverted, signal: opts.signal });
    try {
      return new AudioEncoder(ctx, config, weights, await createKernels(ctx, plan));
    } catch (err) {
      destroyAudioWeights(weights);
      throw err;
    }
  }

  get weightPlan(): AudioWeightPlan {
    return this.weights.plan;
  }

  /** Soft tokens the tower makes from `frames` mel frames. */
  tokensFor(frames: number): number {
    return audioLengths(this.config, frames).tokens;
  }

  /**
   * Encodes one clip's log-mel features ([frames, input_feat_size] f32, src/audio/log-mel.ts) with an optional
   * frame mask (1 = valid; default all valid, as HF's extractor gives for one clip).
   */
  async encode(features: Float32Array, frames: number, mask?: Uint8Array, options: EncodeOptions = {}): Promise<AudioEncoding> {
    return (await this.run(features, frames, mask, 'none', options.signal)).encoding;
  }

  /**
   * encode() with each stage (sub-sampler, every block, reduction + embedding) submitted and awaited on its own:
   * wall-clock ms per stage, for benchmarks.
   */
  async encodeTimed(features: Float32Array, frames: number, mask?: Uint8Array): Promise<{ encoding: AudioEncoding; stageMs: number[] }> {
    const r = await this.run(features, frames, mask, 'time');
    return { encoding: r.encoding, stageMs: r.stageMs! };
  }

  /** encode() of mono 16 kHz samples: Gemma 3n's log-mel features (src/audio/log-mel.ts; clips over 30 s truncated, as HF). */
  async encodeSamples(samples: Float32Array, options: EncodeOptions = {}): Promise<AudioEncoding> {
    const f = gemma3nLogMel(samples);
    return this.encode(f.features, f.frames, f.mask, options);
  }

  /** encode() that also reads back the sub-sampler's and every block's output (one submission per stage). */
  async encodeWithIntermediates(features: Float32Array, frames: number, mask?: Uint8Array): Promise<{ encoding: AudioEncoding; intermediates: AudioIntermediates }> {
    const r = await this.run(features, frames, mask, 'capture');
    return { encoding: r.encoding, intermediates: r.intermediates! };
  }

  memory(): AudioEncoderMemory {
    const weights = this.weights.bytes;
    const scratch = this.plan?.bytes ?? 0;
    const owners = this.plan?.kernels ?? this.firstKernels;
    const kernels = owners ? Object.values(owners).reduce((s, k) => s + k.gpuBytes, 0) : 0;
    return { gpu: { weights, scratch, kernels, total: weights + scratch + kernels } };
  }

  /** Frees the weights, activation buffers and kernels. The encoder cannot be used afterwards. */
  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    this.plan?.destroy();
    this.plan = undefined;
    if (this.firstKernels) destroyKernels(this.firstKernels);
    this.firstKernels = undefined;
    destroyAudioWeights(this.weights);
  }

  private async run(
    features: Float32Array,
    frames: number,
    mask: Uint8Array | undefined,
    mode: 'none' | 'capture' | 'time',
    signal?: AbortSignal,
  ): Promise<{ encoding: AudioEncoding; intermediates?: AudioIntermediates; stageMs?: number[] }> {
    if (this.destroyed) throw new GemmaError('disposed', 'this audio encoder was destroyed');
    const aborted = () => new GemmaError('aborted', 'Encoding the audio was aborted.');
    if (signal?.aborted) throw aborted();
    const c = this.config;
    if (!(Number.isInteger(frames) && frames >= 1)) throw new GemmaError('invalid-argument', `audio features: ${frames} frames; at least one frame is needed`);
    if (features.length !== frames * c.inputFeatSize) {
      throw new GemmaError('invalid-argument', `audio features hold ${features.length} values; ${frames} frames of ${c.inputFeatSize} mel bins are ${frames * c.inputFeatSize}`);
    }
    for (let i = 0; i < features.length; i++) {
      if (!Number.isFinite(features[i])) throw new GemmaError('invalid-argument', `audio feature ${i} (frame ${Math.floor(i / c.inputFeatSize)}) is ${features[i]}; features must be finite`);
    }
    if (mask && mask.length !== frames) throw new GemmaError('invalid-argument', `audio mask has ${mask.length} entries for ${frames} frames`);
    const L = audioLengths(c, frames);
    if (L.steps < 1) throw new GemmaError('invalid-argument', `audio clip of ${frames} frames is too short for the audio tower`);
    const plan = await this.planFor(frames);
    const { device } = this.ctx;

    // The conformer's mask: the frame mask at t * (product of the sub-sampler's time strides), HF's gather.
    const stride = c.sscpStrides[0][0] * c.sscpStrides[1][0];
    const stepValid = new Uint32Array(L.steps);
    for (let t = 0; t < L.steps; t++) stepValid[t] = !mask || mask[Math.min(t * stride, frames - 1)] ? 1 : 0;
    const tokenValid = new Uint32Array(L.tokens);
    for (let j = 0; j < L.tokens; j++) tokenValid[j] = stepValid[j * c.reductionFactor];
    writeBuffer(device, plan.features, features);
    writeBuffer(device, plan.stepValid, stepValid);
    writeBuffer(device, plan.tokenValid, tokenValid);
    plan.resize(L);

    const D = c.hiddenSize;
    const layers: Float32Array[] = [];
    let subsampled: Float32Array | undefined;
    const submit = (dispatches: Dispatch[]) => {
      const encoder = device.createCommandEncoder({ label: 'audio-encoder' });
      const pass = encoder.beginComputePass({ label: 'audio-encoder' });
      for (const d of dispatches) d.encode(pass);
      pass.end();
      device.queue.submit([encoder.finish()]);
    };
    const stageMs: number[] = [];
    if (mode === 'capture') {
      for (let s = 0; s < plan.stages.length; s++) {
        submit(plan.stages[s]);
        if (s < plan.stages.length - 1) {
          const x = await readF32(device, plan.stream, L.steps * D);
          if (s === 0) subsampled = x;
          else layers.push(x);
        }
      }
    } else if (mode === 'time') {
      await device.queue.onSubmittedWorkDone(); // the uploads above
      for (const stage of plan.stages) {
        const t0 = performance.now();
        submit(stage);
        await device.queue.onSubmittedWorkDone();
        stageMs.push(performance.now() - t0);
      }
    } else if (signal) {
      // Stage by stage, so that an abort is seen within one stage of GPU work.
      for (const stage of plan.stages) {
        submit(stage);
        await device.queue.onSubmittedWorkDone();
        if (signal.aborted) throw aborted();
      }
    } else {
      submit(plan.stages.flat());
    }
    const tokens = await readF32(device, plan.tokens, L.tokens * c.textHiddenSize);
    const encoding: AudioEncoding = { tokens, count: L.tokens, width: c.textHiddenSize, valid: Uint8Array.from(tokenValid) };
    if (mode === 'time') return { encoding, stageMs };
    if (mode === 'none') return { encoding };
    const last = layers.length > 0 ? layers[layers.length - 1] : subsampled!;
    const lastHidden = new Float32Array(L.tokens * D);
    for (let j = 0; j < L.tokens; j++) if (tokenValid[j]) lastHidden.set(last.subarray(j * c.reductionFactor * D, (j * c.reductionFactor + 1) * D), j * D);
    return { encoding, intermediates: { subsampled: subsampled!, layers, lastHidden, stepValid: Uint8Array.from(stepValid) } };
  }

  /** The plan for clips of `frames` frames: the current one, or a bigger one (the old one and its kernels freed). */
  private async planFor(frames: number): Promise<Plan> {
    if (this.plan && this.plan.capacity >= frames) return this.plan;
    this.plan?.destroy();
    this.plan = undefined;
    const kernels = this.firstKernels ?? (await createKernels(this.ctx, this.weights.plan));
    this.firstKernels = undefined;
    // Room for 30 s (2,997 frames) at once, so the usual clip never rebuilds.
    this.plan = buildPlan(this.ctx, this.config, this.weights, kernels, Math.max(frames, 3000));
    return this.plan;
  }
}

/** The tower's kernels (pipelines come from the per-device cache after the first time). */
async function createKernels(ctx: GpuContext, plan: AudioWeightPlan): Promise<Kernels> {
  const [matmul, norm, rmsnorm, elementwise, conv, groupNorm, attention, gluConv] = await Promise.all([
    MatmulKernel.create(ctx, 'f32', formatsOf(plan)),
    ConformerNormKernel.create(ctx),
    RmsNormKernel.create(ctx),
    ElementwiseKernel.create(ctx),
    SubsampleConvKernel.create(ctx),
    CumulativeGroupNormKernel.create(ctx),
    AudioAttentionKernel.create(ctx),
    GluDwConvKernel.create(ctx),
  ]);
  return { matmul, norm, rmsnorm, elementwise, conv, groupNorm, attention, gluConv };
}

/** Frees every buffer the kernels made for their dispatches. */
function destroyKernels(k: Kernels): void {
  for (const kernel of Object.values(k)) kernel.destroy();
}

function buildPlan(ctx: GpuContext, c: AudioTowerConfig, w: AudioTowerWeights, k: Kernels, capacity: number): Plan {
  const { device } = ctx;
  const cap = audioLengths(c, capacity);
  const D = c.hiddenSize, Dt = c.textHiddenSize;
  const S = cap.steps, N = cap.tokens;
  const [[t1, f1], [t2, f2]] = cap.conv;
  const [c0, c1] = c.sscpChannels;
  const buffers: GPUBuffer[] = [];
  let bytes = 0;
  device.pushErrorScope('out-of-memory');
  const buffer = (floats: number, label: string) => {
    const b = createStorageBuffer(device, Math.max(1, floats) * 4, `audio/${label}`);
    buffers.push(b);
    bytes += b.size;
    return b;
  };
  const features = buffer(capacity * c.inputFeatSize, 'features');
  const conv0 = buffer(t1 * f1 * c0, 'conv0');
  const conv1 = buffer(t2 * f2 * c1, 'conv1');
  const stream = buffer(S * D, 'stream');
  const h = buffer(S * D, 'normed');
  const big = buffer(S * 4 * D, 'ffn'); // FFN hidden (4D) and the light conv's GLU input (2D)
  const q = buffer(S * D, 'q');
  const kk = buffer(S * D, 'k');
  const v = buffer(S * D, 'v');
  const att = buffer(S * D, 'attention');
  const tmp = buffer(S * D, 'projected');
  const stepValid = buffer(S, 'step-valid');
  const tokenValid = buffer(N, 'token-valid');
  const embedIn = buffer(N * D, 'embed-in');
  const embedProj = buffer(N * Dt, 'embed-proj');
  const tokens = buffer(N * Dt, 'tokens');
  // Out-of-memory surfaces asynchronously; the first encode's readback would then fail. Report it with the size.
  void device.popErrorScope().then((err) => {
    if (err) console.error(`audio encoder: out of GPU memory for ${(bytes / 2 ** 20).toFixed(0)} MiB of activations (${capacity} frames): ${err.message}`);
  });

  const clip = c.gradientClipping;
  const eps = 1e-6; // HF: Gemma3nRMSNorm's default eps for the FFN, attention and block norms
  const resizers: Array<(L: AudioLengths) => void> = [];
  const mm = (x: GPUBuffer, weight: AudioTowerWeights['inputProj'], y: GPUBuffer, rows: (L: AudioLengths) => number, accumulate = false) => {
    const d = k.matmul.bind({ x, weight, y, rows: 0, accumulate });
    resizers.push((L) => d.setRows(rows(L)));
    return d;
  };
  const steps = (L: AudioLengths) => L.steps;
  const norm = (args: Parameters<ConformerNormKernel['bind']>[0], rows: (L: AudioLengths) => number = steps) => {
    const d = k.norm.bind({ ...args, rows: 0 });
    resizers.push((L) => d.setRows(rows(L)));
    return d;
  };

  // Sub-sampler.
  const convArgs = (i: 0 | 1, x: GPUBuffer, y: GPUBuffer, fIn: number) => ({
    x, y, weight: w.conv[i], fIn, ci: i === 0 ? 1 : c0, co: c.sscpChannels[i], kh: c.sscpKernels[i][0], kw: c.sscpKernels[i][1], sh: c.sscpStrides[i][0], sw: c.sscpStrides[i][1], padF: SSCP_FREQ_PAD,
  });
  const conv0d = k.conv.bind({ ...convArgs(0, features, conv0, c.inputFeatSize), tIn: 0 });
  const conv1d = k.conv.bind({ ...convArgs(1, conv0, conv1, f1), tIn: 0 });
  const gn0 = k.groupNorm.bind({ x: conv0, weight: w.convNorm[0], frames: 0, maxFrames: t1, group: f1 * c0, channels: c0, eps: c.groupNormEps });
  const gn1 = k.groupNorm.bind({ x: conv1, weight: w.convNorm[1], frames: 0, maxFrames: t2, group: f2 * c1, channels: c1, eps: c.groupNormEps });
  resizers.push((L) => {
    conv0d.setFrames(L.frames);
    gn0.setFrames(L.conv[0][0]);
    conv1d.setFrames(L.conv[0][0]);
    gn1.setFrames(L.conv[1][0]);
  });
  const stages: Dispatch[][] = [[conv0d, gn0, conv1d, gn1, mm(conv1, w.inputProj, stream, steps)]];

  const ffn = (f: AudioTowerWeights['blocks'][number]['ffwStart']): Dispatch[] => {
    const silu = k.elementwise.bind({ op: 'silu', a: big, y: big, rows: 0, cols: 4 * D });
    resizers.push((L) => silu.setRows(L.steps));
    return [
      norm({ out: 'write', x: stream, y: h, weight: f.preNorm, dim: D, eps, clip, rows: 0 }),
      mm(h, f.up, big, steps),
      silu,
      mm(big, f.down, tmp, steps),
      norm({ out: 'accumulate', alpha: c.residualWeight, x: tmp, y: stream, weight: f.postNorm, dim: D, eps, clip, rows: 0 }),
    ];
  };
  for (const b of w.blocks) {
    const attention = k.attention.bind({ q, k: kk, v, rel: b.rel, qScale: b.qScale, valid: stepValid, out: att, length: 0, heads: c.numHeads, headDim: c.headDim, chunk: c.chunkSize, past: attentionPast(c), future: c.contextRight, cap: c.logitCap });
    const glu = k.gluConv.bind({ a: big, weight: b.depthwise, y: tmp, rows: 0, dim: D, kernel: c.convKernel });
    resizers.push((L) => {
      attention.setLength(L.steps);
      glu.setRows(L.steps);
    });
    stages.push([
      ...ffn(b.ffwStart),
      norm({ out: 'write', x: stream, y: h, weight: b.attnPreNorm, dim: D, eps, clip, rows: 0 }),
      mm(h, b.q, q, steps),
      mm(h, b.k, kk, steps),
      mm(h, b.v, v, steps),
      attention,
      mm(att, b.post, tmp, steps),
      norm({ out: 'accumulate', alpha: 1, x: tmp, y: stream, weight: b.attnPostNorm, dim: D, eps, clip, rows: 0 }),
      // Light conv: HF masks its input (which is also its residual) and norms it without a clamp.
      norm({ out: 'write', mask: 'writeBack', rowMask: stepValid, x: stream, y: h, weight: b.lconvPreNorm, dim: D, eps: c.rmsNormEps, rows: 0 }),
      mm(h, b.lconvStart, big, steps),
      glu,
      norm({ out: 'write', act: 'silu', x: tmp, y: h, weight: b.convNorm, dim: D, eps: c.rmsNormEps, clip, rows: 0 }),
      mm(h, b.lconvEnd, stream, steps, true),
      ...ffn(b.ffwEnd),
      norm({ out: 'inPlace', x: stream, weight: b.norm, dim: D, eps, clip, rows: 0 }),
    ]);
  }

  // Time reduction (every reduction-th step, padded steps as zero rows) fused into embed_audio's soft norm.
  const tokenCount = (L: AudioLengths) => L.tokens;
  const finalNorm = k.rmsnorm.bind({ x: embedProj, y: tokens, rows: 0, dim: Dt, eps: c.rmsNormEps });
  resizers.push((L) => finalNorm.setRows(L.tokens));
  stages.push([
    norm({ out: 'write', mask: 'input', rowMask: tokenValid, x: stream, xStride: c.reductionFactor * D, y: embedIn, weight: w.softNorm, dim: D, eps: c.rmsNormEps, rows: 0 }, tokenCount),
    mm(embedIn, w.projection, embedProj, tokenCount),
    finalNorm,
  ]);

  return {
    capacity,
    kernels: k,
    buffers,
    bytes,
    features,
    stepValid,
    tokenValid,
    stream,
    tokens,
    stages,
    resize: (L) => resizers.forEach((r) => r(L)),
    destroy: () => {
      destroyKernels(k);
      buffers.forEach((b) => b.destroy());
    },
  };
}
