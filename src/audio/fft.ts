/**
 * Real-input FFT in float64 for the audio front end: an iterative radix-2 complex FFT of n / 2 points on the input
 * packed as z[j] = x[2j] + i x[2j + 1], then the split step that turns it into the n / 2 + 1 bins of the real
 * signal's spectrum. Twiddles and the bit-reversal permutation are tabulated once per size.
 */
export class RealFft {
  /** Number of output bins: n / 2 + 1. */
  readonly bins: number;
  private readonly half: number;
  private readonly rev: Uint32Array;
  /** cos / sin of 2 pi k / half, k < half / 2 (the complex FFT's twiddles). */
  private readonly cosHalf: Float64Array;
  private readonly sinHalf: Float64Array;
  /** cos / sin of 2 pi k / n, k <= half (the split step's twiddles). */
  private readonly cosFull: Float64Array;
  private readonly sinFull: Float64Array;
  private readonly re: Float64Array;
  private readonly im: Float64Array;

  constructor(readonly n: number) {
    if (!Number.isInteger(Math.log2(n)) || n < 4) throw new Error(`RealFft: size ${n} is not a power of two >= 4`);
    const half = n / 2;
    this.half = half;
    this.bins = half + 1;
    const bits = Math.log2(half);
    this.rev = new Uint32Array(half);
    for (let i = 0; i < half; i++) {
      let r = 0;
      for (let b = 0; b < bits; b++) r |= ((i >> b) & 1) << (bits - 1 - b);
      this.rev[i] = r;
    }
    this.cosHalf = new Float64Array(half / 2);
    this.sinHalf = new Float64Array(half / 2);
    for (let k = 0; k < half / 2; k++) {
      this.cosHalf[k] = Math.cos((2 * Math.PI * k) / half);
      this.sinHalf[k] = Math.sin((2 * Math.PI * k) / half);
    }
    this.cosFull = new Float64Array(half + 1);
    this.sinFull = new Float64Array(half + 1);
    for (let k = 0; k <= half; k++) {
      this.cosFull[k] = Math.cos((2 * Math.PI * k) / n);
      this.sinFull[k] = Math.sin((2 * Math.PI * k) / n);
    }
    this.re = new Float64Array(half);
    this.im = new Float64Array(half);
  }

  /**
   * |X[k]| for k = 0 .. n / 2 of the real signal `x` (length <= n, zero-padded to n), written to `out`
   * (length >= bins). X[k] = sum_j x[j] e^(-2 pi i j k / n).
   */
  magnitudes(x: ArrayLike<number>, out: Float64Array): void {
    const { half, rev, re, im } = this;
    if (x.length > this.n) throw new Error(`RealFft: ${x.length} samples for a size-${this.n} transform`);
    for (let j = 0; j < half; j++) {
      const r = rev[j];
      re[r] = 2 * j < x.length ? x[2 * j] : 0;
      im[r] = 2 * j + 1 < x.length ? x[2 * j + 1] : 0;
    }
    // Decimation in time, forward sign (e^-i).
    for (let size = 2; size <= half; size *= 2) {
      const h = size / 2;
      const step = half / size;
      for (let start = 0; start < half; start += size) {
        for (let k = 0; k < h; k++) {
          const wr = this.cosHalf[k * step];
          const wi = -this.sinHalf[k * step];
          const a = start + k;
          const b = a + h;
          const tr = re[b] * wr - im[b] * wi;
          const ti = re[b] * wi + im[b] * wr;
          re[b] = re[a] - tr;
          im[b] = im[a] - ti;
          re[a] += tr;
          im[a] += ti;
        }
      }
    }
    // Split: E[k] = (Z[k] + conj Z[half-k]) / 2, O[k] = (Z[k] - conj Z[half-k]) / 2i, X[k] = E[k] + e^(-2 pi i k/n) O[k].
    for (let k = 0; k <= half; k++) {
      const a = k % half;
      const b = (half - k) % half;
      const zr = re[a], zi = im[a], cr = re[b], ci = -im[b];
      const er = (zr + cr) / 2, ei = (zi + ci) / 2;
      // (Z - conj Z') / 2i = ((zi - ci) - i (zr - cr)) / 2
      const or = (zi - ci) / 2, oi = -(zr - cr) / 2;
      const wr = this.cosFull[k], wi = -this.sinFull[k];
      const xr = er + wr * or - wi * oi;
      const xi = ei + wr * oi + wi * or;
      out[k] = Math.sqrt(xr * xr + xi * xi);
    }
  }
}
