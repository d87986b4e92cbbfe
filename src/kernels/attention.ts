import source from '../../shaders/attention.wgsl?raw';
import type { GpuContext } from '../gpu/device.ts';
import { BufferArena } from '../gpu/buffers.ts';
import { getPipeline, type ActType, type Dispatch } from '../gpu/pipeline.ts';
import type { KvCache } from './kv-cache.ts';

const WG = 256;
const MAX_QB = 16;
const MAX_NI = 2;

export interface AttentionKernelOptions {
  headDim: number;
  /** Query heads per KV head (H / Hkv; Gemma 3n: 8 / 2 = 4). Sizes the decode variant's row block. */
  group: number;
  /** Element type of q, out and the caches (must match the KvCache's). */
  act?: ActType;
}

export interface AttentionArgs {
  /** Queries [T, heads, headDim] (normed, RoPE'd): token t, head h at qOffset + t * qStride + h * headDim. */
  q: GPUBuffer;
  /** Output [T, heads, headDim] at outOffset + t * outStride + h * headDim. Must not be `q`. */
  out: GPUBuffer;
  /** The cache attended over: the layer's own, or its producer's for a KV-shared consumer layer. */
  cache: KvCache;
  heads: number;
  /** Keys visible to a query including its own; 0 = full causal. Default: the cache's (0 for full caches). */
  window?: number;
  /** Multiplies q.k (Gemma 3n: 1.0, the q/k norms replace 1/sqrt(dh)). */
  scale?: number;
  /** Logit soft cap c: score -> c * tanh(score / c); 0 = none (Gemma 3n has none). */
  softcap?: number;
  qOffset?: number;
  qStride?: number;
  outOffset?: number;
  outStride?: number;
  /** Most key splits of one step (sizes the split scratch: maxSplits * heads rows). Default ATTENTION_MAX_SPLITS. */
  maxSplits?: number;
  /**
   * Split scratch shared by several bindings (all layers of a model: dispatches in a pass run in order, so one
   * scratch serves every layer). Default: a private one of maxSplits * heads rows (512 KiB at E2B shapes).
   */
  scratch?: AttentionScratch;
  /** Split keys until about this many workgroups run (default 256). */
  targetWorkgroups?: number;
}

export interface AttentionDispatch extends Dispatch {
  /**
   * Queries at positions p0..p0+T-1 (their keys must already be in the cache, positions < p0 + T).
   * `splits` caps the number of key splits (tests, benchmarks; splits are whole key tiles, so a forced count
   * may come out lower); by default it is chosen from the length.
   * Costs one 80-byte uniform write; call it before each submit that encodes this dispatch.
   */
  setStep(p0: number, T: number, splits?: number): void;
  /** Key splits chosen by the last setStep (1 = no combine pass). */
  readonly splits: number;
}

/** Partial outputs of key splits: `rows` (splits x query rows) of headDim f32, plus (max, sum) per row. */
export interface AttentionScratch {
  readonly partO: GPUBuffer;
  readonly partMl: GPUBuffer;
  readonly rows: number;
}

interface Variant {
  qb: number;
  kt: number;
  pipeline: GPUComputePipeline;
}

/**
 * Causal GQA attention over a KvCache (see shaders/attention.wgsl). One kernel object per (headDim, group, act);
 * bind() once per layer at load, setStep() per step.
 */
/** Key splits one step may use by default (a scratch shared by a model's layers is sized for it). */
export const ATTENTION_MAX_SPLITS = 64;

export class AttentionKernel {
  /** Every buffer this kernel created for its dispatches (freed by destroy()). */
  private readonly arena: BufferArena;

  private constructor(
    private readonly ctx: GpuContext,
    readonly headDim: number,
    readonly act: ActType,
    private readonly decode: Variant,
    private readonly prefill: Variant,
    private readonly combine: GPUComputePipeline,
  ) {
    this.arena = new BufferArena(ctx.device);
  }

  static async create(ctx: GpuContext, opts: AttentionKernelOptions): Promise<AttentionKernel> {
    const { headDim, group } = opts;
    const act = opts.act ?? 'f32';
    if (!(headDim >= 4 && headDim % 4 === 0)) throw new Error(`attention: headDim ${headDim} must be a multiple of 4`);
    if (!(group >= 1 && Number.isInteger(group))) throw new Error(`attention: bad group ${group}`);
    // Rows per workgroup: the output accumulators (QB * headDim / 4 vec4s) must fit MAX_NI per thread, and
    // the staged queries fit workgroup memory.
    let qbMax = MAX_QB;
    while (qbMax > 1 && (qbMax * headDim) / 4 > WG * MAX_NI) qbMax /= 2;
    if ((qbMax * headDim) / 4 > WG * MAX_NI) throw new Error(`attention: headDim ${headDim} too large (max ${4 * WG * MAX_NI})`);
    let qbDecode = 1;
    while (qbDecode < group && qbDecode < qbMax) qbDecode *= 2;
    const variant = async (qb: number): Promise<Variant> => ({
      qb,
      kt: WG / qb,
      pipeline: await getPipeline(ctx, { label: 'attention', source, act, constants: { WG, DH: headDim, QB: qb } }),
    });
    const [decode, prefill, combine] = await Promise.all([
      variant(qbDecode),
      variant(qbMax),
      getPipeline(ctx, { label: 'attention', source, act, entryPoint: 'combine', constants: { DH: headDim } }),
    ]);
    return new AttentionKernel(ctx, headDim, act, decode, prefill, combine);
  }

  /** A split scratch for `rows` = maxSplits * heads partial rows, to share between bindings. */
  createScratch(rows: number): AttentionScratch {
    return {
      rows,
      partO: this.arena.storage(rows * this.headDim * 4, 'attention/part-o'),
      partMl: this.arena.storage(rows * 2 * 4, 'attention/part-ml'),
    };
  }

  bind(args: AttentionArgs): AttentionDispatch {
    const { device } = this.ctx;
    const { cache, heads } = args;
    const dh = this.headDim;
    if (cache.act !== this.act) throw new Error(`attention: kernel is ${this.act} but the cache is ${cache.act}`);
    if (cache.headDim !== dh) throw new Error(`attention: kernel headDim ${dh} != cache headDim ${cache.headDim}`);
    if (!(heads >= cache.kvHeads && heads % cache.kvHeads === 0)) throw new Error(`attention: heads ${heads} not a multiple of kvHeads ${cache.kvHeads}`);
    if (args.q === args.out) throw new Error('attention: q and out must be different buffers');
    const group = heads / cache.kvHeads;
    const window = args.window ?? cache.window;
    if (cache.kind === 'sliding' && (window < 1 || window > cache.window)) {
      throw new Error(`attention: window ${window} must be 1..${cache.window} over this sliding cache`);
    }
    const qStride = args.qStride ?? heads * dh;
    const outStride = args.outStride ?? heads * dh;
    if (qStride < heads * dh || outStride < heads * dh) throw new Error('attention: strides must be >= heads * headDim');
    const scratch = args.scratch ?? this.createScratch(Math.max(1, args.maxSplits ?? ATTENTION_MAX_SPLITS) * heads);
    const maxSplits = Math.min(args.maxSplits ?? Infinity, Math.floor(scratch.rows / heads));
    if (maxSplits < 1) throw new Error(`attention: scratch of ${scratch.rows} rows is too small for ${heads} heads`);
    const target = args.targetWorkgroups ?? 256;

    const params = this.arena.uniform(80, 'attention/params');
    const buffers = [params, args.q, cache.k, cache.v, args.out, scratch.partO, scratch.partMl];
    const mainGroup = (pipeline: GPUComputePipeline) =>
      device.createBindGroup({
        label: 'attention',
        layout: pipeline.getBindGroupLayout(0),
        entries: buffers.map((buffer, binding) => ({ binding, resource: { buffer } })),
      });
    const decodeGroup = mainGroup(this.decode.pipeline);
    const prefillGroup = mainGroup(this.prefill.pipeline);
    const combineGroup = device.createBindGroup({
      label: 'attention/combine',
      layout: this.combine.getBindGroupLayout(0),
      entries: [0, 4, 5, 6].map((binding) => ({ binding, resource: { buffer: buffers[binding] } })),
    });
    const maxPerDim = device.limits.maxComputeWorkgroupsPerDimension;

    const data = new ArrayBuffer(80);
    const u32 = new Uint32Array(data);
    const f32 = new Float32Array(data);
    let T = 0;
    let splits = 0;
    let rowBlocks = 0;
    let variant = this.decode;
    let bindGroup = decodeGroup;

    const setStep = (p0: number, t: number, forceSplits?: number) => {
      cache.checkStep(p0, t, window);
      T = t;
      [variant, bindGroup] = t === 1 ? [this.decode, decodeGroup] : [this.prefill, prefillGroup];
      rowBlocks = Math.ceil((t * group) / variant.qb);
      if (rowBlocks > maxPerDim) throw new Error(`attention: ${t} queries need ${rowBlocks} row blocks (max ${maxPerDim}); use smaller chunks`);
      const keyLo = window === 0 ? 0 : Math.max(0, p0 + 1 - window);
      const keys = p0 + t - keyLo;
      // Scratch holds maxSplits * heads rows, so a step of T queries can split at most maxSplits / T ways.
      const splitCap = Math.max(1, Math.floor(maxSplits / t));
      let want = forceSplits ?? Math.ceil(target / (cache.kvHeads * rowBlocks));
      want = Math.max(1, Math.min(want, splitCap, Math.ceil(keys / variant.kt)));
      const splitLen = Math.ceil(Math.ceil(keys / want) / variant.kt) * variant.kt;
      splits = Math.ceil(keys / splitLen);
      u32.set([t, p0, heads, cache.kvHeads, group, window, cache.capacity]);
      f32[7] = args.scale ?? 1;
      f32[8] = args.softcap ?? 0;
      u32.set([args.qOffset ?? 0, qStride, args.outOffset ?? 0, outStride, keyLo, splitLen, splits, t * group], 9);
      device.queue.writeBuffer(params, 0, data);
    };

    const combine = this.combine;
    return {
      label: 'attention',
      get splits() {
        return splits;
      },
      setStep,
      encode(pass: GPUComputePassEncoder) {
        if (T === 0) throw new Error('attention: setStep() before encode()');
        pass.setPipeline(variant.pipeline);
        pass.setBindGroup(0, bindGroup);
        pass.dispatchWorkgroups(splits, rowBlocks, cache.kvHeads);
        if (splits > 1) {
          pass.setPipeline(combine);
          pass.setBindGroup(0, combineGroup);
          pass.dispatchWorkgroups(T * heads);
        }
      },
    };
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
