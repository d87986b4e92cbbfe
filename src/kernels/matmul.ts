import source from '../../shaders/matmul.wgsl?raw';
import f16Lib from '../../shaders/lib/f16-bits.wgsl?raw';
import type { GpuContext } from '../gpu/device.ts';
import { packUniform, BufferArena } from '../gpu/buffers.ts';
import { bindBuffers, getPipeline, grid2d, type ActType, type Dispatch } from '../gpu/pipeline.ts';
import { groupsPerRow, isQuantFormat, type GpuWeight, type WeightFormat } from '../formats/weight-format.ts';

export interface MatmulArgs {
  /** Activations [rows, K] (act_t), starting at element `xOffset`. */
  x: GPUBuffer;
  weight: GpuWeight;
  /** Output [rows, N] (act_t), starting at element `yOffset`; must not be `x`. */
  y: GPUBuffer;
  /** Tokens T (changeable later with `setRows`). */
  rows: number;
  xOffset?: number;
  yOffset?: number;
  /** y += W x instead of y = W x (e.g. a residual add). */
  accumulate?: boolean;
  /** Force a path (tests, benchmarks); default 'auto': GEMV for T <= MatmulKernel.GEMV_MAX_T, else GEMM. */
  path?: MatmulPath;
  /**
   * A dispatch bound before over the same x (buffer, xOffset, K), encoded before this one in the same pass with
   * nothing writing x in between and following the same token count: with int8 activations this GEMV reads the
   * activations that dispatch quantized and records no quantize_x of its own (one per distinct input, e.g. q, k and
   * v of one normed row). No effect with f32 activations.
   */
  sharesQuantizedX?: MatmulDispatch;
}

export type MatmulPath = 'auto' | 'gemv' | 'gemm';

/** Decode GEMV activations for quantized weights (MatmulOptions.activations). */
export type GemvActivations = 'auto' | 'f32' | 'int8';

export interface MatmulOptions {
  /**
   * GEMV shape: `rows` output features per workgroup, `lanes` threads per feature (rows * lanes <= 256, lanes a
   * power of two). Default 8 x 32 (coalesced 512-byte runs per row on GPUs). `lanes` 1 selects the `gemv_rows`
   * entry point: each thread owns 4 whole rows (so a workgroup covers 4 * `rows` features), no workgroup memory, no
   * barrier; the default on SwiftShader (64 x 1), whose barriers are expensive and whose loads are per-lane gathers
   * (the activations of a unit are loaded once for 4 rows), with no coalescing to win.
   */
  gemvRows?: number;
  gemvLanes?: number;
  /**
   * Decode GEMV activations for quantized weights: 'f32' (exact: weights dequantized, f32 products), 'int8' (x
   * quantized per block of 32 to int8 with an f32 scale, integer products: shaders/matmul.wgsl ACT = 1), or
   * 'auto' (default): int8 on CPU adapters (measured 3-4x faster there, bench/kernels.ts) and on GPUs with
   * dot4I8Packed (llama.cpp's choice on GPUs; not measured here), f32 elsewhere. f32 / f16 weights always take f32.
   */
  activations?: GemvActivations;
  /**
   * Prefill GEMM shape (same 64 x 64 tiles): 'wide' 256 threads of 4 x 4 outputs (GPUs), 'regs' 64 threads of 8 x 8
   * (4x the FMAs per workgroup-memory load and barrier: CPU adapters). Default by adapter.
   */
  gemm?: 'auto' | 'wide' | 'regs';
  /** int8 products: 'pack' (two rows per 32-bit multiply) or 'dot4' (dot4I8Packed); default: 'pack' on CPU adapters, else 'dot4' where available. */
  intDot?: 'pack' | 'dot4';
}

export interface MatmulDispatch extends Dispatch {
  /** Sets T for later encodes (and picks GEMV or GEMM). Throws if the buffers are too small for T tokens. */
  setRows(rows: number): void;
  /** The path the next encode takes. */
  readonly path: 'gemv' | 'gemm';
  /** Frees the uniform buffers (not x, y or the weight). */
  destroy(): void;
  /** With int8 activations: the quantized x this dispatch reads (for `sharesQuantizedX`). */
  readonly quantizedX?: { x: GPUBuffer; xOffset: number; K: number; xq: GPUBuffer };
}

const FORMAT_CODE: Record<WeightFormat, number> = { f32: 0, f16: 1, q4: 2, q8: 3, q4k: 4, q5k: 5, q6k: 6, q5: 7 };
const GEMM_TILE = 64;
/** shaders/matmul.wgsl `RPT`: rows per thread of the `gemv_rows` entry point. */
const GEMV_ROWS_PER_THREAD = 4;

interface Variant {
  gemv: GPUComputePipeline;
  gemm: GPUComputePipeline;
  /** The GEMV with int8 activations (ACT 1; quantized formats, when enabled). */
  gemvInt8?: GPUComputePipeline;
}

/** Bind group from (binding, buffer) pairs (the int8 entry points use bindings 0-6 selectively). */
function bindSparse(device: GPUDevice, pipeline: GPUComputePipeline, entries: Array<[number, GPUBuffer]>, label: string): GPUBindGroup {
  return device.createBindGroup({ label, layout: pipeline.getBindGroupLayout(0), entries: entries.map(([binding, buffer]) => ({ binding, resource: { buffer } })) });
}

/** Whether float rows start on 16-byte boundaries (the vec4 path). Quantized rows always do. */
function isAligned(format: WeightFormat, cols: number): boolean {
  return format === 'f32' ? cols % 4 === 0 : format === 'f16' ? cols % 8 === 0 : true;
}

/**
 * y[T, N] = x[T, K] · Wᵀ for every weight format (shaders/matmul.wgsl): a GEMV for decode (T <= GEMV_MAX_T, one
 * pass over the weights) and a tiled GEMM for prefill. Multi-part weights get one dispatch per part.
 */
export class MatmulKernel {
  /** Largest T that takes the GEMV path (it reads the weights ceil(T / 4) times). */
  static GEMV_MAX_T = 4;

  /** Every buffer this kernel created for its dispatches (freed by destroy()). */
  private readonly arena: BufferArena;

  private constructor(
    private readonly ctx: GpuContext,
    readonly act: ActType,
    private readonly variants: Map<string, Variant>,
    private readonly dummyScales: GPUBuffer,
    private readonly gemvRows: number,
    /** quantize_x (int8 activations), when enabled. */
    private readonly quantizeX?: GPUComputePipeline,
  ) {
    this.arena = new BufferArena(ctx.device);
  }

  /** Whether decode GEMVs of quantized weights take int8 activations. */
  get int8Activations(): boolean {
    return this.quantizeX !== undefined;
  }

  /**
   * Compiles a GEMV and a GEMM pipeline for each of `formats` (default: all four; f16 weights are read with
   * unpack2x16float, so they do not need shader-f16, only f16 activations do).
   */
  static async create(
    ctx: GpuContext,
    act: ActType = 'f32',
    formats: WeightFormat[] = ['f32', 'f16', 'q4', 'q8'],
    options: MatmulOptions = {},
  ): Promise<MatmulKernel> {
    // CPU adapters (SIMD lanes over a few cores): rows per thread, no barriers; chosen by ctx.cpuAdapter
    // (GPUAdapterInfo.isFallbackAdapter), never by the adapter's name.
    const cpu = ctx.cpuAdapter;
    const rows = options.gemvRows ?? (cpu ? 64 : 8);
    const lanes = options.gemvLanes ?? (cpu ? 1 : 32);
    if (rows * lanes > 256 || (lanes & (lanes - 1)) !== 0 || rows < 1) throw new Error(`matmul: bad GEMV shape ${rows} x ${lanes}`);
    const activations = options.activations ?? 'auto';
    const int8 = activations === 'int8' || (activations === 'auto' && (cpu || ctx.packedDot === true));
    const intDot = options.intDot ?? (cpu || !ctx.packedDot ? 'pack' : 'dot4');
    const variants = new Map<string, Variant>();
    const spec = (format: WeightFormat, entryPoint: string, extra: Record<string, number> = {}) =>
      getPipeline(ctx, { label: 'matmul', source, libraries: [f16Lib], act, entryPoint, constants: { FORMAT: FORMAT_CODE[format], ...extra } });
    await Promise.all(
      formats.map(async (format) => {
        const gemvInt8 = int8 && isQuantFormat(format)
          ? spec(format, lanes === 1 ? 'gemv_rows' : 'gemv', { ROWS: rows, ...(lanes === 1 ? {} : { LANES: lanes }), ACT: 1, DOT: intDot === 'dot4' ? 2 : 1 })
          : undefined;
        const gemmChoice = (options.gemm ?? 'auto') === 'auto' ? (cpu ? 'regs' : 'wide') : options.gemm!;
        const gemmEntry = gemmChoice === 'wide' ? 'gemm' : `gemm_${gemmChoice}`;
        const [gemv, gemm, int8Pipeline] = await Promise.all([lanes === 1 ? spec(format, 'gemv_rows', { ROWS: rows }) : spec(format, 'gemv', { ROWS: rows, LANES: lanes }), spec(format, gemmEntry), gemvInt8]);
        variants.set(format, { gemv, gemm, gemvInt8: int8Pipeline });
      }),
    );
    const quantizeX = int8 && formats.some(isQuantFormat) ? await spec('q4', 'quantize_x') : undefined;
    const dummyScales = ctx.device.createBuffer({ label: 'matmul/no-scales', size: 16, usage: GPUBufferUsage.STORAGE });
    // Features per GEMV workgroup: gemv_rows threads own GEMV_ROWS_PER_THREAD rows each.
    const kernel = new MatmulKernel(ctx, act, variants, dummyScales, lanes === 1 ? rows * GEMV_ROWS_PER_THREAD : rows, quantizeX);
    kernel.arena.own(dummyScales);
    return kernel;
  }

  bind(args: MatmulArgs): MatmulDispatch {
    const { device } = this.ctx;
    const { weight } = args;
    const K = weight.cols;
    const N = weight.rows;
    const xOffset = args.xOffset ?? 0;
    const yOffset = args.yOffset ?? 0;
    const label = `matmul[${weight.format} ${N}x${K}]`;
    if (args.x === args.y) throw new Error(`${label}: x and y must be different buffers`);
    if (!Number.isInteger(xOffset) || !Number.isInteger(yOffset) || xOffset < 0 || yOffset < 0) {
      throw new Error(`${label}: bad offsets xOffset=${xOffset} yOffset=${yOffset}`);
    }
    if (K <= 0 || N <= 0 || weight.parts.length === 0) throw new Error(`${label}: empty weight`);
    const variant = this.variants.get(weight.format);
    if (!variant) throw new Error(`${label}: format ${weight.format} was not compiled (MatmulKernel.create formats)`);
    let covered = 0;
    for (const part of weight.parts) {
      if (part.rowStart !== covered || part.rows <= 0) throw new Error(`${label}: parts must tile the rows in order`);
      if (isQuantFormat(weight.format) && !part.scales) throw new Error(`${label}: part without scales`);
      covered += part.rows;
    }
    if (covered !== N) throw new Error(`${label}: parts cover ${covered} rows, weight has ${N}`);

    const actBytes = this.act === 'f16' ? 2 : 4;
    const maxPerDim = device.limits.maxComputeWorkgroupsPerDimension;
    // int8 activations: the quantized x of up to GEMV_MAX_T tokens (codes 32 B, scale 4 B, half sums 8 B per block).
    const G = groupsPerRow(K);
    const blocks = MatmulKernel.GEMV_MAX_T * G;
    // Units (16 B): codes 2 per block, scales 1 word, half sums 2 words, pairs 16 words (shaders/matmul.wgsl).
    const xqLayout = { scales: 2 * blocks, sums: 2 * blocks + Math.ceil(blocks / 4), pairs: 2 * blocks + Math.ceil(blocks / 4) + Math.ceil(blocks / 2) };
    const shared = args.sharesQuantizedX?.quantizedX;
    if (shared && (shared.x !== args.x || shared.xOffset !== xOffset || shared.K !== K)) {
      throw new Error(`${label}: sharesQuantizedX quantized another x (offset ${shared.xOffset}, K ${shared.K})`);
    }
    const int8 = variant.gemvInt8 && this.quantizeX
      ? {
          pipeline: variant.gemvInt8,
          /** Whether this dispatch quantizes x itself (else it reads `shared`'s). */
          own: !shared,
          xq: shared?.xq ?? this.arena.storage(16 * (xqLayout.pairs + 4 * blocks), `${label}/xq`),
          params: this.arena.uniform(64, `${label}/quantize-x-params`),
          grid: [0, 1] as [number, number],
        }
      : undefined;
    const quantizeXBind = int8?.own ? bindSparse(device, this.quantizeX!, [[0, int8.params], [1, args.x], [6, int8.xq]], `${label}/quantize-x`) : undefined;
    const parts = weight.parts.map((part) => {
      const gemvParams = this.arena.uniform(64, `${label}/gemv-params`);
      const gemmParams = this.arena.uniform(64, `${label}/gemm-params`);
      const buffers = (params: GPUBuffer) => [params, args.x, part.data, part.scales ?? this.dummyScales, args.y];
      return {
        part,
        gemvParams,
        gemmParams,
        // The GEMVs reference xq (binding 5) for their int8 branch: the f32 ones get a dummy.
        gemv: bindBuffers(device, int8 ? int8.pipeline : variant.gemv, [...buffers(gemvParams), int8 ? int8.xq : this.dummyScales], label),
        gemm: bindBuffers(device, variant.gemm, buffers(gemmParams), label),
        gemvGrid: [0, 1] as [number, number],
        gemmGrid: [0, 1] as [number, number],
      };
    });

    let T = 0;
    let path: 'gemv' | 'gemm' = 'gemv';
    const setRows = (rows: number) => {
      if (!Number.isInteger(rows) || rows < 0) throw new Error(`${label}: bad row count ${rows}`);
      const needX = (xOffset + rows * K) * actBytes;
      const needY = (yOffset + rows * N) * actBytes;
      if (rows > 0 && needX > args.x.size) throw new Error(`${label}: x holds ${args.x.size} bytes, ${rows} tokens need ${needX}`);
      if (rows > 0 && needY > args.y.size) throw new Error(`${label}: y holds ${args.y.size} bytes, ${rows} tokens need ${needY}`);
      T = rows;
      const forced = args.path ?? 'auto';
      path = forced === 'auto' ? (T <= MatmulKernel.GEMV_MAX_T ? 'gemv' : 'gemm') : forced;
      const tb = T <= 1 ? 1 : 4;
      for (const p of parts) {
        const gemvBlocks = Math.ceil(p.part.rows / this.gemvRows);
        p.gemvGrid = grid2d(gemvBlocks * Math.ceil(T / tb), maxPerDim);
        const gemmBlocks = Math.ceil(p.part.rows / GEMM_TILE);
        p.gemmGrid = grid2d(gemmBlocks * Math.ceil(T / GEMM_TILE), maxPerDim);
        const common = (grid: [number, number], blocks: number): ArrayBuffer =>
          packUniform([
            ['u32', T],
            ['u32', K],
            ['u32', N],
            ['u32', p.part.rows],
            ['u32', p.part.rowStart],
            ['u32', xOffset],
            ['u32', yOffset],
            ['u32', args.accumulate ? 1 : 0],
            ['u32', groupsPerRow(K)],
            ['u32', grid[0]],
            ['u32', blocks],
            ['u32', tb],
            ['u32', isAligned(weight.format, K) ? 1 : 0],
            ['u32', xqLayout.scales],
            ['u32', xqLayout.sums],
            ['u32', xqLayout.pairs],
          ]);
        device.queue.writeBuffer(p.gemvParams, 0, common(p.gemvGrid, gemvBlocks));
        device.queue.writeBuffer(p.gemmParams, 0, common(p.gemmGrid, gemmBlocks));
      }
      if (int8?.own && T <= MatmulKernel.GEMV_MAX_T) {
        int8.grid = grid2d(Math.ceil((T * G) / 64), maxPerDim);
        device.queue.writeBuffer(int8.params, 0, packUniform([
          ['u32', T], ['u32', K], ['u32', N], ['u32', 0], ['u32', 0], ['u32', xOffset], ['u32', 0], ['u32', 0],
          ['u32', G], ['u32', int8.grid[0]], ['u32', 0], ['u32', 0], ['u32', 0], ['u32', xqLayout.scales], ['u32', xqLayout.sums], ['u32', xqLayout.pairs],
        ]));
      }
    };
    setRows(args.rows);

    return {
      label,
      setRows,
      get path() {
        return path;
      },
      quantizedX: int8 && { x: args.x, xOffset, K, xq: int8.xq },
      encode: (pass: GPUComputePassEncoder) => {
        if (T === 0) return;
        if (path === 'gemv' && int8?.own) {
          pass.setPipeline(this.quantizeX!);
          pass.setBindGroup(0, quantizeXBind!);
          pass.dispatchWorkgroups(int8.grid[0], int8.grid[1]);
        }
        for (const p of parts) {
          if (path === 'gemv') {
            pass.setPipeline(int8 ? int8.pipeline : variant.gemv);
            pass.setBindGroup(0, p.gemv);
            pass.dispatchWorkgroups(p.gemvGrid[0], p.gemvGrid[1]);
          } else {
            pass.setPipeline(variant.gemm);
            pass.setBindGroup(0, p.gemm);
            pass.dispatchWorkgroups(p.gemmGrid[0], p.gemmGrid[1]);
          }
        }
      },
      destroy: () => {
        for (const p of parts) {
          p.gemvParams.destroy();
          p.gemmParams.destroy();
        }
        int8?.params.destroy();
        if (int8?.own) int8.xq.destroy();
      },
    };
  }

  /** Frees the buffers this kernel created (its dispatches must not be encoded afterwards). */
  destroy(): void {
    this.arena.destroy();
  }
}
