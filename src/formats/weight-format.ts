/**
 * GPU weight formats and their exact CPU definitions (used by tests, by the GGUF repacker and as the
 * documentation of the layouts the WGSL kernels read).
 *
 * A linear layer's weight W is [rows = out features, cols = in features] (PyTorch order), y = W x.
 *
 * - 'f32' / 'f16': row-major, `rows * cols` elements. f16 only where the adapter has shader-f16.
 * - 'q4' (int4, group 32 along cols, symmetric): G = ceil(cols / 32) groups per row, the last one padded with
 *   zeros. `data` holds rows * G blocks of 16 bytes (4 u32 words): block (r, g) at block index r * G + g; word j of
 *   a block holds elements 8j .. 8j + 7 of the group, element 8j + i in bits 4i .. 4i + 3, as unsigned q in 0..15;
 *   value = (q - 8) * scale. One block = one vec4<u32> = 32 weights, so a GEMV thread reads a group with one
 *   coalesced 16-byte load. `scales` holds rows * G f16 scales packed two per u32 (scale s at word s >> 1, low half
 *   first: WGSL `unpack2x16float(scales[s >> 1])[s & 1]`, which needs no shader-f16). llama.cpp's Q4_0 (f16 d,
 *   (q - 8) * d) repacks into this losslessly.
 * - 'q8' (int8, group 32, symmetric): rows * G blocks of 32 bytes (8 u32 words); byte i (little-endian within the
 *   words) is element i of the group as a two's-complement int8; value = q * scale. Scales as for q4. llama.cpp's
 *   Q8_0 repacks losslessly.
 *
 * - 'q5' (int5, group 32, symmetric: ggml Q5_0's values, which repack into it losslessly): `data` as q4 (the low 4
 *   bits of each code 0..31 in q4's nibble order, one 16-byte unit per group); `scales` holds 3 16-bit units per
 *   group, flat over groups f = r * G + g: unit 3f = f16 d, units 3f + 1 (low) and 3f + 2 (high) = the 32 fifth bits
 *   (bit e = element e). value = (code - 16) * d. 22 bytes per 32 weights, as Q5_0. Parts start on even rows, so a
 *   part's scale units start on a word.
 * - 'q4k' / 'q5k' / 'q6k': ggml's K-quants (super-blocks of 256 with 6-bit / 8-bit sub-block scales), laid out as
 *   src/formats/kquant.ts describes: `data` holds the codes (16-byte nibble units per 32-weight sub-block, then the
 *   high bits), `scales` the super-block headers; rows are whole words in both, back to back.
 *
 * Tensors bigger than the adapter's maxStorageBufferBindingSize are split by rows into parts, each part a
 * self-contained weight of the same format.
 */
export type WeightFormat = 'f32' | 'f16' | 'q4' | 'q5' | 'q8' | KFormat;

/** The formats with a `scales` buffer. */
export type QuantFormat = 'q4' | 'q5' | 'q8' | KFormat;

/** The group-32 formats (one scale per 32 weights): q4, q5, q8. */
export type GroupFormat = 'q4' | 'q5' | 'q8';

export function isQuantFormat(format: WeightFormat): format is QuantFormat {
  return format !== 'f32' && format !== 'f16';
}

import { dequantizeK, isKFormat, kDataWordsPerRow, kScaleWordsPerRow, type KFormat } from './kquant.ts';

export const GROUP = 32;

export interface WeightPart {
  /** First row of W in this part. */
  rowStart: number;
  rows: number;
  data: GPUBuffer;
  /** q4/q8 only. */
  scales?: GPUBuffer;
}

export interface GpuWeight {
  format: WeightFormat;
  rows: number;
  cols: number;
  parts: WeightPart[];
  /** Bytes on the GPU (data + scales), for memory accounting. */
  bytes: number;
}

export function groupsPerRow(cols: number): number {
  return Math.ceil(cols / GROUP);
}

/** Bytes of `data` for `rows` rows. */
export function dataBytes(format: WeightFormat, rows: number, cols: number): number {
  if (isKFormat(format)) return rows * kDataWordsPerRow(format, cols) * 4;
  switch (format) {
    case 'f32':
      return rows * cols * 4;
    case 'f16':
      return Math.ceil((rows * cols) / 2) * 4;
    case 'q4':
    case 'q5':
      return rows * groupsPerRow(cols) * 16;
    case 'q8':
      return rows * groupsPerRow(cols) * 32;
  }
}

/** Bytes of `scales` for `rows` rows (0 for float formats). */
export function scaleBytes(format: WeightFormat, rows: number, cols: number): number {
  if (isKFormat(format)) return rows * kScaleWordsPerRow(format, cols) * 4;
  if (format === 'q5') return Math.ceil((3 * rows * groupsPerRow(cols)) / 2) * 4;
  return format === 'q4' || format === 'q8' ? Math.ceil((rows * groupsPerRow(cols)) / 2) * 4 : 0;
}

/**
 * 16-bit units of `PackedWeight.scales` per row: q4/q8 one f16 scale per group (two rows may share a u32 word when
 * G is odd, which is why parts start on even rows), K-quants their whole-word header rows.
 */
export function scaleHalvesPerRow(format: QuantFormat, cols: number): number {
  return isKFormat(format) ? 2 * kScaleWordsPerRow(format, cols) : (format === 'q5' ? 3 : 1) * groupsPerRow(cols);
}

/** CPU packing of already-quantized values: q4 `q` in 0..15, q8 `q` in -128..127, one scale per (row, group). */
export interface PackedWeight {
  data: Uint32Array;
  /**
   * q4/q8: f16 bit patterns, rows * G of them (packed two per u32 when uploaded: `scalesAsWords`). K-quants: the
   * scales words (kquant.ts) seen as 16-bit units, `scaleHalvesPerRow` per row.
   */
  scales: Uint16Array;
}

export function packQ4(q: ArrayLike<number>, scales: Uint16Array, rows: number, cols: number): PackedWeight {
  const G = groupsPerRow(cols);
  const data = new Uint32Array(rows * G * 4);
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < G * GROUP; c++) {
      const v = c < cols ? q[r * cols + c] : 8;
      const g = c >> 5, e = c & 31;
      data[(r * G + g) * 4 + (e >> 3)] |= (v & 15) << (4 * (e & 7));
    }
  }
  return { data, scales };
}

export function packQ8(q: ArrayLike<number>, scales: Uint16Array, rows: number, cols: number): PackedWeight {
  const G = groupsPerRow(cols);
  const bytes = new Uint8Array(rows * G * 32);
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) bytes[r * G * 32 + c] = q[r * cols + c] & 255;
  }
  return { data: new Uint32Array(bytes.buffer), scales };
}

/**
 * q5 from codes 0..31 (value (code - 16) * d) and one f16 d per (row, group): nibbles as q4, and the scale units
 * [d, fifth bits low, fifth bits high] per group (`scales` of the result; upload with `scalesAsWords`).
 */
export function packQ5(q: ArrayLike<number>, d: Uint16Array, rows: number, cols: number): PackedWeight {
  const G = groupsPerRow(cols);
  const data = new Uint32Array(rows * G * 4);
  const scales = new Uint16Array(3 * rows * G);
  for (let r = 0; r < rows; r++) {
    for (let g = 0; g < G; g++) {
      const f = r * G + g;
      let bits = 0;
      for (let e = 0; e < GROUP; e++) {
        const c = g * GROUP + e;
        const v = c < cols ? q[r * cols + c] : 16;
        data[f * 4 + (e >> 3)] |= (v & 15) << (4 * (e & 7));
        bits |= ((v >> 4) & 1) << e;
      }
      scales[3 * f] = d[f];
      scales[3 * f + 1] = bits & 0xffff;
      scales[3 * f + 2] = bits >>> 16;
    }
  }
  return { data, scales };
}

/** f16 scales as the u32 words the kernels read. */
export function scalesAsWords(scales: Uint16Array): Uint32Array {
  const words = new Uint32Array(Math.ceil(scales.length / 2));
  new Uint16Array(words.buffer).set(scales);
  return words;
}

/** Dequantizes a packed quantized weight to f32 [rows, cols] (the exact values the kernels use). */
export function dequantize(format: QuantFormat, packed: PackedWeight, rows: number, cols: number, f16ToF32: (h: number) => number): Float32Array {
  if (isKFormat(format)) {
    const s = packed.scales;
    const words = s.byteOffset % 4 === 0 ? new Uint32Array(s.buffer, s.byteOffset, s.length >> 1) : new Uint32Array(s.slice().buffer);
    return dequantizeK(format, { data: packed.data, scales: words }, rows, cols, f16ToF32);
  }
  const G = groupsPerRow(cols);
  const out = new Float32Array(rows * cols);
  const bytes = new Uint8Array(packed.data.buffer, packed.data.byteOffset, packed.data.byteLength);
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) {
      const g = c >> 5, e = c & 31;
      const f = r * G + g;
      const scale = f16ToF32(packed.scales[format === 'q5' ? 3 * f : f]);
      let q: number;
      if (format === 'q4') q = ((packed.data[f * 4 + (e >> 3)] >>> (4 * (e & 7))) & 15) - 8;
      else if (format === 'q5') {
        const bits = packed.scales[3 * f + 1] | (packed.scales[3 * f + 2] << 16);
        q = (((packed.data[f * 4 + (e >> 3)] >>> (4 * (e & 7))) & 15) | (((bits >>> e) & 1) << 4)) - 16;
      } else q = (bytes[f * 32 + e] << 24) >> 24;
      out[r * cols + c] = q * scale;
    }
  }
  return out;
}
