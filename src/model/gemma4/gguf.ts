/**
 * A llama.cpp Gemma 4 GGUF (architecture `gemma4`) seen as a Hugging Face checkpoint: HF tensor names and PyTorch
 * shapes (src/model/gemma-gguf-names.ts, src/io/gguf-checkpoint.ts) and an HF-style `text_config` derived from the
 * file's metadata and tensor shapes, never from E2B constants. What llama.cpp's converter (conversion/gemma.py,
 * Gemma4Model) writes, and how it maps back:
 * - `attention.key_length` is the FULL layers' head dim (global_head_dim), `attention.key_length_swa` the sliding
 *   layers'; `attention.sliding_window_pattern` a bool per layer (true = sliding);
 * - `feed_forward_length`: one number, or one per layer when E2B's double-wide MLP doubles the KV-shared layers';
 * - proportional RoPE on full layers is stored as `rope_freqs.weight` [key_length / 2] frequency factors: 1 for the
 *   angles that rotate, 1e30 for the rest (llama.cpp divides the frequency by the factor). We read back the rotating
 *   count as partial_rotary_factor = 2 · count / key_length, and refuse any other factor pattern;
 * - `blk.N.layer_output_scale.weight` [1] is HF `layers.N.layer_scalar`;
 * - norms are stored raw (Gemma 4 multiplies by w, not 1 + w), as in HF: nothing to undo;
 * - the PLE table is not padded (Gemma 4's LM head and PLE table both have every id).
 * KV-shared layers may carry k/v tensors (the original release has them): mapped, never read.
 */
import { GemmaError } from '../../errors.ts';
import type { GgufFile } from '../../io/gguf.ts';
import { GgufMetadata, checkDecodable, ggufCheckpoint, ggufTensor, shortestF32, type GgufCheckpoint, type GgufTensor } from '../../io/gguf-checkpoint.ts';
import { dequantize } from '../../io/gguf-types.ts';
import { GEMMA_GGUF_GLOBAL_NAMES, GEMMA_GGUF_LAYER_NAMES, HF_LANGUAGE_MODEL, mapGgufTensors } from '../gemma-gguf-names.ts';

/** GGUF `general.architecture` of llama.cpp's Gemma 4 files. */
export const GEMMA4_GGUF_ARCH = 'gemma4';

const LAYER_NAMES: Record<string, string> = { ...GEMMA_GGUF_LAYER_NAMES };

/** Frequency factors at or above this mean "does not rotate" (the converter writes 1e30). */
const NO_ROTATION_FACTOR = 1e20;

/** The subset of HF's Gemma 4 `text_config` a GGUF determines (HF's snake_case keys). */
export interface Gemma4GgufTextConfig {
  model_type: 'gemma4_text';
  final_logit_softcapping: number | null;
  global_head_dim: number;
  head_dim: number;
  hidden_activation: 'gelu_pytorch_tanh';
  hidden_size: number;
  hidden_size_per_layer_input: number;
  intermediate_size: number[];
  layer_types: ('sliding_attention' | 'full_attention')[];
  max_position_embeddings: number;
  num_attention_heads: number;
  num_hidden_layers: number;
  num_key_value_heads: number;
  num_kv_shared_layers: number;
  rms_norm_eps: number;
  rope_parameters: {
    full_attention: { rope_type: 'proportional' | 'default'; rope_theta: number; partial_rotary_factor?: number };
    sliding_attention: { rope_type: 'default'; rope_theta: number };
  };
  sliding_window: number;
  tie_word_embeddings: true;
  vocab_size: number;
  vocab_size_per_layer_input: number;
  bos_token_id?: number;
  eos_token_id?: number[];
  pad_token_id?: number;
}

export type Gemma4Gguf = GgufCheckpoint<Gemma4GgufTextConfig>;

/** Opens a Gemma 4 GGUF: reads the header and the small rope_freqs tensor, never the weights. */
export async function openGemma4Gguf(gguf: GgufFile): Promise<Gemma4Gguf> {
  const { tensors, unmapped } = mapGgufTensors(gguf, {
    globals: GEMMA_GGUF_GLOBAL_NAMES,
    layers: LAYER_NAMES,
    special(t, add) {
      const m = /^blk\.(\d+)\.layer_output_scale\.weight$/.exec(t.name);
      if (!m) return false;
      add(`layers.${m[1]}.layer_scalar`, [...t.ne].reverse(), t.offset);
      return true;
    },
  });
  checkDecodable(gguf, tensors);
  const ropeFreqs = gguf.tensors.get('rope_freqs.weight');
  const factors = ropeFreqs ? await readFactors(gguf, ggufTensor('rope_freqs.weight', ropeFreqs, [...ropeFreqs.ne].reverse())) : undefined;
  return ggufCheckpoint(gguf, tensors, unmapped, textConfig(gguf, tensors, factors));
}

async function readFactors(gguf: GgufFile, t: GgufTensor): Promise<Float32Array> {
  const n = t.shape.reduce((a, b) => a * b, 1);
  return dequantize(t.ggmlType, await gguf.source.read(t.offset, t.byteLength), n, `${gguf.source.name}: rope_freqs.weight`);
}

function textConfig(gguf: GgufFile, tensors: Map<string, GgufTensor>, ropeFactors: Float32Array | undefined): Gemma4GgufTextConfig {
  const file = gguf.source.name;
  const md = new GgufMetadata(gguf, GEMMA4_GGUF_ARCH);
  const bad = (what: string) => new GemmaError('bad-file', `${file}: ${what}`);
  const unsupported = (what: string) => new GemmaError('unsupported-config', `${file}: ${what}`);

  const layers = md.num('block_count');
  const fullHeadDim = md.num('attention.key_length');
  const slidingHeadDim = md.num('attention.key_length_swa', fullHeadDim);
  if (md.num('attention.value_length', fullHeadDim) !== fullHeadDim || md.num('attention.value_length_swa', slidingHeadDim) !== slidingHeadDim) {
    throw unsupported('value_length differs from key_length; Gemma 4 E2B/E4B use one head dim per layer type.');
  }
  if (md.raw('expert_count') !== undefined) throw unsupported('a mixture-of-experts Gemma 4 (26B-A4B) is not supported; this library runs E2B and E4B.');

  const pattern = md.raw('attention.sliding_window_pattern');
  if (!Array.isArray(pattern) || pattern.length !== layers) throw bad(`attention.sliding_window_pattern must be a bool per layer (${layers}), got ${JSON.stringify(pattern)}.`);
  const layerTypes = pattern.map((s) => (s ? 'sliding_attention' : 'full_attention') as 'sliding_attention' | 'full_attention');

  // Sliding layers rotate every angle; full layers rotate the prefix whose factor is 1 (see the header).
  const ropeSwa = md.num('rope.dimension_count_swa', slidingHeadDim);
  if (ropeSwa !== slidingHeadDim) throw unsupported(`rope.dimension_count_swa ${ropeSwa} ≠ key_length_swa ${slidingHeadDim}: partial RoPE on sliding layers is not implemented.`);
  let fullRope: Gemma4GgufTextConfig['rope_parameters']['full_attention'];
  const thetaFull = shortestF32(md.num('rope.freq_base'));
  if (ropeFactors) {
    if (ropeFactors.length !== fullHeadDim / 2) throw bad(`rope_freqs.weight has ${ropeFactors.length} factors, expected key_length / 2 = ${fullHeadDim / 2}.`);
    let rotated = 0;
    while (rotated < ropeFactors.length && ropeFactors[rotated] === 1) rotated++;
    if (ropeFactors.subarray(rotated).some((f) => !(f >= NO_ROTATION_FACTOR))) {
      throw unsupported('rope_freqs.weight holds frequency factors other than 1 (rotate) then 1e30 (do not rotate): only proportional RoPE is implemented.');
    }
    fullRope = { rope_type: 'proportional', rope_theta: thetaFull, partial_rotary_factor: (2 * rotated) / fullHeadDim };
  } else {
    if (md.num('rope.dimension_count', fullHeadDim) !== fullHeadDim) throw unsupported('partial RoPE on full layers without rope_freqs.weight is not implemented.');
    fullRope = { rope_type: 'default', rope_theta: thetaFull };
  }

  const embed = tensors.get(HF_LANGUAGE_MODEL + 'embed_tokens.weight');
  const ple = tensors.get(HF_LANGUAGE_MODEL + 'embed_tokens_per_layer.weight');
  if (!embed || !ple) throw bad(`${!embed ? 'token_embd.weight' : 'per_layer_token_embd.weight'} is missing; not a Gemma 4 E2B/E4B GGUF.`);
  const softcap = md.raw('final_logit_softcapping');
  const tok = (key: string) => {
    const v = gguf.metadata.get(`tokenizer.ggml.${key}`);
    return typeof v === 'number' ? v : undefined;
  };
  const eos = [tok('eos_token_id'), tok('eot_token_id')].filter((v): v is number => v !== undefined);
  return {
    model_type: 'gemma4_text',
    final_logit_softcapping: typeof softcap === 'number' ? shortestF32(softcap) : null,
    global_head_dim: fullHeadDim,
    head_dim: slidingHeadDim,
    hidden_activation: 'gelu_pytorch_tanh',
    hidden_size: md.num('embedding_length'),
    hidden_size_per_layer_input: md.num('embedding_length_per_layer_input'),
    intermediate_size: md.perLayer('feed_forward_length', layers),
    layer_types: layerTypes,
    max_position_embeddings: md.num('context_length'),
    num_attention_heads: md.uniform('attention.head_count', layers),
    num_hidden_layers: layers,
    num_key_value_heads: md.uniform('attention.head_count_kv', layers),
    num_kv_shared_layers: md.num('attention.shared_kv_layers', 0),
    rms_norm_eps: shortestF32(md.num('attention.layer_norm_rms_epsilon')),
    rope_parameters: { full_attention: fullRope, sliding_attention: { rope_type: 'default', rope_theta: shortestF32(md.num('rope.freq_base_swa', 10000)) } },
    sliding_window: md.num('attention.sliding_window'),
    tie_word_embeddings: true,
    vocab_size: embed.shape[0],
    vocab_size_per_layer_input: ple.shape[0],
    bos_token_id: tok('bos_token_id'),
    eos_token_id: eos.length ? [...new Set(eos)] : undefined,
    pad_token_id: tok('padding_token_id'),
  };
}
