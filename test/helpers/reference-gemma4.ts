/**
 * A float64 CPU reference of the Gemma 4 text decoder, written from the fixture README's forward summary
 * (test/fixtures/gemma4-tiny-a/README.md) and HF modeling_gemma4.py, for tests: it proves our reading of the math
 * against golden.json, and — run on dequantized q4 weights — separates quantization error from kernel error.
 * Whole-sequence only (causal attention over all positions at once, no cache, KV sharing by recomputation-free reuse
 * of the source layer's K/V); only for tiny checkpoints.
 */
import type { Gemma4Config } from '../../src/model/gemma4/config.ts';
import { readF32, type Checkpoint } from '../../src/io/checkpoint.ts';
import { geluTanh, get, linear, rmsNorm, type RefWeights, type Vec } from './reference-math.ts';

export type { RefWeights };

const LM = 'model.language_model.';

/** Reads the tensors the decoder uses (KV-shared layers' k/v/k_norm are skipped: the reference never needs them). */
export async function loadGemma4RefWeights(ckpt: Checkpoint, cfg: Gemma4Config): Promise<RefWeights> {
  const w: RefWeights = new Map();
  const shared = (name: string) => {
    const m = /layers\.(\d+)\.self_attn\.(k_proj|v_proj|k_norm)\./.exec(name);
    return m !== null && cfg.text.kvSourceLayer[Number(m[1])] !== Number(m[1]);
  };
  for (const name of ckpt.tensorNames()) if (name.startsWith(LM) && !shared(name)) w.set(name, await readF32(ckpt, name));
  return w;
}

/**
 * RoPE on one head in place, rotate-half pairs (i, i + d/2) for i < angles, inv_freq = theta^(-2i/d) over the WHOLE
 * head (proportional RoPE when angles < d/2).
 */
function rope(x: Vec, pos: number, theta: number, angles: number): void {
  const half = x.length / 2;
  for (let i = 0; i < angles; i++) {
    const phi = pos * Math.pow(theta, (-2 * i) / x.length);
    const c = Math.cos(phi), s = Math.sin(phi);
    const a = x[i], b = x[i + half];
    x[i] = a * c - b * s;
    x[i + half] = b * c + a * s;
  }
}

export interface Gemma4RefResult {
  /** [T][V], softcapped. */
  logits: Vec[];
  inputsEmbeds: Vec[];
  /** [T][L·P] */
  perLayerInputs: Vec[];
  /** [L][T][D]: the residual after each layer (incl. PLE and layer_scalar). */
  layerOut: Vec[][];
  finalNorm: Vec[];
}

/** Whole-sequence forward pass. */
export function gemma4ReferenceForward(cfg: Gemma4Config, w: RefWeights, ids: readonly number[]): Gemma4RefResult {
  const c = cfg.text;
  const D = c.hiddenSize, P = c.pleDim, L = c.numLayers, H = c.numHeads, Hkv = c.numKvHeads;
  const eps = c.rmsNormEps;
  const T = ids.length;
  const lw = (l: number, n: string) => get(w, `${LM}layers.${l}.${n}`);
  const tableId = (id: number) => (cfg.placeholderIds.includes(id) ? cfg.padTokenId : id);

  // Embedding: E[id]·√D (√D in f32, as HF's f32 run); PLE inputs z.
  const E = get(w, LM + 'embed_tokens.weight');
  const sD = Math.fround(Math.sqrt(D));
  const inputsEmbeds = ids.map((id) => Float64Array.from(E.subarray(tableId(id) * D, (tableId(id) + 1) * D), (v) => v * sD));
  const Eple = get(w, LM + 'embed_tokens_per_layer.weight');
  const Wplmp = get(w, LM + 'per_layer_model_projection.weight');
  const wPln = get(w, LM + 'per_layer_projection_norm.weight');
  const sP = Math.fround(Math.sqrt(P));
  const perLayerInputs = inputsEmbeds.map((e, t) => {
    const id = tableId(ids[t]);
    const proj = linear(Wplmp, e, L * P).map((v) => v * Math.fround(1 / Math.sqrt(D)));
    const z = new Float64Array(L * P);
    for (let l = 0; l < L; l++) {
      const normed = rmsNorm(proj.subarray(l * P, (l + 1) * P), wPln, eps);
      for (let j = 0; j < P; j++) z[l * P + j] = (normed[j] + Eple[id * L * P + l * P + j] * sP) * Math.SQRT1_2;
    }
    return z;
  });

  let x: Vec[] = inputsEmbeds.map((e) => e.slice());
  const kv: Array<{ k: Vec[][]; v: Vec[][] }> = []; // per owner layer: [t][g]
  const layerOut: Vec[][] = [];
  for (let l = 0; l < L; l++) {
    const dh = c.layerHeadDim[l];
    const sliding = c.layerTypes[l] === 'sliding_attention';
    const src = c.kvSourceLayer[l];
    const hs = x.map((xt) => rmsNorm(xt, lw(l, 'input_layernorm.weight'), eps));
    if (src === l) {
      const ks: Vec[][] = [], vs: Vec[][] = [];
      for (let t = 0; t < T; t++) {
        const k = linear(lw(l, 'self_attn.k_proj.weight'), hs[t], Hkv * dh);
        const v = linear(lw(l, 'self_attn.v_proj.weight'), hs[t], Hkv * dh);
        ks.push([]);
        vs.push([]);
        for (let g = 0; g < Hkv; g++) {
          const kg = rmsNorm(k.subarray(g * dh, (g + 1) * dh), lw(l, 'self_attn.k_norm.weight'), eps);
          rope(kg, t, c.ropeTheta[l], c.ropeAngles[l]);
          ks[t].push(kg);
          vs[t].push(rmsNorm(v.subarray(g * dh, (g + 1) * dh), undefined, eps));
        }
      }
      kv[l] = { k: ks, v: vs };
    }
    const cache = kv[src];
    const next: Vec[] = [];
    for (let t = 0; t < T; t++) {
      const q = linear(lw(l, 'self_attn.q_proj.weight'), hs[t], H * dh);
      const attn = new Float64Array(H * dh);
      const lo = sliding ? Math.max(0, t - c.slidingWindow + 1) : 0;
      for (let h = 0; h < H; h++) {
        const qh = rmsNorm(q.subarray(h * dh, (h + 1) * dh), lw(l, 'self_attn.q_norm.weight'), eps);
        rope(qh, t, c.ropeTheta[l], c.ropeAngles[l]);
        const g = Math.floor(h / (H / Hkv));
        const scores: number[] = [];
        for (let s = lo; s <= t; s++) {
          let dot = 0;
          for (let d = 0; d < dh; d++) dot += qh[d] * cache.k[s][g][d];
          scores.push(dot); // scale 1
        }
        const mx = Math.max(...scores);
        const ex = scores.map((v) => Math.exp(v - mx));
        const sum = ex.reduce((a, b) => a + b, 0);
        for (let s = lo; s <= t; s++) for (let d = 0; d < dh; d++) attn[h * dh + d] += (ex[s - lo] / sum) * cache.v[s][g][d];
      }
      const xt = x[t].slice();
      const o = rmsNorm(linear(lw(l, 'self_attn.o_proj.weight'), attn, D), lw(l, 'post_attention_layernorm.weight'), eps);
      for (let d = 0; d < D; d++) xt[d] += o[d];
      const F = c.intermediateSize[l];
      const m = rmsNorm(xt, lw(l, 'pre_feedforward_layernorm.weight'), eps);
      const gate = linear(lw(l, 'mlp.gate_proj.weight'), m, F);
      const up = linear(lw(l, 'mlp.up_proj.weight'), m, F);
      const mlp = rmsNorm(linear(lw(l, 'mlp.down_proj.weight'), gate.map((g, i) => geluTanh(g) * up[i]), D), lw(l, 'post_feedforward_layernorm.weight'), eps);
      for (let d = 0; d < D; d++) xt[d] += mlp[d];
      const gated = linear(lw(l, 'per_layer_input_gate.weight'), xt, P).map((v, j) => geluTanh(v) * perLayerInputs[t][l * P + j]);
      const pe = rmsNorm(linear(lw(l, 'per_layer_projection.weight'), gated, D), lw(l, 'post_per_layer_input_norm.weight'), eps);
      const s = lw(l, 'layer_scalar')[0];
      for (let d = 0; d < D; d++) xt[d] = (xt[d] + pe[d]) * s;
      next.push(xt);
    }
    x = next;
    layerOut.push(x);
  }
  const finalNorm = x.map((xt) => rmsNorm(xt, get(w, LM + 'norm.weight'), eps));
  const cap = c.finalLogitSoftcap;
  const logits = finalNorm.map((h) => {
    const z = linear(E, h, c.vocabSize);
    return cap === null ? z : z.map((v) => cap * Math.tanh(v / cap));
  });
  return { logits, inputsEmbeds, perLayerInputs, layerOut, finalNorm };
}
