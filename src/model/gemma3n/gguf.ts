/**
 * A llama.cpp Gemma 3n GGUF (architecture `gemma3n`) seen as a Hugging Face checkpoint: HF tensor names and
 * PyTorch shapes (src/io/gguf-checkpoint.ts), and an HF-style `text_config` synthesized from the GGUF metadata, so
 * the Gemma 3n loader reads GGUF and safetensors through one `Checkpoint` interface (src/io/checkpoint.ts).
 *
 * What the mapping has to undo (docs/gemma3n-formats.md §3.2–3.3, fixtures/gguf-gemma3n-tiny-a/README.md):
 * - names (`blk.N.attn_q.weight` → `model.language_model.layers.N.self_attn.q_proj.weight`, …);
 * - shapes: GGUF lists the fastest dimension first, so PyTorch shape = reversed `ne`; the bytes are already the
 *   PyTorch row-major matrix (one GGUF row = one output feature);
 * - `altup_proj` / `altup_unembd_proj` are stacked `ne [D, D, 3]`: slice k = HF `altup_projections.k`;
 * - `altup_correct_scale.weight` is HF `altup.correct_output_scale` (no `.weight` there);
 * - the PLE table `per_layer_token_embd` (`ne [L·P, V]`, i.e. HF's `[V_ple, L·P]`) is zero-padded by current
 *   converters to the full vocabulary; we expose only its first `vocab_size_per_layer_input` rows, which HF's
 *   semantics need (ids at or above it use row 0) and which the metadata does not carry: it is the first row of
 *   the trailing run of all-zero rows (448 in the tiny fixture; 262144 for E2B/E4B: 262400 rows, 256 zero);
 * - norms are stored raw (Gemma 3n multiplies by w, not 1 + w), as in HF: nothing to undo.
 * Everything the loader needs is derived from the file's own metadata and tensor shapes (LAuReL rank from
 * `blk.0.laurel_l`, per-layer FFN widths, the sliding pattern array), so MatFormer slices load too.
 */
import { GemmaError } from '../../errors.ts';
import type { ByteSource } from '../../io/byte-source.ts';
import type { GgufFile } from '../../io/gguf.ts';
import { dequantize } from '../../io/gguf-types.ts';
import { GgufMetadata, checkDecodable, ggufCheckpoint, shortestF32, type GgufCheckpoint, type GgufTensor } from '../../io/gguf-checkpoint.ts';
import { GEMMA_GGUF_GLOBAL_NAMES, GEMMA_GGUF_LAYER_NAMES, HF_LANGUAGE_MODEL, mapGgufTensors } from '../gemma-gguf-names.ts';
import { normalCdf } from '../../math/normal.ts';

/** GGUF `general.architecture` of llama.cpp's Gemma 3n files. */
export const GEMMA3N_GGUF_ARCH = 'gemma3n';

const HF_PREFIX = HF_LANGUAGE_MODEL;

/** The stacked AltUp tensors: ne [D, D, 3], slice k = HF `<name>.k.weight`. */
const STACKED_NAMES: Record<string, string> = {
  'altup_proj.weight': 'altup_projections',
  'altup_unembd_proj.weight': 'altup_unembed_projections',
};

/** GGUF `blk.N.<key>.weight` → HF `layers.N.<value>`: the Gemma names plus AltUp's and LAuReL's. */
const LAYER_NAMES: Record<string, string> = {
  ...GEMMA_GGUF_LAYER_NAMES,
  altup_correct_coef: 'altup.correction_coefs.weight',
  altup_correct_scale: 'altup.correct_output_scale',
  altup_predict_coef: 'altup.prediction_coefs.weight',
  altup_router: 'altup.modality_router.weight',
  altup_router_norm: 'altup.router_norm.weight',
  laurel_l: 'laurel.linear_left.weight',
  laurel_r: 'laurel.linear_right.weight',
  laurel_post_norm: 'laurel.post_laurel_norm.weight',
};

/**
 * The subset of HF's Gemma 3n `text_config` that a GGUF determines, with HF's snake_case keys, plus one extra key:
 * `activation_sparsity_kappa` — the κ = Φ⁻¹(p) values exactly as stored (null for dense layers), because the GGUF
 * stores κ, and p = Φ(κ) is only recovered to ~1e-7 (we round it to 7 decimals: 0.95 comes back as 0.95).
 * Keys GGUF does not carry take HF's defaults: altup_coef_clip 120, altup_correct_scale true,
 * hidden_activation gelu_pytorch_tanh, attention_bias false, query_pre_attn_scalar = head_dim (unused: scale 1).
 */
export interface Gemma3nGgufTextConfig {
  model_type: 'gemma3n_text';
  activation_sparsity_pattern: number[];
  activation_sparsity_kappa: (number | null)[];
  altup_active_idx: number;
  altup_coef_clip: number;
  altup_correct_scale: boolean;
  altup_num_inputs: number;
  attention_bias: boolean;
  final_logit_softcapping: number | null;
  head_dim: number;
  hidden_activation: string;
  hidden_size: number;
  hidden_size_per_layer_input: number;
  intermediate_size: number[];
  laurel_rank: number;
  layer_types: ('sliding_attention' | 'full_attention')[];
  max_position_embeddings: number;
  num_attention_heads: number;
  num_hidden_layers: number;
  num_key_value_heads: number;
  num_kv_shared_layers: number;
  query_pre_attn_scalar: number;
  rms_norm_eps: number;
  rope_local_base_freq: number;
  rope_scaling: null;
  rope_theta: number;
  sliding_window: number;
  vocab_size: number;
  vocab_size_per_layer_input: number;
}

export type Gemma3nGguf = GgufCheckpoint<Gemma3nGgufTextConfig>;

/** Opens a Gemma 3n GGUF: reads the header (and the PLE table's trailing rows), never the whole file. */
export async function openGemma3nGguf(gguf: GgufFile): Promise<Gemma3nGguf> {
  const { source } = gguf;
  const { tensors, unmapped } = mapTensors(gguf);
  checkDecodable(gguf, tensors);

  const ple = tensors.get(HF_PREFIX + 'embed_tokens_per_layer.weight');
  let vocabPerLayer = 0;
  if (ple) {
    vocabPerLayer = await unpaddedRows(source, ple);
    ple.shape = [vocabPerLayer, ...ple.shape.slice(1)];
    ple.byteLength = vocabPerLayer * ple.rowBytes;
  }
  const config = textConfig(gguf, tensors, vocabPerLayer);
  return ggufCheckpoint(gguf, tensors, unmapped, config);
}

function mapTensors(gguf: GgufFile): { tensors: Map<string, GgufTensor>; unmapped: string[] } {
  return mapGgufTensors(gguf, {
    globals: GEMMA_GGUF_GLOBAL_NAMES,
    layers: LAYER_NAMES,
    special(t, add) {
      const stacked = STACKED_NAMES[t.name];
      if (!stacked) return false;
      if (t.ne.length !== 3 || t.byteLength === undefined) throw new GemmaError('bad-file', `${gguf.source.name}: ${t.name} has shape ne [${t.ne}], expected [D, D, n] (stacked AltUp projections).`);
      const slice = t.byteLength / t.ne[2];
      for (let k = 0; k < t.ne[2]; k++) add(`${stacked}.${k}.weight`, [...t.ne].reverse().slice(1), t.offset + k * slice);
      return true;
    },
  });
}

/**
 * Rows of the PLE table before its zero padding: scans back from the last row while rows are all zero (the
 * converter pads with exact zeros; a quantized zero row dequantizes to zeros). Reads only the padded tail.
 */
async function unpaddedRows(source: ByteSource, t: GgufTensor): Promise<number> {
  const rows = t.shape[0];
  const chunk = 64;
  let end = rows; // rows [end, rows) are known to be zero
  while (end > 1) {
    const start = Math.max(1, end - chunk);
    const bytes = await source.read(t.offset + start * t.rowBytes, (end - start) * t.rowBytes);
    const values = dequantize(t.ggmlType, bytes, (end - start) * t.rowElements, t.ggufName);
    for (let r = end - start - 1; r >= 0; r--) {
      for (let i = r * t.rowElements; i < (r + 1) * t.rowElements; i++) if (values[i] !== 0) return start + r + 1;
    }
    end = start;
  }
  return end;
}

function textConfig(gguf: GgufFile, tensors: Map<string, GgufTensor>, vocabPerLayer: number): Gemma3nGgufTextConfig {
  const file = gguf.source.name;
  const md = new GgufMetadata(gguf, GEMMA3N_GGUF_ARCH);
  const raw = (key: string) => md.raw(key);
  const num = (key: string, fallback?: number) => md.num(key, fallback);
  const perLayer = (key: string, layers: number) => md.perLayer(key, layers);
  // One value for every layer: we do not support per-layer head counts.
  const uniform = (key: string, layers: number) => md.uniform(key, layers);

  const layers = num('block_count');
  const hidden = num('embedding_length');
  const headDim = num('attention.key_length');
  const valueDim = num('attention.value_length', headDim);
  if (valueDim !== headDim) throw new GemmaError('unsupported-config', `${file}: key_length ${headDim} ≠ value_length ${valueDim}; Gemma 3n uses one head_dim.`);

  // Sliding pattern: a bool array (true = sliding). Without it, HF's default: every fifth layer is full.
  const pattern = raw('attention.sliding_window_pattern');
  let layerTypes: Gemma3nGgufTextConfig['layer_types'];
  if (Array.isArray(pattern)) {
    if (pattern.length !== layers) throw new GemmaError('bad-file', `${file}: sliding_window_pattern has ${pattern.length} entries for ${layers} layers.`);
    layerTypes = pattern.map((s) => (s ? 'sliding_attention' : 'full_attention'));
  } else {
    layerTypes = Array.from({ length: layers }, (_, i) => ((i + 1) % 5 === 0 ? 'full_attention' : 'sliding_attention'));
  }

  // Activation sparsity: κ = Φ⁻¹(p) per layer, −inf (or absent) for dense layers.
  const kappaRaw = raw('activation_sparsity_scale');
  const kappa: (number | null)[] = kappaRaw === undefined ? new Array(layers).fill(null) : perLayer('activation_sparsity_scale', layers).map((k) => (Number.isFinite(k) ? k : null));
  const sparsity = kappa.map((k) => (k === null ? 0 : Math.round(normalCdf(k) * 1e7) / 1e7));

  const laurel = tensors.get(HF_PREFIX + 'layers.0.laurel.linear_left.weight');
  const embed = tensors.get(HF_PREFIX + 'embed_tokens.weight');
  if (!laurel || !embed) throw new GemmaError('bad-file', `${file}: ${!embed ? 'token_embd.weight' : 'blk.0.laurel_l.weight'} is missing; not a complete Gemma 3n GGUF.`);
  const softcap = raw('final_logit_softcapping');

  return {
    model_type: 'gemma3n_text',
    activation_sparsity_pattern: sparsity,
    activation_sparsity_kappa: kappa,
    altup_active_idx: num('altup.active_idx', 0),
    altup_coef_clip: 120.0,
    altup_correct_scale: true,
    altup_num_inputs: num('altup.num_inputs', 4),
    attention_bias: false,
    final_logit_softcapping: typeof softcap === 'number' ? shortestF32(softcap) : null,
    head_dim: headDim,
    hidden_activation: 'gelu_pytorch_tanh',
    hidden_size: hidden,
    hidden_size_per_layer_input: num('embedding_length_per_layer_input'),
    intermediate_size: perLayer('feed_forward_length', layers),
    laurel_rank: laurel.shape[0], // HF [rank, D] = GGUF ne[1]
    layer_types: layerTypes,
    max_position_embeddings: num('context_length'),
    num_attention_heads: uniform('attention.head_count', layers),
    num_hidden_layers: layers,
    num_key_value_heads: uniform('attention.head_count_kv', layers),
    num_kv_shared_layers: num('attention.shared_kv_layers', 0),
    query_pre_attn_scalar: headDim,
    rms_norm_eps: shortestF32(num('attention.layer_norm_rms_epsilon')),
    rope_local_base_freq: shortestF32(num('rope.freq_base_swa', 10000)), // llama.cpp's default when absent
    rope_scaling: null,
    rope_theta: shortestF32(num('rope.freq_base')),
    sliding_window: num('attention.sliding_window'),
    vocab_size: embed.shape[0],
    vocab_size_per_layer_input: vocabPerLayer,
  };
}

