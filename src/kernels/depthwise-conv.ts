import source from '../../shaders/depthwise-conv.wgsl?raw';
import type { GpuContext } from '../gpu/device.ts';
import { BufferArena, packUniform } from '../gpu/buffers.ts';
import { bindBuffers, getPipeline, grid2d, makeDispatch, type Dispatch } from '../gpu/pipeline.ts';
import { samePad } from './conv2d.ts';

const WG = 64;

export interface DepthwiseConvArgs {
  /** Input [height, width, channels] f32, channels last. */
  x: GPUBuffer;
  height: number;
  width: number;
  channels: number;
  /** f32 [kernel, kernel, channels] (PyTorch's [C, 1, k, k] repacked). */
  weight: GPUBuffer;
  kernel: number;
  stride?: number;
  /** Output [outHeight, outWidth, channels] with TensorFlow/timm "SAME" padding. Must not be `x`. */
  y: GPUBuffer;
}

/** Depthwise convolution over channels-last f32 activations (shaders/depthwise-conv.wgsl). */
export class DepthwiseConvKernel {
  /** Every buffer this kernel created for its dispatches (freed by destroy()). */
  private readonly arena: BufferArena;

  private constructor(
    private readonly ctx: GpuContext,
    private readonly pipeline: GPUComputePipeline,
  ) {
    this.arena = new BufferArena(ctx.device);
  }

  static async create(ctx: GpuContext): Promise<DepthwiseConvKernel> {
    return new DepthwiseConvKernel(ctx, await getPipeline(ctx, { label: 'depthwise-conv', source, constants: { WG } }));
  }

  /** Output size of a `size` input (SAME padding). */
  static outSize(size: number, kernel: number, stride: number): number {
    return samePad(size, kernel, stride).out;
  }

  bind(args: DepthwiseConvArgs): Dispatch & { destroy(): void } {
    const { device } = this.ctx;
    const { height: H, width: W, channels: C, kernel: K } = args;
    const stride = args.stride ?? 1;
    const label = `depthwise-conv[k${K}/${stride} ${C} ${H}x${W}]`;
    if (args.x === args.y) throw new Error(`${label}: x and y must be different buffers`);
    if (C % 4 !== 0 || !(H > 0 && W > 0 && K > 0 && stride > 0)) throw new Error(`${label}: bad shape (channels must be a multiple of 4)`);
    const py = samePad(H, K, stride);
    const px = samePad(W, K, stride);
    const M = py.out * px.out;
    if (args.x.size < H * W * C * 4) throw new Error(`${label}: x holds ${args.x.size} bytes, needs ${H * W * C * 4}`);
    if (args.y.size < M * C * 4) throw new Error(`${label}: y holds ${args.y.size} bytes, needs ${M * C * 4}`);
    if (args.weight.size < K * K * C * 4) throw new Error(`${label}: weight is shorter than ${K * K * C}`);
    const grid = grid2d(Math.ceil((M * C) / 4 / WG), device.limits.maxComputeWorkgroupsPerDimension);
    const params = this.arena.uniform(40, `${label}/params`);
    device.queue.writeBuffer(params, 0, packUniform([H, W, C / 4, py.out, px.out, K, stride, py.before, px.before, grid[0]].map((v) => ['u32', v] as ['u32', number])));
    const bindGroup = bindBuffers(device, this.pipeline, [params, args.x, args.weight, args.y], label);
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
