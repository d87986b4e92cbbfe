/**
 * Every tensor the Gemma 3n text decoder reads, once: HF names (docs/gemma3n-formats.md §1.5) and shapes from the
 * config. Loading, the progress count, the compiled weight formats and destruction all derive from this table
 * (src/model/tensor-table.ts). Not in the table: the PLE table and the multimodal embedders, which stay off the GPU
 * (weights.ts). KV-shared layers have no k_proj / v_proj / k_norm entries: their stored copies are never read
 * (§2.8, trap 9).
 */
import { matrix, vector } from '../tensor-table.ts';
import type { Gemma3nTextConfig } from './config.ts';

export const LM = 'model.language_model.';
export const PLE_TABLE = LM + 'embed_tokens_per_layer.weight';

export function gemma3nTensorTable(c: Gemma3nTextConfig) {
  const D = c.hiddenSize, L = c.numLayers, P = c.pleDim, A = c.altupNumInputs;
  const H = c.numHeads, Hkv = c.numKvHeads, dh = c.headDim;
  // AltUp coefficients are clamped to ±altup_coef_clip at load, as HF does.
  const clip = (v: Float32Array) => (c.altupCoefClip === null ? v : v.map((x) => Math.min(c.altupCoefClip!, Math.max(-c.altupCoefClip!, x))));
  const range = (n: number) => Array.from({ length: n }, (_, i) => i);
  return {
    embed: matrix(LM + 'embed_tokens.weight', c.vocabSize, D),
    perLayerModelProjection: matrix(LM + 'per_layer_model_projection.weight', L * P, D),
    perLayerProjectionNorm: vector(LM + 'per_layer_projection_norm.weight', P),
    altupProjections: range(A - 1).map((i) => matrix(`${LM}altup_projections.${i}.weight`, D, D)),
    altupUnembedProjections: range(A - 1).map((i) => matrix(`${LM}altup_unembed_projections.${i}.weight`, D, D)),
    finalNorm: vector(LM + 'norm.weight', D),
    layers: range(L).map((l) => {
      const p = `${LM}layers.${l}.`;
      const F = c.intermediateSize[l];
      const ownsKv = c.kvSourceLayer[l] === l;
      return {
        q: matrix(p + 'self_attn.q_proj.weight', H * dh, D),
        k: ownsKv ? matrix(p + 'self_attn.k_proj.weight', Hkv * dh, D) : undefined,
        v: ownsKv ? matrix(p + 'self_attn.v_proj.weight', Hkv * dh, D) : undefined,
        o: matrix(p + 'self_attn.o_proj.weight', D, H * dh),
        gate: matrix(p + 'mlp.gate_proj.weight', F, D),
        up: matrix(p + 'mlp.up_proj.weight', F, D),
        down: matrix(p + 'mlp.down_proj.weight', D, F),
        laurelLeft: matrix(p + 'laurel.linear_left.weight', c.laurelRank, D),
        laurelRight: matrix(p + 'laurel.linear_right.weight', D, c.laurelRank),
        pleGate: matrix(p + 'per_layer_input_gate.weight', P, D),
        pleProjection: matrix(p + 'per_layer_projection.weight', D, P),
        /** altup.modality_router W_r (the router's input scale 1/D is applied by the AltUp kernels). */
        router: matrix(p + 'altup.modality_router.weight', A, D),
        inputNorm: vector(p + 'input_layernorm.weight', D),
        postAttentionNorm: vector(p + 'post_attention_layernorm.weight', D),
        preFeedforwardNorm: vector(p + 'pre_feedforward_layernorm.weight', D),
        postFeedforwardNorm: vector(p + 'post_feedforward_layernorm.weight', D),
        postPleNorm: vector(p + 'post_per_layer_input_norm.weight', D),
        postLaurelNorm: vector(p + 'laurel.post_laurel_norm.weight', D),
        routerNorm: vector(p + 'altup.router_norm.weight', D),
        qNorm: vector(p + 'self_attn.q_norm.weight', dh),
        kNorm: ownsKv ? vector(p + 'self_attn.k_norm.weight', dh) : undefined,
        correctOutputScale: vector(p + 'altup.correct_output_scale', D),
        /** [A², A] and [A, A]. */
        predictionCoefs: vector(p + 'altup.prediction_coefs.weight', A * A * A, clip),
        correctionCoefs: vector(p + 'altup.correction_coefs.weight', A * A, clip),
      };
    }),
  };
}

export type Gemma3nTensorTable = ReturnType<typeof gemma3nTensorTable>;
