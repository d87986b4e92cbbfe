/**
 * The tensor types of llama.cpp's Q4_K_M mix for a Gemma 3n checkpoint (docs/gemma3n-formats.md §3.4, current
 * llama.cpp: llama-quant.cpp's rules), by HF tensor name: what a real `*-Q4_K_M.gguf` of E2B/E4B holds, for memory
 * accounting with random weights at real size (bench/memory.ts --mix q4_k_m). Not used by the library: a real file
 * says each tensor's type itself.
 * - 1-D tensors and the AltUp coefficient matrices: F32;
 * - never quantized (names with altup / laurel, per_layer_model_projection): BF16 (the source type);
 * - token embedding (the tied output) and the PLE table (a token embedding for llama.cpp): Q6_K;
 * - attn_v and ffn_down in "use more bits" layers (i < L/8, i ≥ 7L/8, (i − L/8) mod 3 = 2): Q6_K;
 * - every other matrix: Q4_K.
 */
import type { Checkpoint, TensorInfo } from '../src/io/checkpoint.ts';

export function q4KMType(name: string, shape: number[], layers: number): string {
  if (shape.length === 1 || /altup\.(prediction|correction)_coefs/.test(name)) return 'F32';
  if (/altup|laurel|per_layer_model_projection/.test(name)) return 'BF16';
  if (/embed_tokens(_per_layer)?\.weight$/.test(name)) return 'Q6_K';
  const layer = /layers\.(\d+)\.(self_attn\.v_proj|mlp\.down_proj)\./.exec(name);
  if (layer) {
    const i = Number(layer[1]), e = Math.floor(layers / 8);
    if (i < e || i >= Math.floor((7 * layers) / 8) || (i - e) % 3 === 2) return 'Q6_K';
  }
  return 'Q4_K';
}

/** Bytes a GGUF stores for `count` elements of `type`. */
export function ggufBytes(type: string, count: number): number {
  const perBlock: Record<string, [number, number]> = { F32: [1, 4], F16: [1, 2], BF16: [1, 2], Q8_0: [32, 34], Q4_K: [256, 144], Q5_K: [256, 176], Q6_K: [256, 210] };
  const [n, b] = perBlock[type];
  return (count / n) * b;
}

/**
 * `ckpt` with each tensor reporting its Q4_K_M type (values still the random floats: only for random-weight loads).
 * `int8Path`: the loader as it was before native K-quants: K types reported as a type with no lossless GPU home, so
 * the plan requantizes them to q8.
 */
export function asQ4KM(ckpt: Checkpoint, layers: number, int8Path = false): Checkpoint {
  const dtype = (t: TensorInfo) => {
    if (!t.name.startsWith('model.language_model.')) return t.dtype;
    const type = q4KMType(t.name, t.shape, layers);
    return int8Path && type.endsWith('_K') ? `${type} (requantized to q8)` : type;
  };
  return { ...ckpt, tensor: (n) => { const t = ckpt.tensor(n); return t && { ...t, dtype: dtype(t) }; }, tensorNames: () => ckpt.tensorNames(), read: (n, r) => ckpt.read(n, r) };
}
