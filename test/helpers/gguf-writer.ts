/**
 * A minimal GGUF writer for synthetic test files (types we have no fixture for, malformed headers). Follows the
 * layout in src/io/gguf.ts's header comment; every metadata value carries its GGUF value type explicitly.
 */
export type GgufScalarType = 'u8' | 'i8' | 'u16' | 'i16' | 'u32' | 'i32' | 'f32' | 'bool' | 'string' | 'u64' | 'i64' | 'f64';

export type GgufTypedValue =
  | { type: GgufScalarType; value: number | bigint | boolean | string }
  | { type: 'array'; elemType: GgufScalarType | 'array'; value: GgufTypedValue[] | (number | bigint | boolean | string)[] };

export interface SyntheticTensor {
  name: string;
  /** GGUF order, fastest first. */
  ne: number[];
  type: number;
  data: Uint8Array;
}

const TYPE_ID: Record<GgufScalarType | 'array', number> = {
  u8: 0, i8: 1, u16: 2, i16: 3, u32: 4, i32: 5, f32: 6, bool: 7, string: 8, array: 9, u64: 10, i64: 11, f64: 12,
};

class Bytes {
  private chunks: Uint8Array[] = [];
  length = 0;
  push(b: Uint8Array): void {
    this.chunks.push(b);
    this.length += b.byteLength;
  }
  num(type: GgufScalarType, v: number | bigint | boolean): void {
    const size = { u8: 1, i8: 1, u16: 2, i16: 2, u32: 4, i32: 4, f32: 4, bool: 1, u64: 8, i64: 8, f64: 8, string: 0 }[type];
    const b = new Uint8Array(size);
    const dv = new DataView(b.buffer);
    switch (type) {
      case 'u8': dv.setUint8(0, Number(v)); break;
      case 'i8': dv.setInt8(0, Number(v)); break;
      case 'u16': dv.setUint16(0, Number(v), true); break;
      case 'i16': dv.setInt16(0, Number(v), true); break;
      case 'u32': dv.setUint32(0, Number(v), true); break;
      case 'i32': dv.setInt32(0, Number(v), true); break;
      case 'f32': dv.setFloat32(0, Number(v), true); break;
      case 'bool': dv.setUint8(0, v ? 1 : 0); break;
      case 'u64': dv.setBigUint64(0, BigInt(v), true); break;
      case 'i64': dv.setBigInt64(0, BigInt(v), true); break;
      case 'f64': dv.setFloat64(0, Number(v), true); break;
      case 'string': throw new Error('use str()');
    }
    this.push(b);
  }
  str(s: string): void {
    const b = new TextEncoder().encode(s);
    this.num('u64', b.byteLength);
    this.push(b);
  }
  value(v: GgufTypedValue): void {
    if (v.type === 'array') {
      this.num('u32', TYPE_ID[v.elemType]);
      this.num('u64', v.value.length);
      for (const e of v.value) {
        if (v.elemType === 'array') this.value(e as GgufTypedValue);
        else this.value({ type: v.elemType, value: e as number });
      }
    } else if (v.type === 'string') {
      this.str(String(v.value));
    } else {
      this.num(v.type, v.value as number);
    }
  }
  concat(): Uint8Array {
    const out = new Uint8Array(this.length);
    let o = 0;
    for (const c of this.chunks) {
      out.set(c, o);
      o += c.byteLength;
    }
    return out;
  }
}

/** Writes a GGUF file; tensor data is laid out in order, each aligned to `alignment` (default 32). */
export function writeGguf(opts: {
  metadata: Record<string, GgufTypedValue>;
  tensors: SyntheticTensor[];
  version?: number;
  alignment?: number;
  magic?: string;
}): Uint8Array {
  const { header, dataStart, offsets, dataBytes } = ggufHeader({ ...opts, tensors: opts.tensors.map((t) => ({ ...t, byteLength: t.data.byteLength })) });
  const out = new Uint8Array(dataStart + dataBytes);
  out.set(header);
  opts.tensors.forEach((t, i) => out.set(t.data, dataStart + offsets[i]));
  return out;
}

/**
 * A GGUF header alone (for files too big to build in memory: the data is produced on demand): the header bytes,
 * where the data section starts, each tensor's offset in it and the data section's size.
 */
export function ggufHeader(opts: {
  metadata: Record<string, GgufTypedValue>;
  tensors: { name: string; ne: number[]; type: number; byteLength: number }[];
  version?: number;
  alignment?: number;
  magic?: string;
}): { header: Uint8Array; dataStart: number; offsets: number[]; dataBytes: number } {
  const alignment = opts.alignment ?? 32;
  const h = new Bytes();
  h.push(new TextEncoder().encode(opts.magic ?? 'GGUF'));
  h.num('u32', opts.version ?? 3);
  h.num('u64', opts.tensors.length);
  h.num('u64', Object.keys(opts.metadata).length);
  for (const [key, v] of Object.entries(opts.metadata)) {
    h.str(key);
    h.num('u32', TYPE_ID[v.type]);
    h.value(v);
  }
  let offset = 0;
  const offsets: number[] = [];
  for (const t of opts.tensors) {
    h.str(t.name);
    h.num('u32', t.ne.length);
    for (const d of t.ne) h.num('u64', d);
    h.num('u32', t.type);
    h.num('u64', offset);
    offsets.push(offset);
    offset = Math.ceil((offset + t.byteLength) / alignment) * alignment;
  }
  const header = h.concat();
  return { header, dataStart: Math.ceil(header.byteLength / alignment) * alignment, offsets, dataBytes: offset };
}
