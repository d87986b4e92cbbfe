/**
 * Every tensor the Gemma 4 text decoder reads, once: HF names (the `model.language_model.` layout of
 * Gemma4ForConditionalGeneration checkpoints) and shapes from the config — per layer type for attention (full layers
 * have their own head dim) and per layer for the MLP (double width on E2B's KV-shared layers). Loading, the progress
 * count, the compiled weight formats and destruction all derive from this table (src/model/tensor-table.ts). Not in
 * the table: the PLE table, which stays off the GPU (weights.ts). KV-shared layers have no k_proj / v_proj / k_norm
 * entries: the copies the original release ships for them are never read (fixture README, trap 9).
 */
import { matrix, vector } from '../tensor-table.ts';
import type { Gemma4TextConfig } from './config.ts';

export const LM = 'model.language_model.';
export const PLE_TABLE = LM + 'embed_tokens_per_layer.weight';

export function gemma4TensorTable(c: Gemma4TextConfig) {
  const D = c.hiddenSize, L = c.numLayers, P = c.pleDim, H = c.numHeads, Hkv = c.numKvHeads;
  const range = (n: number) => Array.from({ length: n }, (_, i) => i);
  return {
    embed: matrix(LM + 'embed_tokens.weight', c.vocabSize, D),
    perLayerModelProjection: matrix(LM + 'per_layer_model_projection.weight', L * P, D),
    perLayerProjectionNorm: vector(LM + 'per_layer_projection_norm.weight', P),
    finalNorm: vector(LM + 'norm.weight', D),
    layers: range(L).map((l) => {
      const p = `${LM}layers.${l}.`;
      const F = c.intermediateSize[l];
      const dh = c.layerHeadDim[l];
      const ownsKv = c.kvSourceLayer[l] === l;
      return {
        q: matrix(p + 'self_attn.q_proj.weight', H * dh, D),
        k: ownsKv ? matrix(p + 'self_attn.k_proj.weight', Hkv * dh, D) : undefined,
        v: ownsKv ? matrix(p + 'self_attn.v_proj.weight', Hkv * dh, D) : undefined,
        o: matrix(p + 'self_attn.o_proj.weight', D, H * dh),
        gate: matrix(p + 'mlp.gate_proj.weight', F, D),
        up: matrix(p + 'mlp.up_proj.weight', F, D),
        down: matrix(p + 'mlp.down_proj.weight', D, F),
        pleGate: matrix(p + 'per_layer_input_gate.weight', P, D),
        pleProjection: matrix(p + 'per_layer_projection.weight', D, P),
        inputNorm: vector(p + 'input_layernorm.weight', D),
        postAttentionNorm: vector(p + 'post_attention_layernorm.weight', D),
        preFeedforwardNorm: vector(p + 'pre_feedforward_layernorm.weight', D),
        postFeedforwardNorm: vector(p + 'post_feedforward_layernorm.weight', D),
        postPleNorm: vector(p + 'post_per_layer_input_norm.weight', D),
        qNorm: vector(p + 'self_attn.q_norm.weight', dh),
        kNorm: ownsKv ? vector(p + 'self_attn.k_norm.weight', dh) : undefined,
        /** layer_scalar [1], broadcast to [D] at load: the residual is scaled by a row-broadcast multiply. */
        layerScalar: vector(p + 'layer_scalar', 1, (v) => new Float32Array(D).fill(v[0])),
      };
    }),
  };
}

export type Gemma4TensorTable = ReturnType<typeof gemma4TensorTable>;
