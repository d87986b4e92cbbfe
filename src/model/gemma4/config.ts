/**
 * Gemma 4 configuration (the E2B/E4B text decoder): parsing of HF `config.json` (model_type `gemma4` with a nested
 * `text_config`, or a bare `gemma4_text`), validation (anything we do not implement is a GemmaError naming the key
 * and value), and the derived per-layer facts the forward pass needs: attention type, head dim, RoPE base and how many
 * angles rotate, MLP width, and which layer's K/V a layer reads (KV sharing).
 * Reference: test/fixtures/gemma4-tiny-a/README.md (math and traps), HF configuration_gemma4.py / modeling_gemma4.py.
 */
import { GemmaError } from '../../errors.ts';
import { idList, num, unsupported, type Json } from '../config-json.ts';

export type LayerType = 'sliding_attention' | 'full_attention';

export interface Gemma4TextConfig {
  vocabSize: number;
  /** Rows of the PLE table (E2B/E4B: the whole vocabulary, no split as in Gemma 3n). */
  vocabSizePerLayerInput: number;
  /** D */
  hiddenSize: number;
  /** P: per-layer-input width. */
  pleDim: number;
  numLayers: number;
  /** F_l per layer (double width on KV-shared layers with use_double_wide_mlp). */
  intermediateSize: number[];
  numHeads: number;
  numKvHeads: number;
  /** Head dim of sliding layers (`head_dim`; E2B/E4B 256). */
  headDim: number;
  /** Head dim of full layers (`global_head_dim`; E2B/E4B 512). */
  globalHeadDim: number;
  slidingWindow: number;
  rmsNormEps: number;
  /** null = no softcap. */
  finalLogitSoftcap: number | null;
  maxPositionEmbeddings: number;
  layerTypes: LayerType[];
  numKvSharedLayers: number;

  // ---- derived, per layer ----
  /** First layer that computes no K/V of its own (L − num_kv_shared_layers). */
  firstKvSharedLayer: number;
  /** The layer whose KV cache each layer attends over (itself when it owns one): the last earlier owner of its type. */
  kvSourceLayer: number[];
  /** Head dim of each layer (by its type). */
  layerHeadDim: number[];
  /** RoPE base of each layer (by its type). */
  ropeTheta: number[];
  /** Angles that rotate per layer: headDim/2 for default RoPE, int(p·d/2) for proportional RoPE. */
  ropeAngles: number[];
}

export interface Gemma4Config {
  text: Gemma4TextConfig;
  eosTokenIds: number[];
  bosTokenId: number;
  padTokenId: number;
  /**
   * Multimodal placeholder ids (image, audio, video tokens of the top-level config): HF maps them to the pad id
   * before the embedding and PLE lookups, then scatters the encoders' soft tokens over them.
   */
  placeholderIds: number[];
}

/** Off-by-default features of the Gemma 4 family that the E2B/E4B decoders do not use (and we do not implement). */
function rejectUnimplemented(tc: Json, prefix: string): void {
  const off = (key: string, why: string) => {
    const v = tc[key];
    if (v !== undefined && v !== null && v !== false) throw unsupported(prefix + key, v, why);
  };
  off('enable_moe_block', 'the mixture-of-experts block (Gemma 4 26B-A4B) is not implemented; this library runs E2B and E4B');
  off('attention_k_eq_v', 'shared K = V projections on full layers (Gemma 4 31B) are not implemented; this library runs E2B and E4B');
  off('attention_bias', 'Gemma 4 E2B/E4B have no biases; none are loaded');
  const globalKv = tc.num_global_key_value_heads;
  if (globalKv !== undefined && globalKv !== null && globalKv !== tc.num_key_value_heads) {
    throw unsupported(prefix + 'num_global_key_value_heads', globalKv, 'a different KV head count on full layers is not implemented');
  }
  if (tc.attn_logit_softcapping !== undefined && tc.attn_logit_softcapping !== null) {
    throw unsupported(prefix + 'attn_logit_softcapping', tc.attn_logit_softcapping, 'Gemma 4 has no attention-logit softcap');
  }
  // HF: attention is causal unless use_bidirectional_attention == 'all'; 'vision' makes image spans attend both ways,
  // which only matters once images are fed (text is causal either way).
  if (tc.use_bidirectional_attention === 'all') throw unsupported(prefix + 'use_bidirectional_attention', 'all', 'the decoder is causal');
  const act = tc.hidden_activation ?? tc.hidden_act;
  if (act !== 'gelu_pytorch_tanh') throw unsupported(prefix + 'hidden_activation', act, 'only "gelu_pytorch_tanh" is implemented');
  if (tc.tie_word_embeddings === false) throw unsupported(prefix + 'tie_word_embeddings', false, 'the LM head is the tied token embedding');
}

interface RopeOfType {
  theta: number;
  /** Fraction of the head's angles that rotate (1 for default RoPE). */
  rotaryFraction: number;
}

/**
 * RoPE per layer type from `rope_parameters` (HF's per-type dict): `default` rotates every angle; `proportional`
 * rotates int(partial_rotary_factor · d / 2) angles with frequencies over the whole head. Older flat spellings
 * (rope_theta / rope_local_base_freq) are read as default RoPE.
 */
function ropeOfType(tc: Json, prefix: string, type: LayerType): RopeOfType {
  if (tc.rope_scaling !== undefined && tc.rope_scaling !== null) throw unsupported(prefix + 'rope_scaling', tc.rope_scaling, 'no RoPE scaling is implemented');
  const params = tc.rope_parameters as Record<string, Json | null> | undefined | null;
  const p = params && typeof params === 'object' ? params[type] : undefined;
  if (!p) {
    const [key, fallback] = type === 'full_attention' ? ['rope_theta', 1e6] : ['rope_local_base_freq', 1e4];
    return { theta: num(tc, key, prefix, { default: fallback }), rotaryFraction: 1 };
  }
  const where = `${prefix}rope_parameters.${type}.`;
  const ropeType = p.rope_type ?? 'default';
  if (ropeType !== 'default' && ropeType !== 'proportional') throw unsupported(where + 'rope_type', ropeType, 'only "default" and "proportional" RoPE are implemented');
  const factor = p.factor ?? 1;
  if (factor !== 1) throw unsupported(where + 'factor', factor, 'RoPE frequency scaling is not implemented');
  const theta = num(p, 'rope_theta', where);
  if (ropeType === 'default') return { theta, rotaryFraction: 1 };
  const fraction = num(p, 'partial_rotary_factor', where, { default: 1 });
  if (!(fraction > 0 && fraction <= 1)) throw unsupported(where + 'partial_rotary_factor', fraction, 'expected a number in (0, 1]');
  return { theta, rotaryFraction: fraction };
}

function parseTextConfig(tc: Json, prefix: string): Gemma4TextConfig {
  if (tc.model_type !== undefined && tc.model_type !== 'gemma4_text') throw unsupported(prefix + 'model_type', tc.model_type, 'expected "gemma4_text"');
  rejectUnimplemented(tc, prefix);
  const hiddenSize = num(tc, 'hidden_size', prefix, { int: true, min: 1 });
  const numLayers = num(tc, 'num_hidden_layers', prefix, { int: true, min: 1 });
  const numHeads = num(tc, 'num_attention_heads', prefix, { int: true, min: 1 });
  const numKvHeads = num(tc, 'num_key_value_heads', prefix, { int: true, min: 1 });
  if (numHeads % numKvHeads !== 0) throw unsupported(prefix + 'num_key_value_heads', numKvHeads, `must divide num_attention_heads = ${numHeads}`);
  const headDim = num(tc, 'head_dim', prefix, { int: true, min: 4 });
  const globalHeadDim = tc.global_head_dim === null || tc.global_head_dim === undefined ? headDim : num(tc, 'global_head_dim', prefix, { int: true, min: 4 });
  for (const [key, d] of [['head_dim', headDim], ['global_head_dim', globalHeadDim]] as const) {
    if (d % 4 !== 0) throw unsupported(prefix + key, d, 'the attention kernels need a multiple of 4');
  }
  const pleDim = num(tc, 'hidden_size_per_layer_input', prefix, { int: true, min: 0, default: 0 });
  if (pleDim === 0) throw unsupported(prefix + 'hidden_size_per_layer_input', tc.hidden_size_per_layer_input ?? null, 'this library runs the Gemma 4 decoders with per-layer embeddings (E2B, E4B)');

  const layerTypes = tc.layer_types as unknown;
  if (!Array.isArray(layerTypes) || layerTypes.length !== numLayers) {
    throw unsupported(prefix + 'layer_types', layerTypes, `expected a list of ${numLayers} entries (num_hidden_layers)`);
  }
  layerTypes.forEach((t, i) => {
    if (t !== 'sliding_attention' && t !== 'full_attention') throw unsupported(`${prefix}layer_types[${i}]`, t, 'expected "sliding_attention" or "full_attention"');
  });
  const types = layerTypes as LayerType[];

  const numKvSharedLayers = num(tc, 'num_kv_shared_layers', prefix, { int: true, min: 0, default: 0 });
  if (numKvSharedLayers >= numLayers) throw unsupported(prefix + 'num_kv_shared_layers', numKvSharedLayers, `must be below num_hidden_layers = ${numLayers}`);
  const firstKvSharedLayer = numLayers - numKvSharedLayers;
  // A shared layer reads the K/V of the last non-shared layer of its own type (HF: store_full_length_kv).
  const kvSourceLayer = types.map((type, l) => {
    if (l < firstKvSharedLayer) return l;
    const src = types.lastIndexOf(type, firstKvSharedLayer - 1);
    if (src < 0) throw unsupported(prefix + 'num_kv_shared_layers', numKvSharedLayers, `layer ${l} (${type}) has no earlier ${type} layer to share K/V with`);
    return src;
  });

  // MLP widths: one number (doubled on KV-shared layers with use_double_wide_mlp, E2B) or a list per layer.
  const rawInter = tc.intermediate_size;
  const doubleWide = tc.use_double_wide_mlp === true;
  const intermediateSize = typeof rawInter === 'number' ? types.map((_, l) => (doubleWide && l >= firstKvSharedLayer ? 2 * rawInter : rawInter)) : rawInter;
  if (!Array.isArray(intermediateSize) || intermediateSize.length !== numLayers || intermediateSize.some((v) => !Number.isInteger(v) || v <= 0)) {
    throw unsupported(prefix + 'intermediate_size', rawInter, `expected a positive integer or a list of ${numLayers} of them`);
  }

  const rope = { sliding_attention: ropeOfType(tc, prefix, 'sliding_attention'), full_attention: ropeOfType(tc, prefix, 'full_attention') };
  const layerHeadDim = types.map((t) => (t === 'full_attention' ? globalHeadDim : headDim));
  const softcap = tc.final_logit_softcapping;
  if (softcap !== undefined && softcap !== null && (typeof softcap !== 'number' || !(softcap > 0))) {
    throw unsupported(prefix + 'final_logit_softcapping', softcap, 'expected a positive number or null');
  }
  const vocabSize = num(tc, 'vocab_size', prefix, { int: true, min: 1 });
  const vocabSizePerLayerInput = num(tc, 'vocab_size_per_layer_input', prefix, { int: true, min: 1, default: vocabSize });
  if (vocabSizePerLayerInput > vocabSize) throw unsupported(prefix + 'vocab_size_per_layer_input', vocabSizePerLayerInput, `exceeds vocab_size = ${vocabSize}`);

  return {
    vocabSize,
    vocabSizePerLayerInput,
    hiddenSize,
    pleDim,
    numLayers,
    intermediateSize: intermediateSize as number[],
    numHeads,
    numKvHeads,
    headDim,
    globalHeadDim,
    slidingWindow: num(tc, 'sliding_window', prefix, { int: true, min: 1 }),
    rmsNormEps: num(tc, 'rms_norm_eps', prefix, { default: 1e-6 }),
    finalLogitSoftcap: typeof softcap === 'number' ? softcap : null,
    maxPositionEmbeddings: num(tc, 'max_position_embeddings', prefix, { int: true, min: 1, default: 131072 }),
    layerTypes: types,
    numKvSharedLayers,
    firstKvSharedLayer,
    kvSourceLayer,
    layerHeadDim,
    ropeTheta: types.map((t) => rope[t].theta),
    // HF: rope_angles = int(partial_rotary_factor * head_dim // 2), over the layer type's head dim.
    ropeAngles: types.map((t, l) => Math.floor((rope[t].rotaryFraction * layerHeadDim[l]) / 2)),
  };
}

/** Parses and validates a Gemma 4 config.json (either top-level form). */
export function parseGemma4Config(raw: unknown): Gemma4Config {
  if (!raw || typeof raw !== 'object') throw new GemmaError('bad-file', 'config.json is not a JSON object.');
  const top = raw as Json;
  let tc: Json;
  if (top.model_type === 'gemma4') {
    if (!top.text_config || typeof top.text_config !== 'object') throw unsupported('text_config', top.text_config, 'a gemma4 config needs a text_config object');
    tc = top.text_config as Json;
  } else if (top.model_type === 'gemma4_text') {
    tc = top;
  } else {
    throw unsupported('model_type', top.model_type, 'expected "gemma4" or "gemma4_text"');
  }
  const text = parseTextConfig(tc, top.model_type === 'gemma4' ? 'text_config.' : '');
  const placeholderIds = ['image_token_id', 'audio_token_id', 'video_token_id']
    .map((k) => top[k])
    .filter((v): v is number => typeof v === 'number' && Number.isInteger(v) && v >= 0 && v < text.vocabSize);
  return {
    text,
    eosTokenIds: idList(top.eos_token_id ?? tc.eos_token_id, [1, 106]),
    bosTokenId: idList(top.bos_token_id ?? tc.bos_token_id, [2])[0],
    padTokenId: idList(top.pad_token_id ?? tc.pad_token_id, [0])[0],
    placeholderIds,
  };
}
