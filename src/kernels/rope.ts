import sumLib from '../../shaders/lib/workgroup-sum.wgsl?raw';
import angleLib from '../../shaders/lib/rope-angle.wgsl?raw';
import source from '../../shaders/rope.wgsl?raw';
import type { GpuContext } from '../gpu/device.ts';
import { BufferArena } from '../gpu/buffers.ts';
import { bindBuffers, getPipeline, grid2d, makeDispatch, type ActType, type Dispatch } from '../gpu/pipeline.ts';

const WG = 64;

/**
 * HF's inverse frequencies, bit for bit in f32: `1 / (theta ** (arange(0, dh, 2).float() / dh))`, every step
 * rounded to f32 (the exponent, the power, the reciprocal). The kernel then forms `f32(pos) * inv_freq[i]`
 * in f32, as HF's `inv_freq @ position_ids` does, so at large positions our angles are HF's angles (the f32
 * product is ~1e-3 rad away from the exact p * theta^(-2i/dh) at p = 3e4; that is the reference's own error).
 * Partial ("proportional") RoPE, Gemma 4's full-attention layers: only the first `rotatedAngles` angles rotate, with
 * the frequencies of the WHOLE head (exponent 2i/dh, not 2i/(2·rotatedAngles)); the others get inv_freq 0, which
 * the kernel turns into cos 1, sin 0: those pairs (i, i + dh/2) pass through bit for bit (HF's
 * _compute_proportional_rope_parameters pads inv_freq with zeros the same way).
 */
export function ropeInvFreq(theta: number, headDim: number, rotatedAngles = headDim / 2): Float32Array {
  const f = Math.fround;
  const out = new Float32Array(headDim / 2);
  for (let i = 0; i < rotatedAngles; i++) out[i] = f(1 / f(Math.pow(theta, f((2 * i) / headDim))));
  return out;
}

export interface RopeArgs {
  /** act_t buffer rotated in place. Element (t, h, i) sits at `offset + t * rowStride + h * headDim + i`. */
  x: GPUBuffer;
  tokens: number;
  heads: number;
  /** Even; all of it is rotated (Gemma 3n: 256). */
  headDim: number;
  /** RoPE base: 10,000 for sliding layers, 1,000,000 for full layers. */
  theta: number;
  /**
   * Angles that rotate, 0..headDim/2 (default all). Fewer: partial "proportional" RoPE (Gemma 4 full layers: a
   * quarter of the angles), pairs (i, i + headDim/2) for i < rotatedAngles, frequencies over the whole head.
   */
  rotatedAngles?: number;
  /** Elements between consecutive tokens (default heads * headDim; the QKV row length for a fused QKV buffer). */
  rowStride?: number;
  /** Element offset of token 0, head 0 (default 0; e.g. 8 * 256 for K inside a fused QKV row). */
  offset?: number;
  /** Position of token 0 (default 0); token t is at pos0 + t. */
  pos0?: number;
  /** Per-head RMSNorm before rotating (q_norm, k_norm): weight [headDim] f32, multiplied directly. */
  norm?: { weight: GPUBuffer; eps: number };
}

export type RopeDispatch = Dispatch & {
  /** Per-call values: the token count and the position of the first token (< 2^17 for full accuracy). */
  setParams(tokens: number, pos0: number): void;
};

/** In-place rotate-half RoPE, optionally after the per-head RMSNorm (see shaders/rope.wgsl). */
export class RopeKernel {
  private readonly invFreq = new Map<string, GPUBuffer>();
  /** Every buffer this kernel created for its dispatches (freed by destroy()). */
  private readonly arena: BufferArena;

  private constructor(
    private readonly ctx: GpuContext,
    private readonly pipeline: GPUComputePipeline,
    private readonly elemBytes: number,
    private readonly noWeight: GPUBuffer,
  ) {
    this.arena = new BufferArena(ctx.device);
    this.arena.own(noWeight);
  }

  static async create(ctx: GpuContext, act: ActType = 'f32'): Promise<RopeKernel> {
    const pipeline = await getPipeline(ctx, { label: 'rope', source, libraries: [sumLib, angleLib], act, constants: { WG } });
    const noWeight = ctx.device.createBuffer({ label: 'rope/no-norm', size: 16, usage: GPUBufferUsage.STORAGE });
    return new RopeKernel(ctx, pipeline, act === 'f16' ? 2 : 4, noWeight);
  }

  /** One inv_freq table per (theta, headDim, rotated angles), shared by every binding. */
  private table(theta: number, headDim: number, rotatedAngles: number): GPUBuffer {
    const key = `${theta}/${headDim}/${rotatedAngles}`;
    let buf = this.invFreq.get(key);
    if (!buf) this.invFreq.set(key, (buf = this.arena.upload(ropeInvFreq(theta, headDim, rotatedAngles), `rope/inv_freq/${key}`)));
    return buf;
  }

  bind(args: RopeArgs): RopeDispatch {
    const { device } = this.ctx;
    const { heads, headDim } = args;
    if (!(headDim > 0 && headDim % 2 === 0)) throw new Error(`rope: headDim must be even, got ${headDim}`);
    if (!(heads > 0)) throw new Error(`rope: bad heads ${heads}`);
    const rotatedAngles = args.rotatedAngles ?? headDim / 2;
    if (!(Number.isInteger(rotatedAngles) && rotatedAngles >= 0 && rotatedAngles <= headDim / 2)) throw new Error(`rope: rotatedAngles ${rotatedAngles} must be an integer in 0..${headDim / 2}`);
    const rowStride = args.rowStride ?? heads * headDim;
    const offset = args.offset ?? 0;
    if (rowStride < heads * headDim) throw new Error(`rope: rowStride ${rowStride} < heads * headDim`);
    const capacity = Math.floor(args.x.size / this.elemBytes);
    if (args.norm && args.norm.weight.size < headDim * 4) throw new Error(`rope: the norm weight holds ${args.norm.weight.size / 4} floats, needs ${headDim}`);
    const params = this.arena.uniform(48, 'rope/params');
    const bindGroup = bindBuffers(device, this.pipeline, [params, this.table(args.theta, headDim, rotatedAngles), args.x, args.norm?.weight ?? this.noWeight], 'rope');
    const maxPerDim = device.limits.maxComputeWorkgroupsPerDimension;
    let grid: [number, number] = [0, 1];
    const data = new Uint32Array(12);
    const eps = new Float32Array(data.buffer, 32, 1);
    const setParams = (tokens: number, pos0: number) => {
      if (!Number.isInteger(pos0) || pos0 < 0 || pos0 + tokens > 2 ** 24) throw new Error(`rope: bad position ${pos0}`);
      if (tokens > 0 && offset + (tokens - 1) * rowStride + heads * headDim > capacity) {
        throw new Error(`rope: ${tokens} tokens do not fit in x (${capacity} elements)`);
      }
      grid = grid2d(tokens * heads, maxPerDim);
      data.set([tokens, heads, headDim / 2, rowStride, offset, pos0, grid[0], args.norm ? 1 : 0]);
      eps[0] = args.norm?.eps ?? 0;
      device.queue.writeBuffer(params, 0, data);
    };
    setParams(args.tokens, args.pos0 ?? 0);
    return { ...makeDispatch('rope', this.pipeline, bindGroup, () => grid), setParams };
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
