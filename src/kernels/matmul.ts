import source from '../../shaders/matmul.wgsl?raw';
import quadSource from '../../shaders/matmul-quad.wgsl?raw';
import f16Lib from '../../shaders/lib/f16-bits.wgsl?raw';
import geluLib from '../../shaders/lib/gelu-tanh.wgsl?raw';
import type { GpuContext } from '../gpu/device.ts';
import { packUniform, BufferArena } from '../gpu/buffers.ts';
import { getPipeline, grid2d, type ActType, type Dispatch } from '../gpu/pipeline.ts';
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
   * A second matrix over the same x, computed in the same GEMV dispatch (decode): W2 x into `y` (row stride
   * W2.rows) from element `yOffset`. Needs `MatmulKernel.canShare(weight, also.weight)`. The GEMM path runs it as a
   * dispatch of its own.
   */
  also?: { weight: GpuWeight; y: GPUBuffer; yOffset?: number };
  /**
   * The GEMV's gated epilogue: writes gelu_tanh(W x) ⊙ m to `y` (from `yOffset`, row stride `rowStride`, default
   * the rows of W) instead of W x, m = W2 x of `also` (same rows as W; also.y is then not written), or `mul`
   * [T, rows] (element (t, n) at offset + t · rowStride + n). The GEMM path (prefill) does not apply it: it writes
   * W x to args.y (and W2 x to also.y), and the caller runs the gate itself when `fusedEpilogue` is false.
   */
  gelu?: { y: GPUBuffer; yOffset?: number; rowStride?: number; mul?: { buffer: GPUBuffer; offset?: number; rowStride: number } };
}

export type MatmulPath = 'auto' | 'gemv' | 'gemm';

/** The prefill GEMM's tilings (MatmulOptions.gemm). */
export type GemmTiling = 'wide' | 'regs' | 'quad';

/**
 * The GEMM tiling for this adapter: 'wide' on GPUs; on CPU adapters (ctx.cpuAdapter, never the adapter's name)
 * 'quad' where subgroups exist (SwiftShader: its SIMD lanes are quads of consecutive invocations), else 'regs'.
 */
export function defaultGemmTiling(ctx: GpuContext): GemmTiling {
  return !ctx.cpuAdapter ? 'wide' : ctx.subgroups ? 'quad' : 'regs';
}

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
   * quantized per block of 32 to int8 with an f32 scale by each GEMV workgroup, integer products: shaders/matmul.wgsl
   * gemv_int8 / gemv_rows_int8; no extra dispatch), or
   * 'auto' (default): int8 on CPU adapters (measured 3-4x faster there, bench/kernels.ts) and on GPUs with
   * dot4I8Packed (llama.cpp's choice on GPUs; not measured here), f32 elsewhere. f32 / f16 weights always take f32.
   */
  activations?: GemvActivations;
  /**
   * Prefill GEMM tiling (64 x 64 tiles): 'wide' 256 threads of 4 x 4 outputs (GPUs), 'regs' 64 threads of 8 x 8
   * (4x the FMAs per workgroup-memory load and barrier: CPU adapters without subgroups), 'quad' 32 threads of
   * 16 x 8 whose quads share their tokens through quadBroadcast, two tiles per workgroup (CPU adapters with
   * subgroups: shaders/matmul-quad.wgsl).
   * Default by adapter: defaultGemmTiling.
   */
  gemm?: 'auto' | GemmTiling;
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
  /** Whether the next encode applies the `gelu` epilogue (the GEMV path); else the caller gates W x itself. */
  readonly fusedEpilogue: boolean;
}

const FORMAT_CODE: Record<WeightFormat, number> = { f32: 0, f16: 1, q4: 2, q8: 3, q4k: 4, q5k: 5, q6k: 6, q5: 7 };
const GEMM_TILE = 64;
/** shaders/matmul-quad.wgsl `N_TILES`: feature tiles per gemm_quad workgroup. */
const QUAD_N_TILES = 2;
/** shaders/matmul.wgsl `XQ_SLOTS` (quantized x blocks staged per GEMV workgroup) and the size of one (struct XQ). */
const XQ_SLOTS = 96;
const XQ_BYTES = 112;
/** shaders/matmul.wgsl `RPT`: rows per thread of the `gemv_rows` entry point. */
const GEMV_ROWS_PER_THREAD = 4;

interface Variant {
  gemv: GPUComputePipeline;
  gemm: GPUComputePipeline;
  /** The GEMV with int8 activations (gemv_int8 / gemv_rows_int8; quantized formats, when enabled). */
  gemvInt8?: GPUComputePipeline;
  /** The GEMV of this kernel's activations that reads two matrices (PAIR 1: MatmulArgs.also). */
  gemvPair: GPUComputePipeline;
}

/** Bind group from (binding, buffer) pairs (the entry points use bindings 0-9 selectively). */
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
  /** The stand-in for unused read-only bindings (scales, the second matrix). */
  private readonly dummyScales: GPUBuffer;
  /** A dummy for the GEMVs' writable y2 (binding 9) when unused: not one of the read-only dummies (no aliasing). */
  private readonly dummyOut: GPUBuffer;
  /**
   * gemv_rows_int8's quantized x (binding 5): XQ_SLOTS blocks of XQ_BYTES per workgroup, shared by every dispatch
   * (they run one after another); replaced by a bigger one when a dispatch needs more (earlier binds keep theirs).
   */
  private scratch?: GPUBuffer;

  private constructor(
    private readonly ctx: GpuContext,
    readonly act: ActType,
    private readonly variants: Map<string, Variant>,
    private readonly gemvRows: number,
    /** Whether decode GEMVs of quantized weights take int8 activations. */
    readonly int8Activations: boolean,
    /** Whether those GEMVs are gemv_rows_int8, which stages x in a storage slice per workgroup (`scratch`). */
    private readonly int8Rows: boolean,
    /** Feature tiles per GEMM workgroup (gemm_quad: QUAD_N_TILES, the others 1). */
    private readonly gemmTilesPerGroup: number,
  ) {
    this.arena = new BufferArena(ctx.device);
    this.dummyScales = this.arena.placeholder('matmul/no-scales');
    this.dummyOut = this.arena.placeholder('matmul/no-y2');
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
    const gemmChoice = (options.gemm ?? 'auto') === 'auto' ? defaultGemmTiling(ctx) : options.gemm!;
    if (gemmChoice === 'quad' && !ctx.subgroups) throw new Error("matmul: the 'quad' GEMM tiling needs the subgroups feature");
    const variants = new Map<string, Variant>();
    const spec = (format: WeightFormat, entryPoint: string, extra: Record<string, number> = {}) =>
      getPipeline(ctx, { label: 'matmul', source, libraries: [f16Lib, geluLib], act, entryPoint, constants: { FORMAT: FORMAT_CODE[format], ...extra } });
    await Promise.all(
      formats.map(async (format) => {
        const gemvShape = { ROWS: rows, ...(lanes === 1 ? {} : { LANES: lanes }) };
        const gemvEntry = lanes === 1 ? 'gemv_rows' : 'gemv';
        const int8Constants = int8 && isQuantFormat(format) ? { ...gemvShape, DOT: intDot === 'dot4' ? 2 : 1 } : undefined;
        const int8Entry = `${gemvEntry}_int8`;
        const gemvInt8 = int8Constants && spec(format, int8Entry, int8Constants);
        // The two-matrix GEMV of the activations this format's GEMVs take.
        const gemvPair = spec(format, int8Constants ? int8Entry : gemvEntry, { ...(int8Constants ?? gemvShape), PAIR: 1 });
        const gemm = gemmChoice === 'quad'
          ? getPipeline(ctx, { label: 'matmul-quad', source: quadSource, libraries: [f16Lib, geluLib, source], act, enables: ['subgroups'], entryPoint: 'gemm_quad', constants: { FORMAT: FORMAT_CODE[format], WS_DEPTH: 64 } }) // two sub-blocks per stage
          : spec(format, gemmChoice === 'wide' ? 'gemm' : 'gemm_regs');
        const [gemv, gemmPipeline, int8Pipeline, pair] = await Promise.all([spec(format, gemvEntry, gemvShape), gemm, gemvInt8, gemvPair]);
        variants.set(format, { gemv, gemm: gemmPipeline, gemvInt8: int8Pipeline, gemvPair: pair });
      }),
    );
    // Features per GEMV workgroup: gemv_rows threads own GEMV_ROWS_PER_THREAD rows each.
    const int8Any = int8 && formats.some(isQuantFormat);
    return new MatmulKernel(ctx, act, variants, lanes === 1 ? rows * GEMV_ROWS_PER_THREAD : rows, int8Any, int8Any && lanes === 1, gemmChoice === 'quad' ? QUAD_N_TILES : 1);
  }

  /**
   * Whether `b` can be the `also` of a GEMV over `a`: the same format (compiled here), the same K, one part each
   * (a weight split over several buffers takes a dispatch per part).
   */
  canShare(a: GpuWeight, b: GpuWeight): boolean {
    return a.format === b.format && a.cols === b.cols && a.parts.length === 1 && b.parts.length === 1 && this.variants.has(a.format);
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

    // Two matrices and / or the gated epilogue in one GEMV dispatch (see MatmulArgs.also, .gelu).
    const { also, gelu } = args;
    const fused = also !== undefined || gelu !== undefined;
    const epilogue = !gelu ? 0 : also ? 1 : 2;
    if (fused) {
      if (args.accumulate) throw new Error(`${label}: accumulate cannot combine with also / gelu`);
      if (weight.parts.length !== 1) throw new Error(`${label}: also / gelu need a weight in one part`);
      if (also && !this.canShare(weight, also.weight)) {
        throw new Error(`${label}: also (${also.weight.format} ${also.weight.rows}x${also.weight.cols}) cannot share this GEMV: same format and K, one part each`);
      }
      if (gelu && (also ? gelu.mul !== undefined : gelu.mul === undefined)) throw new Error(`${label}: gelu needs exactly one of also and gelu.mul`);
      if (epilogue === 1 && also!.weight.rows !== N) throw new Error(`${label}: gelu over also needs equal rows (${N}, ${also!.weight.rows})`);
      if (epilogue === 1 && this.gemvRows % 2 !== 0) throw new Error(`${label}: gelu over also needs an even GEMV row count (${this.gemvRows})`);
      const written = [args.y, also?.y, gelu?.y, gelu?.mul?.buffer].filter((b): b is GPUBuffer => b !== undefined);
      if (written.includes(args.x)) throw new Error(`${label}: the outputs must not be x`);
      if (also && also.y === args.y) throw new Error(`${label}: also.y must not be y`);
      if (gelu?.mul && gelu.mul.buffer === gelu.y) throw new Error(`${label}: gelu.mul must not be gelu.y`);
    }
    // GEMM (and unfused GEMV) outputs: W x into y, then also's W2 x into also.y, each weight part its own dispatch.
    const outputs = [{ weight, y: args.y, yOffset, N }, ...(also ? [{ weight: also.weight, y: also.y, yOffset: also.yOffset ?? 0, N: also.weight.rows }] : [])];
    const dummies: Array<[number, GPUBuffer]> = [[7, this.dummyScales], [8, this.dummyScales]];
    const gemmParts = outputs.flatMap((o) =>
      o.weight.parts.map((part) => {
        const params = this.arena.uniform(96, `${label}/gemm-params`);
        const bind = bindSparse(device, variant.gemm, [[0, params], [1, args.x], [2, part.data], [3, part.scales ?? this.dummyScales], [4, o.y], ...dummies], label);
        return { part, out: o, params, bind, grid: [0, 1] as [number, number] };
      }),
    );
    const gemvPipeline = also ? variant.gemvPair : variant.gemvInt8 ?? variant.gemv;
    // Workgroups along the feature axis of each GEMV dispatch (per token block): one per weight part, or the fused
    // dispatch's `blocks1` of W (epilogue 1: half the usual features each, of both matrices) then W2's.
    const rows2 = also?.weight.rows ?? 0;
    const fusedBlocks1 = Math.ceil(N / (epilogue === 1 ? this.gemvRows / 2 : this.gemvRows));
    const gemvBlocks = fused ? [fusedBlocks1 + (epilogue === 1 ? 0 : Math.ceil(rows2 / this.gemvRows))] : weight.parts.map((part) => Math.ceil(part.rows / this.gemvRows));
    // gemv_rows_int8 stages x in a slice of the scratch per workgroup, for the most workgroups any of these GEMV
    // dispatches has at up to GEMV_MAX_T tokens (one token block).
    const stagesInScratch = variant.gemvInt8 !== undefined && this.int8Rows;
    const scratch: Array<[number, GPUBuffer]> = [];
    if (stagesInScratch) {
      const bytes = Math.max(...gemvBlocks) * XQ_SLOTS * XQ_BYTES;
      if (!this.scratch || this.scratch.size < bytes) this.scratch = this.arena.storage(bytes, 'matmul/xq-scratch');
      scratch.push([5, this.scratch]);
    }
    const gemvParts = fused
      ? [(() => {
          const part = weight.parts[0];
          const part2 = also?.weight.parts[0];
          const params = this.arena.uniform(96, `${label}/gemv-params`);
          const y2 = also && !gelu ? also.y : gelu?.mul?.buffer ?? this.dummyOut;
          const bind = bindSparse(device, gemvPipeline, [
            [0, params], [1, args.x], [2, part.data], [3, part.scales ?? this.dummyScales], [4, gelu ? gelu.y : args.y], ...scratch,
            [7, part2?.data ?? this.dummyScales], [8, part2?.scales ?? this.dummyScales], [9, y2],
          ], `${label}+`);
          return { part, blocks: gemvBlocks[0], params, bind, grid: [0, 1] as [number, number] };
        })()]
      : weight.parts.map((part, i) => {
          const params = this.arena.uniform(96, `${label}/gemv-params`);
          const bind = bindSparse(device, gemvPipeline, [[0, params], [1, args.x], [2, part.data], [3, part.scales ?? this.dummyScales], [4, args.y], ...scratch, ...dummies, [9, this.dummyOut]], label);
          return { part, blocks: gemvBlocks[i], params, bind, grid: [0, 1] as [number, number] };
        });

    let T = 0;
    let path: 'gemv' | 'gemm' = 'gemv';
    const setRows = (rows: number) => {
      if (!Number.isInteger(rows) || rows < 0) throw new Error(`${label}: bad row count ${rows}`);
      const checkFits = (name: string, buffer: GPUBuffer, elements: number) => {
        if (elements * actBytes > buffer.size) throw new Error(`${label}: ${name} holds ${buffer.size} bytes, ${rows} tokens need ${elements * actBytes}`);
      };
      if (rows > 0) {
        checkFits('x', args.x, xOffset + rows * K);
        checkFits('y', args.y, yOffset + rows * N);
        if (also) checkFits('also.y', also.y, (also.yOffset ?? 0) + rows * also.weight.rows);
        if (gelu) checkFits('gelu.y', gelu.y, (gelu.yOffset ?? 0) + (rows - 1) * (gelu.rowStride ?? N) + N);
        if (gelu?.mul) checkFits('gelu.mul', gelu.mul.buffer, (gelu.mul.offset ?? 0) + (rows - 1) * gelu.mul.rowStride + N);
      }
      T = rows;
      const forced = args.path ?? 'auto';
      path = forced === 'auto' ? (T <= MatmulKernel.GEMV_MAX_T ? 'gemv' : 'gemm') : forced;
      const tb = T <= 1 ? 1 : 4;
      const params = (o: {
        grid: [number, number]; blocks: number; rows: number; rowStart: number; N: number; yOffset: number;
        rows2?: number; y2Offset?: number; N2?: number; epilogue?: number; blocks1?: number;
      }): ArrayBuffer =>
        packUniform([
          ['u32', T], ['u32', K], ['u32', o.N], ['u32', o.rows], ['u32', o.rowStart], ['u32', xOffset], ['u32', o.yOffset],
          ['u32', args.accumulate ? 1 : 0], ['u32', groupsPerRow(K)], ['u32', o.grid[0]], ['u32', o.blocks], ['u32', tb],
          ['u32', isAligned(weight.format, K) ? 1 : 0],
          ['u32', o.rows2 ?? 0], ['u32', o.y2Offset ?? 0], ['u32', o.N2 ?? 0], ['u32', o.epilogue ?? 0], ['u32', o.blocks1 ?? o.blocks],
        ]);
      for (const g of gemmParts) {
        const blocks = Math.ceil(g.part.rows / GEMM_TILE);
        g.grid = grid2d(Math.ceil(blocks / this.gemmTilesPerGroup) * Math.ceil(T / GEMM_TILE), maxPerDim);
        device.queue.writeBuffer(g.params, 0, params({ grid: g.grid, blocks, rows: g.part.rows, rowStart: g.part.rowStart, N: g.out.N, yOffset: g.out.yOffset }));
      }
      const tokenBlocks = Math.ceil(T / tb);
      if (path === 'gemv' && tokenBlocks > 1 && stagesInScratch) throw new Error(`${label}: the int8 GEMV takes at most ${MatmulKernel.GEMV_MAX_T} tokens (got ${T})`);
      for (const g of gemvParts) {
        g.grid = grid2d(g.blocks * tokenBlocks, maxPerDim);
        if (!fused) {
          device.queue.writeBuffer(g.params, 0, params({ grid: g.grid, blocks: g.blocks, rows: g.part.rows, rowStart: g.part.rowStart, N, yOffset }));
          continue;
        }
        device.queue.writeBuffer(g.params, 0, params({
          grid: g.grid, blocks: g.blocks, rows: N, rowStart: 0, N: gelu ? (gelu.rowStride ?? N) : N, yOffset: gelu ? (gelu.yOffset ?? 0) : yOffset,
          rows2, y2Offset: gelu?.mul ? (gelu.mul.offset ?? 0) : (also?.yOffset ?? 0), N2: gelu?.mul ? gelu.mul.rowStride : rows2, epilogue, blocks1: fusedBlocks1,
        }));
      }
    };
    setRows(args.rows);

    return {
      label,
      setRows,
      get path() {
        return path;
      },
      get fusedEpilogue() {
        return gelu !== undefined && path === 'gemv';
      },
      encode: (pass: GPUComputePassEncoder) => {
        if (T === 0) return;
        const list = path === 'gemv' ? gemvParts : gemmParts;
        pass.setPipeline(path === 'gemv' ? gemvPipeline : variant.gemm);
        for (const p of list) {
          pass.setBindGroup(0, p.bind);
          pass.dispatchWorkgroups(p.grid[0], p.grid[1]);
        }
      },
      destroy: () => {
        for (const p of [...gemvParts, ...gemmParts]) this.arena.release(p.params);
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
