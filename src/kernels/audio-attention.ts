import tanhLib from '../../shaders/lib/tanh.wgsl?raw';
import source from '../../shaders/audio-attention.wgsl?raw';
import type { GpuContext } from '../gpu/device.ts';
import { BufferArena, packUniform } from '../gpu/buffers.ts';
import { bindBuffers, getPipeline, makeDispatch, type Dispatch } from '../gpu/pipeline.ts';

const WG = 64;
/** shaders/audio-attention.wgsl MAX_HD / MAX_C. */
const MAX_HEAD_DIM = 512;
const MAX_CONTEXT = 256;

export interface AudioAttentionShape {
  heads: number;
  headDim: number;
  /** Queries per block (conf_attention_chunk_size). */
  chunk: number;
  /** Keys before the query (max(0, conf_attention_context_left - 1)). */
  past: number;
  /** Keys after the query (conf_attention_context_right). */
  future: number;
  /** Logit soft cap (conf_attention_logit_cap). */
  cap: number;
}

export interface AudioAttentionArgs extends AudioAttentionShape {
  /** [T, heads * headDim] f32 each, as the projections write them. */
  q: GPUBuffer;
  k: GPUBuffer;
  v: GPUBuffer;
  /** f32 [past + future + 1, heads * headDim]: row f = the projected sinusoid of relative position past - f. */
  rel: GPUBuffer;
  /** f32 [headDim]: head_dim^-0.5 / softplus(0) * softplus(per_dim_scale). */
  qScale: GPUBuffer;
  /** u32 [T], 0 = padded time step (never attended to). */
  valid: GPUBuffer;
  /** [T, heads * headDim] f32; must differ from q, k, v. */
  out: GPUBuffer;
  /** Time steps (changeable with setLength). */
  length: number;
}

/** Gemma 3n's chunked local audio self-attention with relative positions (shaders/audio-attention.wgsl). f32. */
export class AudioAttentionKernel {
  /** Every buffer this kernel created for its dispatches (freed by destroy()). */
  private readonly arena: BufferArena;

  private constructor(
    private readonly ctx: GpuContext,
    private readonly pipeline: GPUComputePipeline,
  ) {
    this.arena = new BufferArena(ctx.device);
  }

  static async create(ctx: GpuContext): Promise<AudioAttentionKernel> {
    return new AudioAttentionKernel(ctx, await getPipeline(ctx, { label: 'audio-attention', source, libraries: [tanhLib], constants: { WG } }));
  }

  bind(args: AudioAttentionArgs): Dispatch & { setLength(length: number): void } {
    const { device } = this.ctx;
    const { heads, headDim, chunk, past, future } = args;
    const label = `audio-attention[${heads}x${headDim} chunk ${chunk} past ${past} future ${future}]`;
    for (const [k, v, min] of [['heads', heads, 1], ['headDim', headDim, 1], ['chunk', chunk, 1], ['past', past, 0], ['future', future, 0]] as const) {
      if (!(Number.isInteger(v) && v >= min)) throw new Error(`${label}: bad ${k} ${v}`);
    }
    const context = chunk + past + future;
    if (headDim > MAX_HEAD_DIM) throw new Error(`${label}: head_dim above ${MAX_HEAD_DIM}`);
    if (context > MAX_CONTEXT) throw new Error(`${label}: context ${context} above ${MAX_CONTEXT}`);
    if (!(args.cap > 0)) throw new Error(`${label}: soft cap must be positive`);
    if (new Set([args.q, args.k, args.v, args.out]).size !== 4) throw new Error(`${label}: q, k, v and out must be four buffers`);
    const width = heads * headDim;
    if (args.rel.size < (past + future + 1) * width * 4) throw new Error(`${label}: rel too small`);
    if (args.qScale.size < headDim * 4) throw new Error(`${label}: qScale too small`);
    const params = this.arena.uniform(32, `${label}/params`);
    const bindGroup = bindBuffers(device, this.pipeline, [params, args.q, args.k, args.v, args.rel, args.qScale, args.valid, args.out], label);
    let grid: [number, number] = [0, heads];
    const setLength = (T: number) => {
      if (!(Number.isInteger(T) && T >= 0 && T <= device.limits.maxComputeWorkgroupsPerDimension)) throw new Error(`${label}: bad length ${T}`);
      for (const [name, b] of [['q', args.q], ['k', args.k], ['v', args.v], ['out', args.out]] as const) {
        if (T * width * 4 > b.size) throw new Error(`${label}: ${name} too small for ${T} steps`);
      }
      if (T * 4 > args.valid.size) throw new Error(`${label}: valid too small for ${T} steps`);
      grid = [T, heads];
      device.queue.writeBuffer(params, 0, packUniform([['u32', T], ['u32', heads], ['u32', headDim], ['u32', chunk], ['u32', past], ['u32', future], ['u32', context], ['f32', args.cap]]));
    };
    setLength(args.length);
    return { ...makeDispatch(label, this.pipeline, bindGroup, () => grid), setLength };
  }

  /** Bytes of the GPU buffers this kernel created (a model's memory() counts them). */
  get gpuBytes(): number {
    return this.arena.bytes;
  }

  /** Frees the buffers this kernel created (its dispatches must not be encoded afterwards). */
  destroy(): void {
    this.arena.destroy();
  }
}
