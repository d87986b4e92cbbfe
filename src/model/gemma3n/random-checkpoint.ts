/**
 * A Gemma 3n checkpoint with random weights, in memory: the same `Checkpoint` interface (src/io/checkpoint.ts) the
 * safetensors and GGUF readers implement, with an HF-shaped config.json and every tensor the real checkpoints
 * have (HF names and shapes, formats doc §1.5), so the whole loader → engine path runs with no download.
 *
 * - `tiny`: hidden 128, 4 layers, but the real tokenizer's full vocabulary (262400 / 262144), so the real Gemma
 *   tokenizer and chat template drive it. Every structural feature is present: sliding and full layers, KV sharing
 *   (layers 2 and 3 read the caches of 0 and 1), activation sparsity on layer 0, per-layer intermediate sizes,
 *   vision/audio hard-token embedders, and an audio tower (`model.audio_tower.*`: 2 conformer blocks of width 48,
 *   the real attention chunking, sub-sampler and time reduction, so a 30 s clip makes E2B's 188 soft tokens). Its
 *   vision_config names a small vision tower whose tensors the registry adds (src/model/registry.ts randomCheckpoint:
 *   every MobileNet-V5 block kind at the real 768 x 768 input and 256 soft tokens per image). Used by the demo's
 *   built-in model (audio and image input included) and by the runtime's browser tests.
 * - `e2b` / `e4b`: the real dimensions (formats doc §1.3), the audio and vision towers at their real configs; `layers` scales
 *   the layer count with every per-layer dimension kept (for benchmarks with `loadWeights({ random: true })`, which
 *   only needs the config).
 *
 * Values are drawn lazily and deterministically from the seed (src/model/random-tensors.ts): uniform with a mean
 * and standard deviation per tensor family (below): not trained, so the model's text is gibberish by design.
 */
import type { Checkpoint, FloatDtype } from '../../io/checkpoint.ts';
import { RandomTensorPlans, randomTensorCheckpoint, type RandomTensorPlan } from '../random-tensors.ts';

export type RandomPreset = 'tiny' | 'e2b' | 'e4b';

export function isRandomPreset(p: string): p is RandomPreset {
  return p === 'tiny' || p === 'e2b' || p === 'e4b';
}

export interface RandomCheckpointOptions {
  /** Which dimensions (default 'tiny'). */
  preset?: RandomPreset;
  /** Seed of every value (default 1). */
  seed?: number;
  /** Decoder layers (default: the preset's). Per-layer dimensions stay the preset's; see randomGemma3nConfig. */
  layers?: number;
  /**
   * LM-head rows (default the real 262400; the PLE table then has this minus 256 rows). Smaller only for smoke runs
   * of benchmarks on slow software GPUs: the real tokenizer needs the full vocabulary.
   */
  vocabSize?: number;
  /** Stored dtype of the float tensors (default 'BF16', as the published checkpoints). */
  dtype?: Extract<FloatDtype, 'BF16' | 'F32'>;
}

/** The real tokenizer's sizes (Gemma 3 / 3n): LM-head rows and PLE-table rows. */
export const GEMMA3N_VOCAB_SIZE = 262400;
export const GEMMA3N_PLE_VOCAB_SIZE = 262144;

interface PresetDims {
  hidden: number;
  ple: number;
  layers: number;
  kvShared: number;
  sparseLayers: number;
  intermediate: (layer: number) => number;
  heads: number;
  kvHeads: number;
  headDim: number;
  laurelRank: number;
  slidingWindow: number;
  /** Every `fullEvery`-th layer (1-based) is full attention. */
  fullEvery: number;
  visionHidden: number;
  /** vision_config.architecture (timm's name, or the library's small random tower). */
  visionArch: string;
  audioHidden: number;
  /** Audio tower: conformer blocks, attention heads, sub-sampler channels. */
  audioLayers: number;
  audioHeads: number;
  audioChannels: [number, number];
}

const PRESETS: Record<RandomPreset, PresetDims> = {
  // Small enough for SwiftShader, big enough that every kernel's tiling and every structural branch runs.
  tiny: {
    hidden: 128,
    ple: 16,
    layers: 4,
    kvShared: 2,
    sparseLayers: 1,
    intermediate: (l) => [256, 320, 256, 192][l % 4],
    heads: 4,
    kvHeads: 2,
    headDim: 32,
    laurelRank: 16,
    slidingWindow: 32,
    fullEvery: 2,
    visionHidden: 64,
    visionArch: 'gemma3n_webgpu_tiny_random',
    audioHidden: 48,
    audioLayers: 2,
    audioHeads: 4,
    audioChannels: [16, 8],
  },
  e2b: { hidden: 2048, ple: 256, layers: 30, kvShared: 10, sparseLayers: 10, intermediate: () => 8192, heads: 8, kvHeads: 2, headDim: 256, laurelRank: 64, slidingWindow: 512, fullEvery: 5, visionHidden: 2048, visionArch: 'mobilenetv5_300m_enc', audioHidden: 1536, audioLayers: 12, audioHeads: 8, audioChannels: [128, 32] },
  e4b: { hidden: 2048, ple: 256, layers: 35, kvShared: 15, sparseLayers: 10, intermediate: () => 16384, heads: 8, kvHeads: 2, headDim: 256, laurelRank: 64, slidingWindow: 512, fullEvery: 5, visionHidden: 2048, visionArch: 'mobilenetv5_300m_enc', audioHidden: 1536, audioLayers: 12, audioHeads: 8, audioChannels: [128, 32] },
};

/**
 * An HF-shaped Gemma 3n config.json (model_type `gemma3n` with text/vision/audio configs) for a preset. With
 * `layers` different from the preset's: the layer-type pattern is kept (every `fullEvery`-th layer full; with
 * fewer layers than that, the last one is full), KV sharing and activation sparsity keep the preset's proportions
 * (rounded down), and every shared layer still has an earlier producer of its attention type.
 */
export function randomGemma3nConfig(preset: RandomPreset = 'tiny', layers?: number, vocabSize = GEMMA3N_VOCAB_SIZE): Record<string, unknown> {
  if (!Number.isInteger(vocabSize) || vocabSize < 512) throw new RangeError(`vocabSize must be an integer ≥ 512, got ${vocabSize}`);
  const pleVocab = vocabSize - (GEMMA3N_VOCAB_SIZE - GEMMA3N_PLE_VOCAB_SIZE);
  const p = PRESETS[preset];
  const mediaTextIds = pleVocab >= 6145 ? pleVocab - 6145 : pleVocab - 2;
  const L = layers ?? p.layers;
  if (!Number.isInteger(L) || L < 1) throw new RangeError(`layers must be a positive integer, got ${layers}`);
  const layerTypes = Array.from({ length: L }, (_, i) => ((i + 1) % p.fullEvery === 0 ? 'full_attention' : 'sliding_attention'));
  if (!layerTypes.includes('full_attention')) layerTypes[L - 1] = 'full_attention';
  let kvShared = L === p.layers ? p.kvShared : Math.floor((L * p.kvShared) / p.layers);
  const hasProducer = (shared: number) =>
    layerTypes.every((type, l) => l < L - shared || layerTypes.lastIndexOf(type, L - shared - 1) >= 0);
  while (kvShared > 0 && !hasProducer(kvShared)) kvShared--;
  const sparse = L === p.layers ? p.sparseLayers : Math.max(1, Math.floor((L * p.sparseLayers) / p.layers));
  const text = {
    model_type: 'gemma3n_text',
    activation_sparsity_pattern: Array.from({ length: L }, (_, l) => (l < sparse ? 0.95 : 0.0)),
    altup_active_idx: 0,
    altup_coef_clip: 120.0,
    altup_correct_scale: true,
    altup_lr_multiplier: 1.0,
    altup_num_inputs: 4,
    attention_bias: false,
    attention_dropout: 0.0,
    final_logit_softcapping: 30.0,
    head_dim: p.headDim,
    hidden_activation: 'gelu_pytorch_tanh',
    hidden_size: p.hidden,
    hidden_size_per_layer_input: p.ple,
    initializer_range: 0.02,
    intermediate_size: Array.from({ length: L }, (_, l) => p.intermediate(l)),
    laurel_rank: p.laurelRank,
    layer_types: layerTypes,
    max_position_embeddings: 32768,
    num_attention_heads: p.heads,
    num_hidden_layers: L,
    num_key_value_heads: p.kvHeads,
    num_kv_shared_layers: kvShared,
    query_pre_attn_scalar: p.headDim,
    rms_norm_eps: 1e-6,
    rope_local_base_freq: 10000.0,
    rope_scaling: null,
    rope_theta: 1000000.0,
    sliding_window: p.slidingWindow,
    torch_dtype: 'bfloat16',
    use_cache: true,
    vocab_size: vocabSize,
    vocab_size_per_layer_input: pleVocab,
  };
  return {
    architectures: ['Gemma3nForConditionalGeneration'],
    model_type: 'gemma3n',
    torch_dtype: 'bfloat16',
    eos_token_id: [1, 106],
    bos_token_id: 2,
    pad_token_id: 0,
    // The real ids (255999, 256000 in the text vocabulary; the rest in the multimodal one), kept inside a vocabulary
    // that vocabSize cuts (then boi/boa are the last two text ids).
    boi_token_id: mediaTextIds,
    eoi_token_id: pleVocab,
    image_token_id: pleVocab + 1,
    boa_token_id: mediaTextIds + 1,
    eoa_token_id: pleVocab + 128,
    audio_token_id: pleVocab + 129,
    text_config: text,
    // The tower's tensors come from the vision family (src/model/registry.ts randomCheckpoint): the real
    // MobileNet-V5-300M for e2b/e4b, a small tower of every block kind for tiny.
    vision_config: { model_type: 'gemma3n_vision', architecture: p.visionArch, hidden_size: p.visionHidden, vocab_offset: pleVocab, vocab_size: 128, rms_norm_eps: 1e-6, model_args: null },
    // The audio tower's other keys take HF's defaults (E2B's values: chunk 12, context 13, reduction 4, 3x3/2x2
    // sub-sampling of 128 mel bins), so the tiny tower makes the real 188 soft tokens per 30 s clip.
    audio_config: {
      model_type: 'gemma3n_audio',
      hidden_size: p.audioHidden,
      conf_num_hidden_layers: p.audioLayers,
      conf_num_attention_heads: p.audioHeads,
      sscp_conv_channel_size: p.audioChannels,
      vocab_offset: pleVocab + 128,
      vocab_size: 128,
      rms_norm_eps: 1e-6,
    },
    audio_soft_tokens_per_image: 188,
    vision_soft_tokens_per_image: 256,
    random_weights: { preset, layers: L, vocabSize },
  };
}

const LM = 'model.language_model.';

function tensorPlans(config: Record<string, unknown>, dtype: 'BF16' | 'F32'): Map<string, RandomTensorPlan> {
  const tc = config.text_config as Record<string, unknown>;
  const D = tc.hidden_size as number, P = tc.hidden_size_per_layer_input as number, L = tc.num_hidden_layers as number;
  const H = tc.num_attention_heads as number, Hkv = tc.num_key_value_heads as number, dh = tc.head_dim as number;
  const R = tc.laurel_rank as number, A = tc.altup_num_inputs as number;
  const V = tc.vocab_size as number, Vp = tc.vocab_size_per_layer_input as number;
  const planned = new RandomTensorPlans(dtype);
  const add = planned.add.bind(planned), linear = planned.linear.bind(planned), norm = planned.norm.bind(planned);

  add(LM + 'embed_tokens.weight', [V, D], 0, 1 / Math.sqrt(D), { copyRow0From: Vp });
  add(LM + 'embed_tokens_per_layer.weight', [Vp, L * P], 0, 1 / Math.sqrt(P));
  linear(LM + 'per_layer_model_projection.weight', L * P, D);
  norm(LM + 'per_layer_projection_norm.weight', P);
  for (let i = 0; i < A - 1; i++) {
    linear(`${LM}altup_projections.${i}.weight`, D, D);
    linear(`${LM}altup_unembed_projections.${i}.weight`, D, D);
  }
  norm(LM + 'norm.weight', D);
  for (let l = 0; l < L; l++) {
    const p = `${LM}layers.${l}.`;
    const F = (tc.intermediate_size as number[])[l];
    linear(p + 'self_attn.q_proj.weight', H * dh, D);
    linear(p + 'self_attn.k_proj.weight', Hkv * dh, D);
    linear(p + 'self_attn.v_proj.weight', Hkv * dh, D);
    linear(p + 'self_attn.o_proj.weight', D, H * dh);
    norm(p + 'self_attn.q_norm.weight', dh);
    norm(p + 'self_attn.k_norm.weight', dh);
    for (const n of ['input_layernorm', 'post_attention_layernorm', 'pre_feedforward_layernorm', 'post_feedforward_layernorm']) norm(`${p}${n}.weight`, D);
    linear(p + 'mlp.gate_proj.weight', F, D);
    linear(p + 'mlp.up_proj.weight', F, D);
    linear(p + 'mlp.down_proj.weight', D, F);
    add(p + 'altup.correct_output_scale', [D], 1, 0.05);
    add(p + 'altup.correction_coefs.weight', [A, A], 0, 0.1);
    add(p + 'altup.prediction_coefs.weight', [A * A, A], 0, 0.1);
    add(p + 'altup.modality_router.weight', [A, D], 0, 1 / Math.sqrt(D));
    norm(p + 'altup.router_norm.weight', D);
    linear(p + 'laurel.linear_left.weight', R, D);
    linear(p + 'laurel.linear_right.weight', D, R);
    norm(p + 'laurel.post_laurel_norm.weight', D);
    linear(p + 'per_layer_input_gate.weight', P, D);
    linear(p + 'per_layer_projection.weight', D, P);
    norm(p + 'post_per_layer_input_norm.weight', D);
  }
  for (const [prefix, sub] of [['model.embed_vision.', config.vision_config], ['model.embed_audio.', config.audio_config]] as const) {
    const s = sub as { hidden_size: number; vocab_size: number } | undefined;
    if (!s) continue;
    add(prefix + 'embedding.weight', [s.vocab_size, s.hidden_size], 0, 1);
    norm(prefix + 'hard_embedding_norm.weight', s.hidden_size);
    norm(prefix + 'soft_embedding_norm.weight', s.hidden_size);
    linear(prefix + 'embedding_projection.weight', D, s.hidden_size);
  }
  audioTowerPlans(config.audio_config as Record<string, unknown> | undefined, planned);
  return planned.plans;
}

/** model.audio_tower.* at the config's shapes (names and shapes as HF's Gemma3nAudioEncoder). */
function audioTowerPlans(ac: Record<string, unknown> | undefined, planned: RandomTensorPlans): void {
  if (!ac) return;
  const add = planned.add.bind(planned), linear = planned.linear.bind(planned), norm = planned.norm.bind(planned);
  const D = ac.hidden_size as number, L = ac.conf_num_hidden_layers as number, H = ac.conf_num_attention_heads as number;
  const [c0, c1] = ac.sscp_conv_channel_size as [number, number];
  const K = 5; // conf_conv_kernel_size default
  const t = 'model.audio_tower.';
  const sub = `${t}subsample_conv_projection.`;
  add(`${sub}conv_0.conv.weight`, [c0, 1, 3, 3], 0, 1 / 3);
  norm(`${sub}conv_0.norm.weight`, c0);
  add(`${sub}conv_1.conv.weight`, [c1, c0, 3, 3], 0, 1 / Math.sqrt(9 * c0));
  norm(`${sub}conv_1.norm.weight`, c1);
  linear(`${sub}input_proj_linear.weight`, D, 32 * c1); // 128 mel bins -> 64 -> 32 after the two stride-2 convs
  for (let l = 0; l < L; l++) {
    const p = `${t}conformer.${l}.`;
    for (const f of ['ffw_layer_start', 'ffw_layer_end']) {
      norm(`${p}${f}.pre_layer_norm.weight`, D);
      linear(`${p}${f}.ffw_layer_1.weight`, 4 * D, D);
      linear(`${p}${f}.ffw_layer_2.weight`, D, 4 * D);
      norm(`${p}${f}.post_layer_norm.weight`, D);
    }
    norm(`${p}attention.pre_attn_norm.weight`, D);
    linear(`${p}attention.attn.relative_position_embedding.pos_proj.weight`, D, D);
    add(`${p}attention.attn.per_dim_scale`, [D / H], 0, 0.1);
    for (const x of ['q', 'k', 'v']) linear(`${p}attention.attn.${x}_proj.weight`, D, D);
    linear(`${p}attention.post.weight`, D, D);
    norm(`${p}attention.post_norm.weight`, D);
    norm(`${p}lconv1d.pre_layer_norm.weight`, D);
    linear(`${p}lconv1d.linear_start.weight`, 2 * D, D);
    add(`${p}lconv1d.depthwise_conv1d.weight`, [D, 1, K], 0, 1 / Math.sqrt(K));
    norm(`${p}lconv1d.conv_norm.weight`, D);
    linear(`${p}lconv1d.linear_end.weight`, D, D);
    norm(`${p}norm.weight`, D);
  }
}

/** A random-weight Gemma 3n checkpoint (see the header). */
export function createRandomCheckpoint(options: RandomCheckpointOptions = {}): Checkpoint {
  const preset = options.preset ?? 'tiny';
  const seed = options.seed ?? 1;
  const dtype = options.dtype ?? 'BF16';
  const config = randomGemma3nConfig(preset, options.layers, options.vocabSize);
  const plans = tensorPlans(config, dtype);
  const name = `random Gemma 3n (${preset}, ${(config.text_config as { num_hidden_layers: number }).num_hidden_layers} layers, seed ${seed})`;
  return randomTensorCheckpoint(name, config, plans, seed, dtype);
}
