/** Random K-quant weights for tests: ggml blocks (for the repack) and our layout directly (for any row length). */
import { f32ToF16Bits } from '../../src/io/half.ts';
import { GGML_K_BLOCK_BYTES, kDataWordsPerRow, kScaleWordsPerRow, subBlocksPerRow, superBlocksPerRow, writeCodes, type KFormat, type KPacked } from '../../src/formats/kquant.ts';
import type { Rng } from './random.ts';

/** A random positive f16 in [lo, hi) as bits. */
function f16In(rng: Rng, lo: number, hi: number): number {
  return f32ToF16Bits(rng.uniform(lo, hi));
}

/**
 * `rows` rows of random ggml blocks (cols a multiple of 256): every byte random except the f16 super-block scales,
 * which are positive and of the size real files have (d ~ 1e-3, so values stay O(1)). `subnormal`: some d are f16
 * subnormals (the exact-decode path).
 */
export function randomGgmlKBlocks(rng: Rng, format: KFormat, rows: number, cols: number, subnormal = false): Uint8Array {
  const nb = (rows * cols) / 256;
  const size = GGML_K_BLOCK_BYTES[format];
  const bytes = new Uint8Array(nb * size);
  for (let i = 0; i < bytes.length; i++) bytes[i] = rng.int(0, 256);
  const d = () => (subnormal && rng.next() < 0.25 ? rng.int(1, 1024) : f16In(rng, 2e-4, 4e-3));
  for (let b = 0; b < nb; b++) {
    const o = b * size;
    const put = (at: number, h: number) => { bytes[at] = h & 255; bytes[at + 1] = h >> 8; };
    if (format === 'q6k') put(o + 208, d());
    else {
      put(o, d());
      put(o + 2, d());
    }
  }
  return bytes;
}

/** A random weight in our K layout for any cols (a multiple of 32): random codes, headers as randomGgmlKBlocks. */
export function randomKPacked(rng: Rng, format: KFormat, rows: number, cols: number): KPacked {
  const G = subBlocksPerRow(cols), S = superBlocksPerRow(cols);
  const dw = kDataWordsPerRow(format, cols), sw = kScaleWordsPerRow(format, cols);
  const data = new Uint32Array(rows * dw), scales = new Uint32Array(rows * sw);
  const max = format === 'q4k' ? 16 : format === 'q5k' ? 32 : 64;
  const code = new Uint8Array(256);
  for (let r = 0; r < rows; r++) {
    for (let s = 0; s < S; s++) {
      for (let i = 0; i < 256; i++) code[i] = rng.int(0, max);
      writeCodes(format, data, r * dw, G, 8 * s, code);
      if (format === 'q6k') {
        for (let w = 0; w < 4; w++) scales[r * sw + 4 * s + w] = rng.int(0, 2 ** 32) >>> 0;
        scales[r * sw + 4 * S + (s >> 1)] |= f16In(rng, 2e-4, 4e-3) << (16 * (s & 1));
      } else {
        scales[r * sw + 4 * s] = (f16In(rng, 2e-4, 4e-3) | (f16In(rng, 2e-4, 4e-3) << 16)) >>> 0;
        for (let w = 1; w < 4; w++) scales[r * sw + 4 * s + w] = rng.int(0, 2 ** 32) >>> 0;
      }
    }
  }
  return { data, scales };
}

/** The scales words as the 16-bit units PackedWeight / HostWeight carry. */
export function scaleHalves(scales: Uint32Array): Uint16Array {
  return new Uint16Array(scales.buffer, scales.byteOffset, scales.length * 2);
}
