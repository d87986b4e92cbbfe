import sumLib from '../../shaders/lib/workgroup-sum.wgsl?raw';
import angleLib from '../../shaders/lib/rope-angle.wgsl?raw';
import source from '../../shaders/kv-cache.wgsl?raw';
import type { GpuContext } from '../gpu/device.ts';
import { createStorageBuffer, BufferArena } from '../gpu/buffers.ts';
import { bindBuffers, getPipeline, grid2d, makeDispatch, type ActType, type Dispatch } from '../gpu/pipeline.ts';
import { GemmaError } from '../errors.ts';
import { ropeInvFreq } from './rope.ts';

const WG = 64;

export interface KvCacheOptions {
  /** 'full': every position is kept (capacity = maxContext). 'sliding': a ring of the last window(+chunk) keys. */
  kind: 'full' | 'sliding';
  kvHeads: number;
  headDim: number;
  /** Longest sequence (prompt + generated tokens) the cache must serve. */
  maxContext: number;
  /** Sliding layers: keys visible to a query, including its own (Gemma 3n: 512). */
  window?: number;
  /**
   * Most tokens written (and then attended) in one step, i.e. the prefill chunk size (default 1 = decode only).
   * A sliding ring needs window + maxChunk - 1 slots: a chunk's keys are all written before its first query
   * attends, and that query still needs the window - 1 keys before it.
   */
  maxChunk?: number;
  /** Element type of K and V: the variant of the write and attention kernels that use this cache. */
  act?: ActType;
  label?: string;
}

/**
 * The K and V buffers of one cache-owning layer, each [capacity, kvHeads, headDim] of `act`, token position `s`
 * stored at slot `s % capacity`. KV-shared consumer layers simply attend over their producer's KvCache.
 */
export class KvCache {
  readonly k: GPUBuffer;
  readonly v: GPUBuffer;
  readonly kind: 'full' | 'sliding';
  readonly kvHeads: number;
  readonly headDim: number;
  readonly maxContext: number;
  /** Attention window for sliding caches; 0 for full caches. */
  readonly window: number;
  readonly maxChunk: number;
  readonly capacity: number;
  readonly act: ActType;

  /** Slots needed: full = maxContext; sliding = min(maxContext, window + maxChunk - 1). */
  static capacityFor(opts: KvCacheOptions): number {
    const maxChunk = opts.maxChunk ?? 1;
    if (opts.kind === 'full') return opts.maxContext;
    if (!opts.window || opts.window < 1) throw new Error('kv-cache: a sliding cache needs window >= 1');
    return Math.min(opts.maxContext, opts.window + maxChunk - 1);
  }

  /** Bytes of K + V for these options. */
  static byteSizeFor(opts: KvCacheOptions): number {
    return 2 * KvCache.capacityFor(opts) * opts.kvHeads * opts.headDim * ((opts.act ?? 'f32') === 'f16' ? 2 : 4);
  }

  constructor(ctx: GpuContext, opts: KvCacheOptions) {
    const { kvHeads, headDim, maxContext } = opts;
    if (!(kvHeads >= 1 && headDim >= 4 && headDim % 4 === 0 && maxContext >= 1)) {
      throw new Error(`kv-cache: bad shape kvHeads=${kvHeads} headDim=${headDim} (multiple of 4) maxContext=${maxContext}`);
    }
    this.act = opts.act ?? 'f32';
    if (this.act === 'f16' && !ctx.f16) throw new Error('kv-cache: f16 cache requested but shader-f16 is not enabled');
    this.kind = opts.kind;
    this.kvHeads = kvHeads;
    this.headDim = headDim;
    this.maxContext = maxContext;
    this.window = opts.kind === 'sliding' ? (opts.window ?? 0) : 0;
    this.maxChunk = opts.maxChunk ?? 1;
    if (this.maxChunk < 1) throw new Error(`kv-cache: bad maxChunk ${this.maxChunk}`);
    this.capacity = KvCache.capacityFor(opts);
    const bytes = this.capacity * kvHeads * headDim * (this.act === 'f16' ? 2 : 4);
    const maxBinding = ctx.device.limits.maxStorageBufferBindingSize;
    if (bytes > maxBinding) {
      throw new GemmaError('limit-too-small', `KV cache of ${bytes} bytes per tensor exceeds this GPU's maxStorageBufferBindingSize (${maxBinding}); use a shorter context.`);
    }
    const label = opts.label ?? 'kv';
    this.k = createStorageBuffer(ctx.device, bytes, `${label}/k`);
    this.v = createStorageBuffer(ctx.device, bytes, `${label}/v`);
  }

  static create(ctx: GpuContext, opts: KvCacheOptions): KvCache {
    return new KvCache(ctx, opts);
  }

  /**
   * Throws unless positions p0..p0+T-1 can be written and then attended with `window` (0 = full): full caches
   * hold every position < capacity; a ring must keep the window - 1 keys before p0 alive while writing T.
   */
  checkStep(p0: number, T: number, window = this.window): void {
    if (!(Number.isInteger(p0) && Number.isInteger(T) && p0 >= 0 && T >= 1)) throw new Error(`kv-cache: bad step p0=${p0} T=${T}`);
    if (p0 + T > this.maxContext) {
      throw new GemmaError('context-overflow', `position ${p0 + T - 1} is past the KV cache's context of ${this.maxContext} tokens`);
    }
    if (this.kind === 'sliding') {
      if (window < 1 || window > this.window) throw new Error(`kv-cache: window ${window} must be 1..${this.window} for this sliding cache`);
      if (p0 + T > this.capacity && window + T - 1 > this.capacity) {
        throw new Error(`kv-cache: ${T} tokens per step need window + T - 1 = ${window + T - 1} ring slots, have ${this.capacity} (raise maxChunk)`);
      }
    }
  }

  destroy(): void {
    this.k.destroy();
    this.v.destroy();
  }
}

export interface KvWriteArgs {
  cache: KvCache;
  /** New keys: token t's [kvHeads, headDim] row starts at kOffset + t * kStride (elements). */
  k: GPUBuffer;
  /** New values, laid out like `k` with vOffset / vStride. */
  v: GPUBuffer;
  /** Per-head RMSNorm of the keys first (k_norm): weight [headDim] f32, multiplied directly. */
  kNorm?: GPUBuffer;
  /** Scale-free per-head RMSNorm of the values first (v_norm). */
  vNorm?: boolean;
  /** The norms' epsilon (required with kNorm or vNorm). */
  eps?: number;
  /** RoPE of the (normed) keys at their positions, as RopeKernel (theta; rotatedAngles for partial RoPE). */
  rope?: { theta: number; rotatedAngles?: number };
  kOffset?: number;
  /** Elements between consecutive tokens' rows (default kvHeads * headDim: a dense [T, kvHeads, headDim]). */
  kStride?: number;
  vOffset?: number;
  vStride?: number;
}

export interface KvWriteDispatch extends Dispatch {
  /** Writes the rows for positions p0..p0+T-1 at the next encode (one small uniform write). */
  setStep(p0: number, T: number): void;
}

/** Appends K/V rows to a KvCache, optionally k-normed + RoPE'd and v-normed on the way (see shaders/kv-cache.wgsl). */
export class KvWriteKernel {
  /** Every buffer this kernel created for its dispatches (freed by destroy()). */
  private readonly arena: BufferArena;
  private readonly invFreq = new Map<string, GPUBuffer>();
  /** Stand-in for the unread inv_freq / w_k bindings. */
  private readonly unused: GPUBuffer;

  private constructor(
    private readonly ctx: GpuContext,
    private readonly pipeline: GPUComputePipeline,
    readonly act: ActType,
  ) {
    this.arena = new BufferArena(ctx.device);
    this.unused = this.arena.upload(new Float32Array(4), 'kv-write/unused');
  }

  static async create(ctx: GpuContext, act: ActType = 'f32'): Promise<KvWriteKernel> {
    const pipeline = await getPipeline(ctx, { label: 'kv-cache', source, libraries: [sumLib, angleLib], act, constants: { WG } });
    return new KvWriteKernel(ctx, pipeline, act);
  }

  /** One inv_freq table per (theta, headDim, rotated angles), shared by every binding. */
  private table(theta: number, headDim: number, rotatedAngles: number): GPUBuffer {
    const key = `${theta}/${headDim}/${rotatedAngles}`;
    let buf = this.invFreq.get(key);
    if (!buf) this.invFreq.set(key, (buf = this.arena.upload(ropeInvFreq(theta, headDim, rotatedAngles), `kv-write/inv_freq/${key}`)));
    return buf;
  }

  bind(args: KvWriteArgs): KvWriteDispatch {
    const { device } = this.ctx;
    const { cache } = args;
    if (cache.act !== this.act) throw new Error(`kv-write: kernel is ${this.act} but the cache is ${cache.act}`);
    if (args.k === cache.k || args.v === cache.v || args.k === cache.v || args.v === cache.k) throw new Error('kv-write: sources must not be the cache');
    const rowElems = cache.kvHeads * cache.headDim;
    const kStride = args.kStride ?? rowElems;
    const vStride = args.vStride ?? rowElems;
    if (kStride < rowElems || vStride < rowElems) throw new Error(`kv-write: strides must be >= ${rowElems}`);
    const dh = cache.headDim;
    if ((args.kNorm || args.vNorm) && !(args.eps !== undefined && args.eps >= 0)) throw new Error('kv-write: the norms need eps');
    if (args.kNorm && args.kNorm.size < dh * 4) throw new Error(`kv-write: kNorm holds ${args.kNorm.size / 4} floats, needs ${dh}`);
    const rotated = args.rope?.rotatedAngles ?? dh / 2;
    if (args.rope && !(Number.isInteger(rotated) && rotated >= 0 && rotated <= dh / 2)) throw new Error(`kv-write: rotatedAngles ${rotated} must be an integer in 0..${dh / 2}`);
    const invFreq = args.rope ? this.table(args.rope.theta, dh, rotated) : this.unused;
    const params = this.arena.uniform(64, 'kv-write/params');
    const bindGroup = bindBuffers(device, this.pipeline, [params, args.k, args.v, cache.k, cache.v, invFreq, args.kNorm ?? this.unused], 'kv-write');
    const maxPerDim = device.limits.maxComputeWorkgroupsPerDimension;
    const data = new Uint32Array(16);
    const eps = new Float32Array(data.buffer, 13 * 4, 1);
    let grid: [number, number] = [0, 1];
    const setStep = (p0: number, T: number) => {
      cache.checkStep(p0, T, cache.kind === 'sliding' ? 1 : 0);
      if (args.rope && p0 + T > 2 ** 24) throw new Error(`kv-write: bad position ${p0 + T - 1}`);
      grid = grid2d(T * 2 * cache.kvHeads, maxPerDim);
      data.set([T, p0, cache.kvHeads, dh / 2, cache.capacity, args.kOffset ?? 0, kStride, args.vOffset ?? 0, vStride, grid[0], args.kNorm ? 1 : 0, args.vNorm ? 1 : 0, args.rope ? 1 : 0]);
      eps[0] = args.eps ?? 0;
      device.queue.writeBuffer(params, 0, data);
    };
    const dispatch = makeDispatch('kv-write', this.pipeline, bindGroup, () => grid);
    return { ...dispatch, setStep };
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
