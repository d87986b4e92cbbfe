import sumLib from '../../shaders/lib/workgroup-sum.wgsl?raw';
import source from '../../shaders/residual-norm.wgsl?raw';
import type { GpuContext } from '../gpu/device.ts';
import { BufferArena } from '../gpu/buffers.ts';
import { bindBuffers, getPipeline, makeDispatch, type Dispatch } from '../gpu/pipeline.ts';

const WG = 256;

/** A [T, dim] block of rows (f32) at an element offset. */
export interface RowBlock {
  buffer: GPUBuffer;
  offset?: number;
}

/** A normed addend: RMSNorm_weight of `dim`-wide rows at `offset` in the kernel's `xs` buffer. */
export interface NormedRows {
  offset?: number;
  weight: GPUBuffer;
}

export interface ResidualNormArgs {
  /** dim (the hidden size D). */
  dim: number;
  eps: number;
  /** Holds the rows of `x`, `x2` and `plain` (one buffer: a kernel binds at most 8 storage buffers). */
  xs: GPUBuffer;
  /** The normed addend every use has. */
  x: NormedRows;
  /** A second normed addend, scaled by beta (Gemma 3n's LAuReL branch). */
  x2?: NormedRows;
  /** A plain addend (element offset in `xs`), inside the alpha factor. */
  plain?: number;
  /** y_i = (alpha·(base_i + N(x) + plain) + beta·N(x2))·s. Defaults 1, 1. */
  alpha?: number;
  beta?: number;
  /** Row-broadcast factor s [dim] f32 applied last (Gemma 4's layer scalar). */
  scale?: GPUBuffer;
  /** The residual rows; omit to update `y` in place (base_i = y_i). */
  base?: RowBlock;
  /** The updated rows: `count` targets (default 1) each [T, dim], `streamStride` elements apart (base alike). */
  y: RowBlock;
  count?: number;
  streamStride?: number;
  /**
   * RMSNorm_weight of the updated y_0 ([T, dim] at offset; count 1): the next consumer's input norm.
   * `projected`: write instead the 4 dots P·RMSNorm_weight(row) per token, [T, 4] at offset (Gemma 3n's AltUp router
   * logits); `weight` is then [5, dim] f32: the norm weight, then P's 4 rows (see routerTable in altup.ts).
   */
  out?: RowBlock & { weight: GPUBuffer; projected?: boolean };
  /** Tokens (rows) at bind time; `setTokens` changes it. */
  tokens: number;
}

export type ResidualNormDispatch = Dispatch & { setTokens(tokens: number): void };

/**
 * A residual update with the norms around it in one dispatch per step (see shaders/residual-norm.wgsl): replaces an
 * rmsnorm → add (→ add → lincomb) → rmsnorm chain between two GEMVs. f32 only: residual streams are always f32.
 */
export class ResidualNormKernel {
  /** Every buffer this kernel created for its dispatches (freed by destroy()). */
  private readonly arena: BufferArena;
  /** Stand-ins for unused bindings: read-only and writable (one buffer may not be both in a dispatch). */
  private readonly dummy: GPUBuffer;
  private readonly dummyW: GPUBuffer;

  private constructor(
    private readonly ctx: GpuContext,
    private readonly pipeline: GPUComputePipeline,
  ) {
    this.arena = new BufferArena(ctx.device);
    this.dummy = this.arena.placeholder('residual-norm/unused');
    this.dummyW = this.arena.placeholder('residual-norm/unused-w');
  }

  static async create(ctx: GpuContext): Promise<ResidualNormKernel> {
    const pipeline = await getPipeline(ctx, { label: 'residual-norm', source, libraries: [sumLib], constants: { WG } });
    return new ResidualNormKernel(ctx, pipeline);
  }

  bind(args: ResidualNormArgs): ResidualNormDispatch {
    const { device } = this.ctx;
    const { dim } = args;
    const count = args.count ?? 1;
    const stride = args.streamStride ?? 0;
    if (!(Number.isInteger(dim) && dim > 0)) throw new Error(`residual-norm: bad dim ${dim}`);
    if (!(Number.isInteger(count) && count >= 1)) throw new Error(`residual-norm: bad count ${count}`);
    if (count > 1 && stride < dim) throw new Error('residual-norm: several targets need a streamStride >= dim');
    if (args.out && count !== 1) throw new Error('residual-norm: out of the updated rows needs a single target');
    if (args.base && args.base.buffer === args.y.buffer) throw new Error('residual-norm: omit base to update y in place');
    for (const b of [args.xs, args.base?.buffer]) {
      if (b && (b === args.y.buffer || b === args.out?.buffer)) throw new Error('residual-norm: inputs must not be the output buffers');
    }
    if (args.out && args.out.buffer === args.y.buffer) throw new Error('residual-norm: out must be another buffer than y');
    const projected = args.out?.projected === true;
    for (const w of [args.x.weight, args.x2?.weight, args.out?.weight, args.scale]) {
      const floats = w === args.out?.weight && projected ? 5 * dim : dim;
      if (w && w.size < floats * 4) throw new Error(`residual-norm: a weight holds ${w.size / 4} floats, needs ${floats}`);
    }
    const params = this.arena.uniform(80, 'residual-norm/params');
    const bindGroup = bindBuffers(device, this.pipeline, [
      params, args.xs, args.base?.buffer ?? this.dummy, args.x.weight, args.x2?.weight ?? this.dummy,
      args.out?.weight ?? this.dummy, args.scale ?? this.dummy, args.y.buffer, args.out?.buffer ?? this.dummyW,
    ], 'residual-norm');
    const need = (what: string, buffer: GPUBuffer, floats: number) => {
      if (buffer.size < floats * 4) throw new Error(`residual-norm: ${what} holds ${buffer.size / 4} floats, needs ${floats}`);
    };
    const data = new ArrayBuffer(80);
    const u = new Uint32Array(data), f = new Float32Array(data);
    const yOff = args.y.offset ?? 0, baseOff = args.base ? (args.base.offset ?? 0) : yOff;
    let grid: [number, number] = [0, 1];
    const setTokens = (T: number) => {
      if (!(Number.isInteger(T) && T >= 1 && T <= device.limits.maxComputeWorkgroupsPerDimension)) throw new Error(`residual-norm: bad token count ${T}`);
      const rows = T * dim;
      need('xs (x)', args.xs, (args.x.offset ?? 0) + rows);
      if (args.x2) need('xs (x2)', args.xs, (args.x2.offset ?? 0) + rows);
      if (args.plain !== undefined) need('xs (plain)', args.xs, args.plain + rows);
      need('y', args.y.buffer, yOff + (count - 1) * stride + rows);
      if (args.base) need('base', args.base.buffer, baseOff + (count - 1) * stride + rows);
      if (args.out) need('out', args.out.buffer, (args.out.offset ?? 0) + (projected ? T * 4 : rows));
      u.set([T, dim]);
      f.set([args.eps, args.alpha ?? 1, args.beta ?? 1], 2);
      u.set([args.x.offset ?? 0, args.x2?.offset ?? 0, args.plain ?? 0, baseOff, yOff, args.out?.offset ?? 0, stride, count], 5);
      u.set([args.x2 ? 1 : 0, args.plain !== undefined ? 1 : 0, args.scale ? 1 : 0, args.out ? 1 : 0, args.base ? 0 : 1, projected ? 1 : 0], 13);
      grid = [T, 1];
      device.queue.writeBuffer(params, 0, data);
    };
    setTokens(args.tokens);
    return { ...makeDispatch('residual-norm', this.pipeline, bindGroup, () => grid), setTokens };
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
