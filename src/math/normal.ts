/**
 * The standard normal distribution's CDF and its inverse. Gemma 3n's activation sparsity keeps gate values above
 * μ + κσ with κ = Φ⁻¹(p) (docs/gemma3n-formats.md §2.9); HF stores p, GGUF stores κ, so both directions are needed.
 * One copy, used by the config parser, the GGUF reader and the gelu_gate kernel.
 */

/** erf in double: 2/sqrt(pi) e^(-x^2) sum_n 2^n x^(2n+1) / (1*3*...*(2n+1)), all terms positive (no cancellation). */
function erf64(x: number): number {
  const ax = Math.abs(x);
  if (ax >= 6) return Math.sign(x);
  let term = ax;
  let sum = ax;
  const x2 = ax * ax;
  for (let n = 1; n < 500 && term > sum * 1e-17; n++) {
    term *= (2 * x2) / (2 * n + 1);
    sum += term;
  }
  return Math.sign(x) * (2 / Math.sqrt(Math.PI)) * Math.exp(-x2) * sum;
}

/** erfinv in double: Giles' single-precision approximation, then Newton steps on erf64. */
function erfinv64(x: number): number {
  if (x <= -1) return -Infinity;
  if (x >= 1) return Infinity;
  let w = -Math.log((1 - x) * (1 + x));
  let p: number;
  if (w < 5) {
    w -= 2.5;
    p = 2.81022636e-8;
    for (const c of [3.43273939e-7, -3.5233877e-6, -4.39150654e-6, 0.00021858087, -0.00125372503, -0.00417768164, 0.246640727, 1.50140941]) p = c + p * w;
  } else {
    w = Math.sqrt(w) - 3;
    p = -0.000200214257;
    for (const c of [0.000100950558, 0.00134934322, -0.00367342844, 0.00573950773, -0.0076224613, 0.00943887047, 1.00167406, 2.83297682]) p = c + p * w;
  }
  let y = p * x;
  for (let i = 0; i < 3; i++) y -= (erf64(y) - x) / ((2 / Math.sqrt(Math.PI)) * Math.exp(-y * y));
  return y;
}

/**
 * Φ⁻¹(p) as torch's `Normal(0, 1).icdf(torch.tensor(p, dtype=float32))` computes it: every step in f32,
 * `erfinv(2p - 1) * sqrt(2)` (with an accurately rounded erfinv). Φ⁻¹(0.95) = 1.6448536 (f32); llama.cpp's
 * hard-coded 1.6448533535 differs in the 7th digit. p = 0 gives -Infinity (GGUF's value for dense layers).
 */
export function inverseNormalCdf(p: number): number {
  const f = Math.fround;
  const x = f(f(2 * f(p)) - 1);
  return f(f(erfinv64(x)) * Math.SQRT2);
}


/** Φ(x), the standard normal CDF, to ~1e-14 (erf by its Taylor series near 0, erfc by a continued fraction beyond). */
export function normalCdf(x: number): number {
  const z = Math.abs(x) / Math.SQRT2;
  let erfcZ: number;
  if (z < 3) {
    let term = z, sum = z;
    for (let n = 1; n < 200 && Math.abs(term) > 1e-17 * Math.abs(sum); n++) {
      term *= (-z * z) / n;
      sum += term / (2 * n + 1);
    }
    erfcZ = 1 - (2 / Math.sqrt(Math.PI)) * sum;
  } else {
    // erfc(z) = exp(−z²)/√π · 1/(z + 1/2/(z + 1/(z + 3/2/(z + …)))), evaluated bottom-up.
    let f = z;
    for (let n = 60; n >= 1; n--) f = z + n / 2 / f;
    erfcZ = Math.exp(-z * z) / Math.sqrt(Math.PI) / f;
  }
  return x >= 0 ? 1 - erfcZ / 2 : erfcZ / 2;
}
