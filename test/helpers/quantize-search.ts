/**
 * Quantizing floats into the K-quant layouts (src/formats/kquant.ts) and q5 with an error-minimising search, on the
 * CPU: the definition the GPU quantizer (shaders/quantize.wgsl quantize_q5 / _q4k / _q6k) follows step for step (not
 * bit for bit: the GPU's division and the order of its sums differ in the last bits, which can tip a near-tie between
 * two candidate scales; test/kernels/quantize-search.test.ts bounds the difference), and the tool of
 * bench/int4-plans.ts.
 *
 * The algorithm is the published K-quant scheme (llama.cpp's, without an importance matrix), written from its
 * description:
 * - q4k / q5k (codes 0..N, N = 15 / 31; w ≈ s·q − m with m ≥ 0): per 32-weight sub-block, try the scales
 *   s = (max − min) / (N + δ) for δ = −1, −0.9, …, +1 (min = the sub-block's minimum, or 0 if positive); for each,
 *   round the codes, then fit s and m by weighted least squares on those codes (m clipped at 0); keep the pair of
 *   least weighted squared error. Weights: |w| + RMS of the sub-block (larger weights matter more).
 * - the eight s and m of a super-block are then coded on 6 bits each against f16 maxima d = max s / 63,
 *   dmin = max m / 63, and every code is recomputed with the coded s and m (round to nearest, clamped).
 * - q6k (codes −32..31, w ≈ s·q): per 16-weight sub-block, try s = −max / (32 + δ), δ = −0.9 … +0.9 (max = the
 *   element of largest magnitude, so it maps to −32, the longer side), fit s by weighted least squares (weights
 *   w²), keep the best; the 16 scales are coded as signed 8-bit against one f16 d = −max_s / 128.
 * - q5 (ggml Q5_0's values d·(q − 16), group 32): the q6k search per 32-weight group with N = 16 and unit weights,
 *   then d in f16 and the codes recomputed with it. (llama.cpp's own Q5_0 takes d = max / −16 with no search.)
 */
import { f16BitsToF32, f32ToF16Bits } from '../../src/io/half.ts';
import { kDataWordsPerRow, kScaleWordsPerRow, subBlocksPerRow, superBlocksPerRow, writeCodes, type KFormat, type KPacked } from '../../src/formats/kquant.ts';
import { groupsPerRow, packQ5, type PackedWeight } from '../../src/formats/weight-format.ts';

/** Search grid of the asymmetric formats: δ from −1 in steps of 0.1, 21 candidates. */
const STEPS = 20;

/** Round half to even, as WGSL's round(). */
function roundNearest(v: number): number {
  const r = Math.round(v);
  return r - v === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/**
 * Fits one asymmetric sub-block (n values from x[at]) with codes 0..nmax: returns [s, m] (w ≈ s·q − m, m ≥ 0).
 * `codes` receives the chosen codes (before super-block coding).
 */
export function fitScaleMin(x: ArrayLike<number>, at: number, n: number, nmax: number, codes: Uint8Array): [number, number] {
  let lo = x[at], hi = x[at], ss = 0;
  for (let i = 0; i < n; i++) {
    const v = x[at + i];
    if (v < lo) lo = v;
    if (v > hi) hi = v;
    ss += v * v;
  }
  if (lo > 0) lo = 0;
  if (hi === lo) {
    codes.fill(0, 0, n);
    return [0, -lo];
  }
  const rms = Math.sqrt(ss / n);
  const weight = (v: number) => rms + Math.abs(v);
  let swx2 = 0;
  for (let i = 0; i < n; i++) swx2 += weight(x[at + i]) * x[at + i] * x[at + i];
  let bestS = (hi - lo) / nmax, bestM = -lo, bestErr = Infinity;
  const trial = new Uint8Array(n);
  for (let step = -1; step <= STEPS; step++) {
    // step −1: the plain min/max scale with its own codes (no refit); then the search.
    const iscale = step < 0 ? nmax / (hi - lo) : (nmax - 1 + (2 * step) / STEPS) / (hi - lo);
    let sw = 0, sl = 0, sl2 = 0, sx = 0, sxl = 0;
    for (let i = 0; i < n; i++) {
      const v = x[at + i];
      const q = Math.min(nmax, Math.max(0, roundNearest(iscale * (v - lo))));
      trial[i] = q;
      const w = weight(v);
      sw += w;
      sl += w * q;
      sl2 += w * q * q;
      sx += w * v;
      sxl += w * v * q;
    }
    let s: number, b: number;
    if (step < 0) {
      s = 1 / iscale;
      b = lo;
    } else {
      const det = sw * sl2 - sl * sl;
      if (!(det > 0)) continue;
      s = (sw * sxl - sx * sl) / det;
      b = (sl2 * sx - sl * sxl) / det;
      if (b > 0) {
        b = 0;
        s = sxl / sl2;
      }
    }
    // Σw(s·q + b − x)² from the sums (no second pass over the values).
    const err = s * s * sl2 + 2 * s * b * sl + b * b * sw - 2 * s * sxl - 2 * b * sx + swx2;
    if (err < bestErr) {
      bestErr = err;
      bestS = s;
      bestM = -b;
      codes.set(trial.subarray(0, n));
    }
  }
  return [Math.max(0, bestS), bestM];
}

/**
 * Fits one symmetric sub-block (n values) with codes −nmax..nmax−1: returns s (w ≈ s·q). Error weights w² (the
 * q6k search, as llama.cpp's) or 1 (q5: plain squared error, measured better on gemma3n-tiny-a: bench/int4-plans.ts).
 */
export function fitScaleSym(x: ArrayLike<number>, at: number, n: number, nmax: number, squared: boolean): number {
  let max = 0;
  for (let i = 0; i < n; i++) if (Math.abs(x[at + i]) > Math.abs(max)) max = x[at + i];
  if (max === 0) return 0;
  let bestS = -max / nmax, bestScore = -1;
  for (let step = -9; step <= 9; step++) {
    const iscale = -(nmax + 0.1 * step) / max;
    let sxl = 0, sl2 = 0;
    for (let i = 0; i < n; i++) {
      const v = x[at + i];
      const q = Math.min(nmax - 1, Math.max(-nmax, roundNearest(iscale * v)));
      const w = squared ? v * v : 1;
      sxl += w * v * q;
      sl2 += w * q * q;
    }
    // Least squares s = Σwxq / Σwq²; its error is Σwx² − (Σwxq)² / Σwq²: maximise (Σwxq)² / Σwq².
    if (sl2 > 0 && sxl * sxl > bestScore * sl2) {
      bestScore = (sxl * sxl) / sl2;
      bestS = sxl / sl2;
    }
  }
  return bestS;
}

/**
 * Quantizes a row-major [rows, cols] f32 matrix (cols a multiple of 32) into a K-quant layout (see the header).
 */
export function quantizeK(format: KFormat, values: Float32Array, rows: number, cols: number): KPacked {
  if (cols % 32 !== 0) throw new Error(`quantizeK: rows of ${cols} values are not whole 32-value sub-blocks`);
  const G = subBlocksPerRow(cols), S = superBlocksPerRow(cols);
  const dw = kDataWordsPerRow(format, cols), sw = kScaleWordsPerRow(format, cols);
  const data = new Uint32Array(rows * dw), scales = new Uint32Array(rows * sw);
  const scaleBytes = new Uint8Array(scales.buffer);
  const code = new Uint8Array(256);
  const tmp = new Uint8Array(32);
  const nmax = format === 'q4k' ? 15 : 31;
  for (let r = 0; r < rows; r++) {
    for (let s = 0; s < S; s++) {
      const first = 8 * s, n = Math.min(8, G - first);
      const base = r * cols + 32 * first;
      code.fill(0);
      if (format === 'q6k') {
        const sc = new Float64Array(16);
        let max = 0;
        for (let t = 0; t < 2 * n; t++) {
          sc[t] = fitScaleSym(values, base + 16 * t, 16, 32, true);
          if (Math.abs(sc[t]) > Math.abs(max)) max = sc[t];
        }
        const dBits = max === 0 ? 0 : f32ToF16Bits(-max / 128);
        const d = f16BitsToF32(dBits);
        const inv = d === 0 ? 0 : 1 / d;
        for (let t = 0; t < 16; t++) {
          const q = t < 2 * n ? Math.min(127, Math.max(-128, roundNearest(inv * sc[t]))) : 0;
          scaleBytes[(r * sw + 4 * s) * 4 + t] = q & 255;
          const step = Math.fround(d * q);
          for (let i = 0; i < 16 && t < 2 * n; i++) {
            const v = values[base + 16 * t + i];
            const l = step === 0 ? 0 : Math.min(31, Math.max(-32, roundNearest(v / step)));
            code[16 * t + i] = l + 32;
          }
        }
        scales[r * sw + 4 * S + (s >> 1)] |= dBits << (16 * (s & 1));
      } else {
        const ss = new Float64Array(8), mm = new Float64Array(8);
        let maxS = 0, maxM = 0;
        for (let j = 0; j < n; j++) {
          [ss[j], mm[j]] = fitScaleMin(values, base + 32 * j, 32, nmax, tmp);
          maxS = Math.max(maxS, ss[j]);
          maxM = Math.max(maxM, mm[j]);
        }
        const dBits = f32ToF16Bits(maxS / 63), mBits = f32ToF16Bits(maxM / 63);
        const d = f16BitsToF32(dBits), dmin = f16BitsToF32(mBits);
        const sc = new Uint8Array(8), mn = new Uint8Array(8);
        for (let j = 0; j < n; j++) {
          sc[j] = d === 0 ? 0 : Math.min(63, roundNearest(ss[j] / d));
          mn[j] = dmin === 0 ? 0 : Math.min(63, roundNearest(mm[j] / dmin));
          const step = Math.fround(d * sc[j]), min = Math.fround(dmin * mn[j]);
          for (let i = 0; i < 32; i++) {
            const v = values[base + 32 * j + i];
            code[32 * j + i] = step === 0 ? 0 : Math.min(nmax, Math.max(0, roundNearest((v + min) / step)));
          }
        }
        const o = (r * sw + 4 * s) * 4;
        scales[r * sw + 4 * s] = (dBits | (mBits << 16)) >>> 0;
        // ggml's get_scale_min_k4 packing, inverted.
        for (let j = 0; j < 8; j++) {
          if (j < 4) {
            scaleBytes[o + 4 + j] = sc[j];
            scaleBytes[o + 8 + j] = mn[j];
          } else {
            scaleBytes[o + 12 + j - 4] = (sc[j] & 15) | ((mn[j] & 15) << 4);
            scaleBytes[o + 4 + j - 4] |= (sc[j] >> 4) << 6;
            scaleBytes[o + 8 + j - 4] |= (mn[j] >> 4) << 6;
          }
        }
      }
      writeCodes(format, data, r * dw, G, first, code);
    }
  }
  return { data, scales };
}

/** Quantizes a row-major [rows, cols] f32 matrix into q5 with the symmetric search (see the header). */
export function quantizeQ5(values: Float32Array, rows: number, cols: number): PackedWeight {
  const G = groupsPerRow(cols);
  const d = new Uint16Array(rows * G);
  const q = new Uint8Array(rows * cols);
  const group = new Float32Array(32);
  for (let r = 0; r < rows; r++) {
    for (let g = 0; g < G; g++) {
      const n = Math.min(32, cols - 32 * g);
      group.fill(0);
      group.set(values.subarray(r * cols + 32 * g, r * cols + 32 * g + n));
      const bits = f32ToF16Bits(fitScaleSym(group, 0, 32, 16, false));
      d[r * G + g] = bits;
      const step = f16BitsToF32(bits);
      for (let i = 0; i < n; i++) q[r * cols + 32 * g + i] = (step === 0 ? 0 : Math.min(15, Math.max(-16, roundNearest(group[i] / step)))) + 16;
    }
  }
  return packQ5(q, d, rows, cols);
}
