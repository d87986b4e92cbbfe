/**
 * A checkpoint as the model loader sees it, whatever the container: an HF-style config plus named tensors
 * (HF names, PyTorch shapes) that can be read as float bytes, and optionally as already-quantized blocks in our
 * GPU layout. Safetensors (src/io/safetensors.ts) and GGUF (src/io/gguf*.ts) both implement it, so the Gemma 3n
 * loader has one code path.
 */
import { GemmaError } from '../errors.ts';
import { bf16ArrayToF32, f16ArrayToF32 } from './half.ts';
import type { PackedWeight, QuantFormat } from '../formats/weight-format.ts';
import type { ByteSource } from './byte-source.ts';

/** The float dtypes a checkpoint can hand to the loader (safetensors spelling). */
export type FloatDtype = 'F32' | 'F16' | 'BF16';

export interface TensorInfo {
  name: string;
  /** PyTorch order: [out, in] for linear layers. */
  shape: number[];
  /** As stored (e.g. 'BF16', 'Q4_0', 'I64'); only FloatDtype values (or packed ones) can be read. */
  dtype: string;
}

/** Raw little-endian float data of a tensor (or of a range of its rows). */
export interface TensorBytes {
  dtype: FloatDtype;
  bytes: Uint8Array;
}

/** A tensor already quantized into one of our GPU layouts (src/formats/), e.g. from GGUF Q4_0 / Q8_0 / K-quants. */
export interface PackedTensor extends PackedWeight {
  format: QuantFormat;
  rows: number;
  cols: number;
}

export interface Checkpoint {
  /** For messages: a directory, file or URL. */
  readonly name: string;
  /** The parsed config.json (top level: model_type `gemma3n` with `text_config`, or `gemma3n_text`). */
  readonly config: unknown;
  /** Metadata of a tensor, or undefined when absent. */
  tensor(name: string): TensorInfo | undefined;
  tensorNames(): string[];
  /**
   * The tensor's values as float bytes. `rows` restricts to rows [start, start + count) of the first dimension
   * (for streaming very large tables). Throws GemmaError('unsupported-dtype') naming the tensor and dtype when the
   * stored dtype cannot be read as float.
   */
  read(name: string, rows?: RowRange): Promise<TensorBytes>;
  /**
   * A strided read of a 2-D tensor: the column runs `columns` (sorted, disjoint) of every row (or of `rows`), as
   * [rows, Σ run counts] float bytes, reading only what they need where the container allows (a MatFormer slice's
   * `down_proj` prefix, its kept per-layer-embedding columns). Absent: `readColumnRuns` reads whole rows and picks.
   */
  readColumns?(name: string, columns: readonly ColumnRun[], rows?: RowRange): Promise<TensorBytes>;
  /**
   * Present when the container stores some tensors pre-quantized: the tensor (or its `rows`, or the column runs
   * `columns` of them) in our GPU `format` when its stored type repacks into it losslessly
   * (src/formats/stored-dtype.ts: GGUF Q4_0 → q4/q8, Q8_0 / Q5_0 → q8, Q4_K / Q5_K / Q6_K → q4k / q5k / q6k; a cached
   * tensor in that format) and the runs fall on its block boundaries, else null (then the loader reads floats).
   */
  readPackedAs?(name: string, format: QuantFormat, rows?: RowRange, columns?: readonly ColumnRun[]): Promise<PackedTensor | null>;
  /**
   * Where a tensor's stored bytes are (for read planning, src/io/read-ahead.ts), when the container knows: the whole
   * tensor, or the bytes of its `rows`.
   */
  locate?(name: string, rows?: RowRange): StoredRange | undefined;
  /**
   * The loader announces every tensor it will read, in order, before reading any: the checkpoint may then fetch them
   * in a few large windows and count exactly the bytes a load downloads (src/io/read-ahead.ts). Returns those bytes.
   * A view (src/io/checkpoint-view.ts) passes its base the base tensors, or the row ranges of them, it will read.
   */
  willRead?(reads: readonly PlannedRead[]): number;
}

/** A tensor a load will read: all of it (its name), or rows of it. */
export type PlannedRead = string | { name: string; rows: RowRange };

/** A byte range of one file. */
export interface StoredRange {
  source: ByteSource;
  offset: number;
  length: number;
}


/** Rows [start, start + count) of a tensor's first dimension. */
export interface RowRange {
  start: number;
  count: number;
}

/** Columns [start, start + count) of a 2-D tensor. */
export interface ColumnRun {
  start: number;
  count: number;
}

/** Checks column runs against a row of `cols` columns (sorted, disjoint, non-empty, inside) and sums their counts. */
export function columnRunsWidth(runs: readonly ColumnRun[], cols: number, what: string): number {
  let end = 0;
  let width = 0;
  for (const r of runs) {
    if (!(Number.isInteger(r.start) && Number.isInteger(r.count) && r.count > 0 && r.start >= end && r.start + r.count <= cols)) {
      throw new GemmaError('invalid-argument', `${what}: column runs ${JSON.stringify(runs)} are not sorted, disjoint runs inside ${cols} columns.`);
    }
    end = r.start + r.count;
    width += r.count;
  }
  return width;
}

/**
 * The column runs of a 2-D tensor's rows as float bytes: with the checkpoint's own strided read when it has one,
 * else by reading whole rows (in bounded chunks) and picking the runs.
 */
export async function readColumnRuns(ckpt: Checkpoint, name: string, columns: readonly ColumnRun[], rows?: RowRange): Promise<TensorBytes> {
  if (ckpt.readColumns) return ckpt.readColumns(name, columns, rows);
  const info = requireTensor(ckpt, name);
  if (info.shape.length !== 2) throw new GemmaError('invalid-argument', `${ckpt.name}: ${name} [${info.shape}] is not a matrix; its columns cannot be read.`);
  const cols = info.shape[1];
  const width = columnRunsWidth(columns, cols, `${ckpt.name}: ${name}`);
  const { start, count } = rows ?? { start: 0, count: info.shape[0] };
  const chunk = Math.max(1, Math.floor((16 * 1024 * 1024) / (cols * 4)));
  let out: Uint8Array | undefined;
  let dtype: FloatDtype = 'F32';
  for (let r = 0; r < count; r += chunk) {
    const n = Math.min(chunk, count - r);
    const t = await ckpt.read(name, { start: start + r, count: n });
    dtype = t.dtype;
    const elem = FLOAT_DTYPE_BYTES[t.dtype];
    out ??= new Uint8Array(count * width * elem);
    for (let i = 0; i < n; i++) {
      let dst = ((r + i) * width) * elem;
      for (const run of columns) {
        const src = (i * cols + run.start) * elem;
        out.set(t.bytes.subarray(src, src + run.count * elem), dst);
        dst += run.count * elem;
      }
    }
  }
  return { dtype, bytes: out ?? new Uint8Array(0) };
}

/** Float bytes → Float32Array (exact for all three dtypes). */
export function tensorBytesToF32(t: TensorBytes): Float32Array {
  const { bytes } = t;
  const aligned = bytes.byteOffset % 4 === 0 ? bytes : bytes.slice();
  switch (t.dtype) {
    case 'F32':
      return new Float32Array(aligned.buffer, aligned.byteOffset, aligned.byteLength / 4).slice();
    case 'F16':
      return f16ArrayToF32(new Uint16Array(aligned.buffer, aligned.byteOffset, aligned.byteLength / 2));
    case 'BF16':
      return bf16ArrayToF32(new Uint16Array(aligned.buffer, aligned.byteOffset, aligned.byteLength / 2));
  }
}

/** Reads a tensor as f32, failing with a clear message when it is missing. */
export async function readF32(ckpt: Checkpoint, name: string, rows?: RowRange): Promise<Float32Array> {
  requireTensor(ckpt, name);
  return tensorBytesToF32(await ckpt.read(name, rows));
}

export function requireTensor(ckpt: Checkpoint, name: string, shape?: number[]): TensorInfo {
  const info = ckpt.tensor(name);
  if (!info) throw new GemmaError('bad-file', `${ckpt.name}: tensor ${name} is missing from the checkpoint.`);
  if (shape && (info.shape.length !== shape.length || info.shape.some((d, i) => d !== shape[i]))) {
    throw new GemmaError(
      'bad-file',
      `${ckpt.name}: tensor ${name} has shape [${info.shape}], but the config implies [${shape}]. The checkpoint and its config.json do not match.`,
    );
  }
  return info;
}

export const FLOAT_DTYPE_BYTES: Record<FloatDtype, number> = { F32: 4, F16: 2, BF16: 2 };

export function isFloatDtype(dtype: string): dtype is FloatDtype {
  return dtype === 'F32' || dtype === 'F16' || dtype === 'BF16';
}
