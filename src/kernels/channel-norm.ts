import tanhLib from '../../shaders/lib/tanh.wgsl?raw';
import source from '../../shaders/channel-norm.wgsl?raw';
import type { GpuContext } from '../gpu/device.ts';
import { BufferArena, packUniform } from '../gpu/buffers.ts';
import { bindBuffers, getPipeline, grid2d, makeDispatch, type Dispatch } from '../gpu/pipeline.ts';

const WG = 64;

/** What follows the norm: nothing, tanh-GELU, or a residual add into y (y += norm(x)). */
export type ChannelNormEpilogue = 'none' | 'gelu' | 'add';

export interface ChannelNormArgs {
  /** Input [pixels, channels] f32 (channels last), from element `xOffset`. May be `y` itself (in place) unless 'add'. */
  x: GPUBuffer;
  xOffset?: number;
  /** f32 [channels]; omit for a scale-free norm. */
  weight?: GPUBuffer;
  y: GPUBuffer;
  yOffset?: number;
  pixels: number;
  channels: number;
  eps: number;
  /** Multiplies the input before the norm (default 1). */
  alpha?: number;
  epilogue?: ChannelNormEpilogue;
}

const EPI_CODE: Record<ChannelNormEpilogue, number> = { none: 0, gelu: 1, add: 2 };

/** RMS norm over the channels of every pixel with a fused epilogue (shaders/channel-norm.wgsl). */
export class ChannelNormKernel {
  private constructor(
    private readonly ctx: GpuContext,
    private readonly pipelines: Map<string, GPUComputePipeline>,
    private readonly arena: BufferArena,
    private readonly dummy: GPUBuffer,
  ) {}

  static async create(ctx: GpuContext): Promise<ChannelNormKernel> {
    const pipelines = new Map<string, GPUComputePipeline>();
    const variants: Array<[ChannelNormEpilogue, boolean]> = [['none', false], ['none', true], ['gelu', false], ['gelu', true], ['add', false]];
    await Promise.all(
      variants.map(async ([epi, inPlace]) => {
        const pipeline = await getPipeline(ctx, { label: 'channel-norm', source, libraries: [tanhLib], constants: { EPI: EPI_CODE[epi], IN_PLACE: inPlace ? 1 : 0, WG } });
        pipelines.set(`${epi}/${inPlace}`, pipeline);
      }),
    );
    const arena = new BufferArena(ctx.device);
    return new ChannelNormKernel(ctx, pipelines, arena, arena.placeholder('channel-norm/unused'));
  }

  /** Bytes of the GPU buffers this kernel created (a model's memory() counts them). */
  get gpuBytes(): number {
    return this.arena.bytes;
  }

  /**
   * Frees the buffers this kernel created: the placeholder for unused bindings and every dispatch's parameters (its
   * dispatches must not be encoded afterwards; a dispatch's destroy() frees its own parameters earlier).
   */
  destroy(): void {
    this.arena.destroy();
  }

  bind(args: ChannelNormArgs): Dispatch & { destroy(): void } {
    const { device } = this.ctx;
    const { pixels, channels: C } = args;
    const epi = args.epilogue ?? 'none';
    const inPlace = args.x === args.y;
    const label = `channel-norm[${C} x ${pixels}${epi === 'none' ? '' : ' ' + epi}${inPlace ? ' in place' : ''}]`;
    const xOffset = args.xOffset ?? 0;
    const yOffset = args.yOffset ?? 0;
    if (C % 4 !== 0 || !(pixels > 0)) throw new Error(`${label}: bad shape (channels must be a multiple of 4)`);
    if (xOffset % 4 !== 0 || yOffset % 4 !== 0) throw new Error(`${label}: offsets must be multiples of 4`);
    if (inPlace && epi === 'add') throw new Error(`${label}: 'add' cannot run in place`);
    if (inPlace && xOffset !== yOffset) throw new Error(`${label}: in place needs xOffset == yOffset`);
    if (args.x.size < (xOffset + pixels * C) * 4) throw new Error(`${label}: x holds ${args.x.size} bytes, needs ${(xOffset + pixels * C) * 4}`);
    if (args.y.size < (yOffset + pixels * C) * 4) throw new Error(`${label}: y holds ${args.y.size} bytes, needs ${(yOffset + pixels * C) * 4}`);
    if (args.weight && args.weight.size < C * 4) throw new Error(`${label}: weight is shorter than ${C}`);
    const pipeline = this.pipelines.get(`${epi}/${inPlace}`)!;
    const grid = grid2d(Math.ceil(pixels / WG), device.limits.maxComputeWorkgroupsPerDimension);
    const params = this.arena.uniform(32, `${label}/params`);
    device.queue.writeBuffer(
      params,
      0,
      packUniform([
        ['u32', pixels],
        ['u32', C / 4],
        ['f32', args.eps],
        ['f32', args.alpha ?? 1],
        ['u32', args.weight ? 1 : 0],
        ['u32', xOffset / 4],
        ['u32', yOffset / 4],
        ['u32', grid[0]],
      ]),
    );
    const bindGroup = bindBuffers(device, pipeline, [params, inPlace ? this.dummy : args.x, args.weight ?? this.dummy, args.y], label);
    return { ...makeDispatch(label, pipeline, bindGroup, () => grid), destroy: () => this.arena.release(params) };
  }
}
