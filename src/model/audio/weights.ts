/**
 * Gemma 3n's audio tower weights on the GPU (`model.audio_tower.*` plus `model.embed_audio.*`'s soft path), read
 * from a Checkpoint on demand. The big matrices (feed-forwards, q/k/v/post, light-conv linears, the sub-sampler's
 * input projection, embed_audio's projection) are stored in the GPU weight formats the caller's plan picks (f32 for
 * the golden tests; q8 / q4 per family, see DEFAULT_AUDIO_WEIGHTS in encoder.ts for the measured choice); norms, conv kernels
 * and the per-layer attention tables (attention-tables.ts) stay f32. `pos_proj` and `per_dim_scale` are folded into
 * those tables at load and never uploaded.
 */
import type { GpuContext } from '../../gpu/device.ts';
import { GemmaError } from '../../errors.ts';
import { uploadBuffer } from '../../gpu/buffers.ts';
import { readF32, requireTensor, type Checkpoint } from '../../io/checkpoint.ts';
import { createRandomWeight, destroyWeight, weightFromCheckpoint } from '../../kernels/upload-weight.ts';
import { convWeightForKernel } from '../../kernels/subsample-conv.ts';
import type { GpuWeight } from '../../formats/weight-format.ts';
import type { ConvertedTensor } from '../converted-tensor.ts';
import { AUDIO_TOWER_PROBE_TENSOR, attentionPast, audioLengths, type AudioTowerConfig } from './config.ts';
import { queryScale, relativePositionTable } from './attention-tables.ts';

/** Storage of the tower's big matrices. */
export type AudioWeightFormat = 'f32' | 'q8' | 'q4';

/**
 * The tower's matrix families: the conformer's feed-forwards (ffw_layer_1/2, 67 % of its parameters), attention
 * (q/k/v/post), the light conv's linears, the sub-sampler's input projection and embed_audio's projection.
 */
export type AudioMatrixFamily = 'ffn' | 'attention' | 'lconv' | 'inputProj' | 'embed';

/** One format for every matrix, or one per family. */
export type AudioWeightPlan = AudioWeightFormat | Record<AudioMatrixFamily, AudioWeightFormat>;

export function formatOf(plan: AudioWeightPlan, family: AudioMatrixFamily): AudioWeightFormat {
  return typeof plan === 'string' ? plan : plan[family];
}

/** Every format a plan uses (the matmul pipelines to compile). */
export function formatsOf(plan: AudioWeightPlan): AudioWeightFormat[] {
  return typeof plan === 'string' ? [plan] : [...new Set(Object.values(plan))];
}

const TOWER = 'model.audio_tower.';
const EMBED = 'model.embed_audio.';

export interface FeedForwardWeights {
  preNorm: GPUBuffer;
  up: GpuWeight;
  down: GpuWeight;
  postNorm: GPUBuffer;
}

export interface ConformerBlockWeights {
  ffwStart: FeedForwardWeights;
  attnPreNorm: GPUBuffer;
  q: GpuWeight;
  k: GpuWeight;
  v: GpuWeight;
  /** f32 [P + R + 1, D]: pos_proj applied to the relative-position sinusoids. */
  rel: GPUBuffer;
  /** f32 [head_dim]. */
  qScale: GPUBuffer;
  post: GpuWeight;
  attnPostNorm: GPUBuffer;
  lconvPreNorm: GPUBuffer;
  lconvStart: GpuWeight;
  /** f32 [D, K]. */
  depthwise: GPUBuffer;
  convNorm: GPUBuffer;
  lconvEnd: GpuWeight;
  ffwEnd: FeedForwardWeights;
  norm: GPUBuffer;
}

export interface AudioTowerWeights {
  plan: AudioWeightPlan;
  /** Sub-sampler convolutions, f32 [kh, kw, ci, co] (subsample-conv.ts layout), and their group-norm scales. */
  conv: [GPUBuffer, GPUBuffer];
  convNorm: [GPUBuffer, GPUBuffer];
  inputProj: GpuWeight;
  blocks: ConformerBlockWeights[];
  /** embed_audio's soft path: soft_embedding_norm scale and embedding_projection [text D, D]. */
  softNorm: GPUBuffer;
  projection: GpuWeight;
  /** GPU bytes of all of the above. */
  bytes: number;
}

export interface LoadAudioWeightsOptions {
  plan: AudioWeightPlan;
  /** Synthetic weights (benchmarks, memory accounting): matrices drawn on the GPU, nothing read. */
  random?: boolean;
  /** (tensors done, tensors total), ending at done === total. */
  onProgress?: (done: number, total: number) => void;
  /**
   * Each tensor as the offline cache keeps it (src/runtime/loading/converted-cache.ts): matrices after conversion,
   * small tensors as read (before the load-time folding, which a cached load redoes).
   */
  onConverted?: (t: ConvertedTensor) => Promise<void>;
  /** Checked between tensors: an aborted load frees what it made and rejects with GemmaError('aborted'). */
  signal?: AbortSignal;
}

/** Tiny deterministic normal(0, std) values for random mode's small f32 tensors. */
function pseudoNormals(n: number, std: number, seed: number): Float32Array {
  let s = (seed * 2654435761) >>> 0 || 1;
  const next = () => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return ((s >>> 0) + 0.5) / 4294967296;
  };
  return Float32Array.from({ length: n }, () => std * Math.sqrt(-2 * Math.log(next())) * Math.cos(2 * Math.PI * next()));
}

/** Whether a checkpoint holds the audio tower's tensors (a text-only GGUF has the config but not the tower). */
export function hasAudioWeights(ckpt: Checkpoint): boolean {
  return ckpt.tensor(AUDIO_TOWER_PROBE_TENSOR) !== undefined;
}

/** Loads (or, with `random`, draws) the tower's weights for `cfg`. Frees what it made if anything fails. */
export async function loadAudioWeights(ctx: GpuContext, ckpt: Checkpoint, cfg: AudioTowerConfig, opts: LoadAudioWeightsOptions): Promise<AudioTowerWeights> {
  const D = cfg.hiddenSize, K = cfg.convKernel, H = cfg.headDim;
  const F = attentionPast(cfg) + cfg.contextRight + 1;
  const { conv: convLengths } = audioLengths(cfg, 1);
  const projIn = convLengths[1][1] * cfg.sscpChannels[1];
  const total = 5 + cfg.numLayers * 22 + 2;
  let done = 0;
  let seed = 1;
  const made: Array<GPUBuffer | GpuWeight> = [];
  let bytes = 0;
  const tick = () => {
    if (opts.signal?.aborted) throw new GemmaError('aborted', `Loading the audio encoder of ${ckpt.name} was aborted.`);
    opts.onProgress?.(++done, total);
  };

  const keep = <T extends GPUBuffer | GpuWeight>(x: T): T => {
    made.push(x);
    bytes += 'parts' in x ? x.bytes : x.size;
    return x;
  };
  const f32Tensor = async (name: string, shape: number[], random: () => Float32Array): Promise<Float32Array> => {
    if (opts.random) return random();
    requireTensor(ckpt, name, shape);
    const values = await readF32(ckpt, name);
    await opts.onConverted?.({ kind: 'f32', name, shape, values });
    return values;
  };
  const vector = async (name: string, length: number, transform?: (v: Float32Array) => Float32Array): Promise<GPUBuffer> => {
    let v = await f32Tensor(name, [length], () => new Float32Array(length).fill(1));
    if (transform) v = transform(v);
    const b = keep(uploadBuffer(ctx.device, v, name));
    tick();
    return b;
  };
  const matrix = async (name: string, rows: number, cols: number, family: AudioMatrixFamily): Promise<GpuWeight> => {
    const format = formatOf(opts.plan, family);
    let w: GpuWeight;
    if (opts.random) {
      w = await createRandomWeight(ctx, { label: name, rows, cols, format, seed: seed++, std: 1 / Math.sqrt(cols), codes: true });
    } else {
      w = await weightFromCheckpoint(ctx, ckpt, name, rows, cols, format);
    }
    keep(w);
    if (!opts.random) await opts.onConverted?.({ kind: 'gpu', name, shape: [rows, cols], weight: w });
    tick();
    return w;
  };

  if (!opts.random && !hasAudioWeights(ckpt)) {
    throw new GemmaError('bad-file', `${ckpt.name} has no audio tower (no model.audio_tower.* tensors): audio needs a full Gemma 3n checkpoint, not a text-only one`);
  }
  try {
    const conv: GPUBuffer[] = [];
    const convNorm: GPUBuffer[] = [];
    for (let i = 0; i < 2; i++) {
      const co = cfg.sscpChannels[i], ci = i === 0 ? 1 : cfg.sscpChannels[0];
      const [kh, kw] = cfg.sscpKernels[i];
      const name = `${TOWER}subsample_conv_projection.conv_${i}.`;
      const w = await f32Tensor(name + 'conv.weight', [co, ci, kh, kw], () => pseudoNormals(co * ci * kh * kw, 1 / Math.sqrt(ci * kh * kw), seed++));
      conv.push(keep(uploadBuffer(ctx.device, convWeightForKernel(w, co, ci, kh, kw), name + 'conv.weight')));
      tick();
      convNorm.push(await vector(name + 'norm.weight', co));
    }
    const inputProj = await matrix(`${TOWER}subsample_conv_projection.input_proj_linear.weight`, D, projIn, 'inputProj');

    const blocks: ConformerBlockWeights[] = [];
    for (let l = 0; l < cfg.numLayers; l++) {
      const p = `${TOWER}conformer.${l}.`;
      const ffw = async (q: string): Promise<FeedForwardWeights> => ({
        preNorm: await vector(`${q}pre_layer_norm.weight`, D),
        up: await matrix(`${q}ffw_layer_1.weight`, 4 * D, D, 'ffn'),
        down: await matrix(`${q}ffw_layer_2.weight`, D, 4 * D, 'ffn'),
        postNorm: await vector(`${q}post_layer_norm.weight`, D),
      });
      const ffwStart = await ffw(`${p}ffw_layer_start.`);
      const a = `${p}attention.`;
      const attnPreNorm = await vector(`${a}pre_attn_norm.weight`, D);
      const posProj = await f32Tensor(`${a}attn.relative_position_embedding.pos_proj.weight`, [D, D], () => new Float32Array(0));
      const rel = keep(uploadBuffer(ctx.device, opts.random ? pseudoNormals(F * D, 1, seed++) : relativePositionTable(cfg, posProj), `${a}rel`));
      tick();
      const perDim = await f32Tensor(`${a}attn.per_dim_scale`, [H], () => new Float32Array(H));
      const qScale = keep(uploadBuffer(ctx.device, queryScale(cfg, perDim), `${a}q_scale`));
      tick();
      const q = await matrix(`${a}attn.q_proj.weight`, D, D, 'attention');
      const k = await matrix(`${a}attn.k_proj.weight`, D, D, 'attention');
      const v = await matrix(`${a}attn.v_proj.weight`, D, D, 'attention');
      const post = await matrix(`${a}post.weight`, D, D, 'attention');
      const attnPostNorm = await vector(`${a}post_norm.weight`, D);
      const c = `${p}lconv1d.`;
      const lconvPreNorm = await vector(`${c}pre_layer_norm.weight`, D);
      const lconvStart = await matrix(`${c}linear_start.weight`, 2 * D, D, 'lconv');
      const dw = await f32Tensor(`${c}depthwise_conv1d.weight`, [D, 1, K], () => pseudoNormals(D * K, 1 / Math.sqrt(K), seed++));
      const depthwise = keep(uploadBuffer(ctx.device, dw, `${c}depthwise_conv1d.weight`));
      tick();
      const convNormL = await vector(`${c}conv_norm.weight`, D);
      const lconvEnd = await matrix(`${c}linear_end.weight`, D, D, 'lconv');
      const ffwEnd = await ffw(`${p}ffw_layer_end.`);
      const norm = await vector(`${p}norm.weight`, D);
      blocks.push({ ffwStart, attnPreNorm, q, k, v, rel, qScale, post, attnPostNorm, lconvPreNorm, lconvStart, depthwise, convNorm: convNormL, lconvEnd, ffwEnd, norm });
    }
    const softNorm = await vector(`${EMBED}soft_embedding_norm.weight`, D);
    const projection = await matrix(`${EMBED}embedding_projection.weight`, cfg.textHiddenSize, D, 'embed');
    return { plan: opts.plan, conv: conv as [GPUBuffer, GPUBuffer], convNorm: convNorm as [GPUBuffer, GPUBuffer], inputProj, blocks, softNorm, projection, bytes };
  } catch (err) {
    for (const x of made) 'parts' in x ? destroyWeight(x) : x.destroy();
    throw err;
  }
}

/** Frees every GPU buffer of the tower's weights. */
export function destroyAudioWeights(w: AudioTowerWeights): void {
  const mats: GpuWeight[] = [w.inputProj, w.projection];
  const vecs: GPUBuffer[] = [...w.conv, ...w.convNorm, w.softNorm];
  for (const b of w.blocks) {
    mats.push(b.ffwStart.up, b.ffwStart.down, b.q, b.k, b.v, b.post, b.lconvStart, b.lconvEnd, b.ffwEnd.up, b.ffwEnd.down);
    vecs.push(b.ffwStart.preNorm, b.ffwStart.postNorm, b.attnPreNorm, b.rel, b.qScale, b.attnPostNorm, b.lconvPreNorm, b.depthwise, b.convNorm, b.norm, b.ffwEnd.preNorm, b.ffwEnd.postNorm);
  }
  mats.forEach(destroyWeight);
  vecs.forEach((b) => b.destroy());
  w.bytes = 0;
}
