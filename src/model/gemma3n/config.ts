/**
 * Gemma 3n configuration: parsing of HF `config.json` (model_type `gemma3n` with a nested `text_config`, or a bare
 * `gemma3n_text`), validation (anything we do not implement is a GemmaError('unsupported-config') naming the key and
 * value), and the derived per-layer facts the forward pass needs: attention type, which cache a layer reads
 * (KV sharing), and the activation-sparsity cutoff κ.
 * Reference: docs/gemma3n-formats.md §1.2–1.3, §2.8, §2.9.
 */
import { GemmaError } from '../../errors.ts';
import { idList, num, unsupported, type Json } from '../config-json.ts';
import { inverseNormalCdf } from '../../math/normal.ts';

export type LayerType = 'sliding_attention' | 'full_attention';

/** One multimodal embedder's hard-token range (ids [vocabOffset, vocabOffset + vocabSize) → embedder rows). */
export interface HardTokenRange {
  vocabOffset: number;
  vocabSize: number;
  /** Width of the embedder's table (vision 2048, audio 1536 in E2B). */
  hiddenSize: number;
  rmsNormEps: number;
}

export interface Gemma3nTextConfig {
  vocabSize: number;
  /** Rows of the PLE table; ids at or above it read PLE row 0. */
  vocabSizePerLayerInput: number;
  /** D */
  hiddenSize: number;
  /** P: per-layer-input width. */
  pleDim: number;
  numLayers: number;
  /** F_l per layer. */
  intermediateSize: number[];
  numHeads: number;
  numKvHeads: number;
  headDim: number;
  laurelRank: number;
  altupNumInputs: number;
  altupActiveIdx: number;
  altupCoefClip: number | null;
  altupCorrectScale: boolean;
  slidingWindow: number;
  ropeThetaFull: number;
  ropeThetaSliding: number;
  rmsNormEps: number;
  /** null = no softcap. */
  finalLogitSoftcap: number | null;
  maxPositionEmbeddings: number;
  layerTypes: LayerType[];
  activationSparsity: number[];
  numKvSharedLayers: number;

  // ---- derived ----
  /** First layer that computes no K/V of its own (L − num_kv_shared_layers). */
  firstKvSharedLayer: number;
  /** For each layer, the layer whose KV cache it attends over (itself when it owns a cache). */
  kvSourceLayer: number[];
  /** For each layer, κ = Φ⁻¹(sparsity) of the gate cutoff μ + κσ, or null for a dense layer. */
  gateCutoffZ: Array<number | null>;
  /** RoPE base per layer. */
  ropeTheta: number[];
}

export interface Gemma3nConfig {
  text: Gemma3nTextConfig;
  /** Hard-token embedders; absent for a text-only (`gemma3n_text`) checkpoint. */
  vision?: HardTokenRange;
  audio?: HardTokenRange;
  eosTokenIds: number[];
  bosTokenId: number;
  padTokenId: number;
}

/** The two RoPE bases, from either spelling (§1.3): rope_theta + rope_local_base_freq, or rope_parameters. */
function ropeBases(tc: Json, prefix: string): { full: number; sliding: number } {
  const params = tc.rope_parameters as Record<string, Json> | undefined | null;
  if (tc.rope_scaling !== undefined && tc.rope_scaling !== null) throw unsupported(prefix + 'rope_scaling', tc.rope_scaling, 'no RoPE scaling is implemented');
  if (params && typeof params === 'object') {
    const get = (type: LayerType, fallbackKey: string, fallback: number): number => {
      const p = params[type];
      if (!p) {
        if (tc[fallbackKey] !== undefined) return num(tc, fallbackKey, prefix);
        return fallback;
      }
      if (p.rope_type !== undefined && p.rope_type !== 'default') {
        throw unsupported(`${prefix}rope_parameters.${type}.rope_type`, p.rope_type, 'only default RoPE is implemented');
      }
      return num(p, 'rope_theta', `${prefix}rope_parameters.${type}.`);
    };
    return { full: get('full_attention', 'rope_theta', 1e6), sliding: get('sliding_attention', 'rope_local_base_freq', 1e4) };
  }
  return {
    full: num(tc, 'rope_theta', prefix, { default: 1e6 }),
    sliding: num(tc, 'rope_local_base_freq', prefix, { default: 1e4 }),
  };
}

function parseTextConfig(tc: Json, prefix: string): Gemma3nTextConfig {
  if (tc.model_type !== undefined && tc.model_type !== 'gemma3n_text') {
    throw unsupported(prefix + 'model_type', tc.model_type, 'expected "gemma3n_text"');
  }
  const hiddenSize = num(tc, 'hidden_size', prefix, { int: true, min: 1 });
  const numLayers = num(tc, 'num_hidden_layers', prefix, { int: true, min: 1 });
  const numHeads = num(tc, 'num_attention_heads', prefix, { int: true, min: 1 });
  const numKvHeads = num(tc, 'num_key_value_heads', prefix, { int: true, min: 1 });
  if (numHeads % numKvHeads !== 0) throw unsupported(prefix + 'num_key_value_heads', numKvHeads, `must divide num_attention_heads = ${numHeads}`);
  const headDim = num(tc, 'head_dim', prefix, { int: true, min: 2 });
  if (headDim % 2 !== 0) throw unsupported(prefix + 'head_dim', headDim, 'RoPE needs an even head_dim');

  const act = tc.hidden_activation ?? tc.hidden_act;
  if (act !== 'gelu_pytorch_tanh') throw unsupported(prefix + 'hidden_activation', act, 'only "gelu_pytorch_tanh" is implemented');
  if (tc.attention_bias) throw unsupported(prefix + 'attention_bias', tc.attention_bias, 'Gemma 3n has no biases; none are loaded');
  if (tc.attn_logit_softcapping !== undefined && tc.attn_logit_softcapping !== null) {
    throw unsupported(prefix + 'attn_logit_softcapping', tc.attn_logit_softcapping, 'Gemma 3n has no attention-logit softcap');
  }
  if (tc.tie_word_embeddings === false) throw unsupported(prefix + 'tie_word_embeddings', false, 'the LM head is the tied token embedding');

  const altupNumInputs = num(tc, 'altup_num_inputs', prefix, { int: true, default: 4 });
  if (altupNumInputs !== 4) throw unsupported(prefix + 'altup_num_inputs', altupNumInputs, 'the AltUp kernels are written for 4 streams');
  const altupActiveIdx = num(tc, 'altup_active_idx', prefix, { int: true, default: 0 });
  if (altupActiveIdx !== 0) throw unsupported(prefix + 'altup_active_idx', altupActiveIdx, 'only stream 0 as the active stream is implemented');
  const clip = tc.altup_coef_clip;
  if (clip !== undefined && clip !== null && (typeof clip !== 'number' || !(clip > 0))) throw unsupported(prefix + 'altup_coef_clip', clip, 'expected a positive number or null');
  const correctScale = tc.altup_correct_scale ?? true;
  if (typeof correctScale !== 'boolean') throw unsupported(prefix + 'altup_correct_scale', correctScale, 'expected a boolean');

  const layerTypes = tc.layer_types as unknown;
  if (!Array.isArray(layerTypes) || layerTypes.length !== numLayers) {
    throw unsupported(prefix + 'layer_types', layerTypes, `expected a list of ${numLayers} entries (num_hidden_layers)`);
  }
  layerTypes.forEach((t, i) => {
    if (t !== 'sliding_attention' && t !== 'full_attention') throw unsupported(`${prefix}layer_types[${i}]`, t, 'expected "sliding_attention" or "full_attention"');
  });

  const rawInter = tc.intermediate_size;
  const intermediateSize = typeof rawInter === 'number' ? new Array<number>(numLayers).fill(rawInter) : rawInter;
  if (!Array.isArray(intermediateSize) || intermediateSize.length !== numLayers || intermediateSize.some((v) => !Number.isInteger(v) || v <= 0)) {
    throw unsupported(prefix + 'intermediate_size', rawInter, `expected a positive integer or a list of ${numLayers} of them`);
  }
  const rawSparsity = tc.activation_sparsity_pattern ?? new Array<number>(numLayers).fill(0);
  if (!Array.isArray(rawSparsity) || rawSparsity.length !== numLayers || rawSparsity.some((v) => typeof v !== 'number' || v < 0 || v >= 1)) {
    throw unsupported(prefix + 'activation_sparsity_pattern', rawSparsity, `expected ${numLayers} numbers in [0, 1)`);
  }
  const activationSparsity = rawSparsity as number[];

  const numKvSharedLayers = num(tc, 'num_kv_shared_layers', prefix, { int: true, min: 0, default: 0 });
  if (numKvSharedLayers >= numLayers) throw unsupported(prefix + 'num_kv_shared_layers', numKvSharedLayers, `must be below num_hidden_layers = ${numLayers}`);
  const firstKvSharedLayer = numLayers - numKvSharedLayers;
  // A consumer reads the cache of the last earlier producer of its own attention type (HF: layer_types[:first].rindex).
  const kvSourceLayer = (layerTypes as LayerType[]).map((type, l) => {
    if (l < firstKvSharedLayer) return l;
    const src = (layerTypes as LayerType[]).lastIndexOf(type, firstKvSharedLayer - 1);
    if (src < 0) throw unsupported(prefix + 'num_kv_shared_layers', numKvSharedLayers, `layer ${l} (${type}) has no earlier ${type} layer to share K/V with`);
    return src;
  });

  const { full, sliding } = ropeBases(tc, prefix);
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
    pleDim: num(tc, 'hidden_size_per_layer_input', prefix, { int: true, min: 1 }),
    numLayers,
    intermediateSize: intermediateSize as number[],
    numHeads,
    numKvHeads,
    headDim,
    laurelRank: num(tc, 'laurel_rank', prefix, { int: true, min: 1 }),
    altupNumInputs,
    altupActiveIdx,
    altupCoefClip: typeof clip === 'number' ? clip : null,
    altupCorrectScale: correctScale,
    slidingWindow: num(tc, 'sliding_window', prefix, { int: true, min: 1 }),
    ropeThetaFull: full,
    ropeThetaSliding: sliding,
    rmsNormEps: num(tc, 'rms_norm_eps', prefix, { default: 1e-6 }),
    finalLogitSoftcap: typeof softcap === 'number' ? softcap : null,
    maxPositionEmbeddings: num(tc, 'max_position_embeddings', prefix, { int: true, min: 1, default: 32768 }),
    layerTypes: layerTypes as LayerType[],
    activationSparsity,
    numKvSharedLayers,
    firstKvSharedLayer,
    kvSourceLayer,
    gateCutoffZ: activationSparsity.map((s) => (s > 0 ? inverseNormalCdf(s) : null)),
    ropeTheta: (layerTypes as LayerType[]).map((t) => (t === 'full_attention' ? full : sliding)),
  };
}

function hardTokenRange(sub: unknown, key: string): HardTokenRange | undefined {
  if (!sub || typeof sub !== 'object') return undefined;
  const c = sub as Json;
  if (c.vocab_offset === undefined) return undefined;
  return {
    vocabOffset: num(c, 'vocab_offset', key + '.', { int: true, min: 0 }),
    vocabSize: num(c, 'vocab_size', key + '.', { int: true, min: 1 }),
    hiddenSize: num(c, 'hidden_size', key + '.', { int: true, min: 1 }),
    rmsNormEps: num(c, 'rms_norm_eps', key + '.', { default: 1e-6 }),
  };
}

/** Parses and validates a Gemma 3n config.json (either top-level form). */
export function parseGemma3nConfig(raw: unknown): Gemma3nConfig {
  if (!raw || typeof raw !== 'object') throw new GemmaError('bad-file', 'config.json is not a JSON object.');
  const top = raw as Json;
  let text: Gemma3nTextConfig;
  let vision: HardTokenRange | undefined;
  let audio: HardTokenRange | undefined;
  if (top.model_type === 'gemma3n') {
    if (!top.text_config || typeof top.text_config !== 'object') throw unsupported('text_config', top.text_config, 'a gemma3n config needs a text_config object');
    text = parseTextConfig(top.text_config as Json, 'text_config.');
    vision = hardTokenRange(top.vision_config, 'vision_config');
    audio = hardTokenRange(top.audio_config, 'audio_config');
  } else if (top.model_type === 'gemma3n_text') {
    text = parseTextConfig(top, '');
  } else {
    throw unsupported('model_type', top.model_type, 'expected "gemma3n" or "gemma3n_text"');
  }
  const tc = (top.model_type === 'gemma3n' ? top.text_config : top) as Json;
  return {
    text,
    vision,
    audio,
    eosTokenIds: idList(top.eos_token_id ?? tc.eos_token_id, [1, 106]),
    bosTokenId: idList(top.bos_token_id ?? tc.bos_token_id, [2])[0],
    padTokenId: idList(top.pad_token_id ?? tc.pad_token_id, [0])[0],
  };
}
