import source from '../../shaders/gather.wgsl?raw';
import f16Lib from '../../shaders/lib/f16-bits.wgsl?raw';
import type { GpuContext } from '../gpu/device.ts';
import { BufferArena } from '../gpu/buffers.ts';
import { getPipeline, grid2d, makeDispatch, type ActType, type Dispatch } from '../gpu/pipeline.ts';
import { dataBytes, isQuantFormat, scaleBytes, scaleHalvesPerRow, type GpuWeight, type QuantFormat, type WeightFormat } from '../formats/weight-format.ts';

const WG = 256;
const FORMAT_CODE: Record<WeightFormat, number> = { f32: 0, f16: 1, q4: 2, q8: 3, q4k: 4, q5k: 5, q6k: 6, q5: 7 };
const OOV_CODE = { substitute: 0, zero: 1, skip: 2 } as const;

/**
 * What happens to a token whose id is >= `limit` (or >= the table's rows):
 * - 'substitute': read row `substitute` instead (HF's PLE lookup: ids >= 262144 use row 0, <pad>).
 * - 'zero': write a zero row.
 * - 'skip': leave the output row untouched (token embedding: the multimodal embedders write those rows).
 */
export type OovMode = keyof typeof OOV_CODE;

/** Output view: row t at `offset + t * rowStride` (elements of act_t; rowStride defaults to cols). */
export interface GatherOutput {
  buffer: GPUBuffer;
  offset?: number;
  rowStride?: number;
}

export interface GatherArgs {
  /** The table on the GPU, any format, possibly split into parts by rows. */
  table: GpuWeight;
  /** u32 token ids; token t's id at ids[idsOffset + t]. May be the GPU sampler's output buffer. */
  ids: GPUBuffer;
  idsOffset?: number;
  y: GPUBuffer | GatherOutput;
  tokens: number;
  /** Multiplies every value (sqrt(D) for the token embedding, 16 for PLE rows). Default 1. */
  scale?: number;
  /** Ids >= limit are out of vocabulary (default: the table's rows; always capped at them). */
  limit?: number;
  /** Default 'zero'. */
  oov?: OovMode;
  /** Row read for out-of-vocabulary ids in 'substitute' mode (default 0). */
  substitute?: number;
}

export interface UploadedRowsArgs {
  format: WeightFormat;
  cols: number;
  /** Row t (t < tokens) of the upload, in the packed layout of `format` with rows = capacity (see packRowsForUpload). */
  data: GPUBuffer;
  /** Quantized formats: the scales words of the uploaded rows (q4/q8: f16 pairs, row t's at scale index t * ceil(cols / 32)). */
  scales?: GPUBuffer;
  y: GPUBuffer | GatherOutput;
  tokens: number;
  scale?: number;
}

export type GatherDispatch = Dispatch & {
  /** Changes the token count for later encodes. */
  setTokens(tokens: number): void;
};

/** A table held in CPU memory, in the same packed layout the GPU formats use (weight-format.ts). */
export interface CpuTable {
  format: WeightFormat;
  rows: number;
  cols: number;
  /** Packed data bytes: rows * cols f32 / f16, rows * G blocks of 16 (q4) / 32 (q8) bytes, or K-quant data rows. */
  data: Uint8Array;
  /** Quantized formats: the scales as 16-bit units (`scaleHalvesPerRow` per row: q4/q8 f16 bits, K-quant headers). */
  scales?: Uint16Array;
}

function rowDataBytes(format: WeightFormat, cols: number): number {
  return format === 'f16' ? cols * 2 : dataBytes(format, 1, cols);
}

/** Byte sizes of the upload buffers for up to `maxTokens` rows (allocate once with these). */
export function uploadedRowsBytes(format: WeightFormat, cols: number, maxTokens: number): { data: number; scales: number } {
  return { data: dataBytes(format, maxTokens, cols), scales: scaleBytes(format, maxTokens, cols) };
}

/**
 * Builds the upload for `bindUploaded`: the rows of `ids` copied out of a CPU table (ids >= limit, or >= the
 * table's rows, take row `substitute`, HF's PLE rule). Write `data` and `scales` to the upload buffers.
 */
export function packRowsForUpload(table: CpuTable, ids: ArrayLike<number>, limit = table.rows, substitute = 0): { data: Uint32Array; scales?: Uint32Array } {
  const T = ids.length;
  const rb = rowDataBytes(table.format, table.cols);
  const data = new Uint32Array(Math.ceil(dataBytes(table.format, T, table.cols) / 4));
  const bytes = new Uint8Array(data.buffer);
  const quant = isQuantFormat(table.format);
  const G = quant ? scaleHalvesPerRow(table.format as QuantFormat, table.cols) : 0;
  const scales = quant ? new Uint32Array(Math.ceil((T * G) / 2)) : undefined;
  const halves = scales ? new Uint16Array(scales.buffer) : undefined;
  const cap = Math.min(limit, table.rows);
  for (let t = 0; t < T; t++) {
    const r = ids[t] < cap ? ids[t] : substitute;
    if (!(r >= 0 && r < table.rows)) throw new Error(`packRowsForUpload: row ${r} outside the table`);
    bytes.set(table.data.subarray(r * rb, (r + 1) * rb), t * rb);
    if (halves) halves.set(table.scales!.subarray(r * G, (r + 1) * G), t * G);
  }
  return { data, scales };
}

/** Row gather + dequantize + scale (see shaders/gather.wgsl). Output act_t (f32 unless created with 'f16'). */
export class GatherKernel {
  /** Every buffer this kernel created for its dispatches (freed by destroy()). */
  private readonly arena: BufferArena;
  /** The stand-in for unused bindings. */
  private readonly dummy: GPUBuffer;

  private constructor(
    private readonly ctx: GpuContext,
    private readonly pipelines: Record<WeightFormat, GPUComputePipeline>,
    private readonly elemBytes: number,
  ) {
    this.arena = new BufferArena(ctx.device);
    this.dummy = this.arena.placeholder('gather/unused');
  }

  static async create(ctx: GpuContext, act: ActType = 'f32'): Promise<GatherKernel> {
    const formats = Object.keys(FORMAT_CODE) as WeightFormat[];
    const compiled = await Promise.all(formats.map((f) => getPipeline(ctx, { label: 'gather', source, libraries: [f16Lib], act, constants: { FORMAT: FORMAT_CODE[f], WG } })));
    const pipelines = Object.fromEntries(formats.map((f, i) => [f, compiled[i]])) as Record<WeightFormat, GPUComputePipeline>;
    return new GatherKernel(ctx, pipelines, act === 'f16' ? 2 : 4);
  }

  /** Gathers rows of a GPU-resident table by the ids in a GPU buffer. */
  bind(args: GatherArgs): GatherDispatch {
    const { table } = args;
    const limit = Math.min(args.limit ?? table.rows, table.rows);
    const oov = args.oov ?? 'zero';
    const substitute = args.substitute ?? 0;
    if (OOV_CODE[oov] === undefined) throw new Error(`gather: unknown oov mode ${oov}`);
    if (oov === 'substitute' && !(substitute >= 0 && substitute < table.rows)) throw new Error(`gather: substitute row ${substitute} outside the table`);
    const parts = table.parts.map((part, i) => ({
      data: part.data,
      scales: part.scales,
      fields: { rowStart: part.rowStart, partRows: part.rows, writesZero: i === 0 ? 1 : 0 },
    }));
    return this.build(table.format, table.cols, args.y, args.tokens, args.scale ?? 1, parts, {
      ids: args.ids, idsOffset: args.idsOffset ?? 0, limit, oov: OOV_CODE[oov], substitute,
    });
  }

  /** Dequantizes rows uploaded from the CPU for just the tokens at hand: output row t = upload row t. */
  bindUploaded(args: UploadedRowsArgs): GatherDispatch {
    const capacity = Math.floor(args.data.size / rowDataBytes(args.format, args.cols));
    return this.build(args.format, args.cols, args.y, args.tokens, args.scale ?? 1, [
      { data: args.data, scales: args.scales, fields: { rowStart: 0, partRows: capacity, writesZero: 1 } },
    ]);
  }

  private build(
    format: WeightFormat,
    cols: number,
    yArg: GPUBuffer | GatherOutput,
    tokens: number,
    scale: number,
    parts: Array<{ data: GPUBuffer; scales?: GPUBuffer; fields: { rowStart: number; partRows: number; writesZero: number } }>,
    byIds?: { ids: GPUBuffer; idsOffset: number; limit: number; oov: number; substitute: number },
  ): GatherDispatch {
    const { device } = this.ctx;
    const pipeline = this.pipelines[format];
    if (!pipeline) throw new Error(`gather: unknown format ${format}`);
    if (!(cols > 0)) throw new Error(`gather: bad cols ${cols}`);
    const quant = isQuantFormat(format);
    const y: GatherOutput = 'buffer' in yArg ? yArg : { buffer: yArg };
    const yOff = y.offset ?? 0;
    const yStride = y.rowStride ?? cols;
    if (yStride < cols) throw new Error(`gather: y.rowStride ${yStride} < cols ${cols}`);
    const maxPerDim = device.limits.maxComputeWorkgroupsPerDimension;
    let grid: [number, number] = [0, 1];
    const data = new ArrayBuffer(64);
    const u = new Uint32Array(data);
    const f = new Float32Array(data);
    const bound = parts.map((part) => {
      if (quant && !part.scales) throw new Error(`gather: ${format} needs scales`);
      if (part.data.size < dataBytes(format, part.fields.partRows, cols)) throw new Error('gather: data buffer smaller than its rows');
      const params = this.arena.uniform(64, 'gather/params');
      const buffers = [params, byIds?.ids ?? this.dummy, part.data, quant ? part.scales! : this.dummy, y.buffer];
      const bindGroup = device.createBindGroup({
        label: `gather/${format}`,
        layout: pipeline.getBindGroupLayout(0),
        entries: buffers.map((buffer, binding) => ({ binding, resource: { buffer } })),
      });
      return { params, fields: part.fields, dispatch: makeDispatch(`gather/${format}`, pipeline, bindGroup, () => grid) };
    });
    const setTokens = (n: number) => {
      if (n > 0 && (yOff + (n - 1) * yStride + cols) * this.elemBytes > y.buffer.size) throw new Error(`gather: y too small for ${n} tokens`);
      if (byIds && (byIds.idsOffset + n) * 4 > byIds.ids.size) throw new Error(`gather: ids buffer holds fewer than ${n} ids`);
      if (!byIds && n > parts[0].fields.partRows) throw new Error(`gather: only ${parts[0].fields.partRows} rows were uploaded`);
      grid = grid2d(Math.ceil((n * cols) / WG), maxPerDim);
      for (const b of bound) {
        u.set([n, cols, b.fields.rowStart, b.fields.partRows, byIds?.limit ?? 0, byIds?.oov ?? 0, byIds?.substitute ?? 0, b.fields.writesZero,
          byIds ? 0 : 1, byIds?.idsOffset ?? 0, yOff, yStride]);
        f[12] = scale;
        u[13] = grid[0];
        device.queue.writeBuffer(b.params, 0, data);
      }
    };
    setTokens(tokens);
    return {
      label: `gather/${format}`,
      encode(pass) {
        for (const b of bound) b.dispatch.encode(pass);
      },
      setTokens,
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
