/**
 * ggml tensor types as stored in GGUF files: their block geometry, f32 dequantization of the types we support,
 * and the lossless repack of Q4_0 / Q8_0 / Q5_0 / K-quants into our GPU layouts (src/formats/weight-format.ts, kquant.ts).
 *
 * Block layouts follow llama.cpp's ggml-common.h / ggml-quants.c (see docs/gemma3n-formats.md §3.5). Arithmetic
 * is done in f32 one operation at a time (Math.fround), as gguf-py's numpy dequantizer does, so results match
 * llama.cpp's reference dequantization except where a C compiler contracts `a * b + c` into one FMA (K-quants'
 * `d·sc·q − dmin·m`): there the difference is at most one f32 rounding of the result.
 */
import { GemmaError } from '../errors.ts';
import { GROUP, type PackedWeight, type QuantFormat } from '../formats/weight-format.ts';
import { losslessFormatsOf } from '../formats/stored-dtype.ts';
import { isKFormat, repackGgmlK } from '../formats/kquant.ts';

/** ggml_type ids (ggml.h). Gaps are ids llama.cpp removed. */
export const GGML_TYPE = {
  F32: 0, F16: 1, Q4_0: 2, Q4_1: 3, Q5_0: 6, Q5_1: 7, Q8_0: 8, Q8_1: 9,
  Q2_K: 10, Q3_K: 11, Q4_K: 12, Q5_K: 13, Q6_K: 14, Q8_K: 15,
  IQ2_XXS: 16, IQ2_XS: 17, IQ3_XXS: 18, IQ1_S: 19, IQ4_NL: 20, IQ3_S: 21, IQ2_S: 22, IQ4_XS: 23,
  I8: 24, I16: 25, I32: 26, I64: 27, F64: 28, IQ1_M: 29, BF16: 30, TQ1_0: 34, TQ2_0: 35, MXFP4: 39,
} as const;

export interface GgmlTypeInfo {
  id: number;
  name: string;
  /** Elements per block (1 for plain types). */
  blockSize: number;
  /** Bytes per block. */
  blockBytes: number;
  /** Whether `dequantize` can decode it. */
  decodable: boolean;
}

// [name, block elements, block bytes, decodable]. Sizes of the types we cannot decode are still listed so a file
// containing them parses (its other tensors stay readable) and the error can name the type.
const TYPE_TABLE: Record<number, [string, number, number, boolean]> = {
  0: ['F32', 1, 4, true],
  1: ['F16', 1, 2, true],
  2: ['Q4_0', 32, 18, true],
  3: ['Q4_1', 32, 20, true],
  6: ['Q5_0', 32, 22, true],
  7: ['Q5_1', 32, 24, true],
  8: ['Q8_0', 32, 34, true],
  9: ['Q8_1', 32, 36, false],
  10: ['Q2_K', 256, 84, false],
  11: ['Q3_K', 256, 110, false],
  12: ['Q4_K', 256, 144, true],
  13: ['Q5_K', 256, 176, true],
  14: ['Q6_K', 256, 210, true],
  15: ['Q8_K', 256, 292, false],
  16: ['IQ2_XXS', 256, 66, false],
  17: ['IQ2_XS', 256, 74, false],
  18: ['IQ3_XXS', 256, 98, false],
  19: ['IQ1_S', 256, 50, false],
  20: ['IQ4_NL', 32, 18, false],
  21: ['IQ3_S', 256, 110, false],
  22: ['IQ2_S', 256, 82, false],
  23: ['IQ4_XS', 256, 136, false],
  24: ['I8', 1, 1, false],
  25: ['I16', 1, 2, false],
  26: ['I32', 1, 4, false],
  27: ['I64', 1, 8, false],
  28: ['F64', 1, 8, false],
  29: ['IQ1_M', 256, 56, false],
  30: ['BF16', 1, 2, true],
  34: ['TQ1_0', 256, 54, false],
  35: ['TQ2_0', 256, 66, false],
  39: ['MXFP4', 32, 17, false],
};

/** Geometry of a ggml type, or undefined for an id this build does not know at all. */
export function ggmlTypeInfo(id: number): GgmlTypeInfo | undefined {
  const row = TYPE_TABLE[id];
  return row && { id, name: row[0], blockSize: row[1], blockBytes: row[2], decodable: row[3] };
}

/** 'Q4_K', or 'ggml type 99' for an unknown id (for messages and TensorInfo.dtype). */
export function ggmlTypeName(id: number): string {
  return TYPE_TABLE[id]?.[0] ?? `ggml type ${id}`;
}

/** The types `dequantize` decodes, for messages. */
export const DECODABLE_TYPE_NAMES = Object.values(TYPE_TABLE)
  .filter((r) => r[3])
  .map((r) => r[0]);

/** Bytes of `count` elements of `type` (count a multiple of the block size), or undefined for unknown types. */
export function ggmlByteLength(type: number, count: number): number | undefined {
  const info = ggmlTypeInfo(type);
  return info && (count / info.blockSize) * info.blockBytes;
}

export function unsupportedType(type: number, what: string): GemmaError {
  return new GemmaError(
    'unsupported-dtype',
    `${what} is stored as ${ggmlTypeName(type)}, which this library cannot decode (supported GGUF types: ${DECODABLE_TYPE_NAMES.join(', ')}). Use a GGUF file of another quantization (Q4_0, Q8_0, Q4_K_M, Q6_K, BF16, F16).`,
  );
}

// f16 → f32 for all 65536 bit patterns: dequantizing a multi-GB file converts billions of scales and values.
let f16Table: Float32Array | undefined;
function f16Lut(): Float32Array {
  if (!f16Table) {
    f16Table = new Float32Array(65536);
    for (let h = 0; h < 65536; h++) {
      const sign = h & 0x8000 ? -1 : 1;
      const exp = (h >> 10) & 0x1f;
      const frac = h & 0x3ff;
      f16Table[h] = exp === 0 ? sign * frac * 2 ** -24 : exp === 31 ? (frac ? NaN : sign * Infinity) : sign * (1 + frac / 1024) * 2 ** (exp - 15);
    }
  }
  return f16Table;
}

const fr = Math.fround;

/**
 * Decodes `count` elements of `type` from `bytes` (which start at a block boundary; any byte alignment) into f32.
 * Throws GemmaError('unsupported-dtype') for types we cannot decode.
 */
export function dequantize(type: number, bytes: Uint8Array, count: number, what = 'a tensor'): Float32Array {
  const info = ggmlTypeInfo(type);
  if (!info || !info.decodable) throw unsupportedType(type, what);
  if (count % info.blockSize !== 0) {
    throw new GemmaError('bad-file', `${what}: ${count} elements of ${info.name} are not a whole number of ${info.blockSize}-element blocks.`);
  }
  const needed = (count / info.blockSize) * info.blockBytes;
  if (bytes.byteLength < needed) {
    throw new GemmaError('internal', `${what}: ${bytes.byteLength} bytes given, ${needed} needed for ${count} ${info.name} elements.`);
  }
  const out = new Float32Array(count);
  const h = f16Lut();
  const b = bytes;
  const u16 = (o: number) => b[o] | (b[o + 1] << 8);
  const nBlocks = count / info.blockSize;
  switch (type) {
    case GGML_TYPE.F32: {
      const copy = b.byteOffset % 4 === 0 ? b : b.slice(0, needed);
      out.set(new Float32Array(copy.buffer, copy.byteOffset, count));
      return out;
    }
    case GGML_TYPE.F16:
      for (let i = 0; i < count; i++) out[i] = h[u16(2 * i)];
      return out;
    case GGML_TYPE.BF16: {
      const bits = new Uint32Array(out.buffer);
      for (let i = 0; i < count; i++) bits[i] = u16(2 * i) << 16;
      return out;
    }
    case GGML_TYPE.Q4_0: // half d; u8 qs[16]: element i in the low nibble of qs[i], element i + 16 in its high nibble
      for (let blk = 0, o = 0, y = 0; blk < nBlocks; blk++, o += 18, y += 32) {
        const d = h[u16(o)];
        for (let i = 0; i < 16; i++) {
          const q = b[o + 2 + i];
          out[y + i] = ((q & 15) - 8) * d;
          out[y + i + 16] = ((q >> 4) - 8) * d;
        }
      }
      return out;
    case GGML_TYPE.Q4_1: // half d; half m; u8 qs[16]: w = d·q + m
      for (let blk = 0, o = 0, y = 0; blk < nBlocks; blk++, o += 20, y += 32) {
        const d = h[u16(o)], m = h[u16(o + 2)];
        for (let i = 0; i < 16; i++) {
          const q = b[o + 4 + i];
          out[y + i] = fr((q & 15) * d) + m;
          out[y + i + 16] = fr((q >> 4) * d) + m;
        }
      }
      return out;
    case GGML_TYPE.Q5_0: // half d; u32 qh; u8 qs[16]: fifth bit of element i is bit i of qh; w = d·(q − 16)
    case GGML_TYPE.Q5_1: {
      // Q5_1: half d; half m; u32 qh; u8 qs[16]: w = d·q + m
      const hasMin = type === GGML_TYPE.Q5_1;
      const stride = hasMin ? 24 : 22;
      const qhAt = hasMin ? 4 : 2;
      for (let blk = 0, o = 0, y = 0; blk < nBlocks; blk++, o += stride, y += 32) {
        const d = h[u16(o)];
        const m = hasMin ? h[u16(o + 2)] : 0;
        const qh = (b[o + qhAt] | (b[o + qhAt + 1] << 8) | (b[o + qhAt + 2] << 16) | (b[o + qhAt + 3] << 24)) >>> 0;
        for (let i = 0; i < 16; i++) {
          const q = b[o + qhAt + 4 + i];
          const lo = (q & 15) | (((qh >>> i) & 1) << 4);
          const hi = (q >> 4) | (((qh >>> (i + 16)) & 1) << 4);
          if (hasMin) {
            out[y + i] = fr(lo * d) + m;
            out[y + i + 16] = fr(hi * d) + m;
          } else {
            out[y + i] = (lo - 16) * d;
            out[y + i + 16] = (hi - 16) * d;
          }
        }
      }
      return out;
    }
    case GGML_TYPE.Q8_0: // half d; i8 qs[32]
      for (let blk = 0, o = 0, y = 0; blk < nBlocks; blk++, o += 34, y += 32) {
        const d = h[u16(o)];
        for (let i = 0; i < 32; i++) out[y + i] = ((b[o + 2 + i] << 24) >> 24) * d;
      }
      return out;
    case GGML_TYPE.Q4_K:
    case GGML_TYPE.Q5_K: {
      // half d; half dmin; u8 scales[12]; (Q5_K: u8 qh[32];) u8 qs[128]. Eight 32-element sub-blocks with 6-bit
      // scale and min; chunk c (64 elements) = low nibbles (sub-block 2c) then high nibbles (2c + 1) of qs[32c..].
      const five = type === GGML_TYPE.Q5_K;
      const stride = five ? 176 : 144;
      const qsAt = five ? 48 : 16;
      const sc = new Uint8Array(8), mn = new Uint8Array(8);
      for (let blk = 0, o = 0, y = 0; blk < nBlocks; blk++, o += stride, y += 256) {
        const d = h[u16(o)], dmin = h[u16(o + 2)];
        kQuantScales(b, o + 4, sc, mn);
        for (let c = 0; c < 4; c++) {
          const d1 = fr(d * sc[2 * c]), m1 = fr(dmin * mn[2 * c]);
          const d2 = fr(d * sc[2 * c + 1]), m2 = fr(dmin * mn[2 * c + 1]);
          for (let l = 0; l < 32; l++) {
            const q = b[o + qsAt + 32 * c + l];
            let lo = q & 15, hi = q >> 4;
            if (five) {
              const qh = b[o + 16 + l];
              lo += ((qh >> (2 * c)) & 1) << 4;
              hi += ((qh >> (2 * c + 1)) & 1) << 4;
            }
            out[y + 64 * c + l] = fr(d1 * lo) - m1;
            out[y + 64 * c + 32 + l] = fr(d2 * hi) - m2;
          }
        }
      }
      return out;
    }
    case GGML_TYPE.Q6_K:
      // u8 ql[128]; u8 qh[64]; i8 scales[16]; half d (last). Two halves of 128; see §3.5.
      for (let blk = 0, o = 0, y = 0; blk < nBlocks; blk++, o += 210, y += 256) {
        const d = h[u16(o + 208)];
        for (let half = 0; half < 2; half++) {
          const ql = o + 64 * half, qh = o + 128 + 32 * half, scl = o + 192 + 8 * half, yy = y + 128 * half;
          for (let l = 0; l < 32; l++) {
            const is = l >> 4;
            const hb = b[qh + l];
            const q1 = ((b[ql + l] & 15) | ((hb & 3) << 4)) - 32;
            const q2 = ((b[ql + l + 32] & 15) | (((hb >> 2) & 3) << 4)) - 32;
            const q3 = ((b[ql + l] >> 4) | (((hb >> 4) & 3) << 4)) - 32;
            const q4 = ((b[ql + l + 32] >> 4) | (((hb >> 6) & 3) << 4)) - 32;
            out[yy + l] = fr(d * ((b[scl + is] << 24) >> 24)) * q1;
            out[yy + l + 32] = fr(d * ((b[scl + is + 2] << 24) >> 24)) * q2;
            out[yy + l + 64] = fr(d * ((b[scl + is + 4] << 24) >> 24)) * q3;
            out[yy + l + 96] = fr(d * ((b[scl + is + 6] << 24) >> 24)) * q4;
          }
        }
      }
      return out;
  }
  throw unsupportedType(type, what);
}

/** Unpacks the eight 6-bit scales and mins of a Q4_K / Q5_K block (llama.cpp's get_scale_min_k4). */
function kQuantScales(b: Uint8Array, at: number, sc: Uint8Array, mn: Uint8Array): void {
  for (let j = 0; j < 8; j++) {
    if (j < 4) {
      sc[j] = b[at + j] & 63;
      mn[j] = b[at + j + 4] & 63;
    } else {
      sc[j] = (b[at + j + 4] & 15) | ((b[at + j - 4] >> 6) << 4);
      mn[j] = (b[at + j + 4] >> 4) | ((b[at + j] >> 6) << 4);
    }
  }
}

/** Which of our GPU formats a ggml type repacks into without changing any value (src/formats/stored-dtype.ts). */
export function losslessFormats(type: number): readonly QuantFormat[] {
  return losslessFormatsOf(ggmlTypeName(type));
}

/**
 * Repacks a [rows, cols] tensor of a ggml block type into one of our GPU layouts without changing any value:
 * Q4_0 → q4 / q8, Q8_0 → q8, Q5_0 → q5 / q8, Q4_K / Q5_K / Q6_K → q4k / q5k / q6k (src/formats/kquant.ts). Same scales
 * (f16 bits copied), same integers: `dequantize` of the result equals ggml's dequantization exactly. Returns null
 * when `format` cannot hold `type` losslessly.
 */
export function repackLossless(type: number, bytes: Uint8Array, rows: number, cols: number, format: QuantFormat): PackedWeight | null {
  if (!losslessFormats(type).includes(format)) return null;
  if (isKFormat(format)) {
    if (cols % 256 !== 0) throw new GemmaError('bad-file', `a ${ggmlTypeName(type)} tensor has rows of ${cols} elements, not a multiple of 256.`);
    const k = repackGgmlK(format, bytes, rows, cols);
    return { data: k.data, scales: new Uint16Array(k.scales.buffer, k.scales.byteOffset, k.scales.length * 2) };
  }
  if (cols % GROUP !== 0) throw new GemmaError('bad-file', `a ${ggmlTypeName(type)} tensor has rows of ${cols} elements, not a multiple of ${GROUP}.`);
  const blocks = (rows * cols) / GROUP; // GGUF blocks run along each row, so block index = r · G + g as ours.
  const blockBytes = type === GGML_TYPE.Q4_0 ? 18 : type === GGML_TYPE.Q5_0 ? 22 : 34;
  if (format === 'q5') {
    // Q5_0 (half d; u32 qh; u8 qs[16]) → q5: the same d, the low nibbles in q4's order, qh as the fifth bits.
    const data = new Uint8Array(blocks * 16), scales = new Uint16Array(3 * blocks);
    for (let k = 0, o = 0; k < blocks; k++, o += 22) {
      scales[3 * k] = bytes[o] | (bytes[o + 1] << 8);
      scales[3 * k + 1] = bytes[o + 2] | (bytes[o + 3] << 8);
      scales[3 * k + 2] = bytes[o + 4] | (bytes[o + 5] << 8);
      for (let e = 0; e < 32; e += 2) data[k * 16 + (e >> 1)] = nibble(bytes, o + 6, e) | (nibble(bytes, o + 6, e + 1) << 4);
    }
    return { data: new Uint32Array(data.buffer), scales };
  }
  const scales = new Uint16Array(blocks);
  const dataBytes = new Uint8Array(blocks * (format === 'q4' ? 16 : 32));
  for (let k = 0, o = 0; k < blocks; k++, o += blockBytes) {
    scales[k] = bytes[o] | (bytes[o + 1] << 8);
    if (type === GGML_TYPE.Q8_0) {
      dataBytes.set(bytes.subarray(o + 2, o + 34), k * 32);
    } else if (type === GGML_TYPE.Q5_0) {
      // half d; u32 qh; u8 qs[16]: code of element i = nibble | bit i of qh << 4, value d·(code − 16): an int8.
      const qh = (bytes[o + 2] | (bytes[o + 3] << 8) | (bytes[o + 4] << 16) | (bytes[o + 5] << 24)) >>> 0;
      for (let e = 0; e < 32; e++) dataBytes[k * 32 + e] = ((nibble(bytes, o + 6, e) | (((qh >>> e) & 1) << 4)) - 16) & 255;
    } else if (format === 'q4') {
      // Q4_0 puts elements i and i + 16 in one byte; q4 wants elements 2i, 2i + 1 in one byte (low nibble first
      // within little-endian words), with the same unsigned 0..15 code and the same −8 offset.
      for (let e = 0; e < 32; e += 2) {
        const lo = nibble(bytes, o + 2, e), hi = nibble(bytes, o + 2, e + 1);
        dataBytes[k * 16 + (e >> 1)] = lo | (hi << 4);
      }
    } else {
      for (let e = 0; e < 32; e++) dataBytes[k * 32 + e] = (nibble(bytes, o + 2, e) - 8) & 255;
    }
  }
  return { data: new Uint32Array(dataBytes.buffer), scales };
}

/** Code (0..15) of element e (0..31) of a Q4_0 / Q5_0 block's low nibbles starting at byte `qs`. */
function nibble(bytes: Uint8Array, qs: number, e: number): number {
  return e < 16 ? bytes[qs + e] & 15 : bytes[qs + e - 16] >> 4;
}
