import source from '../../shaders/conv2d.wgsl?raw';
import quadSource from '../../shaders/conv2d-quad.wgsl?raw';
import type { GpuContext } from '../gpu/device.ts';
import { BufferArena, packUniform } from '../gpu/buffers.ts';
import { bindBuffers, getPipeline, grid2d, makeDispatch, type Dispatch } from '../gpu/pipeline.ts';

/** Element type of convolution weights on the GPU: decoded to f32 in registers (bf16 and f16 exactly). */
export type ConvWeightFormat = 'f32' | 'f16' | 'bf16';

/**
 * A convolution (or GEMM) weight on the GPU. `layout` 'out-major': W(n, k) at n * K + k with k = (ky * kw + kx) *
 * cin + c (PyTorch's [out, in, kh, kw] repacked to [out, kh, kw, in]; for 1x1 kernels PyTorch's own order);
 * 'in-major': W(n, k) at k * cout + n (e.g. the values of attention, [keys, dim], as the right operand of p.V).
 */
export interface ConvWeight {
  format: ConvWeightFormat;
  layout: 'out-major' | 'in-major';
  cout: number;
  cin: number;
  kh: number;
  kw: number;
  data: GPUBuffer;
}

export const CONV_FORMAT_BYTES: Record<ConvWeightFormat, number> = { f32: 4, f16: 2, bf16: 2 };
const FORMAT_CODE: Record<ConvWeightFormat, number> = { f32: 0, f16: 1, bf16: 2 };
const WG = 64;

/**
 * How invocations split the output (shaders/conv2d.wgsl, "Tilings"): 'register' 8 pixels x 4 channels per
 * invocation (GPUs); 'quad' 16 pixels x 4 channels per invocation with the pixels shared by the 4 invocations of
 * a quad (CPU adapters with subgroups: SwiftShader's SIMD lanes are quads, its storage loads are gathers).
 */
export type ConvTiling = 'register' | 'quad';

/** Output pixels per invocation of each tiling. */
const TILE_M: Record<ConvTiling, number> = { register: 8, quad: 16 };

/** The tiling for this adapter: 'quad' on CPU adapters that have subgroups, else 'register'. */
export function defaultConvTiling(ctx: GpuContext): ConvTiling {
  return ctx.cpuAdapter && ctx.subgroups ? 'quad' : 'register';
}

/** Explicit padding: rows/columns of zeros before the image, and the output size (the rest is padded after). */
export interface ConvPadding {
  top: number;
  left: number;
  outHeight: number;
  outWidth: number;
}

export interface Conv2dArgs {
  /** Input [height, width, channels] f32, channels last, from element `xOffset` (a multiple of 4). */
  x: GPUBuffer;
  xOffset?: number;
  height: number;
  width: number;
  weight: ConvWeight;
  /** f32 [cout], added to every output pixel. */
  bias?: GPUBuffer;
  /** f32 [cout], multiplies the convolution before the bias and the accumulation (a layer scale). */
  scale?: GPUBuffer;
  stride?: number;
  /** Default 'same' (TensorFlow / timm: output ceil(in / stride), the odd padding row/column after). */
  padding?: 'same' | ConvPadding;
  /** Output [outHeight * outWidth, cout] f32: pixel m, channel n at yOffset + m * yStride + n. Must not be `x`. */
  y: GPUBuffer;
  yOffset?: number;
  /** Elements between output pixels (default cout; larger to write a channel slice of a wider tensor). */
  yStride?: number;
  /** y += conv(x) (e.g. a residual add) instead of y = conv(x). */
  accumulate?: boolean;
}

/** GEMM through the same kernel: y[m, n] (+)= sum_k x[m, k] W(n, k), x [rows, k] row-major. */
export interface GemmArgs {
  x: GPUBuffer;
  xOffset?: number;
  rows: number;
  weight: ConvWeight;
  bias?: GPUBuffer;
  scale?: GPUBuffer;
  y: GPUBuffer;
  yOffset?: number;
  yStride?: number;
  accumulate?: boolean;
}

import { samePad } from './same-pad.ts';
export { samePad };

/** Bytes of a weight's data in `format`. */
export function convWeightBytes(format: ConvWeightFormat, cout: number, cin: number, kh = 1, kw = 1): number {
  return cout * cin * kh * kw * CONV_FORMAT_BYTES[format];
}

/**
 * 2-D convolution / GEMM over channels-last f32 activations (shaders/conv2d.wgsl). One pipeline per (format,
 * layout) variant, compiled on first use by `create`.
 */
export class Conv2dKernel {
  private constructor(
    private readonly ctx: GpuContext,
    private readonly pipelines: Map<string, GPUComputePipeline>,
    private readonly arena: BufferArena,
    private readonly dummy: GPUBuffer,
    readonly tiling: ConvTiling,
  ) {}

  /**
   * Compiles the variants listed (default: bf16 out-major for weights, f32 both layouts for activation operands) in
   * `tiling` (default: the adapter's, `defaultConvTiling`).
   */
  static async create(
    ctx: GpuContext,
    variants: Array<[ConvWeightFormat, ConvWeight['layout']]> = [['bf16', 'out-major'], ['f32', 'out-major'], ['f32', 'in-major']],
    tiling: ConvTiling = defaultConvTiling(ctx),
  ): Promise<Conv2dKernel> {
    if (tiling === 'quad' && !ctx.subgroups) throw new Error("conv2d: the 'quad' tiling needs the subgroups feature");
    const pipelines = new Map<string, GPUComputePipeline>();
    await Promise.all(
      variants.map(async ([format, layout]) => {
        const constants = (pointwise: boolean) => ({ W_FORMAT: FORMAT_CODE[format], W_KMAJOR: layout === 'in-major' ? 1 : 0, POINTWISE: pointwise ? 1 : 0, WG });
        const compile = (pointwise: boolean) =>
          tiling === 'quad'
            ? getPipeline(ctx, { label: 'conv2d-quad', source: quadSource, libraries: [source], enables: ['subgroups'], entryPoint: 'main_quad', constants: constants(pointwise) })
            : getPipeline(ctx, { label: 'conv2d', source, constants: constants(pointwise) });
        const [general, pointwise] = await Promise.all([compile(false), compile(true)]);
        pipelines.set(`${format}/${layout}`, general);
        pipelines.set(`${format}/${layout}/pointwise`, pointwise);
      }),
    );
    const arena = new BufferArena(ctx.device);
    return new Conv2dKernel(ctx, pipelines, arena, arena.placeholder('conv2d/no-bias'), tiling);
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

  bind(args: Conv2dArgs): Dispatch & { destroy(): void } {
    const { device } = this.ctx;
    const w = args.weight;
    const { height: H, width: W } = args;
    const C = w.cin;
    const N = w.cout;
    const stride = args.stride ?? 1;
    const label = `conv2d[${w.format} ${w.kh}x${w.kw}/${stride} ${C}->${N} ${H}x${W}]`; // bench/vision-profile.ts parses this
    const general = this.pipelines.get(`${w.format}/${w.layout}`);
    if (!general) throw new Error(`${label}: variant ${w.format}/${w.layout} was not compiled (Conv2dKernel.create variants)`);
    if (args.x === args.y) throw new Error(`${label}: x and y must be different buffers`);
    if (C % 4 !== 0 || N % 4 !== 0) throw new Error(`${label}: input and output channels must be multiples of 4`);
    if (!(H > 0 && W > 0 && stride > 0 && w.kh > 0 && w.kw > 0)) throw new Error(`${label}: bad shape`);
    let pad: ConvPadding;
    if (args.padding === undefined || args.padding === 'same') {
      const py = samePad(H, w.kh, stride);
      const px = samePad(W, w.kw, stride);
      pad = { top: py.before, left: px.before, outHeight: py.out, outWidth: px.out };
    } else pad = args.padding;
    const M = pad.outHeight * pad.outWidth;
    const pointwise = w.kh === 1 && w.kw === 1 && stride === 1 && pad.top === 0 && pad.left === 0 && pad.outHeight === H && pad.outWidth === W;
    const pipeline = pointwise ? this.pipelines.get(`${w.format}/${w.layout}/pointwise`)! : general;
    const xOffset = args.xOffset ?? 0;
    const yOffset = args.yOffset ?? 0;
    const yStride = args.yStride ?? N;
    if (xOffset % 4 !== 0) throw new Error(`${label}: xOffset must be a multiple of 4`);
    if (yStride < N) throw new Error(`${label}: yStride ${yStride} < cout ${N}`);
    const needX = (xOffset + H * W * C) * 4;
    const needY = (yOffset + (M - 1) * yStride + N) * 4;
    const needW = convWeightBytes(w.format, N, C, w.kh, w.kw);
    if (needX > args.x.size) throw new Error(`${label}: x holds ${args.x.size} bytes, needs ${needX}`);
    if (needY > args.y.size) throw new Error(`${label}: y holds ${args.y.size} bytes, needs ${needY}`);
    if (needW > w.data.size) throw new Error(`${label}: weight holds ${w.data.size} bytes, needs ${needW}`);
    if (args.bias && args.bias.size < N * 4) throw new Error(`${label}: bias is shorter than ${N}`);
    if (args.scale && args.scale.size < N * 4) throw new Error(`${label}: scale is shorter than ${N}`);
    // Channel blocks per pixel tile; a quad's 4 invocations must share their pixel tile, so 'quad' pads to 4.
    const nBlocks = this.tiling === 'quad' ? Math.ceil(N / 16) * 4 : N / 4;
    const workgroups = Math.ceil((Math.ceil(M / TILE_M[this.tiling]) * nBlocks) / WG);
    const grid = grid2d(workgroups, device.limits.maxComputeWorkgroupsPerDimension);
    const params = this.arena.uniform(76, `${label}/params`);
    device.queue.writeBuffer(
      params,
      0,
      packUniform(
        [H, W, C, pad.outHeight, pad.outWidth, N, w.kh, w.kw, stride, pad.top, pad.left, xOffset, yOffset, yStride, args.bias ? 1 : 0, args.scale ? 1 : 0, args.accumulate ? 1 : 0, nBlocks, grid[0]].map(
          (v) => ['u32', v] as ['u32', number],
        ),
      ),
    );
    const bindGroup = bindBuffers(device, pipeline, [params, args.x, w.data, args.bias ?? this.dummy, args.y, args.scale ?? this.dummy], label);
    return { ...makeDispatch(label, pipeline, bindGroup, () => grid), destroy: () => this.arena.release(params) };
  }

  /** y[rows, cout] (+)= x[rows, cin] W^T (+ bias): the kernel as a plain GEMM (1x1 kernel over a 1 x rows image). */
  bindGemm(args: GemmArgs): Dispatch & { destroy(): void } {
    if (args.weight.kh !== 1 || args.weight.kw !== 1) throw new Error('conv2d gemm: the weight must be 1x1');
    return this.bind({ ...args, height: 1, width: args.rows });
  }
}
