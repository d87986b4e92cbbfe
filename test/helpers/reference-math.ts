/** float64 building blocks of the CPU reference decoders (test/helpers/reference-gemma3n.ts, reference-gemma4.ts). */

/** Weights by HF name, as f32 values. */
export type RefWeights = Map<string, Float32Array>;

export type Vec = Float64Array<ArrayBufferLike>;

export function get(w: RefWeights, name: string): Float32Array {
  const t = w.get(name);
  if (!t) throw new Error(`reference: missing tensor ${name}`);
  return t;
}

/** y = W x for W [out, in] row-major. */
export function linear(W: Float32Array, x: ArrayLike<number>, out: number): Vec {
  const inn = x.length;
  if (W.length !== out * inn) throw new Error(`reference: linear shape mismatch ${W.length} != ${out}x${inn}`);
  const y = new Float64Array(out);
  for (let i = 0; i < out; i++) {
    let s = 0;
    const base = i * inn;
    for (let j = 0; j < inn; j++) s += W[base + j] * x[j];
    y[i] = s;
  }
  return y;
}

/** RMSNorm with the stored weight (w, not 1 + w, as Gemma 3n and 4); no weight: plain RMS normalization. */
export function rmsNorm(x: ArrayLike<number>, weight: Float32Array | undefined, eps: number): Vec {
  let ss = 0;
  for (let i = 0; i < x.length; i++) ss += x[i] * x[i];
  const inv = 1 / Math.sqrt(ss / x.length + eps);
  const y = new Float64Array(x.length);
  for (let i = 0; i < x.length; i++) y[i] = x[i] * inv * (weight ? weight[i] : 1);
  return y;
}

/** gelu_pytorch_tanh. */
export const geluTanh = (x: number) => 0.5 * x * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (x + 0.044715 * x * x * x)));
