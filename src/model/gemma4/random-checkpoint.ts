/**
 * A Gemma 4 checkpoint with random weights, in memory (values: src/model/random-tensors.ts), with an HF-shaped
 * config.json and every tensor the original release has — the k/v/k_norm copies of the KV-shared layers included,
 * which the loader must never read — so the loader → engine path runs with no download.
 *
 * - `tiny`: hidden 128, 4 layers (S, F, S, F; layers 2 and 3 share the K/V of 0 and 1), head dims 32 / 64, a double
 *   wide MLP on the shared layers, and the real vocabulary (262144) so a real tokenizer can drive it.
 * - `e2b` / `e4b`: the real dimensions (fixture README, "real E2B / E4B"; HF convert_gemma4_weights.py); `layers`
 *   scales the layer count with every per-layer dimension kept (benchmarks with `random: true` loads, which only
 *   need the config).
 */
import type { Checkpoint } from '../../io/checkpoint.ts';
import type { RandomCheckpointOptions } from '../family.ts';
import { RandomTensorPlans, randomTensorCheckpoint } from '../random-tensors.ts';

export type Gemma4RandomPreset = 'tiny' | 'e2b' | 'e4b';

export function isGemma4RandomPreset(p: string): p is Gemma4RandomPreset {
  return p === 'tiny' || p === 'e2b' || p === 'e4b';
}

/** The real tokenizer's vocabulary (Gemma 4: the LM head and the PLE table have every id). */
export const GEMMA4_VOCAB_SIZE = 262144;

interface PresetDims {
  hidden: number;
  ple: number;
  layers: number;
  kvShared: number;
  intermediate: number;
  doubleWide: boolean;
  heads: number;
  kvHeads: number;
  headDim: number;
  globalHeadDim: number;
  slidingWindow: number;
  /** Every `fullEvery`-th layer (1-based) is full attention. */
  fullEvery: number;
}

const PRESETS: Record<Gemma4RandomPreset, PresetDims> = {
  tiny: { hidden: 128, ple: 16, layers: 4, kvShared: 2, intermediate: 256, doubleWide: true, heads: 4, kvHeads: 2, headDim: 32, globalHeadDim: 64, slidingWindow: 32, fullEvery: 2 },
  e2b: { hidden: 1536, ple: 256, layers: 35, kvShared: 20, intermediate: 6144, doubleWide: true, heads: 8, kvHeads: 1, headDim: 256, globalHeadDim: 512, slidingWindow: 512, fullEvery: 5 },
  e4b: { hidden: 2560, ple: 256, layers: 42, kvShared: 18, intermediate: 10240, doubleWide: false, heads: 8, kvHeads: 2, headDim: 256, globalHeadDim: 512, slidingWindow: 512, fullEvery: 6 },
};

/**
 * An HF-shaped Gemma 4 config.json for a preset. With `layers` other than the preset's: the layer-type pattern is
 * kept (the last layer full), KV sharing keeps the preset's proportion, and every shared layer still has an earlier
 * owner of its type.
 */
export function randomGemma4Config(preset: Gemma4RandomPreset = 'tiny', layers?: number, vocabSize = GEMMA4_VOCAB_SIZE): Record<string, unknown> {
  if (!Number.isInteger(vocabSize) || vocabSize < 512) throw new RangeError(`vocabSize must be an integer ≥ 512, got ${vocabSize}`);
  const p = PRESETS[preset];
  const L = layers ?? p.layers;
  if (!Number.isInteger(L) || L < 1) throw new RangeError(`layers must be a positive integer, got ${layers}`);
  const layerTypes = Array.from({ length: L }, (_, i) => ((i + 1) % p.fullEvery === 0 ? 'full_attention' : 'sliding_attention'));
  layerTypes[L - 1] = 'full_attention';
  let kvShared = L === p.layers ? p.kvShared : Math.floor((L * p.kvShared) / p.layers);
  const hasOwner = (shared: number) => layerTypes.every((type, l) => l < L - shared || layerTypes.lastIndexOf(type, L - shared - 1) >= 0);
  while (kvShared > 0 && !hasOwner(kvShared)) kvShared--;
  const text = {
    model_type: 'gemma4_text',
    attention_bias: false,
    attention_k_eq_v: false,
    enable_moe_block: false,
    final_logit_softcapping: 30.0,
    global_head_dim: p.globalHeadDim,
    head_dim: p.headDim,
    hidden_activation: 'gelu_pytorch_tanh',
    hidden_size: p.hidden,
    hidden_size_per_layer_input: p.ple,
    intermediate_size: p.intermediate,
    layer_types: layerTypes,
    max_position_embeddings: 131072,
    num_attention_heads: p.heads,
    num_global_key_value_heads: null,
    num_hidden_layers: L,
    num_key_value_heads: p.kvHeads,
    num_kv_shared_layers: kvShared,
    rms_norm_eps: 1e-6,
    rope_parameters: {
      full_attention: { partial_rotary_factor: 0.25, rope_theta: 1000000.0, rope_type: 'proportional' },
      sliding_attention: { rope_theta: 10000.0, rope_type: 'default' },
    },
    sliding_window: p.slidingWindow,
    tie_word_embeddings: true,
    use_double_wide_mlp: p.doubleWide,
    vocab_size: vocabSize,
    vocab_size_per_layer_input: vocabSize,
    bos_token_id: 2,
    eos_token_id: 1,
    pad_token_id: 0,
  };
  return {
    architectures: ['Gemma4ForConditionalGeneration'],
    model_type: 'gemma4',
    text_config: text,
    vision_config: null,
    audio_config: null,
    tie_word_embeddings: true,
    random_weights: { preset, layers: L, vocabSize },
  };
}

const LM = 'model.language_model.';

function tensorPlans(config: Record<string, unknown>, dtype: 'BF16' | 'F32'): RandomTensorPlans {
  const tc = config.text_config as Record<string, unknown>;
  const D = tc.hidden_size as number, P = tc.hidden_size_per_layer_input as number, L = tc.num_hidden_layers as number;
  const H = tc.num_attention_heads as number, Hkv = tc.num_key_value_heads as number;
  const V = tc.vocab_size as number;
  const types = tc.layer_types as string[];
  const firstShared = L - (tc.num_kv_shared_layers as number);
  const plans = new RandomTensorPlans(dtype);
  plans.add(LM + 'embed_tokens.weight', [V, D], 0, 1 / Math.sqrt(D));
  plans.add(LM + 'embed_tokens_per_layer.weight', [V, L * P], 0, 1 / Math.sqrt(P));
  plans.linear(LM + 'per_layer_model_projection.weight', L * P, D);
  plans.norm(LM + 'per_layer_projection_norm.weight', P);
  plans.norm(LM + 'norm.weight', D);
  for (let l = 0; l < L; l++) {
    const p = `${LM}layers.${l}.`;
    const dh = types[l] === 'full_attention' ? (tc.global_head_dim as number) : (tc.head_dim as number);
    const F = (tc.intermediate_size as number) * (tc.use_double_wide_mlp && l >= firstShared ? 2 : 1);
    // Shared layers get k/v/k_norm too, as the original release has them (never read).
    plans.linear(p + 'self_attn.q_proj.weight', H * dh, D);
    plans.linear(p + 'self_attn.k_proj.weight', Hkv * dh, D);
    plans.linear(p + 'self_attn.v_proj.weight', Hkv * dh, D);
    plans.linear(p + 'self_attn.o_proj.weight', D, H * dh);
    plans.norm(p + 'self_attn.q_norm.weight', dh);
    plans.norm(p + 'self_attn.k_norm.weight', dh);
    for (const n of ['input_layernorm', 'post_attention_layernorm', 'pre_feedforward_layernorm', 'post_feedforward_layernorm', 'post_per_layer_input_norm']) plans.norm(`${p}${n}.weight`, D);
    plans.linear(p + 'mlp.gate_proj.weight', F, D);
    plans.linear(p + 'mlp.up_proj.weight', F, D);
    plans.linear(p + 'mlp.down_proj.weight', D, F);
    plans.linear(p + 'per_layer_input_gate.weight', P, D);
    plans.linear(p + 'per_layer_projection.weight', D, P);
    plans.add(p + 'layer_scalar', [1], 1, 0.05);
  }
  return plans;
}

/** A random-weight Gemma 4 checkpoint (see the header). */
export function createGemma4RandomCheckpoint(options: RandomCheckpointOptions = {}): Checkpoint {
  const preset = (options.preset ?? 'tiny') as Gemma4RandomPreset;
  const seed = options.seed ?? 1;
  const dtype = options.dtype ?? 'BF16';
  const config = randomGemma4Config(preset, options.layers, options.vocabSize);
  const layers = (config.text_config as { num_hidden_layers: number }).num_hidden_layers;
  return randomTensorCheckpoint(`random Gemma 4 (${preset}, ${layers} layers, seed ${seed})`, config, tensorPlans(config, dtype).plans, seed, dtype);
}
