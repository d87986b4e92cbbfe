/**
 * The per-layer-embedding (PLE) table [vocab_size_per_layer_input, L·P] of the families that have one (Gemma 3n,
 * Gemma 4 E2B/E4B; family-neutral, shared by both). By default it stays OFF the GPU (DESIGN.md; Gemma 3n E2B's is
 * 262144 × 7680, 4 GB in bf16): its rows live in host memory, packed in one of the GPU weight
 * layouts (weight-format.ts: f32 in float mode, int4 in q4 mode — 1.1 GB for E2B —, or a GGUF's own blocks repacked
 * losslessly: Q8_0/Q4_0/Q5_0, or Q6_K as llama.cpp's Q4_K_M stores it), and each step uploads just the packed rows of
 * the tokens at hand; the gather kernel
 * (src/kernels/gather.ts, `bindUploaded`) dequantizes and scales them on the GPU. `toGpu` makes a GPU-resident copy
 * instead (the gather kernel then reads rows by id). Ids at or above the table's rows (multimodal hard tokens) read
 * row 0, as HF's multimodal model does (formats doc §2.3), on both paths.
 */
import type { GpuContext } from '../gpu/device.ts';
import { readF32, requireTensor, type Checkpoint, type PackedTensor } from '../io/checkpoint.ts';
import type { ConvertedTensor } from './converted-tensor.ts';
import { GemmaError } from '../errors.ts';
import type { StoredFormat } from './stored-format.ts';
import { packRowsForUpload, type CpuTable } from '../kernels/gather.ts';
import { dataBytes, scaleBytes, scaleHalvesPerRow, scalesAsWords, type GpuWeight, type QuantFormat, type WeightPart } from '../formats/weight-format.ts';
import { quantizeCpu } from './cpu-quant.ts';

/** Rows read (and packed) per chunk at load: bounds the transient host memory. */
const LOAD_CHUNK_BYTES = 32 * 1024 * 1024;

export type PleFormat = 'f32' | QuantFormat;

/** Scale units (16-bit) per row of a packed table (0 for f32). */
function scaleUnits(format: PleFormat, cols: number): number {
  return format === 'f32' ? 0 : scaleHalvesPerRow(format, cols);
}

export class PleTable {
  private constructor(
    /** Host rows in a GPU weight layout (empty for a placeholder). */
    readonly table: CpuTable,
    /** √P, applied by the gather kernel. */
    readonly scale: number,
    private readonly virtualBytes = 0,
  ) {}

  get format(): PleFormat {
    return this.table.format as PleFormat;
  }

  get rows(): number {
    return this.table.rows;
  }

  get cols(): number {
    return this.table.cols;
  }

  /**
   * Reads `rows` rows of tensor `name` into host memory as `format`. q4/q8 rows come pre-quantized from the container
   * when it stores them losslessly in that layout (GGUF), else they are quantized here (src/model/cpu-quant.ts,
   * bit-identical to the GPU quantizer).
   */
  static async load(ckpt: Checkpoint, name: string, rows: number, cols: number, format: PleFormat, scale: number, onRows?: (done: number) => void): Promise<PleTable> {
    const chunk = Math.max(1, Math.floor(LOAD_CHUNK_BYTES / (cols * 4)));
    const data = new Uint8Array(dataBytes(format, rows, cols));
    const G = scaleUnits(format, cols);
    const scales = format === 'f32' ? undefined : new Uint16Array(rows * G);
    for (let r = 0; r < rows; r += chunk) {
      const n = Math.min(chunk, rows - r);
      if (format === 'f32') {
        const v = await readF32(ckpt, name, { start: r, count: n });
        data.set(new Uint8Array(v.buffer, v.byteOffset, v.byteLength), r * cols * 4);
      } else {
        const packed = (await ckpt.readPackedAs?.(name, format, { start: r, count: n })) ?? (await quantizeRows(ckpt, name, format, r, n, cols));
        const rowBytes = dataBytes(format, 1, cols);
        data.set(new Uint8Array(packed.data.buffer, packed.data.byteOffset, n * rowBytes), r * rowBytes);
        scales!.set(packed.scales.subarray(0, n * G), r * G);
      }
      onRows?.(r + n);
    }
    return new PleTable({ format, rows, cols, data, scales }, scale);
  }

  /**
   * A model load's table (both families' weights.ts): host rows in the format the plan (or a GGUF) stores the table
   * in — f16 is kept as f32, the host has no f16 rows — read and handed to the offline cache's writer; or, for random
   * weights, a placeholder of the right size.
   */
  static async forModel(
    ckpt: Checkpoint,
    name: string,
    rows: number,
    cols: number,
    stored: StoredFormat,
    scale: number,
    opts: { random?: boolean; onConverted?: (t: ConvertedTensor) => Promise<void> },
  ): Promise<PleTable> {
    const format: PleFormat = stored === 'f16' ? 'f32' : stored;
    if (opts.random) return PleTable.placeholder(rows, cols, format);
    const info = requireTensor(ckpt, name);
    if (info.shape.length !== 2 || info.shape[1] !== cols || info.shape[0] < rows) {
      throw new GemmaError('bad-file', `${ckpt.name}: tensor ${name} has shape [${info.shape}], but the config implies [${rows}, ${cols}] (at least ${rows} rows). The checkpoint and its config.json do not match.`);
    }
    const table = await PleTable.load(ckpt, name, rows, cols, format, scale);
    await opts.onConverted?.({ kind: 'ple', name, shape: ckpt.tensor(name)!.shape, table: table.table });
    return table;
  }

  /** A table of the right size that holds nothing (memory accounting with synthetic weights); rows read as 0. */
  static placeholder(rows: number, cols: number, format: PleFormat): PleTable {
    const G = scaleUnits(format, cols);
    const empty: CpuTable = { format, rows: 1, cols, data: new Uint8Array(dataBytes(format, 1, cols)), scales: format === 'f32' ? undefined : new Uint16Array(G) };
    return new PleTable(empty, 0, dataBytes(format, rows, cols) + (format === 'f32' ? 0 : rows * G * 2));
  }

  /** The same table without its host rows (once a GPU-resident copy holds them). */
  withoutHostRows(): PleTable {
    const { format, cols } = this.table;
    return new PleTable({ format, rows: 0, cols, data: new Uint8Array(0), scales: format === 'f32' ? undefined : new Uint16Array(0) }, this.scale);
  }

  /** Host bytes held (for a placeholder: the bytes the real table would hold). */
  get bytes(): number {
    return this.virtualBytes || this.table.data.byteLength + (this.table.scales?.byteLength ?? 0);
  }

  /** The packed rows of `ids` (row 0 for ids ≥ rows), ready to write to the `bindUploaded` buffers. */
  pack(ids: ArrayLike<number>): { data: Uint32Array; scales?: Uint32Array } {
    return packRowsForUpload(this.table, ids, this.table.rows, 0);
  }

  /** A GPU-resident copy in the same layout, split by rows into parts that each fit one storage binding. */
  toGpu(ctx: GpuContext, label = 'ple-table'): GpuWeight {
    const { device } = ctx;
    const { rows, cols, data, scales } = this.table;
    const format = this.format;
    const limit = Math.min(device.limits.maxStorageBufferBindingSize, device.limits.maxBufferSize);
    const rowBytes = dataBytes(format, 1, cols);
    const G = scaleUnits(format, cols);
    let perPart = Math.max(2, Math.floor(limit / rowBytes));
    perPart -= perPart % 2; // parts start on even rows, so scale words (two f16 each) never straddle parts
    const parts: WeightPart[] = [];
    let bytes = 0;
    const upload = (src: ArrayBufferView, size: number, what: string) => {
      const b = device.createBuffer({ label: `${label}/${what}`, size: Math.max(16, Math.ceil(size / 16) * 16), usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST });
      device.queue.writeBuffer(b, 0, src.buffer, src.byteOffset, src.byteLength);
      bytes += b.size;
      return b;
    };
    for (let rowStart = 0; rowStart < rows; rowStart += perPart) {
      const n = Math.min(perPart, rows - rowStart);
      const partData = upload(data.subarray(rowStart * rowBytes, (rowStart + n) * rowBytes), dataBytes(format, n, cols), `part@${rowStart}/data`);
      const partScales = scales ? upload(scalesAsWords(scales.subarray(rowStart * G, (rowStart + n) * G)), scaleBytes(format, n, cols), `part@${rowStart}/scales`) : undefined;
      parts.push({ rowStart, rows: n, data: partData, scales: partScales });
    }
    return { format, rows, cols, parts, bytes };
  }
}

/** Rows of a float-stored table quantized on the CPU (q4 / q8 only: the formats the plans put this table in). */
async function quantizeRows(ckpt: Checkpoint, name: string, format: QuantFormat, start: number, count: number, cols: number): Promise<PackedTensor> {
  if (format !== 'q4' && format !== 'q8') throw new Error(`${name}: no CPU quantizer into ${format} (only stored ${format} rows can be read)`);
  return { ...quantizeCpu(format, await readF32(ckpt, name, { start, count }), count, cols), format, rows: count, cols };
}
