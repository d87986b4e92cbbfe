/**
 * GGUF container (llama.cpp), versions 2 and 3: header, metadata key/values, tensor infos and the data section.
 *
 * Layout (little-endian): magic "GGUF", u32 version, u64 tensor_count, u64 kv_count; kv_count entries
 * (string key, u32 value type, value); tensor_count infos (string name, u32 n_dims, u64 ne[n_dims], u32 ggml type,
 * u64 offset relative to the data section); padding to `general.alignment` (default 32); the data. Strings are
 * u64 length + UTF-8. `ne` lists the fastest-varying dimension first.
 *
 * Only the header is read at open, incrementally through the ByteSource in growing chunks (a real Gemma 3n header
 * holds a 262k-entry vocabulary, several MB, but a tensor file is GBs); tensor bytes are read later by range.
 */
import { GemmaError } from '../errors.ts';
import { truncated, type ByteSource } from './byte-source.ts';
import { ggmlByteLength, ggmlTypeInfo, ggmlTypeName } from './gguf-types.ts';

export type GgufValue = number | bigint | boolean | string | GgufValue[];

/** GGUF metadata value types. */
const VALUE_TYPE = { U8: 0, I8: 1, U16: 2, I16: 3, U32: 4, I32: 5, F32: 6, BOOL: 7, STRING: 8, ARRAY: 9, U64: 10, I64: 11, F64: 12 } as const;

export interface GgufTensorInfo {
  name: string;
  /** GGUF order: fastest dimension first. */
  ne: number[];
  /** ggml type id (see gguf-types.ts). */
  type: number;
  typeName: string;
  /** Absolute byte offset in the file. */
  offset: number;
  /** Bytes of data; undefined when the type is unknown to us (so its size is too). */
  byteLength: number | undefined;
}

export interface GgufFile {
  source: ByteSource;
  version: number;
  metadata: Map<string, GgufValue>;
  /** In file order. */
  tensors: Map<string, GgufTensorInfo>;
  alignment: number;
  /** Absolute offset of the data section. */
  dataOffset: number;
  fileSize: number;
}

const MAGIC = 0x46554747; // "GGUF" read as a little-endian u32
const MAX_DIMS = 4; // GGML_MAX_DIMS
const FIRST_CHUNK = 64 * 1024;
const MAX_CHUNK = 16 * 1024 * 1024;

/**
 * Sequential reader over the header bytes: keeps one window of the file and, when a value runs past it, reads
 * the next window starting at the current position, doubling the window size each time.
 */
class HeaderCursor {
  private window: Uint8Array = new Uint8Array(0);
  private view = new DataView(this.window.buffer);
  private windowStart = 0;
  private chunk = FIRST_CHUNK;
  pos = 0;
  // ignoreBOM: a token that starts with U+FEFF (Gemma has several) must keep it; by default TextDecoder drops it.
  private readonly decoder = new TextDecoder('utf-8', { fatal: false, ignoreBOM: true });

  constructor(
    private readonly source: ByteSource,
    private readonly fileSize: number,
  ) {}

  /** Makes bytes [pos, pos + n) available in the window. */
  async need(n: number): Promise<void> {
    if (this.pos + n <= this.windowStart + this.window.byteLength) return;
    if (this.pos + n > this.fileSize) throw truncated(this.source.name, this.pos + n, this.fileSize);
    const length = Math.min(this.fileSize - this.pos, Math.max(n, this.chunk));
    this.window = await this.source.read(this.pos, length);
    this.view = new DataView(this.window.buffer, this.window.byteOffset, this.window.byteLength);
    this.windowStart = this.pos;
    this.chunk = Math.min(this.chunk * 2, MAX_CHUNK);
  }

  private at(n: number): number {
    const rel = this.pos - this.windowStart;
    this.pos += n;
    return rel;
  }

  async u32(): Promise<number> {
    await this.need(4);
    return this.view.getUint32(this.at(4), true);
  }

  /** u64 as a number; lengths and offsets beyond 2^53 cannot be real. */
  async u64(what: string): Promise<number> {
    await this.need(8);
    const v = this.view.getBigUint64(this.at(8), true);
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) {
      throw new GemmaError('bad-file', `${this.source.name} is not a valid GGUF file: ${what} is ${v}.`);
    }
    return Number(v);
  }

  async string(what: string): Promise<string> {
    const len = await this.u64(`the length of ${what}`);
    await this.need(len);
    const rel = this.at(len);
    return this.decoder.decode(this.window.subarray(rel, rel + len));
  }

  async value(type: number, what: string, depth = 0): Promise<GgufValue> {
    switch (type) {
      case VALUE_TYPE.STRING:
        return this.string(what);
      case VALUE_TYPE.ARRAY: {
        const elemType = await this.u32();
        const count = await this.u64(`the length of ${what}`);
        if (depth > 8) throw new GemmaError('bad-file', `${this.source.name}: metadata ${what} nests arrays too deeply.`);
        // Every element takes at least one byte: a count beyond the file is corruption, not a huge array.
        if (count > this.fileSize - this.pos) throw truncated(this.source.name, this.pos + count, this.fileSize);
        const size = scalarSize(elemType);
        if (size !== undefined) await this.need(count * size); // one read for a whole numeric array
        const out: GgufValue[] = new Array(count);
        for (let i = 0; i < count; i++) out[i] = size !== undefined ? this.scalar(elemType) : await this.value(elemType, what, depth + 1);
        return out;
      }
      default: {
        const size = scalarSize(type);
        if (size === undefined) throw new GemmaError('bad-file', `${this.source.name} is not a valid GGUF file: metadata ${what} has unknown value type ${type}.`);
        await this.need(size);
        return this.scalar(type);
      }
    }
  }

  /** A scalar already inside the window. */
  private scalar(type: number): number | bigint | boolean {
    const v = this.view;
    switch (type) {
      case VALUE_TYPE.U8: return v.getUint8(this.at(1));
      case VALUE_TYPE.I8: return v.getInt8(this.at(1));
      case VALUE_TYPE.U16: return v.getUint16(this.at(2), true);
      case VALUE_TYPE.I16: return v.getInt16(this.at(2), true);
      case VALUE_TYPE.U32: return v.getUint32(this.at(4), true);
      case VALUE_TYPE.I32: return v.getInt32(this.at(4), true);
      case VALUE_TYPE.F32: return v.getFloat32(this.at(4), true);
      case VALUE_TYPE.BOOL: return v.getUint8(this.at(1)) !== 0;
      case VALUE_TYPE.U64: return safeNumber(v.getBigUint64(this.at(8), true));
      case VALUE_TYPE.I64: return safeNumber(v.getBigInt64(this.at(8), true));
      case VALUE_TYPE.F64: return v.getFloat64(this.at(8), true);
    }
    throw new GemmaError('internal', `scalar() called with value type ${type}`);
  }
}

function scalarSize(type: number): number | undefined {
  return [1, 1, 2, 2, 4, 4, 4, 1, undefined, undefined, 8, 8, 8][type];
}

/** 64-bit integers as numbers when exact, else bigint (metadata may legitimately hold hashes or seeds). */
function safeNumber(v: bigint): number | bigint {
  return v <= BigInt(Number.MAX_SAFE_INTEGER) && v >= BigInt(Number.MIN_SAFE_INTEGER) ? Number(v) : v;
}

function badFile(source: ByteSource, why: string): GemmaError {
  return new GemmaError('bad-file', `${source.name} is not a valid GGUF file: ${why}`);
}

/** Reads and validates a GGUF header; no tensor data is read. */
export async function readGgufHeader(source: ByteSource): Promise<GgufFile> {
  const fileSize = await source.size();
  const cur = new HeaderCursor(source, fileSize);
  if (fileSize < 4) throw truncated(source.name, 4, fileSize);
  const magic = await cur.u32();
  if (magic !== MAGIC) {
    const bytes = await source.read(0, 4);
    const shown = Array.from(bytes, (c) => (c >= 32 && c < 127 ? String.fromCharCode(c) : `\\x${c.toString(16).padStart(2, '0')}`)).join('');
    throw new GemmaError('bad-file', `${source.name} is not a GGUF file: it starts with "${shown}", not "GGUF". Point at a .gguf file made by llama.cpp.`);
  }
  const version = await cur.u32();
  if (version !== 2 && version !== 3) {
    const hint = version === 1 ? ' Version 1 files predate 2023-08; convert the model again with a current llama.cpp.'
      : version === 0x03000000 || version === 0x02000000 ? ' This looks like a big-endian GGUF, which is not supported.' : '';
    throw new GemmaError('bad-file', `${source.name}: GGUF version ${version} is not supported (only 2 and 3).${hint}`);
  }
  const tensorCount = await cur.u64('the tensor count');
  const kvCount = await cur.u64('the metadata count');
  // Each entry takes at least 8 bytes; larger counts come from a truncated (or corrupt) header. Checked up front so a
  // corrupt count cannot make us loop over billions of entries.
  const minHeader = cur.pos + 8 * (tensorCount + kvCount);
  if (minHeader > fileSize) throw truncated(source.name, minHeader, fileSize);

  const metadata = new Map<string, GgufValue>();
  for (let i = 0; i < kvCount; i++) {
    const key = await cur.string(`metadata key ${i}`);
    const type = await cur.u32();
    metadata.set(key, await cur.value(type, key));
  }

  const rawAlignment = metadata.get('general.alignment') ?? 32;
  // ggml requires a power of two.
  if (typeof rawAlignment !== 'number' || !Number.isInteger(rawAlignment) || rawAlignment <= 0 || (rawAlignment & (rawAlignment - 1)) !== 0) {
    throw badFile(source, `general.alignment is ${String(rawAlignment)} (must be a power of two).`);
  }
  const alignment = rawAlignment;

  const infos: Omit<GgufTensorInfo, 'offset'>[] = [];
  const relOffsets: number[] = [];
  for (let i = 0; i < tensorCount; i++) {
    const name = await cur.string(`tensor name ${i}`);
    const nDims = await cur.u32();
    if (nDims < 1 || nDims > MAX_DIMS) throw badFile(source, `tensor ${name} has ${nDims} dimensions.`);
    const ne: number[] = [];
    for (let d = 0; d < nDims; d++) ne.push(await cur.u64(`dimension ${d} of tensor ${name}`));
    const type = await cur.u32();
    const rel = await cur.u64(`the offset of tensor ${name}`);
    if (rel % alignment !== 0) throw badFile(source, `tensor ${name} starts at data offset ${rel}, not a multiple of the alignment ${alignment}.`);
    const count = ne.reduce((a, b) => a * b, 1);
    const info = ggmlTypeInfo(type);
    if (info && ne[0] % info.blockSize !== 0) {
      throw badFile(source, `tensor ${name} [${ne}] has rows of ${ne[0]} elements, not a multiple of the ${info.name} block size ${info.blockSize}.`);
    }
    infos.push({ name, ne, type, typeName: ggmlTypeName(type), byteLength: ggmlByteLength(type, count) });
    relOffsets.push(rel);
  }
  const dataOffset = Math.ceil(cur.pos / alignment) * alignment;

  const tensors = new Map<string, GgufTensorInfo>();
  for (let i = 0; i < infos.length; i++) {
    const t: GgufTensorInfo = { ...infos[i], offset: dataOffset + relOffsets[i] };
    if (tensors.has(t.name)) throw badFile(source, `tensor ${t.name} appears twice.`);
    // A truncated download is caught here, at open, rather than when the last layer is loaded.
    if (t.byteLength !== undefined && t.offset + t.byteLength > fileSize) throw truncated(source.name, t.offset + t.byteLength, fileSize);
    tensors.set(t.name, t);
  }
  return { source, version, metadata, tensors, alignment, dataOffset, fileSize };
}
