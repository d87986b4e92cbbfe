/**
 * Per-element quantization facts of ggml blocks, read independently of src/io/gguf-types.ts's decoder, for
 * bounding |dequantized − original|: each element's grid step (its block's or sub-block's scale), its distance from
 * the grid's centre in steps (how much an f16 rounding of the scale moves it), and whether it sits on the grid's
 * edge (where the quantizer clamps, so the error can exceed half a step).
 */
import { f16BitsToF32 } from '../../src/io/half.ts';
import { GGML_TYPE } from '../../src/io/gguf-types.ts';

export interface ElementGrid {
  step: Float64Array;
  /** |code − grid centre|: the multiple of the scale this element's value is. */
  level: Float64Array;
  /** 1 where the code is the grid's lowest or highest. */
  edge: Uint8Array;
}

export function elementGrid(type: number, bytes: Uint8Array, count: number): ElementGrid {
  const step = new Float64Array(count), level = new Float64Array(count), edge = new Uint8Array(count);
  const u16 = (o: number) => bytes[o] | (bytes[o + 1] << 8);
  const set = (i: number, s: number, code: number, centre: number, lo: number, hi: number) => {
    step[i] = Math.abs(s);
    level[i] = Math.abs(code - centre);
    edge[i] = code === lo || code === hi ? 1 : 0;
  };
  if (type === GGML_TYPE.Q8_0) {
    for (let b = 0; b < count / 32; b++) {
      const d = f16BitsToF32(u16(34 * b));
      for (let i = 0; i < 32; i++) set(32 * b + i, d, (bytes[34 * b + 2 + i] << 24) >> 24, 0, -127, 127);
    }
  } else if (type === GGML_TYPE.Q4_0) {
    for (let b = 0; b < count / 32; b++) {
      const d = f16BitsToF32(u16(18 * b));
      for (let i = 0; i < 32; i++) {
        const byte = bytes[18 * b + 2 + (i % 16)];
        set(32 * b + i, d, i < 16 ? byte & 15 : byte >> 4, 8, 0, 15);
      }
    }
  } else if (type === GGML_TYPE.Q5_0) {
    for (let b = 0; b < count / 32; b++) {
      const o = 22 * b;
      const d = f16BitsToF32(u16(o));
      const qh = (u16(o + 2) | (u16(o + 4) << 16)) >>> 0;
      for (let i = 0; i < 32; i++) {
        const byte = bytes[o + 6 + (i % 16)];
        const code = (i < 16 ? byte & 15 : byte >> 4) | (((qh >>> i) & 1) << 4);
        set(32 * b + i, d, code, 16, 0, 31);
      }
    }
  } else if (type === GGML_TYPE.Q4_K) {
    for (let b = 0; b < count / 256; b++) {
      const o = 144 * b;
      const d = f16BitsToF32(u16(o));
      const s = bytes.subarray(o + 4, o + 16);
      for (let j = 0; j < 8; j++) {
        const sc = j < 4 ? s[j] & 63 : (s[j + 4] & 15) | ((s[j - 4] >> 6) << 4);
        for (let l = 0; l < 32; l++) {
          const byte = bytes[o + 16 + 32 * (j >> 1) + l];
          // The grid is (code·step − min): the level that an f16 error in d would scale is the code itself, but the
          // codes are recomputed with the final d, so no f16 term applies (level only reported).
          set(256 * b + 32 * j + l, d * sc, j % 2 === 0 ? byte & 15 : byte >> 4, 0, 0, 15);
        }
      }
    }
  } else if (type === GGML_TYPE.Q6_K) {
    for (let b = 0; b < count / 256; b++) {
      const o = 210 * b;
      const d = f16BitsToF32(u16(o + 208));
      for (let half = 0; half < 2; half++) {
        for (let l = 0; l < 32; l++) {
          const ql0 = bytes[o + 64 * half + l], ql1 = bytes[o + 64 * half + l + 32], qh = bytes[o + 128 + 32 * half + l];
          const codes = [(ql0 & 15) | ((qh & 3) << 4), (ql1 & 15) | (((qh >> 2) & 3) << 4), (ql0 >> 4) | (((qh >> 4) & 3) << 4), (ql1 >> 4) | (((qh >> 6) & 3) << 4)];
          for (let k = 0; k < 4; k++) {
            const sc = (bytes[o + 192 + 8 * half + (l >> 4) + 2 * k] << 24) >> 24;
            set(256 * b + 128 * half + 32 * k + l, d * sc, codes[k], 32, 0, 63);
          }
        }
      }
    }
  } else {
    throw new Error(`elementGrid: type ${type} not covered`);
  }
  return { step, level, edge };
}
