import source from '../../shaders/glu-dwconv.wgsl?raw';
import type { GpuContext } from '../gpu/device.ts';
import { BufferArena, packUniform } from '../gpu/buffers.ts';
import { bindBuffers, getPipeline, grid2d, makeDispatch, type Dispatch } from '../gpu/pipeline.ts';

const WG = 256;

export interface GluDwConvArgs {
  /** [T, 2 * dim] f32: value half then gate half. */
  a: GPUBuffer;
  /** Depthwise kernel, f32 [dim, kernel] (PyTorch's [dim, 1, kernel]). */
  weight: GPUBuffer;
  /** [T, dim] f32; must not be `a`. */
  y: GPUBuffer;
  rows: number;
  dim: number;
  kernel: number;
}

/** GLU + causal depthwise conv1d of the audio light-conv module (shaders/glu-dwconv.wgsl). f32. */
export class GluDwConvKernel {
  /** Every buffer this kernel created for its dispatches (freed by destroy()). */
  private readonly arena: BufferArena;

  private constructor(
    private readonly ctx: GpuContext,
    private readonly pipeline: GPUComputePipeline,
  ) {
    this.arena = new BufferArena(ctx.device);
  }

  static async create(ctx: GpuContext): Promise<GluDwConvKernel> {
    return new GluDwConvKernel(ctx, await getPipeline(ctx, { label: 'glu-dwconv', source, constants: { WG } }));
  }

  bind(args: GluDwConvArgs): Dispatch & { setRows(rows: number): void } {
    const { device } = this.ctx;
    const { dim: D, kernel: K } = args;
    const label = `glu-dwconv[${D} k${K}]`;
    if (!(Number.isInteger(D) && D > 0 && Number.isInteger(K) && K > 0)) throw new Error(`${label}: bad shape`);
    if (args.a === args.y) throw new Error(`${label}: a and y must be different buffers`);
    if (args.weight.size < D * K * 4) throw new Error(`${label}: weight too small`);
    const params = this.arena.uniform(16, `${label}/params`);
    const bindGroup = bindBuffers(device, this.pipeline, [params, args.a, args.weight, args.y], label);
    let grid: [number, number] = [0, 1];
    const setRows = (T: number) => {
      if (!(Number.isInteger(T) && T >= 0)) throw new Error(`${label}: bad row count ${T}`);
      if (T * 2 * D * 4 > args.a.size || T * D * 4 > args.y.size) throw new Error(`${label}: buffers too small for ${T} rows`);
      grid = grid2d(Math.ceil((T * D) / WG), device.limits.maxComputeWorkgroupsPerDimension);
      device.queue.writeBuffer(params, 0, packUniform([['u32', T], ['u32', D], ['u32', K], ['u32', grid[0]]]));
    };
    setRows(args.rows);
    return { ...makeDispatch(label, this.pipeline, bindGroup, () => grid), setRows };
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
