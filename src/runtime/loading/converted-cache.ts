/**
 * The offline cache's format: a model's weights as the model keeps them after conversion (GPU
 * q4/q8 blocks with f16 scales, f16/f32 matrices, f32 norms, the host PLE table's packed rows), so a cached load
 * only reads local storage and uploads: no download, no bf16 decoding, no quantization.
 *
 * Why converted and not the source files: a q4 entry is about a third of the bf16 safetensors (E2B ~3.1 GB vs
 * ~10 GB), which decides whether a phone's storage quota can hold it at all, and a cached load skips the
 * conversion work. The price: an entry is per weight mode (and f16 vs f32 in float mode), so the key says which.
 *
 * Entry files: `config.json`, the tokenizer texts when the load had them, and the weights (every tensor's data then
 * scales, in load order) as one logical file in shards `weights-00001.bin`, … of at most 64 MiB (src/io/sharded-file.ts;
 * entries written before shards have one `weights.bin`). The manifest's `meta` holds the tensor index. The same
 * files, manifest included, are the hosted form `gemma3n-webgpu convert` writes (converted-source.ts). Reading the entry back gives a
 * Checkpoint (`ConvertedCheckpoint`) that the family's unchanged loader consumes: packed tensors answer
 * `readPackedAs` with their exact bytes (dtype Q4_0 / Q5_0 / Q8_0 / Q4_K / Q5_K / Q6_K marks them as pre-quantized in
 * our q4 / q5 / q8 / K-quant layouts, src/formats/stored-dtype.ts), float tensors answer `read` in F32 / F16, which
 * the loader uploads as plain copies.
 */
import { GemmaError } from '../../errors.ts';
import { readBuffer } from '../../gpu/buffers.ts';
import type { ByteSource } from '../../io/byte-source.ts';
import type { CacheEntryReader, CacheEntryWriter } from '../../io/cache.ts';
import { SHARD_BYTES, ShardedFileWriter, concatSource } from '../../io/sharded-file.ts';
import { columnRunsWidth, type Checkpoint, type ColumnRun, type FloatDtype, type PackedTensor, type RowRange, type TensorBytes, type TensorInfo } from '../../io/checkpoint.ts';
import { readStrided } from '../../io/strided-read.ts';
import { GROUP, dataBytes, groupsPerRow, isQuantFormat, scaleHalvesPerRow, type QuantFormat } from '../../formats/weight-format.ts';
import { losslessFormatOf } from '../../formats/stored-dtype.ts';
import { isKFormat, pickKColumns } from '../../formats/kquant.ts';
import type { ConvertedTensor } from '../../model/converted-tensor.ts';

/** The weights' one file in entries written before shards. */
export const WEIGHTS_FILE = 'weights.bin';
/** Shard names: `weights-00001.bin`, … */
const SHARD_BASE = 'weights';
const META_KIND = 'gemma3n-converted/1';
/** Readback slice: bounds the host memory the writer holds to one slice of one tensor. */
const READBACK_BYTES = 16 * 1024 * 1024;

type StoredDtype = 'F32' | 'F16' | 'BF16' | 'Q4_0' | 'Q5_0' | 'Q8_0' | 'Q4_K' | 'Q5_K' | 'Q6_K';

interface IndexEntry {
  name: string;
  shape: number[];
  dtype: StoredDtype;
  /** Byte offset of the data in weights.bin, and its length. */
  offset: number;
  bytes: number;
  /** Quantized: byte offset of the scales (right after the data; q4/q8 rows * G f16, K-quants their header rows). */
  scalesOffset?: number;
}

export interface ConvertedMeta {
  kind: typeof META_KIND;
  tensors: IndexEntry[];
  /** Names of the text files in the entry besides config.json (tokenizer.json, tokenizer_config.json, ...). */
  texts: string[];
  /** Where the tokenizer texts came from ('model' or the tokenizer folder URL), so a different choice is not served. */
  tokenizerSource?: string;
  /** The weights' shards in order (absent: one `weights.bin`); tensor offsets are into their concatenation. */
  shards?: string[];
}

/** What a converted entry is read through: an offline-cache entry, or a converted model's hosted folder. */
export type ConvertedEntry = Pick<CacheEntryReader, 'manifest' | 'has' | 'open' | 'text'>;

/** The weights' files of an entry, in order. */
export function weightShards(meta: ConvertedMeta): string[] {
  return meta.shards ?? [WEIGHTS_FILE];
}

/** Writes converted tensors into an open cache entry as the loader produces them. */
export class ConvertedCacheWriter {
  private readonly tensors: IndexEntry[] = [];
  private readonly texts: string[] = [];
  private offset = 0;

  private constructor(
    readonly entry: CacheEntryWriter,
    private readonly file: ShardedFileWriter,
    private readonly device: GPUDevice,
  ) {}

  static async start(entry: CacheEntryWriter, device: GPUDevice, shardBytes = SHARD_BYTES): Promise<ConvertedCacheWriter> {
    return new ConvertedCacheWriter(entry, new ShardedFileWriter(SHARD_BASE, (name) => entry.createFile(name), shardBytes), device);
  }

  /** config.json or a tokenizer text. */
  async addText(name: string, text: string): Promise<void> {
    await this.entry.writeFile(name, [new TextEncoder().encode(text)]);
    if (name !== 'config.json') this.texts.push(name);
  }

  /** Appends one tensor (GPU weights are read back slice by slice). */
  async add(t: ConvertedTensor): Promise<void> {
    const start = this.offset;
    if (t.kind === 'f32') {
      await this.write(new Uint8Array(t.values.buffer, t.values.byteOffset, t.values.byteLength));
      this.tensors.push({ name: t.name, shape: t.shape, dtype: 'F32', offset: start, bytes: t.values.byteLength });
      return;
    }
    if (t.kind === 'float') {
      await this.write(t.bytes);
      this.tensors.push({ name: t.name, shape: t.shape, dtype: t.dtype, offset: start, bytes: t.bytes.byteLength });
      return;
    }
    if (t.kind === 'ple') {
      // Blocks of rows, written one after another: the same bytes as one table (all rows' data, then all scales).
      for (const block of t.blocks) await this.write(block.data);
      const entry: IndexEntry = { name: t.name, shape: t.shape, dtype: dtypeOf(t.blocks[0]?.format ?? 'f32'), offset: start, bytes: this.offset - start };
      if (t.blocks.some((b) => b.scales)) {
        entry.scalesOffset = this.offset;
        for (const { scales } of t.blocks) await this.write(new Uint8Array(scales!.buffer, scales!.byteOffset, scales!.byteLength));
      }
      this.tensors.push(entry);
      return;
    }
    const w = t.weight;
    for (const part of w.parts) await this.readBack(part.data, dataBytes(w.format, part.rows, w.cols));
    const entry: IndexEntry = { name: t.name, shape: t.shape, dtype: dtypeOf(w.format), offset: start, bytes: this.offset - start };
    if (isQuantFormat(w.format)) {
      entry.scalesOffset = this.offset;
      const G = scaleHalvesPerRow(w.format, w.cols);
      for (const part of w.parts) await this.readBack(part.scales!, part.rows * G * 2);
    }
    this.tensors.push(entry);
  }

  /** Closes weights.bin and writes the manifest (the entry becomes visible only now). */
  async commit(tokenizerSource: string | undefined, commit?: string): Promise<void> {
    const shards = await this.file.close();
    const meta: ConvertedMeta = { kind: META_KIND, tensors: this.tensors, texts: this.texts, tokenizerSource, shards };
    await this.entry.commit({ meta, commit });
  }

  abort(): Promise<void> {
    return this.entry.abort();
  }

  private async readBack(buffer: GPUBuffer, bytes: number): Promise<void> {
    for (let at = 0; at < bytes; at += READBACK_BYTES) {
      const n = Math.min(READBACK_BYTES, bytes - at);
      await this.write(new Uint8Array(await readBuffer(this.device, buffer, n, at)));
    }
  }

  private async write(bytes: Uint8Array): Promise<void> {
    await this.file.write(bytes);
    this.offset += bytes.byteLength;
  }
}

function dtypeOf(format: string): StoredDtype {
  switch (format) {
    case 'f32': return 'F32';
    case 'f16': return 'F16';
    case 'q4': return 'Q4_0';
    case 'q5': return 'Q5_0';
    case 'q8': return 'Q8_0';
    case 'q4k': return 'Q4_K';
    case 'q5k': return 'Q5_K';
    case 'q6k': return 'Q6_K';
  }
  throw new GemmaError('internal', `converted cache: unknown weight format ${format}`);
}

/** The entry's meta, or undefined when it is not a Gemma 3n converted entry of this version. */
export function convertedMeta(entry: Pick<ConvertedEntry, 'manifest' | 'has'>): ConvertedMeta | undefined {
  const meta = entry.manifest.meta as ConvertedMeta | undefined;
  const ok = meta?.kind === META_KIND && Array.isArray(meta.tensors) && (meta.shards === undefined || Array.isArray(meta.shards));
  return ok && weightShards(meta).every((name) => entry.has(name)) ? meta : undefined;
}

/** A cache entry as a Checkpoint; every byte read is checked against the manifest (cache.ts). */
export class ConvertedCheckpoint implements Checkpoint {
  readonly name: string;
  private readonly index: Map<string, IndexEntry>;

  private constructor(
    readonly config: unknown,
    meta: ConvertedMeta,
    private readonly source: ByteSource,
    name: string,
  ) {
    this.name = name;
    this.index = new Map(meta.tensors.map((t) => [t.name, t]));
  }

  static async open(entry: ConvertedEntry, meta: ConvertedMeta, onBytes?: (bytes: number) => void, name = `${entry.manifest.modelId} (cached, ${entry.manifest.weightMode})`): Promise<ConvertedCheckpoint> {
    const configText = await entry.text('config.json');
    onBytes?.(new TextEncoder().encode(configText).byteLength);
    const shards = weightShards(meta).map((file) => ({ source: entry.open(file, { onBytes }), size: entry.manifest.files.find((f) => f.name === file)!.size }));
    return new ConvertedCheckpoint(JSON.parse(configText), meta, concatSource(`${name} weights`, shards), name);
  }

  tensor(name: string): TensorInfo | undefined {
    const t = this.index.get(name);
    return t && { name, shape: t.shape, dtype: t.dtype };
  }

  tensorNames(): string[] {
    return [...this.index.keys()];
  }

  async read(name: string, rows?: RowRange): Promise<TensorBytes> {
    const t = this.entry(name);
    if (t.dtype !== 'F32' && t.dtype !== 'F16' && t.dtype !== 'BF16') {
      throw new GemmaError('internal', `${this.name}: ${name} is cached as ${t.dtype}; read it with readPackedAs`);
    }
    const { start, count } = rows ?? { start: 0, count: t.shape[0] ?? 1 };
    const rowBytes = t.bytes / (t.shape[0] ?? 1);
    const bytes = await this.source.read(t.offset + start * rowBytes, count * rowBytes);
    return { dtype: t.dtype as FloatDtype, bytes: aligned(bytes) };
  }

  /** Column runs of float rows (a MatFormer slice served from a cached bigger model). */
  async readColumns(name: string, columns: readonly ColumnRun[], rows?: RowRange): Promise<TensorBytes> {
    const t = this.entry(name);
    if ((t.dtype !== 'F32' && t.dtype !== 'F16') || t.shape.length !== 2) {
      throw new GemmaError('internal', `${this.name}: ${name} is cached as ${t.dtype} [${t.shape}]; its columns cannot be read as floats`);
    }
    const [allRows, cols] = t.shape;
    columnRunsWidth(columns, cols, `${this.name}: ${name}`);
    const elem = t.dtype === 'F32' ? 4 : 2;
    const { start, count } = rows ?? { start: 0, count: allRows };
    const runs = columns.map((c) => ({ start: c.start * elem, length: c.count * elem }));
    const bytes = await readStrided(this.source, { offset: t.offset + start * cols * elem, stride: cols * elem, rows: count, runs });
    return { dtype: t.dtype, bytes };
  }

  /**
   * The cached blocks as they are (rows, or column runs of them when the runs fall on group boundaries: a group
   * holds the same values whatever the row's width, so a column prefix of a cached q4 matrix is exactly the q4 of
   * the prefix; K-quants: runs of whole super-blocks, picked from whole rows on the host).
   */
  async readPackedAs(name: string, format: QuantFormat, rows?: RowRange, columns?: readonly ColumnRun[]): Promise<PackedTensor | null> {
    const t = this.entry(name);
    if (losslessFormatOf(t.dtype) !== format) return null; // the cached layout is exactly this format's
    const [allRows, cols] = t.shape;
    const { start, count } = rows ?? { start: 0, count: allRows };
    const rowBytes = dataBytes(format, 1, cols);
    const halves = scaleHalvesPerRow(format, cols);
    if (isKFormat(format)) {
      // Rows are two contiguous slices (kquant.ts); column runs are picked from whole rows.
      const data = aligned(await this.source.read(t.offset + start * rowBytes, count * rowBytes));
      const scales = aligned(await this.source.read(t.scalesOffset! + start * halves * 2, count * halves * 2));
      const rowsPacked = { data: new Uint32Array(data.buffer, data.byteOffset, data.byteLength / 4), scales: new Uint32Array(scales.buffer, scales.byteOffset, scales.byteLength / 4) };
      const width = columnRunsWidth(columns ?? [{ start: 0, count: cols }], cols, `${this.name}: ${name}`);
      const picked = columns ? pickKColumns(format, rowsPacked, count, cols, columns) : rowsPacked;
      if (!picked) return null;
      return { format, rows: count, cols: width, data: picked.data, scales: new Uint16Array(picked.scales.buffer, picked.scales.byteOffset, picked.scales.byteLength / 2) };
    }
    const G = groupsPerRow(cols);
    const unitsPerGroup = halves / G; // q4 / q8: one f16 scale per group; q5: d and two words of fifth bits
    const runs = columns ?? [{ start: 0, count: cols }];
    const width = columnRunsWidth(runs, cols, `${this.name}: ${name}`);
    if (columns && columns.some((c) => c.start % GROUP !== 0 || (c.count % GROUP !== 0 && c.start + c.count !== cols))) return null;
    const groups = runs.map((c) => ({ first: c.start / GROUP, count: Math.ceil(c.count / GROUP) }));
    const blockBytes = rowBytes / G;
    const data = await readStrided(this.source, {
      offset: t.offset + start * rowBytes,
      stride: rowBytes,
      rows: count,
      runs: groups.map((g) => ({ start: g.first * blockBytes, length: g.count * blockBytes })),
    });
    const scales = await readStrided(this.source, {
      offset: t.scalesOffset! + start * halves * 2,
      stride: halves * 2,
      rows: count,
      runs: groups.map((g) => ({ start: g.first * unitsPerGroup * 2, length: g.count * unitsPerGroup * 2 })),
    });
    return {
      format,
      rows: count,
      cols: width,
      data: new Uint32Array(data.buffer, data.byteOffset, data.byteLength / 4),
      scales: new Uint16Array(scales.buffer, scales.byteOffset, scales.byteLength / 2),
    };
  }

  private entry(name: string): IndexEntry {
    const t = this.index.get(name);
    if (!t) throw new GemmaError('bad-file', `${this.name}: tensor ${name} is not in the cached entry; delete it from the cache and load again.`);
    return t;
  }
}

/** Typed-array views need 4-byte alignment; range reads may hand back an unaligned subarray. */
function aligned(bytes: Uint8Array): Uint8Array {
  return bytes.byteOffset % 4 === 0 ? bytes : bytes.slice();
}
