/**
 * Hugging Face safetensors: one file (`model.safetensors`) or shards listed by `model.safetensors.index.json`.
 *
 * Container: 8-byte little-endian header length N, N bytes of JSON mapping tensor name → {dtype, shape,
 * data_offsets: [begin, end]} (plus an optional `__metadata__`), then the data; offsets count from the first byte
 * after the header. Only headers are read at open; tensor data is read by byte range on demand, so a multi-GB
 * checkpoint is never held in memory whole.
 */
import { GemmaError } from '../errors.ts';
import { readWhole, truncated, type ByteSource } from './byte-source.ts';
import { FLOAT_DTYPE_BYTES, columnRunsWidth, isFloatDtype, type Checkpoint, type ColumnRun, type FloatDtype, type RowRange, type TensorBytes, type TensorInfo } from './checkpoint.ts';
import { readStrided } from './strided-read.ts';

/** The files of a checkpoint directory, wherever it lives (a local directory, a URL prefix, an OPFS folder). */
export interface CheckpointFiles {
  /** For messages. */
  readonly name: string;
  exists(path: string): Promise<boolean>;
  open(path: string): ByteSource;
  /**
   * The whole of a small file, or undefined when there is none, in one request where `exists` then a read would
   * take two (a server folder without a listing: a size probe, then the file). Optional: `readIfExists()` falls
   * back to exists + read.
   */
  readIfExists?(path: string): Promise<Uint8Array | undefined>;
}

/** A small file's bytes, or undefined when `files` has none (see CheckpointFiles.readIfExists). */
export async function readIfExists(files: CheckpointFiles, path: string): Promise<Uint8Array | undefined> {
  if (files.readIfExists) return files.readIfExists(path);
  return (await files.exists(path)) ? readWhole(files.open(path)) : undefined;
}

interface TensorEntry extends TensorInfo {
  source: ByteSource;
  /** Absolute byte range in the file. */
  begin: number;
  end: number;
}

/** Bytes per element of the dtypes safetensors defines (for validating data_offsets; only floats are readable). */
const DTYPE_BYTES: Record<string, number> = {
  F64: 8, F32: 4, F16: 2, BF16: 2, I64: 8, I32: 4, I16: 2, I8: 1, U8: 1, U16: 2, U32: 4, U64: 8, BOOL: 1,
  F8_E4M3: 1, F8_E5M2: 1,
};

/** First read of a file: the header length and, usually, the whole header. */
const HEADER_PREFIX_BYTES = 1024 * 1024;

/** Longest header we accept (real ones are a few hundred KB); guards against reading garbage as a length. */
const MAX_HEADER_BYTES = 256 * 1024 * 1024;

/** Parses one safetensors file's header and checks every tensor lies inside the file. */
export async function readSafetensorsHeader(source: ByteSource): Promise<TensorEntry[]> {
  const fileSize = await source.size();
  if (fileSize < 8) throw truncated(source.name, 8, fileSize);
  // One read usually gets the length and the whole header (E2B's are ~200 KB): over HTTP, one request per shard.
  const prefix = await source.read(0, Math.min(fileSize, HEADER_PREFIX_BYTES));
  const view = new DataView(prefix.buffer, prefix.byteOffset, 8);
  const headerLen = Number(view.getBigUint64(0, true));
  if (headerLen > MAX_HEADER_BYTES) {
    throw new GemmaError('bad-file', `${source.name} is not a safetensors file: its header length field says ${headerLen} bytes.`);
  }
  if (8 + headerLen > fileSize) throw truncated(source.name, 8 + headerLen, fileSize);
  let header: Record<string, unknown>;
  try {
    const headerBytes = 8 + headerLen <= prefix.length ? prefix.subarray(8, 8 + headerLen) : await source.read(8, headerLen);
    header = JSON.parse(new TextDecoder().decode(headerBytes));
  } catch (err) {
    throw new GemmaError('bad-file', `${source.name}: the safetensors header is not valid JSON (${(err as Error).message}).`, { cause: err });
  }
  const dataStart = 8 + headerLen;
  const entries: TensorEntry[] = [];
  let dataEnd = dataStart;
  for (const [name, raw] of Object.entries(header)) {
    if (name === '__metadata__') continue;
    const t = raw as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
    if (typeof t.dtype !== 'string' || !Array.isArray(t.shape) || !Array.isArray(t.data_offsets) || t.data_offsets.length !== 2) {
      throw new GemmaError('bad-file', `${source.name}: malformed header entry for tensor ${name}.`);
    }
    const shape = t.shape.map(Number);
    const [begin, end] = t.data_offsets.map(Number);
    const elemBytes = DTYPE_BYTES[t.dtype];
    const count = shape.reduce((a, b) => a * b, 1);
    if (!(end >= begin) || (elemBytes !== undefined && end - begin !== count * elemBytes)) {
      throw new GemmaError('bad-file', `${source.name}: tensor ${name} (${t.dtype} [${shape}]) has data_offsets [${begin}, ${end}] that do not match its size.`);
    }
    entries.push({ name, shape, dtype: t.dtype, source, begin: dataStart + begin, end: dataStart + end });
    dataEnd = Math.max(dataEnd, dataStart + end);
  }
  if (dataEnd > fileSize) throw truncated(source.name, dataEnd, fileSize);
  return entries;
}

/** A checkpoint over already-parsed safetensors entries (one or many files) and a config. */
export function safetensorsCheckpoint(name: string, config: unknown, entries: TensorEntry[]): Checkpoint {
  const byName = new Map(entries.map((e) => [e.name, e]));
  return {
    name,
    config,
    tensor: (n) => {
      const e = byName.get(n);
      return e && { name: e.name, shape: e.shape, dtype: e.dtype };
    },
    tensorNames: () => [...byName.keys()],
    locate: (n, rows) => {
      if (!rows) {
        const e = byName.get(n);
        return e && { source: e.source, offset: e.begin, length: e.end - e.begin };
      }
      const { e, offset, rowBytes, count } = locate(n, rows);
      return { source: e.source, offset, length: count * rowBytes };
    },
    async read(n, rows): Promise<TensorBytes> {
      const { e, dtype, offset, rowBytes, count } = locate(n, rows);
      return { dtype, bytes: await e.source.read(offset, rows ? count * rowBytes : e.end - e.begin) };
    },
    async readColumns(n: string, columns: readonly ColumnRun[], rows?: RowRange): Promise<TensorBytes> {
      const { e, dtype, offset, rowBytes, count } = locate(n, rows);
      if (e.shape.length !== 2) throw new GemmaError('invalid-argument', `${name}: ${n} [${e.shape}] is not a matrix; its columns cannot be read.`);
      columnRunsWidth(columns, e.shape[1], `${name}: ${n}`);
      const elem = FLOAT_DTYPE_BYTES[dtype];
      const runs = columns.map((c) => ({ start: c.start * elem, length: c.count * elem }));
      return { dtype, bytes: await readStrided(e.source, { offset, stride: rowBytes, rows: count, runs }) };
    },
  };

  /** A float tensor's entry and where rows [start, start + count) begin. */
  function locate(n: string, rows?: RowRange): { e: TensorEntry; dtype: FloatDtype; offset: number; rowBytes: number; count: number } {
    const e = byName.get(n);
    if (!e) throw new GemmaError('bad-file', `${name}: tensor ${n} is missing from the checkpoint.`);
    if (!isFloatDtype(e.dtype)) {
      throw new GemmaError(
        'unsupported-dtype',
        `${name}: tensor ${n} is stored as ${e.dtype}; only BF16, F16 and F32 safetensors can be loaded (convert the checkpoint, e.g. with torch, to bf16).`,
      );
    }
    const rowBytes = e.shape.slice(1).reduce((a, b) => a * b, 1) * FLOAT_DTYPE_BYTES[e.dtype];
    const { start, count } = rows ?? { start: 0, count: e.shape[0] ?? 1 };
    if (start < 0 || count < 0 || start + count > (e.shape[0] ?? 1)) {
      throw new GemmaError('invalid-argument', `${name}: rows [${start}, ${start + count}) out of range for ${n} [${e.shape}].`);
    }
    return { e, dtype: e.dtype, offset: e.begin + start * rowBytes, rowBytes, count };
  }
}

async function readJson(files: CheckpointFiles, path: string): Promise<unknown> {
  const bytes = await readWhole(files.open(path));
  try {
    return JSON.parse(new TextDecoder().decode(bytes));
  } catch (err) {
    throw new GemmaError('bad-file', `${files.name}/${path} is not valid JSON (${(err as Error).message}).`, { cause: err });
  }
}

/**
 * Opens a Hugging Face checkpoint directory: `config.json` plus `model.safetensors.index.json` (sharded) or
 * `model.safetensors`. Every shard header is read and validated; no tensor data is read yet.
 */
export async function openSafetensorsCheckpoint(files: CheckpointFiles): Promise<Checkpoint> {
  if (!(await files.exists('config.json'))) {
    throw new GemmaError('bad-file', `${files.name}: no config.json found; point at a Hugging Face checkpoint directory (config.json + *.safetensors).`);
  }
  const config = await readJson(files, 'config.json');
  let shardNames: string[];
  if (await files.exists('model.safetensors.index.json')) {
    const index = (await readJson(files, 'model.safetensors.index.json')) as { weight_map?: Record<string, string> };
    if (!index.weight_map || typeof index.weight_map !== 'object') {
      throw new GemmaError('bad-file', `${files.name}/model.safetensors.index.json has no weight_map.`);
    }
    shardNames = [...new Set(Object.values(index.weight_map))].sort();
  } else if (await files.exists('model.safetensors')) {
    shardNames = ['model.safetensors'];
  } else {
    throw new GemmaError('bad-file', `${files.name}: neither model.safetensors nor model.safetensors.index.json is present.`);
  }
  const entries: TensorEntry[] = [];
  for (const shard of shardNames) entries.push(...(await readSafetensorsHeader(files.open(shard))));
  return safetensorsCheckpoint(files.name, config, entries);
}
