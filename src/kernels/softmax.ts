import source from '../../shaders/softmax.wgsl?raw';
import type { GpuContext } from '../gpu/device.ts';
import { BufferArena, packUniform } from '../gpu/buffers.ts';
import { bindBuffers, getPipeline, grid2d, makeDispatch, type Dispatch } from '../gpu/pipeline.ts';

const WG = 64;

export interface SoftmaxArgs {
  /** [rows, cols] f32, normalised in place: y[r, :] = softmax(alpha * y[r, :]). */
  y: GPUBuffer;
  rows: number;
  cols: number;
  /** Logit scale (default 1). */
  alpha?: number;
}

/** Row softmax in place (shaders/softmax.wgsl). */
export class SoftmaxKernel {
  /** Every buffer this kernel created for its dispatches (freed by destroy()). */
  private readonly arena: BufferArena;

  private constructor(
    private readonly ctx: GpuContext,
    private readonly pipeline: GPUComputePipeline,
  ) {
    this.arena = new BufferArena(ctx.device);
  }

  static async create(ctx: GpuContext): Promise<SoftmaxKernel> {
    return new SoftmaxKernel(ctx, await getPipeline(ctx, { label: 'softmax', source, constants: { WG } }));
  }

  bind(args: SoftmaxArgs): Dispatch & { destroy(): void } {
    const { device } = this.ctx;
    const { rows, cols } = args;
    const label = `softmax[${rows} x ${cols}]`;
    if (cols % 4 !== 0 || !(rows > 0 && cols > 0)) throw new Error(`${label}: cols must be a positive multiple of 4`);
    if (args.y.size < rows * cols * 4) throw new Error(`${label}: y holds ${args.y.size} bytes, needs ${rows * cols * 4}`);
    const grid = grid2d(Math.ceil(rows / WG), device.limits.maxComputeWorkgroupsPerDimension);
    const params = this.arena.uniform(16, `${label}/params`);
    device.queue.writeBuffer(params, 0, packUniform([['u32', rows], ['u32', cols / 4], ['f32', args.alpha ?? 1], ['u32', grid[0]]]));
    const bindGroup = bindBuffers(device, this.pipeline, [params, args.y], label);
    return { ...makeDispatch(label, this.pipeline, bindGroup, () => grid), destroy: () => this.arena.release(params) };
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
