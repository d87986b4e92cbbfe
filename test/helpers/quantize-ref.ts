/**
 * CPU reference quantizer: the exact definition the GPU quantizer (shaders/quantize.wgsl) must reproduce bit for
 * bit. Computed in float64, where every quotient below lands on the same side of every rounding boundary as the
 * exact real quotient (and exactly on it only when the real one is), so no tricks are needed here.
 */
import { packQ4, packQ8, groupsPerRow, GROUP, type PackedWeight } from '../../src/formats/weight-format.ts';

/** round half to even of a float64. */
export function rne(v: number): number {
  const f = Math.floor(v);
  const d = v - f;
  if (d > 0.5 || (d === 0.5 && f % 2 !== 0)) return f + 1;
  return f;
}

/** The f16 nearest (ties to even) to a float64 v >= 0, saturating at 65504 (0x7bff). */
export function f16BitsNearest(v: number): number {
  if (v >= 65504) return 0x7bff;
  if (v < 2 ** -14) return rne(v * 2 ** 24); // subnormal (1024 = 0x400, the smallest normal, is right too)
  let e = Math.floor(Math.log2(v));
  if (2 ** e > v) e--;
  if (2 ** (e + 1) <= v) e++;
  let frac = rne((v / 2 ** e - 1) * 1024);
  if (frac === 1024) {
    frac = 0;
    e++;
    if (e > 15) return 0x7bff;
  }
  return ((e + 15) << 10) | frac;
}

export function f16Value(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 31;
  const m = h & 1023;
  return e === 0 ? s * m * 2 ** -24 : s * (1 + m / 1024) * 2 ** (e - 15);
}

export interface RefQuantized {
  /** q4: 0..15 (stored, value q - 8); q8: -128..127. rows * cols. */
  q: Int16Array;
  scales: Uint16Array;
  packed: PackedWeight;
}

/**
 * q4: d = f16(m / -8) with m the first element of largest |w| in the group; q = clamp(rne(w / d), -8, 7) + 8.
 * q8: d = f16(absmax / 127); q = clamp(rne(w / d), -128, 127). d = 0 gives q = 0. `w` holds f32 values.
 */
export function quantizeRef(format: 'q4' | 'q8', w: ArrayLike<number>, rows: number, cols: number): RefQuantized {
  const G = groupsPerRow(cols);
  const q = new Int16Array(rows * cols);
  const scales = new Uint16Array(rows * G);
  for (let r = 0; r < rows; r++) {
    for (let g = 0; g < G; g++) {
      const c0 = g * GROUP;
      const c1 = Math.min(cols, c0 + GROUP);
      let amax = 0;
      let smax = 0;
      for (let c = c0; c < c1; c++) {
        const v = w[r * cols + c];
        if (Math.abs(v) > amax) {
          amax = Math.abs(v);
          smax = v;
        }
      }
      const h = format === 'q4' ? f16BitsNearest(amax / 8) | (smax > 0 ? 0x8000 : 0) : f16BitsNearest(amax / 127);
      scales[r * G + g] = h;
      const d = f16Value(h);
      const [lo, hi] = format === 'q4' ? [-8, 7] : [-128, 127];
      for (let c = c0; c < c1; c++) {
        const k = d === 0 ? 0 : Math.min(hi, Math.max(lo, rne(w[r * cols + c] / d)));
        q[r * cols + c] = format === 'q4' ? k + 8 : k;
      }
    }
  }
  const packed = format === 'q4' ? packQ4(q, scales, rows, cols) : packQ8(q, scales, rows, cols);
  return { q, scales, packed };
}
