import source from '../../shaders/resample.wgsl?raw';
import type { GpuContext } from '../gpu/device.ts';
import { BufferArena, packUniform } from '../gpu/buffers.ts';
import { bindBuffers, getPipeline, grid2d, makeDispatch, type Dispatch } from '../gpu/pipeline.ts';

const WG = 64;

export interface ResampleArgs {
  /** 'nearest': integer upsampling (outHeight = f * height; f = 1 copies); 'avg-pool': f x f blocks, stride f. */
  mode: 'nearest' | 'avg-pool';
  /** Input [height, width, channels] f32, channels last. */
  x: GPUBuffer;
  height: number;
  width: number;
  channels: number;
  outHeight: number;
  outWidth: number;
  /** Output pixel m's channels at yOffset + m * yStride (elements; default stride = channels). Must not be `x`. */
  y: GPUBuffer;
  yOffset?: number;
  yStride?: number;
}

/** Nearest upsampling into a channel slice, and block average pooling (shaders/resample.wgsl). */
export class ResampleKernel {
  /** Every buffer this kernel created for its dispatches (freed by destroy()). */
  private readonly arena: BufferArena;

  private constructor(
    private readonly ctx: GpuContext,
    private readonly nearest: GPUComputePipeline,
    private readonly avgPool: GPUComputePipeline,
  ) {
    this.arena = new BufferArena(ctx.device);
  }

  static async create(ctx: GpuContext): Promise<ResampleKernel> {
    const [nearest, avgPool] = await Promise.all(['nearest', 'avg_pool'].map((entryPoint) => getPipeline(ctx, { label: 'resample', source, entryPoint, constants: { WG } })));
    return new ResampleKernel(ctx, nearest, avgPool);
  }

  bind(args: ResampleArgs): Dispatch & { destroy(): void } {
    const { device } = this.ctx;
    const { height: H, width: W, channels: C, outHeight: OH, outWidth: OW } = args;
    const label = `resample[${args.mode} ${C} ${H}x${W} -> ${OH}x${OW}]`;
    const yOffset = args.yOffset ?? 0;
    const yStride = args.yStride ?? C;
    if (args.x === args.y) throw new Error(`${label}: x and y must be different buffers`);
    if (C % 4 !== 0 || yOffset % 4 !== 0 || yStride % 4 !== 0 || yStride < C) throw new Error(`${label}: channels, yOffset and yStride must be multiples of 4 (yStride >= channels)`);
    const f = args.mode === 'nearest' ? OH / H : H / OH;
    if (!(Number.isInteger(f) && f >= 1) || (args.mode === 'nearest' ? OW !== W * f : W !== OW * f)) {
      throw new Error(`${label}: only integer factors, equal on both axes, are supported`);
    }
    if (args.x.size < H * W * C * 4) throw new Error(`${label}: x holds ${args.x.size} bytes, needs ${H * W * C * 4}`);
    const needY = (yOffset + (OH * OW - 1) * yStride + C) * 4;
    if (args.y.size < needY) throw new Error(`${label}: y holds ${args.y.size} bytes, needs ${needY}`);
    const grid = grid2d(Math.ceil((OH * OW * C) / 4 / WG), device.limits.maxComputeWorkgroupsPerDimension);
    const params = this.arena.uniform(36, `${label}/params`);
    device.queue.writeBuffer(params, 0, packUniform([H, W, C / 4, OH, OW, f, yStride / 4, yOffset / 4, grid[0]].map((v) => ['u32', v] as ['u32', number])));
    const pipeline = args.mode === 'nearest' ? this.nearest : this.avgPool;
    const bindGroup = bindBuffers(device, pipeline, [params, args.x, args.y], label);
    return { ...makeDispatch(label, pipeline, bindGroup, () => grid), destroy: () => this.arena.release(params) };
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
