/**
 * A llama.cpp Gemma 3n GGUF (architecture `gemma3n`) seen as a Hugging Face checkpoint: HF tensor names and
 * PyTorch shapes, and an HF-style `text_config` synthesized from the GGUF metadata, so the Gemma 3n loader reads
 * GGUF and safetensors through one `Checkpoint` interface (src/io/checkpoint.ts).
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
import { GemmaError } from '../errors.ts';
import type { ByteSource } from './byte-source.ts';
import type { Checkpoint, PackedTensor, TensorBytes, TensorInfo } from './checkpoint.ts';
import type { QuantFormat } from '../formats/weight-format.ts';
import { readGgufHeader, type GgufFile, type GgufTensorInfo, type GgufValue } from './gguf.ts';
import { GGML_TYPE, dequantize, ggmlTypeInfo, losslessFormats, repackLossless, unsupportedType } from './gguf-types.ts';

const HF_PREFIX = 'model.language_model.';

/** GGUF global tensor → HF name (after the prefix). The stacked AltUp tensors are handled separately. */
const GLOBAL_NAMES: Record<string, string> = {
  'token_embd.weight': 'embed_tokens.weight',
  'per_layer_token_embd.weight': 'embed_tokens_per_layer.weight',
  'per_layer_model_proj.weight': 'per_layer_model_projection.weight',
  'per_layer_proj_norm.weight': 'per_layer_projection_norm.weight',
  'output_norm.weight': 'norm.weight',
};

const STACKED_NAMES: Record<string, string> = {
  'altup_proj.weight': 'altup_projections',
  'altup_unembd_proj.weight': 'altup_unembed_projections',
};

/** GGUF `blk.N.<key>.weight` → HF `layers.N.<value>`. */
const LAYER_NAMES: Record<string, string> = {
  attn_norm: 'input_layernorm.weight',
  attn_q: 'self_attn.q_proj.weight',
  attn_k: 'self_attn.k_proj.weight',
  attn_v: 'self_attn.v_proj.weight',
  attn_output: 'self_attn.o_proj.weight',
  attn_q_norm: 'self_attn.q_norm.weight',
  attn_k_norm: 'self_attn.k_norm.weight',
  post_attention_norm: 'post_attention_layernorm.weight',
  ffn_norm: 'pre_feedforward_layernorm.weight',
  ffn_gate: 'mlp.gate_proj.weight',
  ffn_up: 'mlp.up_proj.weight',
  ffn_down: 'mlp.down_proj.weight',
  post_ffw_norm: 'post_feedforward_layernorm.weight',
  inp_gate: 'per_layer_input_gate.weight',
  proj: 'per_layer_projection.weight',
  post_norm: 'post_per_layer_input_norm.weight',
  altup_correct_coef: 'altup.correction_coefs.weight',
  altup_correct_scale: 'altup.correct_output_scale',
  altup_predict_coef: 'altup.prediction_coefs.weight',
  altup_router: 'altup.modality_router.weight',
  altup_router_norm: 'altup.router_norm.weight',
  laurel_l: 'laurel.linear_left.weight',
  laurel_r: 'laurel.linear_right.weight',
  laurel_post_norm: 'laurel.post_laurel_norm.weight',
};

/** One HF tensor backed by a byte range of the GGUF file. */
export interface GgufTensor {
  hfName: string;
  ggufName: string;
  /** PyTorch order. */
  shape: number[];
  /** ggml type id and name ('Q4_K', 'BF16', …). */
  ggmlType: number;
  typeName: string;
  /** Absolute byte range in the file. */
  offset: number;
  byteLength: number;
  /** Elements in one slice of the first dimension (a row of a matrix) and its bytes. */
  rowElements: number;
  rowBytes: number;
}

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

export interface Gemma3nGguf extends Checkpoint {
  /** `{ model_type: 'gemma3n_text', …text_config keys }` (see Gemma3nGgufTextConfig). */
  readonly config: Gemma3nGgufTextConfig;
  readonly gguf: GgufFile;
  /** By HF name. */
  readonly tensors: ReadonlyMap<string, GgufTensor>;
  /** GGUF tensors we did not map (none in llama.cpp's text GGUFs); ignored. */
  readonly unmappedTensors: string[];
  /** Values as f32 (exact for F32/F16/BF16; ggml's dequantization for quantized types). */
  readF32(name: string, rows?: RowRange): Promise<Float32Array>;
  /** The stored bytes of a tensor (or of rows of it), in its ggml type. */
  readRaw(name: string, rows?: RowRange): Promise<Uint8Array>;
  /** Our GPU layout when the stored type repacks into `format` losslessly (src/formats/stored-dtype.ts), else null. */
  readPackedAs(name: string, format: QuantFormat, rows?: RowRange): Promise<PackedTensor | null>;
}

export interface RowRange {
  start: number;
  count: number;
}

/** Opens a Gemma 3n GGUF: reads the header (and the PLE table's trailing rows), never the whole file. */
export async function openGemma3nGguf(source: ByteSource): Promise<Gemma3nGguf> {
  const gguf = await readGgufHeader(source);
  const arch = gguf.metadata.get('general.architecture');
  if (arch !== 'gemma3n') {
    throw new GemmaError('unsupported-config', `${source.name} is a GGUF of architecture "${String(arch)}"; only Gemma 3n ("gemma3n") is supported.`);
  }
  const { tensors, unmapped } = mapTensors(gguf);

  // Fail before any weight is read (or downloaded) if a tensor has a type we cannot decode.
  for (const t of tensors.values()) {
    if (!ggmlTypeInfo(t.ggmlType)?.decodable) throw unsupportedType(t.ggmlType, `${source.name}: tensor ${t.ggufName}`);
  }

  const ple = tensors.get(HF_PREFIX + 'embed_tokens_per_layer.weight');
  let vocabPerLayer = 0;
  if (ple) {
    vocabPerLayer = await unpaddedRows(source, ple);
    ple.shape = [vocabPerLayer, ...ple.shape.slice(1)];
    ple.byteLength = vocabPerLayer * ple.rowBytes;
  }
  const config = textConfig(gguf, tensors, vocabPerLayer);
  return gemma3nCheckpoint(gguf, tensors, unmapped, config);
}

function mapTensors(gguf: GgufFile): { tensors: Map<string, GgufTensor>; unmapped: string[] } {
  const tensors = new Map<string, GgufTensor>();
  const unmapped: string[] = [];
  const add = (hfName: string, t: GgufTensorInfo, shape: number[], offset: number) => {
    const info = ggmlTypeInfo(t.type);
    const rowElements = shape.slice(1).reduce((a, b) => a * b, 1);
    const rowBytes = info ? (rowElements / info.blockSize) * info.blockBytes : NaN;
    tensors.set(HF_PREFIX + hfName, {
      hfName: HF_PREFIX + hfName, ggufName: t.name, shape, ggmlType: t.type, typeName: t.typeName, offset,
      byteLength: t.byteLength === undefined ? NaN : rowBytes * shape[0], rowElements, rowBytes,
    });
  };
  for (const t of gguf.tensors.values()) {
    const shape = [...t.ne].reverse();
    const global = GLOBAL_NAMES[t.name];
    const stacked = STACKED_NAMES[t.name];
    const layer = /^blk\.(\d+)\.(\w+)\.weight$/.exec(t.name);
    if (global) {
      add(global, t, shape, t.offset);
    } else if (stacked) {
      if (t.ne.length !== 3 || t.byteLength === undefined) throw new GemmaError('bad-file', `${gguf.source.name}: ${t.name} has shape ne [${t.ne}], expected [D, D, n] (stacked AltUp projections).`);
      const slice = t.byteLength / t.ne[2];
      for (let k = 0; k < t.ne[2]; k++) add(`${stacked}.${k}.weight`, t, shape.slice(1), t.offset + k * slice);
    } else if (layer && LAYER_NAMES[layer[2]]) {
      add(`layers.${layer[1]}.${LAYER_NAMES[layer[2]]}`, t, shape, t.offset);
    } else {
      unmapped.push(t.name);
    }
  }
  return { tensors, unmapped };
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

function gemma3nCheckpoint(gguf: GgufFile, tensors: Map<string, GgufTensor>, unmapped: string[], config: Gemma3nGgufTextConfig): Gemma3nGguf {
  const name = gguf.source.name;
  const get = (n: string): GgufTensor => {
    const t = tensors.get(n);
    if (!t) throw new GemmaError('bad-file', `${name}: tensor ${n} is missing from the GGUF file.`);
    return t;
  };
  const range = (t: GgufTensor, rows?: RowRange): { offset: number; length: number; count: number } => {
    if (!rows) return { offset: t.offset, length: t.byteLength, count: t.shape[0] };
    if (rows.start < 0 || rows.count < 0 || rows.start + rows.count > t.shape[0] || !Number.isInteger(rows.start) || !Number.isInteger(rows.count)) {
      throw new GemmaError('invalid-argument', `${name}: rows [${rows.start}, ${rows.start + rows.count}) out of range for ${t.hfName} [${t.shape}].`);
    }
    if (!Number.isInteger(t.rowBytes)) throw new GemmaError('invalid-argument', `${name}: ${t.hfName} (${t.typeName}) cannot be read by rows.`);
    return { offset: t.offset + rows.start * t.rowBytes, length: rows.count * t.rowBytes, count: rows.count };
  };
  const readRaw = async (n: string, rows?: RowRange) => {
    const t = get(n);
    const r = range(t, rows);
    return gguf.source.read(r.offset, r.length);
  };
  const readF32 = async (n: string, rows?: RowRange) => {
    const t = get(n);
    const r = range(t, rows);
    return dequantize(t.ggmlType, await gguf.source.read(r.offset, r.length), r.count * t.rowElements, `${name}: tensor ${t.ggufName}`);
  };
  // `rows` (an addition to Checkpoint.readPackedAs) lets a caller stream a multi-GB table (E2B's Q8_0 PLE table is
  // 2.1 GB) in row chunks.
  const readPackedAs = async (n: string, format: QuantFormat, rowRange?: RowRange): Promise<PackedTensor | null> => {
    const t = get(n);
    if (!losslessFormats(t.ggmlType).includes(format) || t.shape.length !== 2) return null;
    const r = range(t, rowRange);
    const rows = r.count;
    const cols = t.rowElements;
    const packed = repackLossless(t.ggmlType, await gguf.source.read(r.offset, r.length), rows, cols, format);
    return packed && { ...packed, format, rows, cols };
  };
  return {
    name,
    config,
    gguf,
    tensors,
    unmappedTensors: unmapped,
    tensor(n: string): TensorInfo | undefined {
      const t = tensors.get(n);
      return t && { name: t.hfName, shape: [...t.shape], dtype: t.typeName };
    },
    tensorNames: () => [...tensors.keys()],
    async read(n: string, rows?: RowRange): Promise<TensorBytes> {
      const t = get(n);
      if (t.ggmlType === GGML_TYPE.F32 || t.ggmlType === GGML_TYPE.F16 || t.ggmlType === GGML_TYPE.BF16) {
        return { dtype: t.typeName as 'F32' | 'F16' | 'BF16', bytes: await readRaw(n, rows) };
      }
      const values = await readF32(n, rows);
      return { dtype: 'F32', bytes: new Uint8Array(values.buffer) };
    },
    readF32,
    readRaw,
    readPackedAs,
  };
}

// ---------------------------------------------------------------------------------------------------------------
// text_config from metadata

function textConfig(gguf: GgufFile, tensors: Map<string, GgufTensor>, vocabPerLayer: number): Gemma3nGgufTextConfig {
  const md = gguf.metadata;
  const file = gguf.source.name;
  const arch = 'gemma3n';
  const raw = (key: string): GgufValue | undefined => md.get(`${arch}.${key}`);
  const num = (key: string, fallback?: number): number => {
    const v = raw(key);
    if (v === undefined && fallback !== undefined) return fallback;
    if (typeof v !== 'number') throw new GemmaError('bad-file', `${file}: metadata ${arch}.${key} is ${v === undefined ? 'missing' : `not a number (${String(v)})`}.`);
    return v;
  };
  /** A per-layer value that may be stored as one number or as an array of L numbers. */
  const perLayer = (key: string, layers: number): number[] => {
    const v = raw(key);
    if (Array.isArray(v) && v.length === layers && v.every((x) => typeof x === 'number')) return v as number[];
    if (typeof v === 'number') return new Array<number>(layers).fill(v);
    throw new GemmaError('bad-file', `${file}: metadata ${arch}.${key} must be a number or an array of ${layers} numbers, got ${JSON.stringify(v)}.`);
  };
  /** A value that must be the same for every layer (we do not support per-layer head counts). */
  const uniform = (key: string, layers: number): number => {
    const values = perLayer(key, layers);
    if (values.some((x) => x !== values[0])) throw new GemmaError('unsupported-config', `${file}: ${arch}.${key} varies by layer (${values}); not supported.`);
    return values[0];
  };

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

/** GGUF stores these as f32 (1e-6 reads back as 9.99999997e-7); give back the shortest decimal with that f32. */
function shortestF32(v: number): number {
  if (!Number.isFinite(v) || Math.fround(v) !== v) return v;
  for (let digits = 1; digits <= 9; digits++) {
    const d = Number(v.toPrecision(digits));
    if (Math.fround(d) === v) return d;
  }
  return v;
}

/** Φ(x), the standard normal CDF, to ~1e-14 (erf by its Taylor series near 0, erfc by a continued fraction beyond). */
export function normalCdf(x: number): number {
  const z = Math.abs(x) / Math.SQRT2;
  let erfcZ: number;
  if (z < 3) {
    let term = z, sum = z;
    for (let n = 1; n < 200 && Math.abs(term) > 1e-17 * Math.abs(sum); n++) {
      term *= (-z * z) / n;
      sum += term / (2 * n + 1);
    }
    erfcZ = 1 - (2 / Math.sqrt(Math.PI)) * sum;
  } else {
    // erfc(z) = exp(−z²)/√π · 1/(z + 1/2/(z + 1/(z + 3/2/(z + …)))), evaluated bottom-up.
    let f = z;
    for (let n = 60; n >= 1; n--) f = z + n / 2 / f;
    erfcZ = Math.exp(-z * z) / Math.sqrt(Math.PI) / f;
  }
  return x >= 0 ? 1 - erfcZ / 2 : erfcZ / 2;
}
