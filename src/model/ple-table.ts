/**
 * The per-layer-embedding (PLE) table [vocab_size_per_layer_input, L·P] of the families that have one (Gemma 3n,
 * Gemma 4 E2B/E4B; family-neutral, shared by both). By default it stays OFF the GPU (DESIGN.md; Gemma 3n E2B's is
 * 262144 × 7680, 4 GB in bf16): its rows live in host memory, packed in one of the GPU weight layouts (weight-format.ts), and each step uploads just the packed rows of the tokens at hand; the gather kernel
 * (src/kernels/gather.ts, `bindUploaded`) dequantizes and scales them on the GPU. `toGpu` makes a GPU-resident copy
 * instead (the gather kernel then reads rows by id). Ids at or above the table's rows (multimodal hard tokens) read
 * row 0, as HF's multimodal model does (formats doc §2.3), on both paths.
 *
 * Host layout (`pleHostFormat`): int4 in q4 mode (1.13 GB for E2B, 1.32 GB for E4B), int8 in q8 mode, f16 in float
 * mode (see below); a GGUF's / cache entry's own blocks repacked losslessly wherever a GPU format holds its type
 * (src/formats/stored-dtype.ts: Q4_0, Q8_0, Q5_0, and the Q6_K table of llama.cpp's Q4_K_M files as q6k); any other
 * block type (Q4_1, Q5_1) requantized to int4 (int8 in q8 mode). Never f32: E4B's f32 table would be 9.4 GB.
 *
 * The rows are held in **blocks** of at most 64 MiB (`BLOCK_BYTES`), never one array: Chrome caps a typed array near
 * 2 GiB (Safari lower), and one huge allocation may fail where many small ones do not. The table is read and
 * converted block by block, in row chunks that bound the transient memory to tens of MB.
 *
 * Float mode keeps f16, not f32: the published checkpoints store the table in bf16, whose 8-bit mantissa fits f16's
 * 11 bits, so every value in f16's normal range (|x| ≥ 6.1e-5) is kept exactly; smaller ones round to a multiple of
 * 2^-24 (an absolute error under 3e-8, against entries of order 1e-2), and anything beyond ±65504 (none in a trained
 * table) fails the load rather than become infinity. On gemma3n-tiny-a (bf16) every table value converts exactly and
 * the float64 reference's logits are bit-identical (test/model/ple-table.test.ts; the float-mode golden tolerance is
 * 1e-3); E2B's table takes 4.03 GB instead of 8.05 GB. (q8 would halve that again, but is not lossless for bf16:
 * int8 with a shared scale per 32 values keeps ~7 bits of each.)
 */
import type { GpuContext } from '../gpu/device.ts';
import { GemmaError } from '../errors.ts';
import { isFloatDtype, readF32, requireTensor, type Checkpoint, type RowRange, type TensorBytes } from '../io/checkpoint.ts';
import { f32ToF16Bits } from '../io/half.ts';
import { uploadedRowsBytes, type CpuTable } from '../kernels/gather.ts';
import { dataBytes, scaleBytes, scaleHalvesPerRow, scalesAsWords, type GpuWeight, type PackedWeight, type QuantFormat, type WeightPart } from '../formats/weight-format.ts';
import { losslessFormatOf } from '../formats/stored-dtype.ts';
import type { ConvertedTensor } from './converted-tensor.ts';
import type { WeightMode } from './family.ts';
import { quantizeCpu } from './cpu-quant.ts';

/** Largest block of host rows (data bytes); also bounds every transient array while loading. */
export const BLOCK_BYTES = 64 * 1024 * 1024;
/** Rows read (and converted) per chunk at load, in f32 bytes: bounds the transient host memory. */
const LOAD_CHUNK_BYTES = 32 * 1024 * 1024;

export type PleFormat = 'f16' | QuantFormat;

/** The table's rows, as blocks of `rowsPerBlock` rows (the last one shorter), all in one format. */
export interface BlockedTable {
  format: PleFormat;
  rows: number;
  cols: number;
  rowsPerBlock: number;
  blocks: CpuTable[];
}

/**
 * Host format of the table stored as `dtype` (a safetensors dtype or a GGUF type name) in `mode`: see the header.
 * Undefined dtype (random weights) counts as float.
 */
export function pleHostFormat(dtype: string | undefined, mode: WeightMode): PleFormat {
  const lossless = dtype === undefined ? undefined : losslessFormatOf(dtype);
  if (lossless) return lossless;
  if (dtype !== undefined && !isFloatDtype(dtype)) return mode === 'q8' ? 'q8' : 'q4';
  return mode === 'float' ? 'f16' : mode;
}

/** 16-bit scale units per row (0 for f16): one f16 per group for q4/q8, K-quants' and q5's header units. */
function scaleUnits(format: PleFormat, cols: number): number {
  return format === 'f16' ? 0 : scaleHalvesPerRow(format, cols);
}

/** Bytes from one row to the next in the packed layout (f16: the elements themselves; quantized: the row's blocks). */
function rowStride(format: PleFormat, cols: number): number {
  return format === 'f16' ? cols * 2 : dataBytes(format, 1, cols);
}

/** Rows per block for `format` × `cols` (even, so a block's scales start on a whole u32 word). */
export function rowsPerBlock(format: PleFormat, cols: number, blockBytes = BLOCK_BYTES): number {
  const r = Math.max(2, Math.floor(blockBytes / rowStride(format, cols)));
  return r - (r % 2);
}

/** Host bytes of a table (data + scales). */
export function pleHostBytes(format: PleFormat, rows: number, cols: number): number {
  return dataBytes(format, rows, cols) + rows * scaleUnits(format, cols) * 2;
}

export class PleTable {
  private constructor(
    /** Host rows in a GPU weight layout, in blocks (empty for a placeholder). */
    readonly table: BlockedTable,
    /** √P, applied by the gather kernel. */
    readonly scale: number,
    private readonly virtualBytes = 0,
  ) {}

  get format(): PleFormat {
    return this.table.format;
  }

  get rows(): number {
    return this.table.rows;
  }

  get cols(): number {
    return this.table.cols;
  }

  /**
   * Reads `rows` rows of tensor `name` into host memory as `format`, block by block. Quantized rows come pre-quantized
   * from the container when it stores them losslessly in that layout (GGUF Q4_0/Q8_0/Q5_0/K-quants, a cache entry),
   * else (q4/q8 only) they are read as floats (dequantized by the container) and quantized here (cpu-quant.ts,
   * bit-identical to the GPU quantizer);
   * f16 rows are converted exactly (see the header).
   */
  static async load(ckpt: Checkpoint, name: string, rows: number, cols: number, format: PleFormat, scale: number, options: { onRows?: (done: number) => void; blockBytes?: number } = {}): Promise<PleTable> {
    const perBlock = rowsPerBlock(format, cols, options.blockBytes);
    let chunk = Math.max(2, Math.floor(LOAD_CHUNK_BYTES / (cols * 4)));
    chunk -= chunk % 2;
    const G = scaleUnits(format, cols);
    const rowBytes = rowStride(format, cols);
    const blocks: CpuTable[] = [];
    for (let b0 = 0; b0 < rows; b0 += perBlock) {
      const n = Math.min(perBlock, rows - b0);
      const data = new Uint8Array(dataBytes(format, n, cols));
      const scales = format === 'f16' ? undefined : new Uint16Array(n * G);
      for (let r = 0; r < n; r += chunk) {
        const k = Math.min(chunk, n - r);
        const range = { start: b0 + r, count: k };
        if (format === 'f16') {
          data.set(new Uint8Array(f16Rows(await ckpt.read(name, range), name).buffer), r * rowBytes);
        } else {
          const packed = (await ckpt.readPackedAs?.(name, format, range)) ?? (await quantizeRows(ckpt, name, format, range, cols));
          data.set(new Uint8Array(packed.data.buffer, packed.data.byteOffset, k * rowBytes), r * rowBytes);
          scales!.set(packed.scales.subarray(0, k * G), r * G);
        }
        options.onRows?.(b0 + r + k);
      }
      blocks.push({ format, rows: n, cols, data, scales });
    }
    return new PleTable({ format, rows, cols, rowsPerBlock: perBlock, blocks }, scale);
  }

  /**
   * A model load's table (every family's weights.ts): host rows in `pleHostFormat`'s format for the stored dtype and
   * `mode`, read block by block and handed to the offline cache's writer; or, for random weights, a placeholder of
   * the right size.
   */
  static async forModel(
    ckpt: Checkpoint,
    name: string,
    rows: number,
    cols: number,
    mode: WeightMode,
    scale: number,
    opts: { random?: boolean; onConverted?: (t: ConvertedTensor) => Promise<void> },
  ): Promise<PleTable> {
    const format = pleHostFormat(ckpt.tensor(name)?.dtype, mode);
    if (opts.random) return PleTable.placeholder(rows, cols, format);
    const info = requireTensor(ckpt, name);
    if (info.shape.length !== 2 || info.shape[1] !== cols || info.shape[0] < rows) {
      throw new GemmaError('bad-file', `${ckpt.name}: tensor ${name} has shape [${info.shape}], but the config implies [${rows}, ${cols}] (at least ${rows} rows). The checkpoint and its config.json do not match.`);
    }
    const table = await PleTable.load(ckpt, name, rows, cols, format, scale);
    await opts.onConverted?.({ kind: 'ple', name, shape: info.shape, blocks: table.table.blocks });
    return table;
  }

  /** A table of the right size that holds nothing (memory accounting with synthetic weights); rows read as 0. */
  static placeholder(rows: number, cols: number, format: PleFormat): PleTable {
    const G = scaleUnits(format, cols);
    const empty: CpuTable = { format, rows: 1, cols, data: new Uint8Array(dataBytes(format, 1, cols)), scales: format === 'f16' ? undefined : new Uint16Array(G) };
    return new PleTable({ format, rows: 1, cols, rowsPerBlock: 2, blocks: [empty] }, 0, pleHostBytes(format, rows, cols));
  }

  /** The same table without its host rows (once a GPU-resident copy holds them). */
  withoutHostRows(): PleTable {
    const { format, cols, rowsPerBlock: perBlock } = this.table;
    return new PleTable({ format, rows: 0, cols, rowsPerBlock: perBlock, blocks: [] }, this.scale);
  }

  /** Host bytes held (for a placeholder: the bytes the real table would hold). */
  get bytes(): number {
    return this.virtualBytes || this.table.blocks.reduce((s, b) => s + b.data.byteLength + (b.scales?.byteLength ?? 0), 0);
  }

  /** The packed rows of `ids` (row 0 for ids ≥ rows), ready to write to the `bindUploaded` buffers. */
  pack(ids: ArrayLike<number>): { data: Uint32Array; scales?: Uint32Array } {
    const { format, cols, rows, rowsPerBlock: perBlock, blocks } = this.table;
    const T = ids.length;
    const rb = rowStride(format, cols);
    const sizes = uploadedRowsBytes(format, cols, T);
    const data = new Uint32Array(Math.ceil(sizes.data / 4));
    const bytes = new Uint8Array(data.buffer);
    const G = scaleUnits(format, cols);
    const scales = format === 'f16' ? undefined : new Uint32Array(Math.ceil((T * G) / 2));
    const halves = scales && new Uint16Array(scales.buffer);
    for (let t = 0; t < T; t++) {
      const r = ids[t] < rows ? ids[t] : 0;
      if (!(r >= 0 && r < rows)) throw new GemmaError('internal', `PleTable.pack: row ${r} outside the table of ${rows} rows`);
      const block = blocks[Math.floor(r / perBlock)];
      const local = r % perBlock;
      bytes.set(block.data.subarray(local * rb, (local + 1) * rb), t * rb);
      if (halves) halves.set(block.scales!.subarray(local * G, (local + 1) * G), t * G);
    }
    return { data, scales };
  }

  /** A GPU-resident copy in the same layout, split by rows into parts that each fit one storage binding. */
  toGpu(ctx: GpuContext, label = 'ple-table'): GpuWeight {
    const { device } = ctx;
    const { format, rows, cols, rowsPerBlock: perBlock, blocks } = this.table;
    const limit = Math.min(device.limits.maxStorageBufferBindingSize, device.limits.maxBufferSize) - 2 ** 20;
    const rowBytes = rowStride(format, cols);
    const G = scaleUnits(format, cols);
    // A part is a whole number of blocks (parts start on even rows, so scale words never straddle parts).
    const blocksPerPart = Math.max(1, Math.floor(limit / (perBlock * rowBytes)));
    const parts: WeightPart[] = [];
    let bytes = 0;
    const create = (size: number, what: string) => {
      const b = device.createBuffer({ label: `${label}/${what}`, size: Math.max(16, Math.ceil(size / 16) * 16), usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST | GPUBufferUsage.COPY_SRC });
      bytes += b.size;
      return b;
    };
    for (let first = 0; first < blocks.length; first += blocksPerPart) {
      const group = blocks.slice(first, first + blocksPerPart);
      const rowStart = first * perBlock;
      const n = group.reduce((s, b) => s + b.rows, 0);
      const data = create(dataBytes(format, n, cols), `part@${rowStart}/data`);
      const partScales = format === 'f16' ? undefined : create(scaleBytes(format, n, cols), `part@${rowStart}/scales`);
      let at = 0;
      for (const b of group) {
        device.queue.writeBuffer(data, dataBytes(format, at, cols), b.data);
        if (partScales) device.queue.writeBuffer(partScales, at * G * 2, scalesAsWords(b.scales!));
        at += b.rows;
      }
      parts.push({ rowStart, rows: n, data, scales: partScales });
    }
    return { format, rows, cols, parts, bytes };
  }
}

// f32 bit pattern → f16 bit pattern, for the exact conversion of bf16 rows: bf16 is the top half of an f32, so one
// 65,536-entry table converts every bf16 value (f32ToF16Bits rounds to nearest even).
let bf16ToF16: Uint16Array | undefined;
function bf16ToF16Table(): Uint16Array {
  if (!bf16ToF16) {
    bf16ToF16 = new Uint16Array(65536);
    const f = new Float32Array(1);
    const u = new Uint32Array(f.buffer);
    for (let b = 0; b < 65536; b++) {
      u[0] = b << 16;
      bf16ToF16[b] = f32ToF16Bits(f[0]);
    }
  }
  return bf16ToF16;
}

/** Float rows as f16 bit patterns; values beyond f16's range fail (they would become infinity). */
function f16Rows(t: TensorBytes, name: string): Uint16Array {
  const bytes = t.bytes.byteOffset % 4 === 0 ? t.bytes : t.bytes.slice();
  if (t.dtype === 'F16') return new Uint16Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 2).slice();
  let out: Uint16Array;
  if (t.dtype === 'BF16') {
    const table = bf16ToF16Table();
    const src = new Uint16Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 2);
    out = new Uint16Array(src.length);
    for (let i = 0; i < src.length; i++) out[i] = table[src[i]];
  } else {
    const src = new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
    out = new Uint16Array(src.length);
    for (let i = 0; i < src.length; i++) out[i] = f32ToF16Bits(src[i]);
  }
  for (let i = 0; i < out.length; i++) {
    // 0x7c00: ±infinity in f16 (a NaN stays NaN, as in the checkpoint).
    if ((out[i] & 0x7fff) === 0x7c00) {
      throw new GemmaError('bad-file', `${name} holds a value beyond ±65504, which the float-mode per-layer-embedding table (f16 in host memory) cannot keep. Load with weights: 'q4'.`);
    }
  }
  return out;
}

/** Float rows quantized on the CPU: q4 / q8 only (the formats a plan or a requantized GGUF puts this table in). */
async function quantizeRows(ckpt: Checkpoint, name: string, format: QuantFormat, rows: RowRange, cols: number): Promise<PackedWeight> {
  if (format !== 'q4' && format !== 'q8') throw new GemmaError('internal', `${ckpt.name}: ${name} rows ${rows.start}+${rows.count} are not stored as ${format}, and ${format} has no CPU quantizer`);
  return quantizeCpu(format, await readF32(ckpt, name, rows), rows.count, cols);
}
