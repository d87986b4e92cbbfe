import sumLib from '../../shaders/lib/workgroup-sum.wgsl?raw';
import source from '../../shaders/conformer-norm.wgsl?raw';
import type { GpuContext } from '../gpu/device.ts';
import { BufferArena, packUniform } from '../gpu/buffers.ts';
import { bindBuffers, getPipeline, grid2d, makeDispatch, type Dispatch } from '../gpu/pipeline.ts';

/** Where the normalised row goes (see shaders/conformer-norm.wgsl). */
export type ConformerNormOut = 'write' | 'accumulate' | 'inPlace';
export type ConformerNormAct = 'none' | 'silu';
/** 'input': rows with m[r] = 0 are normalised as zeros; 'writeBack': and x[r] is zeroed too. */
export type ConformerNormMask = 'none' | 'input' | 'writeBack';

export interface ConformerNormVariant {
  out: ConformerNormOut;
  act?: ConformerNormAct;
  mask?: ConformerNormMask;
}

export interface ConformerNormArgs extends ConformerNormVariant {
  /** Input rows (f32): row r at xOffset + r * xStride. Written by 'inPlace' and mask 'writeBack'. */
  x: GPUBuffer;
  /** Learned scale, f32 [dim]. */
  weight: GPUBuffer;
  /** Output [rows, dim] from yOffset ('write', 'accumulate': y += alpha * n); must not be x. */
  y?: GPUBuffer;
  /** u32 [rows], 0 = masked row (mask 'input' / 'writeBack'). */
  rowMask?: GPUBuffer;
  rows: number;
  dim: number;
  eps: number;
  /** Inputs are clamped to [-clip, clip] first (HF's gradient_clipping); default: no clamp. */
  clip?: number;
  /** Scale of the accumulated row (default 1). */
  alpha?: number;
  xOffset?: number;
  /** Elements between input rows (default dim). */
  xStride?: number;
  yOffset?: number;
}

const OUT_CODE: Record<ConformerNormOut, number> = { write: 0, accumulate: 1, inPlace: 2 };
const ACT_CODE: Record<ConformerNormAct, number> = { none: 0, silu: 1 };
const MASK_CODE: Record<ConformerNormMask, number> = { none: 0, input: 1, writeBack: 2 };
const F32_MAX = 3.4028234663852886e38;

/** The variants Gemma 3n's audio tower uses (src/model/audio/). */
export const AUDIO_TOWER_NORM_VARIANTS: ConformerNormVariant[] = [
  { out: 'write' }, // pre-norms
  { out: 'accumulate' }, // post-norms into the residual stream
  { out: 'write', mask: 'writeBack' }, // light conv: mask the stream, norm it
  { out: 'write', act: 'silu' }, // light conv: conv_norm + SiLU
  { out: 'inPlace' }, // block norm
  { out: 'write', mask: 'input' }, // time reduction + soft embedding norm
];

const key = (v: ConformerNormVariant) => `${OUT_CODE[v.out]}/${ACT_CODE[v.act ?? 'none']}/${MASK_CODE[v.mask ?? 'none']}`;

/** Clamp + RMSNorm (+ SiLU) (+ residual) over rows: the audio conformer's norm step (shaders/conformer-norm.wgsl). f32. */
export class ConformerNormKernel {
  /** Every buffer this kernel created for its dispatches (freed by destroy()). */
  private readonly arena: BufferArena;

  private readonly dummyMask: GPUBuffer;
  private readonly dummyY: GPUBuffer;

  private constructor(
    private readonly ctx: GpuContext,
    private readonly pipelines: Map<string, GPUComputePipeline>,
  ) {
    this.arena = new BufferArena(ctx.device);
    this.dummyMask = this.arena.storage(16, 'conformer-norm/no-mask');
    this.dummyY = this.arena.storage(16, 'conformer-norm/no-y');
  }

  /** Compiles `variants` (default: the audio tower's six). */
  static async create(ctx: GpuContext, variants: ConformerNormVariant[] = AUDIO_TOWER_NORM_VARIANTS): Promise<ConformerNormKernel> {
    const pipelines = new Map<string, GPUComputePipeline>();
    await Promise.all(
      variants.map(async (v) => {
        const constants = { OUT: OUT_CODE[v.out], ACT: ACT_CODE[v.act ?? 'none'], MASK: MASK_CODE[v.mask ?? 'none'] };
        pipelines.set(key(v), await getPipeline(ctx, { label: 'conformer-norm', source, libraries: [sumLib], constants }));
      }),
    );
    return new ConformerNormKernel(ctx, pipelines);
  }

  bind(args: ConformerNormArgs): Dispatch & { setRows(rows: number): void } {
    const { device } = this.ctx;
    const label = `conformer-norm[${key(args)}]`;
    const pipeline = this.pipelines.get(key(args));
    if (!pipeline) throw new Error(`${label}: variant not compiled (ConformerNormKernel.create variants)`);
    const { dim } = args;
    if (!(Number.isInteger(dim) && dim > 0)) throw new Error(`${label}: bad dim ${dim}`);
    const xOffset = args.xOffset ?? 0, xStride = args.xStride ?? dim, yOffset = args.yOffset ?? 0;
    if (xStride < dim) throw new Error(`${label}: xStride ${xStride} < dim ${dim}`);
    const writesY = args.out !== 'inPlace';
    if (writesY && !args.y) throw new Error(`${label}: y is required`);
    if (writesY && args.y === args.x) throw new Error(`${label}: x and y must be different buffers (use out 'inPlace')`);
    const masked = (args.mask ?? 'none') !== 'none';
    if (masked && !args.rowMask) throw new Error(`${label}: rowMask is required`);
    if (args.weight.size < dim * 4) throw new Error(`${label}: weight holds fewer than ${dim} floats`);
    const params = this.arena.uniform(48, `${label}/params`);
    const bindGroup = bindBuffers(device, pipeline, [params, args.x, args.weight, masked ? args.rowMask! : this.dummyMask, writesY ? args.y! : this.dummyY], label);
    const clip = args.clip === undefined || args.clip >= F32_MAX ? F32_MAX : args.clip;
    let grid: [number, number] = [0, 1];
    const setRows = (rows: number) => {
      if (!(Number.isInteger(rows) && rows >= 0)) throw new Error(`${label}: bad row count ${rows}`);
      if (rows > 0) {
        if ((xOffset + (rows - 1) * xStride + dim) * 4 > args.x.size) throw new Error(`${label}: x too small for ${rows} rows`);
        if (writesY && (yOffset + rows * dim) * 4 > args.y!.size) throw new Error(`${label}: y too small for ${rows} rows`);
        if (masked && rows * 4 > args.rowMask!.size) throw new Error(`${label}: rowMask too small for ${rows} rows`);
      }
      grid = grid2d(rows, device.limits.maxComputeWorkgroupsPerDimension);
      device.queue.writeBuffer(
        params,
        0,
        packUniform([
          ['u32', rows],
          ['u32', dim],
          ['u32', xOffset],
          ['u32', xStride],
          ['u32', yOffset],
          ['u32', grid[0]],
          ['f32', args.eps],
          ['f32', clip],
          ['f32', args.alpha ?? 1],
        ]),
      );
    };
    setRows(args.rows);
    return { ...makeDispatch(label, pipeline, bindGroup, () => grid), setRows };
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
