/**
 * A float64 CPU reference of the Gemma 3n text decoder, written straight from docs/gemma3n-formats.md §2
 * (and HF modeling_gemma3n.py), for tests: it proves our reading of the spec against golden.json, and — run on the
 * dequantized q4 weights — separates quantization error from kernel error. Whole-sequence only (causal attention
 * over all positions at once, no cache): the GPU engine's cache, chunking and sharing are checked against it.
 * Slow and simple on purpose; only for tiny checkpoints.
 */
import type { Gemma3nConfig } from '../../src/model/gemma3n/config.ts';
import { readF32, type Checkpoint } from '../../src/io/checkpoint.ts';
import { geluTanh, get, linear, rmsNorm, type RefWeights, type Vec } from './reference-math.ts';

/** Weights by HF name (`model.language_model.…`, `model.embed_vision.…`), as f32 values. */
export type { RefWeights };

const LM = 'model.language_model.';

/** Reads every tensor the text decoder uses (language model + hard-token embedders). */
export async function loadRefWeights(ckpt: Checkpoint): Promise<RefWeights> {
  const w: RefWeights = new Map();
  for (const name of ckpt.tensorNames()) {
    if (name.startsWith(LM) || name.startsWith('model.embed_vision.') || name.startsWith('model.embed_audio.')) {
      w.set(name, await readF32(ckpt, name));
    }
  }
  return w;
}

function meanSquare(x: ArrayLike<number>): number {
  let ss = 0;
  for (let i = 0; i < x.length; i++) ss += x[i] * x[i];
  return ss / x.length;
}

function add(a: Vec, b: Vec): Vec {
  const y = new Float64Array(a.length);
  for (let i = 0; i < a.length; i++) y[i] = a[i] + b[i];
  return y;
}

function scale(a: Vec, s: number): Vec {
  return a.map((v) => v * s);
}

/** RoPE, rotate-half layout, on one head in place. */
function rope(x: Vec, pos: number, theta: number): void {
  const half = x.length / 2;
  for (let i = 0; i < half; i++) {
    const phi = pos * Math.pow(theta, (-2 * i) / x.length);
    const c = Math.cos(phi), s = Math.sin(phi);
    const a = x[i], b = x[i + half];
    x[i] = a * c - b * s;
    x[i + half] = b * c + a * s;
  }
}

/** Magnitude-matches y to target RMS `r` (floor 1e-5 on the mean square of y), §2.4 / §2.6. */
function matchMagnitude(y: Vec, r: number): Vec {
  return scale(y, r / Math.sqrt(Math.max(meanSquare(y), 1e-5)));
}

export interface RefIntermediates {
  inputsEmbeds: Vec[];
  /** [T][L * P] */
  perLayerInputs: Vec[];
  /** [T][L * P] (table rows × √P) */
  perLayerInputsEmbedded: Vec[];
  /** [L][stream][T] */
  layerOutputs: Vec[][][];
  altupUnembeddedMean: Vec[];
  finalNormed: Vec[];
}

export interface RefResult {
  /** [T][V], softcapped. */
  logits: Vec[];
  intermediates: RefIntermediates;
}

/** Input embedding of one token (§2.2), including the hard-token path for ids ≥ vocab_size_per_layer_input. */
export function embedToken(cfg: Gemma3nConfig, w: RefWeights, id: number): Vec {
  const { hiddenSize: D, vocabSizePerLayerInput: Vp } = cfg.text;
  const embedder =
    id >= Vp && cfg.audio && id >= cfg.audio.vocabOffset && w.has('model.embed_audio.embedding.weight')
      ? { prefix: 'model.embed_audio.', range: cfg.audio }
      : id >= Vp && cfg.vision && id >= cfg.vision.vocabOffset && w.has('model.embed_vision.embedding.weight')
        ? { prefix: 'model.embed_vision.', range: cfg.vision }
        : undefined;
  if (embedder) {
    const { prefix, range } = embedder;
    const row = get(w, prefix + 'embedding.weight').subarray((id - range.vocabOffset) * range.hiddenSize, (id - range.vocabOffset + 1) * range.hiddenSize);
    const normed = rmsNorm(row, get(w, prefix + 'hard_embedding_norm.weight'), range.rmsNormEps);
    return rmsNorm(linear(get(w, prefix + 'embedding_projection.weight'), normed, D), undefined, range.rmsNormEps);
  }
  const E = get(w, LM + 'embed_tokens.weight');
  // HF multiplies by √D cast to the compute dtype (f32 in the goldens).
  const s = Math.fround(Math.sqrt(D));
  return Float64Array.from(E.subarray(id * D, (id + 1) * D), (v) => v * s);
}

/** Whole-sequence forward pass. */
export function referenceForward(cfg: Gemma3nConfig, w: RefWeights, ids: number[]): RefResult {
  const c = cfg.text;
  const D = c.hiddenSize, P = c.pleDim, L = c.numLayers, H = c.numHeads, Hkv = c.numKvHeads, dh = c.headDim;
  const eps = c.rmsNormEps;
  const T = ids.length;
  const layerW = (l: number, n: string) => get(w, `${LM}layers.${l}.${n}`);

  // 1. Embedding (§2.2) and per-layer inputs (§2.3).
  const inputsEmbeds = ids.map((id) => embedToken(cfg, w, id));
  const Eple = get(w, LM + 'embed_tokens_per_layer.weight');
  const Wplmp = get(w, LM + 'per_layer_model_projection.weight');
  const wPln = get(w, LM + 'per_layer_projection_norm.weight');
  const perLayerInputsEmbedded: Vec[] = [];
  const perLayerInputs: Vec[] = [];
  for (let t = 0; t < T; t++) {
    const tokPle = ids[t] < c.vocabSizePerLayerInput ? ids[t] : 0;
    const zTok = Float64Array.from(Eple.subarray(tokPle * L * P, (tokPle + 1) * L * P), (v) => v * Math.fround(Math.sqrt(P)));
    const zProj = scale(linear(Wplmp, inputsEmbeds[t], L * P), Math.fround(1 / Math.sqrt(D)));
    const z = new Float64Array(L * P);
    for (let l = 0; l < L; l++) {
      const normed = rmsNorm(zProj.subarray(l * P, (l + 1) * P), wPln, eps);
      for (let j = 0; j < P; j++) z[l * P + j] = (normed[j] + zTok[l * P + j]) * Math.SQRT1_2;
    }
    perLayerInputsEmbedded.push(zTok);
    perLayerInputs.push(z);
  }

  // 2. AltUp streams (§2.4): streams[i][t].
  const A = c.altupNumInputs;
  let streams: Vec[][] = [inputsEmbeds.map((e) => e.slice())];
  for (let i = 1; i < A; i++) {
    const Wp = get(w, `${LM}altup_projections.${i - 1}.weight`);
    streams.push(inputsEmbeds.map((e) => matchMagnitude(linear(Wp, e, D), Math.sqrt(meanSquare(e)))));
  }

  // KV of producer layers: kv[l][t] = {k: Vec[Hkv], v: Vec[Hkv]}.
  const kvCache: Array<Array<{ k: Vec[]; v: Vec[] }>> = [];
  const layerOutputs: Vec[][][] = [];

  for (let l = 0; l < L; l++) {
    const router = (x: Vec) => {
      const r = linear(layerW(l, 'altup.modality_router.weight'), scale(rmsNorm(x, layerW(l, 'altup.router_norm.weight'), eps), 1 / D), A);
      return r.map(Math.tanh);
    };
    const clip = (v: number) => (c.altupCoefClip === null ? v : Math.min(c.altupCoefClip, Math.max(-c.altupCoefClip, v)));
    const Wpred = layerW(l, 'altup.prediction_coefs.weight').map(clip);
    const Wcorr = layerW(l, 'altup.correction_coefs.weight').map(clip);
    const isSliding = c.layerTypes[l] === 'sliding_attention';
    const theta = c.ropeTheta[l];
    const src = c.kvSourceLayer[l];
    const ownsKv = src === l;
    if (ownsKv) kvCache[l] = [];

    const next: Vec[][] = Array.from({ length: A }, () => new Array<Vec>(T));
    // Everything but attention is per position; attention at position t only needs K/V of positions ≤ t, which
    // are computed (for producers) in the same loop iteration order.
    for (let t = 0; t < T; t++) {
      // (b) predict
      const m = router(streams[0][t]);
      const coef = linear(Wpred, m, A * A);
      const pred: Vec[] = [];
      for (let i = 0; i < A; i++) {
        const y = streams[i][t].slice();
        for (let k = 0; k < A; k++) for (let d = 0; d < D; d++) y[d] += coef[i * A + k] * streams[k][t][d];
        pred.push(y);
      }
      // (c) input norm + LAuReL
      const a = pred[0];
      const n = rmsNorm(a, layerW(l, 'input_layernorm.weight'), eps);
      const laurel = add(
        n,
        rmsNorm(linear(layerW(l, 'laurel.linear_right.weight'), linear(layerW(l, 'laurel.linear_left.weight'), n, c.laurelRank), D), layerW(l, 'laurel.post_laurel_norm.weight'), eps),
      );
      // (d) attention (§2.7)
      const q = linear(layerW(l, 'self_attn.q_proj.weight'), n, H * dh);
      const qHeads: Vec[] = [];
      for (let h = 0; h < H; h++) {
        const qh = rmsNorm(q.subarray(h * dh, (h + 1) * dh), layerW(l, 'self_attn.q_norm.weight'), eps);
        rope(qh, t, theta);
        qHeads.push(qh);
      }
      if (ownsKv) {
        const k = linear(layerW(l, 'self_attn.k_proj.weight'), n, Hkv * dh);
        const v = linear(layerW(l, 'self_attn.v_proj.weight'), n, Hkv * dh);
        const ks: Vec[] = [], vs: Vec[] = [];
        for (let g = 0; g < Hkv; g++) {
          const kg = rmsNorm(k.subarray(g * dh, (g + 1) * dh), layerW(l, 'self_attn.k_norm.weight'), eps);
          rope(kg, t, theta);
          ks.push(kg);
          vs.push(rmsNorm(v.subarray(g * dh, (g + 1) * dh), undefined, eps));
        }
        kvCache[l][t] = { k: ks, v: vs };
      }
      const cache = kvCache[src];
      const lo = isSliding ? Math.max(0, t - c.slidingWindow + 1) : 0;
      const attnOut = new Float64Array(H * dh);
      for (let h = 0; h < H; h++) {
        const g = Math.floor(h / (H / Hkv));
        const scores: number[] = [];
        for (let s = lo; s <= t; s++) {
          let dot = 0;
          for (let d = 0; d < dh; d++) dot += qHeads[h][d] * cache[s].k[g][d];
          scores.push(dot); // scale 1.0 (§2.7)
        }
        const mx = Math.max(...scores);
        const ex = scores.map((x) => Math.exp(x - mx));
        const sum = ex.reduce((x, y) => x + y, 0);
        for (let s = lo; s <= t; s++) {
          const p = ex[s - lo] / sum;
          for (let d = 0; d < dh; d++) attnOut[h * dh + d] += p * cache[s].v[g][d];
        }
      }
      const o = rmsNorm(linear(layerW(l, 'self_attn.o_proj.weight'), attnOut, D), layerW(l, 'post_attention_layernorm.weight'), eps);
      // (e) combine, MLP (§2.9)
      const hComb = new Float64Array(D);
      for (let d = 0; d < D; d++) hComb[d] = (a[d] + o[d] + laurel[d]) * Math.SQRT1_2;
      const F = c.intermediateSize[l];
      const x = rmsNorm(hComb, layerW(l, 'pre_feedforward_layernorm.weight'), eps);
      let gate = linear(layerW(l, 'mlp.gate_proj.weight'), x, F);
      const kappa = c.gateCutoffZ[l];
      if (kappa !== null) {
        const mu = gate.reduce((s, v) => s + v, 0) / F;
        const sigma = Math.sqrt(gate.reduce((s, v) => s + (v - mu) ** 2, 0) / F);
        const cut = mu + kappa * sigma;
        gate = gate.map((v) => Math.max(0, v - cut));
      }
      const up = linear(layerW(l, 'mlp.up_proj.weight'), x, F);
      const act = gate.map((g, i) => geluTanh(g) * up[i]);
      const gOut = add(hComb, rmsNorm(linear(layerW(l, 'mlp.down_proj.weight'), act, D), layerW(l, 'post_feedforward_layernorm.weight'), eps));
      // (f) correct
      const m2 = router(gOut);
      const kcoef = linear(Wcorr, m2, A).map((v) => v + 1);
      const corrected: Vec[] = pred.map((p, i) => {
        const y = new Float64Array(D);
        for (let d = 0; d < D; d++) y[d] = p[d] + kcoef[i] * (gOut[d] - a[d]);
        return y;
      });
      // (g) per-layer input gate into streams 1..A-1
      const u = c.altupCorrectScale ? corrected[0].map((v, d) => v * layerW(l, 'altup.correct_output_scale')[d]) : corrected[0];
      const gated = linear(layerW(l, 'per_layer_input_gate.weight'), u, P).map((v, j) => geluTanh(v) * perLayerInputs[t][l * P + j]);
      const vBranch = rmsNorm(linear(layerW(l, 'per_layer_projection.weight'), gated, D), layerW(l, 'post_per_layer_input_norm.weight'), eps);
      next[0][t] = corrected[0];
      for (let i = 1; i < A; i++) next[i][t] = add(corrected[i], vBranch);
    }
    streams = next;
    layerOutputs.push(streams);
  }

  // 3. Unembed streams, average, final norm, tied LM head, softcap (§2.6).
  const E = get(w, LM + 'embed_tokens.weight');
  const altupUnembeddedMean: Vec[] = [];
  const finalNormed: Vec[] = [];
  const logits: Vec[] = [];
  for (let t = 0; t < T; t++) {
    const r0 = Math.sqrt(meanSquare(streams[0][t]));
    let sum: Vec = streams[0][t].slice();
    for (let i = 1; i < A; i++) sum = add(sum, matchMagnitude(linear(get(w, `${LM}altup_unembed_projections.${i - 1}.weight`), streams[i][t], D), r0));
    const mean = scale(sum, 1 / A);
    const h = rmsNorm(mean, get(w, LM + 'norm.weight'), eps);
    let z = linear(E, h, c.vocabSize);
    const cap = c.finalLogitSoftcap;
    if (cap !== null) z = z.map((v) => cap * Math.tanh(v / cap));
    altupUnembeddedMean.push(mean);
    finalNormed.push(h);
    logits.push(z);
  }
  return { logits, intermediates: { inputsEmbeds, perLayerInputs, perLayerInputsEmbedded, layerOutputs, altupUnembeddedMean, finalNormed } };
}

/** Greedy continuation by repeated whole-sequence forwards (the reference has no cache on purpose). */
export function referenceGreedy(cfg: Gemma3nConfig, w: RefWeights, prompt: number[], maxNew: number): { tokens: number[]; stepLogits: Vec[] } {
  const ids = prompt.slice();
  const tokens: number[] = [];
  const stepLogits: Vec[] = [];
  for (let k = 0; k < maxNew; k++) {
    const { logits } = referenceForward(cfg, w, ids);
    const last = logits[logits.length - 1];
    stepLogits.push(last);
    let best = 0;
    for (let i = 1; i < last.length; i++) if (last[i] > last[best]) best = i;
    tokens.push(best);
    ids.push(best);
  }
  return { tokens, stepLogits };
}
