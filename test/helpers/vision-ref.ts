/**
 * float64 CPU references of the vision kernels (channels-last HWC layouts, as the kernels use), and the error
 * bound the tests apply: a float32 sum of n terms is within n * 2^-24 * sum|terms| of the exact sum (the classical
 * worst-case bound for recursive summation), so each output is checked against its own bound, never a guess.
 */
import assert from 'node:assert/strict';
import { f16BitsToF32, f32ToBf16Bits, f32ToF16Bits } from '../../src/io/half.ts';
import type { ConvWeightFormat } from '../../src/kernels/conv2d.ts';
import type { Rng } from './random.ts';

export const U32 = 2 ** -24;

/** Asserts |got - ref| <= bound (elementwise); NaN/inf in `got` always fails. Returns the max abs error. */
export function assertWithin(got: ArrayLike<number>, ref: ArrayLike<number>, bound: ArrayLike<number> | number, tag: string): number {
  assert.equal(got.length, ref.length, `length mismatch ${tag}`);
  let maxErr = 0;
  for (let i = 0; i < ref.length; i++) {
    const g = got[i];
    if (!Number.isFinite(g)) assert.fail(`element ${i} is ${g} (expected ${ref[i]}) ${tag}`);
    const err = Math.abs(g - ref[i]);
    const b = typeof bound === 'number' ? bound : bound[i];
    if (!(err <= b)) assert.fail(`element ${i}: got ${g}, expected ${ref[i]}, error ${err} > bound ${b} ${tag}`);
    maxErr = Math.max(maxErr, err);
  }
  return maxErr;
}

/** Random weights rounded to `format`: the GPU bytes and the float values they stand for. */
export function randomWeights(rng: Rng, n: number, std: number, format: ConvWeightFormat): { bytes: ArrayBufferView; values: Float32Array } {
  const raw = rng.normals(n, std);
  if (format === 'f32') return { bytes: raw, values: raw };
  const bits = new Uint16Array(n);
  const values = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    if (format === 'bf16') {
      bits[i] = f32ToBf16Bits(raw[i]);
      values[i] = new Float32Array(new Uint32Array([bits[i] << 16]).buffer)[0];
    } else {
      bits[i] = f32ToF16Bits(raw[i]);
      values[i] = f16BitsToF32(bits[i]);
    }
  }
  return { bytes: bits, values };
}

export interface ConvRefArgs {
  x: Float32Array;
  H: number;
  W: number;
  C: number;
  /** Weights out-major [N, kh, kw, C] (the GPU layout). */
  w: Float32Array;
  N: number;
  kh: number;
  kw: number;
  stride: number;
  padTop: number;
  padLeft: number;
  OH: number;
  OW: number;
  bias?: Float32Array;
}

/** Full convolution: y [OH * OW, N] and the per-output error bound of an f32 evaluation. */
export function convRef(a: ConvRefArgs): { y: Float64Array; bound: Float64Array } {
  const y = new Float64Array(a.OH * a.OW * a.N);
  const bound = new Float64Array(y.length);
  const terms = a.kh * a.kw * a.C + (a.bias ? 1 : 0);
  for (let oy = 0; oy < a.OH; oy++)
    for (let ox = 0; ox < a.OW; ox++)
      for (let n = 0; n < a.N; n++) {
        let s = a.bias ? a.bias[n] : 0;
        let abs = Math.abs(s);
        for (let ky = 0; ky < a.kh; ky++) {
          const iy = oy * a.stride - a.padTop + ky;
          if (iy < 0 || iy >= a.H) continue;
          for (let kx = 0; kx < a.kw; kx++) {
            const ix = ox * a.stride - a.padLeft + kx;
            if (ix < 0 || ix >= a.W) continue;
            const xb = (iy * a.W + ix) * a.C;
            const wb = ((n * a.kh + ky) * a.kw + kx) * a.C;
            for (let c = 0; c < a.C; c++) {
              const t = a.x[xb + c] * a.w[wb + c];
              s += t;
              abs += Math.abs(t);
            }
          }
        }
        const i = (oy * a.OW + ox) * a.N + n;
        y[i] = s;
        bound[i] = (terms + 2) * U32 * abs + 1e-30;
      }
  return { y, bound };
}

/** Depthwise convolution, weights [kh, kw, C] (the GPU layout). */
export function depthwiseRef(x: Float32Array, H: number, W: number, C: number, w: Float32Array, k: number, stride: number, padTop: number, padLeft: number, OH: number, OW: number): { y: Float64Array; bound: Float64Array } {
  const y = new Float64Array(OH * OW * C);
  const bound = new Float64Array(y.length);
  for (let oy = 0; oy < OH; oy++)
    for (let ox = 0; ox < OW; ox++)
      for (let c = 0; c < C; c++) {
        let s = 0;
        let abs = 0;
        for (let ky = 0; ky < k; ky++) {
          const iy = oy * stride - padTop + ky;
          if (iy < 0 || iy >= H) continue;
          for (let kx = 0; kx < k; kx++) {
            const ix = ox * stride - padLeft + kx;
            if (ix < 0 || ix >= W) continue;
            const t = x[(iy * W + ix) * C + c] * w[(ky * k + kx) * C + c];
            s += t;
            abs += Math.abs(t);
          }
        }
        const i = (oy * OW + ox) * C + c;
        y[i] = s;
        bound[i] = (k * k + 1) * U32 * abs + 1e-30;
      }
  return { y, bound };
}

export function geluTanh(x: number): number {
  return 0.5 * x * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (x + 0.044715 * x ** 3)));
}

/** RMS norm over the C channels of each of `pixels` pixels: x * alpha / sqrt(mean((x * alpha)^2) + eps) * w. */
export function channelNormRef(x: ArrayLike<number>, pixels: number, C: number, w: ArrayLike<number> | undefined, eps: number, alpha = 1): Float64Array {
  const y = new Float64Array(pixels * C);
  for (let p = 0; p < pixels; p++) {
    let ss = 0;
    for (let c = 0; c < C; c++) ss += (x[p * C + c] * alpha) ** 2;
    const inv = 1 / Math.sqrt(ss / C + eps);
    for (let c = 0; c < C; c++) y[p * C + c] = x[p * C + c] * alpha * inv * (w ? w[c] : 1);
  }
  return y;
}
