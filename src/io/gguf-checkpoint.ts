/**
 * A GGUF file seen as a Hugging Face checkpoint (src/io/checkpoint.ts): HF tensor names and PyTorch shapes over byte
 * ranges of the file, values read exactly (F32/F16/BF16), dequantized as ggml defines (src/io/gguf-types.ts) or
 * repacked losslessly into our GPU layouts (Q4_0/Q8_0). A model family maps its architecture's tensor names and
 * metadata onto this (src/model/<family>/gguf.ts); nothing here knows a model.
 *
 * Shapes: GGUF lists the fastest dimension first, so PyTorch shape = reversed `ne`; the bytes are already the PyTorch
 * row-major matrix (one GGUF row = one output feature).
 */
import { GemmaError } from '../errors.ts';
import { columnRunsWidth, type Checkpoint, type ColumnRun, type PackedTensor, type TensorBytes, type TensorInfo } from './checkpoint.ts';
import type { GgufFile, GgufTensorInfo, GgufValue } from './gguf.ts';
import { GGML_TYPE, dequantize, ggmlTypeInfo, losslessFormats, repackLossless, unsupportedType } from './gguf-types.ts';
import type { QuantFormat } from '../formats/weight-format.ts';
import { readStrided, type ByteRun } from './strided-read.ts';

/** One HF tensor backed by a byte range of the GGUF file. */
export interface GgufTensor {
  hfName: string;
  ggufName: string;
  /** PyTorch order. */
  shape: number[];
  /** ggml type id and name ('Q4_K', 'BF16', …). */
  ggmlType: number;
  typeName: string;
  /** Absolute byte range in the file. */
  offset: number;
  byteLength: number;
  /** Elements in one slice of the first dimension (a row of a matrix) and its bytes. */
  rowElements: number;
  rowBytes: number;
}

export interface RowRange {
  start: number;
  count: number;
}

export interface GgufCheckpoint<Config = unknown> extends Checkpoint {
  readonly config: Config;
  readonly gguf: GgufFile;
  /** By HF name. */
  readonly tensors: ReadonlyMap<string, GgufTensor>;
  /** GGUF tensors the family did not map; ignored. */
  readonly unmappedTensors: string[];
  /** Values as f32 (exact for F32/F16/BF16; ggml's dequantization for quantized types). */
  readF32(name: string, rows?: RowRange): Promise<Float32Array>;
  /** The stored bytes of a tensor (or of rows of it), in its ggml type. */
  readRaw(name: string, rows?: RowRange): Promise<Uint8Array>;
  /** Our GPU layout when the stored type repacks into `format` losslessly (src/formats/stored-dtype.ts), else null. */
  readPackedAs(name: string, format: QuantFormat, rows?: RowRange, columns?: readonly ColumnRun[]): Promise<PackedTensor | null>;
  /** Column runs of rows, as floats: exact for F32/F16/BF16, ggml's dequantization of the blocks they touch otherwise. */
  readColumns(name: string, columns: readonly ColumnRun[], rows?: RowRange): Promise<TensorBytes>;
}

/**
 * The blocks a set of column runs touches, as disjoint block runs (runs sharing a block share its read), and for
 * each column run where its first element lands in the concatenation of those blocks.
 */
function coveringBlocks(runs: readonly ColumnRun[], blockSize: number): { blocks: { first: number; count: number }[]; at: number[] } {
  const blocks: { first: number; count: number }[] = [];
  const at: number[] = [];
  let covered = 0; // elements in the blocks listed so far
  for (const r of runs) {
    const first = Math.floor(r.start / blockSize);
    const end = Math.ceil((r.start + r.count) / blockSize);
    const last = blocks.at(-1);
    if (last && first <= last.first + last.count) {
      const grow = Math.max(0, end - (last.first + last.count));
      at.push(covered - (last.first + last.count - first) * blockSize + (r.start - first * blockSize));
      last.count += grow;
      covered += grow * blockSize;
    } else {
      at.push(covered + (r.start - first * blockSize));
      blocks.push({ first, count: end - first });
      covered += (end - first) * blockSize;
    }
  }
  return { blocks, at };
}

/** The HF view of GGUF tensor `t` (or of a byte range of it: a slice of a stacked tensor) under `hfName`. */
export function ggufTensor(hfName: string, t: GgufTensorInfo, shape: number[], offset = t.offset): GgufTensor {
  const info = ggmlTypeInfo(t.type);
  const rowElements = shape.slice(1).reduce((a, b) => a * b, 1);
  const rowBytes = info ? (rowElements / info.blockSize) * info.blockBytes : NaN;
  return {
    hfName, ggufName: t.name, shape, ggmlType: t.type, typeName: t.typeName, offset,
    byteLength: t.byteLength === undefined ? NaN : rowBytes * shape[0], rowElements, rowBytes,
  };
}

/** Fails before any weight is read (or downloaded) if a mapped tensor has a type we cannot decode. */
export function checkDecodable(gguf: GgufFile, tensors: ReadonlyMap<string, GgufTensor>): void {
  for (const t of tensors.values()) {
    if (!ggmlTypeInfo(t.ggmlType)?.decodable) throw unsupportedType(t.ggmlType, `${gguf.source.name}: tensor ${t.ggufName}`);
  }
}

/** The Checkpoint over mapped tensors, with the config the family derived from the metadata. */
export function ggufCheckpoint<Config>(gguf: GgufFile, tensors: ReadonlyMap<string, GgufTensor>, unmapped: string[], config: Config): GgufCheckpoint<Config> {
  const name = gguf.source.name;
  const get = (n: string): GgufTensor => {
    const t = tensors.get(n);
    if (!t) throw new GemmaError('bad-file', `${name}: tensor ${n} is missing from the GGUF file.`);
    return t;
  };
  const range = (t: GgufTensor, rows?: RowRange): { offset: number; length: number; count: number } => {
    if (!rows) return { offset: t.offset, length: t.byteLength, count: t.shape[0] };
    if (rows.start < 0 || rows.count < 0 || rows.start + rows.count > t.shape[0] || !Number.isInteger(rows.start) || !Number.isInteger(rows.count)) {
      throw new GemmaError('invalid-argument', `${name}: rows [${rows.start}, ${rows.start + rows.count}) out of range for ${t.hfName} [${t.shape}].`);
    }
    if (!Number.isInteger(t.rowBytes)) throw new GemmaError('invalid-argument', `${name}: ${t.hfName} (${t.typeName}) cannot be read by rows.`);
    return { offset: t.offset + rows.start * t.rowBytes, length: rows.count * t.rowBytes, count: rows.count };
  };
  const readRaw = async (n: string, rows?: RowRange) => {
    const t = get(n);
    const r = range(t, rows);
    return gguf.source.read(r.offset, r.length);
  };
  const readF32 = async (n: string, rows?: RowRange) => {
    const t = get(n);
    const r = range(t, rows);
    return dequantize(t.ggmlType, await gguf.source.read(r.offset, r.length), r.count * t.rowElements, `${name}: tensor ${t.ggufName}`);
  };
  // `rows` (an addition to Checkpoint.readPackedAs) lets a caller stream a multi-GB table (E2B's Q8_0 PLE table is
  // 2.1 GB) in row chunks.
  const readPackedAs = async (n: string, format: QuantFormat, rowRange?: RowRange): Promise<PackedTensor | null> => {
    const t = get(n);
    if (!losslessFormats(t.ggmlType).includes(format) || t.shape.length !== 2) return null;
    const r = range(t, rowRange);
    const rows = r.count;
    const cols = t.rowElements;
    const packed = repackLossless(t.ggmlType, await gguf.source.read(r.offset, r.length), rows, cols, format);
    return packed && { ...packed, format, rows, cols };
  };
  const matrixOf = (n: string): GgufTensor => {
    const t = get(n);
    if (t.shape.length !== 2) throw new GemmaError('invalid-argument', `${name}: ${t.hfName} [${t.shape}] is not a matrix; its columns cannot be read.`);
    return t;
  };
  /** The stored bytes of the given blocks of each row (rows × Σ blocks × block bytes). */
  const readBlocks = (t: GgufTensor, blocks: readonly { first: number; count: number }[], rows?: RowRange) => {
    const r = range(t, rows);
    const { blockBytes } = ggmlTypeInfo(t.ggmlType)!;
    const runs: ByteRun[] = blocks.map((b) => ({ start: b.first * blockBytes, length: b.count * blockBytes }));
    return readStrided(gguf.source, { offset: r.offset, stride: t.rowBytes, rows: r.count, runs });
  };
  const readColumns = async (n: string, columns: readonly ColumnRun[], rows?: RowRange): Promise<TensorBytes> => {
    const t = matrixOf(n);
    const width = columnRunsWidth(columns, t.shape[1], `${name}: ${t.hfName}`);
    const count = rows?.count ?? t.shape[0];
    const { blockSize } = ggmlTypeInfo(t.ggmlType)!;
    const { blocks, at } = coveringBlocks(columns, blockSize);
    const raw = await readBlocks(t, blocks, rows);
    if (blockSize === 1) return { dtype: t.typeName as 'F32' | 'F16' | 'BF16', bytes: raw }; // the runs themselves
    const coveredCols = blocks.reduce((s, b) => s + b.count, 0) * blockSize;
    const all = dequantize(t.ggmlType, raw, count * coveredCols, `${name}: tensor ${t.ggufName}`);
    const out = new Float32Array(count * width);
    for (let row = 0; row < count; row++) {
      let dst = row * width;
      columns.forEach((c, i) => {
        const src = row * coveredCols + at[i];
        out.set(all.subarray(src, src + c.count), dst);
        dst += c.count;
      });
    }
    return { dtype: 'F32', bytes: new Uint8Array(out.buffer) };
  };
  const readPackedColumns = async (n: string, format: QuantFormat, rows: RowRange | undefined, columns: readonly ColumnRun[]): Promise<PackedTensor | null> => {
    const t = matrixOf(n);
    const width = columnRunsWidth(columns, t.shape[1], `${name}: ${t.hfName}`);
    const { blockSize } = ggmlTypeInfo(t.ggmlType)!;
    if (!losslessFormats(t.ggmlType).includes(format) || columns.some((c) => c.start % blockSize !== 0 || c.count % blockSize !== 0)) return null;
    const count = rows?.count ?? t.shape[0];
    const raw = await readBlocks(t, columns.map((c) => ({ first: c.start / blockSize, count: c.count / blockSize })), rows);
    const packed = repackLossless(t.ggmlType, raw, count, width, format);
    return packed && { ...packed, format, rows: count, cols: width };
  };
  return {
    name,
    config,
    gguf,
    tensors,
    unmappedTensors: unmapped,
    tensor(n: string): TensorInfo | undefined {
      const t = tensors.get(n);
      return t && { name: t.hfName, shape: [...t.shape], dtype: t.typeName };
    },
    tensorNames: () => [...tensors.keys()],
    locate(n: string, rows?: RowRange) {
      const t = tensors.get(n);
      if (!t || !Number.isFinite(t.byteLength) || (rows && !Number.isInteger(t.rowBytes))) return undefined;
      const r = range(t, rows);
      return { source: gguf.source, offset: r.offset, length: r.length };
    },
    async read(n: string, rows?: RowRange): Promise<TensorBytes> {
      const t = get(n);
      if (t.ggmlType === GGML_TYPE.F32 || t.ggmlType === GGML_TYPE.F16 || t.ggmlType === GGML_TYPE.BF16) {
        return { dtype: t.typeName as 'F32' | 'F16' | 'BF16', bytes: await readRaw(n, rows) };
      }
      const values = await readF32(n, rows);
      return { dtype: 'F32', bytes: new Uint8Array(values.buffer) };
    },
    readF32,
    readRaw,
    readColumns,
    readPackedAs: (n, format, rows, columns) => (columns ? readPackedColumns(n, format, rows, columns) : readPackedAs(n, format, rows)),
  };
}

/** Typed access to an architecture's metadata keys (`<arch>.<key>`), failing with the file and key named. */
export class GgufMetadata {
  constructor(
    private readonly gguf: GgufFile,
    readonly arch: string,
  ) {}

  raw(key: string): GgufValue | undefined {
    return this.gguf.metadata.get(`${this.arch}.${key}`);
  }

  num(key: string, fallback?: number): number {
    const v = this.raw(key);
    if (v === undefined && fallback !== undefined) return fallback;
    if (typeof v !== 'number') throw new GemmaError('bad-file', `${this.gguf.source.name}: metadata ${this.arch}.${key} is ${v === undefined ? 'missing' : `not a number (${String(v)})`}.`);
    return v;
  }

  /** A per-layer value that may be stored as one number or as an array of `layers` numbers. */
  perLayer(key: string, layers: number): number[] {
    const v = this.raw(key);
    if (Array.isArray(v) && v.length === layers && v.every((x) => typeof x === 'number')) return v as number[];
    if (typeof v === 'number') return new Array<number>(layers).fill(v);
    throw new GemmaError('bad-file', `${this.gguf.source.name}: metadata ${this.arch}.${key} must be a number or an array of ${layers} numbers, got ${JSON.stringify(v)}.`);
  }

  /** A value that must be the same for every layer. */
  uniform(key: string, layers: number): number {
    const values = this.perLayer(key, layers);
    if (values.some((x) => x !== values[0])) throw new GemmaError('unsupported-config', `${this.gguf.source.name}: ${this.arch}.${key} varies by layer (${values}); not supported.`);
    return values[0];
  }
}

/** GGUF stores these as f32 (1e-6 reads back as 9.99999997e-7); give back the shortest decimal with that f32. */
export function shortestF32(v: number): number {
  if (!Number.isFinite(v) || Math.fround(v) !== v) return v;
  for (let digits = 1; digits <= 9; digits++) {
    const d = Number(v.toPrecision(digits));
    if (Math.fround(d) === v) return d;
  }
  return v;
}

