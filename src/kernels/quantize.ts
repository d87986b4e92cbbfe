import source from '../../shaders/quantize.wgsl?raw';
import pcgHash from '../../shaders/lib/pcg-hash.wgsl?raw';
import f16Lib from '../../shaders/lib/f16-bits.wgsl?raw';
import type { GpuContext } from '../gpu/device.ts';
import { createUniformBuffer, packUniform } from '../gpu/buffers.ts';
import { bindBuffers, getPipeline, grid2d, makeDispatch, type Dispatch } from '../gpu/pipeline.ts';
import { groupsPerRow, type QuantFormat } from '../formats/weight-format.ts';
import { superBlocksPerRow } from '../formats/kquant.ts';

/** Element type of source weights: f32, or raw 16-bit values two per u32 word (bf16 as safetensors stores it, f16). */
export type SourceDType = 'f32' | 'bf16' | 'f16';

const SRC_CODE: Record<SourceDType, number> = { f32: 0, bf16: 1, f16: 2 };
const WG = 256;

/** A one-off dispatch that owns a small uniform buffer; `destroy()` frees it once the work is submitted. */
export type OwnedDispatch = Dispatch & { destroy(): void };

export interface QuantizeArgs {
  src: GPUBuffer;
  srcDType: SourceDType;
  /** Rows and columns of this chunk (columns = the weight's in-features). */
  rows: number;
  cols: number;
  /** q4 / q8 (absmax, bit-exact with cpu-quant.ts), q5 / q4k / q6k (error-minimising search; CPU definition test/helpers/quantize-search.ts). */
  format: Exclude<QuantFormat, 'q5k'>;
  /** Block and scale destinations (weight-format.ts layout). */
  data: GPUBuffer;
  scales: GPUBuffer;
  /** The first row of the chunk in `data`/`scales` (of the part); must be even. */
  outRow?: number;
  /** Element offset of the chunk in `src` (default 0). */
  inOffset?: number;
}

export interface ConvertArgs {
  src: GPUBuffer;
  srcDType: SourceDType;
  /** Elements to convert. */
  count: number;
  dst: GPUBuffer;
  /** Element offset in `dst` (for 'f16' output: even). */
  outOffset?: number;
  inOffset?: number;
}

export interface RandomArgs {
  /** Receives `count` f32 values. */
  dst: GPUBuffer;
  count: number;
  seed: number;
  std: number;
  /** Index of the first value in the whole tensor (values depend only on seed and index, not on chunking). */
  firstIndex?: number;
  outOffset?: number;
}

/**
 * Weight conversion kernels (shaders/quantize.wgsl): f32/bf16/f16 rows -> q4/q8 (scale rules and exactness in
 * the shader header), -> packed f16, bf16/f16 -> f32, and a seeded normal generator. Used at load time by
 * upload-weight.ts, so each call makes its own small uniform buffer.
 */
export class QuantizeKernel {
  private readonly dummies: GPUBuffer[];

  private constructor(private readonly ctx: GpuContext) {
    const mk = (label: string) => ctx.device.createBuffer({ label, size: 16, usage: GPUBufferUsage.STORAGE });
    this.dummies = [mk('quantize/dummy-src'), mk('quantize/dummy-scales')];
  }

  static async create(ctx: GpuContext): Promise<QuantizeKernel> {
    return new QuantizeKernel(ctx);
  }

  private async dispatch(
    entryPoint: string,
    src: GPUBuffer | undefined,
    dst: GPUBuffer,
    scales: GPUBuffer | undefined,
    srcDType: SourceDType,
    threads: number,
    fields: { count: number; cols?: number; groupsPerRow?: number; inOffset?: number; outOffset?: number; seed?: number; std?: number },
  ): Promise<OwnedDispatch> {
    const { device } = this.ctx;
    const pipeline = await getPipeline(this.ctx, { label: 'quantize', source, libraries: [f16Lib, pcgHash], entryPoint, constants: { SRC: SRC_CODE[srcDType] } });
    const grid = grid2d(Math.ceil(threads / WG), device.limits.maxComputeWorkgroupsPerDimension);
    const params = createUniformBuffer(device, 32, `quantize/${entryPoint}/params`);
    device.queue.writeBuffer(
      params,
      0,
      packUniform([
        ['u32', fields.count],
        ['u32', fields.cols ?? 0],
        ['u32', fields.groupsPerRow ?? 0],
        ['u32', fields.inOffset ?? 0],
        ['u32', fields.outOffset ?? 0],
        ['u32', (fields.seed ?? 0) >>> 0],
        ['f32', fields.std ?? 0],
        ['u32', grid[0]],
      ]),
    );
    const bindGroup = bindBuffers(device, pipeline, [params, src ?? this.dummies[0], dst, scales ?? this.dummies[1]], `quantize/${entryPoint}`);
    return { ...makeDispatch(`quantize/${entryPoint}`, pipeline, bindGroup, () => grid), destroy: () => params.destroy() };
  }

  /** Quantizes a [rows, cols] chunk of f32/bf16/f16 values into a quantized layout (weight-format.ts, kquant.ts). */
  quantize(a: QuantizeArgs): Promise<OwnedDispatch> {
    const G = groupsPerRow(a.cols);
    const outRow = a.outRow ?? 0;
    if (outRow % 2 !== 0) throw new Error(`quantize: outRow ${outRow} must be even (two f16 scales share a word)`);
    if (a.rows < 0 || a.cols <= 0) throw new Error(`quantize: bad shape [${a.rows}, ${a.cols}]`);
    const common = { cols: a.cols, groupsPerRow: G, inOffset: a.inOffset };
    if (a.format === 'q4k' || a.format === 'q6k') {
      if (a.cols % 32 !== 0) throw new Error(`quantize: ${a.format} needs rows of whole 32-value sub-blocks, not ${a.cols}`);
      const S = superBlocksPerRow(a.cols);
      const items = a.rows * (a.format === 'q4k' ? S : Math.ceil(S / 2));
      return this.dispatch(`quantize_${a.format}`, a.src, a.data, a.scales, a.srcDType, items, { ...common, count: items, outOffset: outRow });
    }
    const groups = a.rows * G;
    return this.dispatch(`quantize_${a.format}`, a.src, a.data, a.scales, a.srcDType, Math.ceil(groups / 2), { ...common, count: groups, outOffset: outRow * G });
  }

  /** Converts `count` source values to f16 packed two per u32 word (round to nearest even, overflow to inf). */
  toF16(a: ConvertArgs): Promise<OwnedDispatch> {
    const outOffset = a.outOffset ?? 0;
    if (outOffset % 2 !== 0) throw new Error(`quantize.toF16: outOffset ${outOffset} must be even`);
    return this.dispatch('to_f16', a.src, a.dst, undefined, a.srcDType, Math.ceil(a.count / 2), { count: a.count, inOffset: a.inOffset, outOffset });
  }

  /** Converts `count` bf16/f16 values to f32 (exact). */
  toF32(a: ConvertArgs): Promise<OwnedDispatch> {
    if (a.srcDType === 'f32') throw new Error('quantize.toF32: source is already f32 (copy it)');
    return this.dispatch('to_f32', a.src, a.dst, undefined, a.srcDType, a.count, { count: a.count, inOffset: a.inOffset, outOffset: a.outOffset });
  }

  /**
   * Fills a whole q4/q8 weight part with uniform random codes and the single scale `scale` (values then have a
   * standard deviation of about 4.6 * scale for q4, 74 * scale for q8). For benchmarks.
   */
  randomCodes(a: { data: GPUBuffer; dataWords: number; scales: GPUBuffer; scaleWords: number; seed: number; scale: number; firstIndex?: number }): Promise<OwnedDispatch> {
    return this.dispatch('random_codes', undefined, a.data, a.scales, 'f32', Math.max(a.dataWords, a.scaleWords), {
      count: a.dataWords,
      cols: a.scaleWords,
      inOffset: a.firstIndex ?? 0,
      seed: a.seed,
      std: a.scale,
    });
  }

  /** Writes `count` values std * N(0, 1), a function of (seed, firstIndex + i) only. */
  random(a: RandomArgs): Promise<OwnedDispatch> {
    return this.dispatch('random_f32', undefined, a.dst, undefined, 'f32', a.count, {
      count: a.count,
      inOffset: a.firstIndex ?? 0,
      outOffset: a.outOffset,
      seed: a.seed,
      std: a.std,
    });
  }
}
