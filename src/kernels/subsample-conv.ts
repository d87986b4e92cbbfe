import source from '../../shaders/subsample-conv.wgsl?raw';
import type { GpuContext } from '../gpu/device.ts';
import { BufferArena, packUniform } from '../gpu/buffers.ts';
import { bindBuffers, getPipeline, grid2d, makeDispatch, type Dispatch } from '../gpu/pipeline.ts';

const WG = 256;

/** Shape of one sub-sampling convolution (HF Gemma3nAudioSSCPConvBlock's conv). */
export interface SubsampleConvShape {
  /** Input frames and frequency bins. */
  tIn: number;
  fIn: number;
  /** Input / output channels. */
  ci: number;
  co: number;
  kh: number;
  kw: number;
  sh: number;
  sw: number;
  /** Frequency padding on each side (HF: 1). Time is padded by kh - 1 at the end. */
  padF: number;
}

/** Output frames and bins of a convolution: HF's (padded - kernel) // stride + 1 with time padding (0, kh - 1). */
export function subsampleConvOutput(s: SubsampleConvShape): { tOut: number; fOut: number } {
  return { tOut: Math.floor((s.tIn - 1) / s.sh) + 1, fOut: Math.floor((s.fIn + 2 * s.padF - s.kw) / s.sw) + 1 };
}

/** Output channels padded to a multiple of 4 (the kernel computes 4 per thread). */
const padded4 = (co: number) => Math.ceil(co / 4) * 4;

/** PyTorch's conv weight [co, ci, kh, kw] as the kernel reads it: [kh, kw, ci, co4], co4 = co padded with zeros to 4. */
export function convWeightForKernel(w: Float32Array, co: number, ci: number, kh: number, kw: number): Float32Array {
  if (w.length !== co * ci * kh * kw) throw new Error(`conv weight has ${w.length} values, [${co}, ${ci}, ${kh}, ${kw}] needs ${co * ci * kh * kw}`);
  const co4 = padded4(co);
  const out = new Float32Array(kh * kw * ci * co4);
  for (let o = 0; o < co; o++) for (let c = 0; c < ci; c++) for (let i = 0; i < kh; i++) for (let j = 0; j < kw; j++) out[((i * kw + j) * ci + c) * co4 + o] = w[((o * ci + c) * kh + i) * kw + j];
  return out;
}

export interface SubsampleConvArgs extends SubsampleConvShape {
  /** [tIn, fIn, ci] f32, channels last. */
  x: GPUBuffer;
  /** [kh, kw, ci, co4] f32 (convWeightForKernel). */
  weight: GPUBuffer;
  /** [tOut, fOut, co] f32. */
  y: GPUBuffer;
}

/** The audio sub-sampler's strided 2-D convolution (shaders/subsample-conv.wgsl). f32. */
export class SubsampleConvKernel {
  /** Every buffer this kernel created for its dispatches (freed by destroy()). */
  private readonly arena: BufferArena;

  private constructor(
    private readonly ctx: GpuContext,
    private readonly pipeline: GPUComputePipeline,
  ) {
    this.arena = new BufferArena(ctx.device);
  }

  static async create(ctx: GpuContext): Promise<SubsampleConvKernel> {
    return new SubsampleConvKernel(ctx, await getPipeline(ctx, { label: 'subsample-conv', source, constants: { WG } }));
  }

  /** `setFrames(tIn)` changes the input length for later encodes (the output length follows). */
  bind(args: SubsampleConvArgs): Dispatch & { setFrames(tIn: number): { tOut: number; fOut: number } } {
    const { device } = this.ctx;
    const label = `subsample-conv[${args.ci}->${args.co} ${args.kh}x${args.kw}/${args.sh}x${args.sw}]`;
    for (const k of ['fIn', 'ci', 'co', 'kh', 'kw', 'sh', 'sw'] as const) {
      if (!(Number.isInteger(args[k]) && args[k] > 0)) throw new Error(`${label}: bad ${k} ${args[k]}`);
    }
    if (!(Number.isInteger(args.padF) && args.padF >= 0)) throw new Error(`${label}: bad padF ${args.padF}`);
    if (args.weight.size < args.kh * args.kw * args.ci * padded4(args.co) * 4) throw new Error(`${label}: weight too small (convWeightForKernel layout)`);
    const params = this.arena.uniform(48, `${label}/params`);
    const bindGroup = bindBuffers(device, this.pipeline, [params, args.x, args.weight, args.y], label);
    let grid: [number, number] = [0, 1];
    const setFrames = (tIn: number) => {
      if (!(Number.isInteger(tIn) && tIn >= 0)) throw new Error(`${label}: bad frame count ${tIn}`);
      const { tOut, fOut } = tIn === 0 ? { tOut: 0, fOut: 0 } : subsampleConvOutput({ ...args, tIn });
      if (fOut <= 0 && tIn > 0) throw new Error(`${label}: ${args.fIn} bins are too few for the kernel`);
      if (tIn * args.fIn * args.ci * 4 > args.x.size) throw new Error(`${label}: x too small for ${tIn} frames`);
      if (tOut * fOut * args.co * 4 > args.y.size) throw new Error(`${label}: y too small for ${tOut} output frames`);
      grid = grid2d(Math.ceil((tOut * fOut * padded4(args.co)) / 4 / WG), device.limits.maxComputeWorkgroupsPerDimension);
      device.queue.writeBuffer(
        params,
        0,
        packUniform([tIn, args.fIn, args.ci, tOut, fOut, args.co, args.kh, args.kw, args.sh, args.sw, args.padF, grid[0]].map((v) => ['u32', v] as ['u32', number])),
      );
      return { tOut, fOut };
    };
    setFrames(args.tIn);
    return { ...makeDispatch(label, this.pipeline, bindGroup, () => grid), setFrames };
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
