import sumLib from '../../shaders/lib/workgroup-sum.wgsl?raw';
import source from '../../shaders/cumulative-group-norm.wgsl?raw';
import type { GpuContext } from '../gpu/device.ts';
import { BufferArena, packUniform } from '../gpu/buffers.ts';
import { bindBuffers, getPipeline, grid2d, type Dispatch } from '../gpu/pipeline.ts';

const WG = 256;
const PHASES = 5;

export interface CumulativeGroupNormArgs {
  /** [T, G] f32, normalised in place (G = freq x channels, channels last). */
  x: GPUBuffer;
  /** Per-channel scale, f32 [C]. */
  weight: GPUBuffer;
  /** Frames (changeable with setFrames). */
  frames: number;
  /** Values per frame, a multiple of `channels`. */
  group: number;
  channels: number;
  eps: number;
  /** Most frames the statistics scratch is sized for (default `frames`). */
  maxFrames?: number;
}

/**
 * Cumulative group norm + ReLU over time (shaders/cumulative-group-norm.wgsl): five dispatches (row sums, running
 * mean, centred row sums of squares, running inverse std, apply) with a [3 * maxFrames] f32 scratch per binding. f32.
 */
export class CumulativeGroupNormKernel {
  /** Every buffer this kernel created for its dispatches (freed by destroy()). */
  private readonly arena: BufferArena;

  private constructor(
    private readonly ctx: GpuContext,
    private readonly pipelines: GPUComputePipeline[],
  ) {
    this.arena = new BufferArena(ctx.device);
  }

  static async create(ctx: GpuContext): Promise<CumulativeGroupNormKernel> {
    const pipelines = await Promise.all(Array.from({ length: PHASES }, (_, phase) => getPipeline(ctx, { label: 'cumulative-group-norm', source, libraries: [sumLib], constants: { WG, PHASE: phase } })));
    return new CumulativeGroupNormKernel(ctx, pipelines);
  }

  bind(args: CumulativeGroupNormArgs): Dispatch & { setFrames(frames: number): void } {
    const { device } = this.ctx;
    const label = `cumulative-group-norm[${args.group}/${args.channels}]`;
    const { group: G, channels: C } = args;
    if (!(Number.isInteger(G) && Number.isInteger(C) && C > 0 && G > 0 && G % C === 0)) throw new Error(`${label}: group ${G} is not a positive multiple of channels ${C}`);
    if (args.weight.size < C * 4) throw new Error(`${label}: weight too small`);
    const maxFrames = args.maxFrames ?? args.frames;
    const stats = this.arena.storage(3 * Math.max(1, maxFrames) * 4, `${label}/stats`);
    const params = this.arena.uniform(32, `${label}/params`);
    const groups = this.pipelines.map((pl) => bindBuffers(device, pl, [params, args.x, args.weight, stats], label));
    const maxPerDim = device.limits.maxComputeWorkgroupsPerDimension;
    let T = 0;
    let rowGrid: [number, number] = [0, 1];
    const setFrames = (frames: number) => {
      if (!(Number.isInteger(frames) && frames >= 0 && frames <= maxFrames)) throw new Error(`${label}: ${frames} frames (at most ${maxFrames})`);
      if (frames * G * 4 > args.x.size) throw new Error(`${label}: x too small for ${frames} frames`);
      T = frames;
      rowGrid = grid2d(T, maxPerDim);
      device.queue.writeBuffer(params, 0, packUniform([['u32', T], ['u32', G], ['u32', C], ['u32', rowGrid[0]], ['f32', args.eps]]));
    };
    setFrames(args.frames);
    return {
      label,
      setFrames,
      encode: (pass) => {
        if (T === 0) return;
        const grids: Array<[number, number]> = [rowGrid, [1, 1], rowGrid, [1, 1], rowGrid];
        for (let phase = 0; phase < PHASES; phase++) {
          pass.setPipeline(this.pipelines[phase]);
          pass.setBindGroup(0, groups[phase]);
          pass.dispatchWorkgroups(grids[phase][0], grids[phase][1]);
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
