import sumLib from '../../shaders/lib/workgroup-sum.wgsl?raw';
import source from '../../shaders/rmsnorm.wgsl?raw';
import type { GpuContext } from '../gpu/device.ts';
import { BufferArena } from '../gpu/buffers.ts';
import { bindBuffers, getPipeline, grid2d, makeDispatch, type ActType, type Dispatch } from '../gpu/pipeline.ts';

export interface RmsNormArgs {
  x: GPUBuffer;
  /** Learned scale [dim] (f32); omit for the scale-free RMS0. */
  weight?: GPUBuffer;
  y: GPUBuffer;
  rows: number;
  dim: number;
  eps: number;
  xOffset?: number;
  yOffset?: number;
}

/** RMSNorm over rows (see shaders/rmsnorm.wgsl). `x` and `y` must be different buffers. */
export class RmsNormKernel {
  /** Every buffer this kernel created for its dispatches (freed by destroy()). */
  private readonly arena: BufferArena;

  private constructor(
    private readonly ctx: GpuContext,
    private readonly pipeline: GPUComputePipeline,
    private readonly dummyWeight: GPUBuffer,
  ) {
    this.arena = new BufferArena(ctx.device);
  }

  static async create(ctx: GpuContext, act: ActType = 'f32'): Promise<RmsNormKernel> {
    const pipeline = await getPipeline(ctx, { label: 'rmsnorm', source, libraries: [sumLib], act });
    const dummyWeight = ctx.device.createBuffer({ label: 'rmsnorm/no-weight', size: 16, usage: GPUBufferUsage.STORAGE });
    const kernel = new RmsNormKernel(ctx, pipeline, dummyWeight);
    kernel.arena.own(dummyWeight);
    return kernel;
  }

  /** Builds the bind group and parameters once; `setRows` changes the row count for later encodes. */
  bind(args: RmsNormArgs): Dispatch & { setRows(rows: number): void } {
    const { device } = this.ctx;
    if (args.x === args.y) throw new Error('rmsnorm: x and y must be different buffers');
    if (args.dim <= 0) throw new Error(`rmsnorm: bad dim ${args.dim}`);
    const params = this.arena.uniform(32, 'rmsnorm/params');
    const bindGroup = bindBuffers(device, this.pipeline, [params, args.x, args.weight ?? this.dummyWeight, args.y], 'rmsnorm');
    const maxPerDim = device.limits.maxComputeWorkgroupsPerDimension;
    let rows = 0;
    let grid: [number, number] = [0, 1];
    const setRows = (n: number) => {
      rows = n;
      grid = grid2d(rows, maxPerDim);
      const data = new ArrayBuffer(32);
      const u = new Uint32Array(data);
      const f = new Float32Array(data);
      u[0] = rows;
      u[1] = args.dim;
      f[2] = args.eps;
      u[3] = args.weight ? 1 : 0;
      u[4] = args.xOffset ?? 0;
      u[5] = args.yOffset ?? 0;
      u[6] = grid[0];
      device.queue.writeBuffer(params, 0, data);
    };
    setRows(args.rows);
    const dispatch = makeDispatch('rmsnorm', this.pipeline, bindGroup, () => grid);
    return { ...dispatch, setRows };
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
