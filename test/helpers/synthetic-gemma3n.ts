/**
 * Real-size Gemma 3n checkpoints without real weights, as virtual files (test/helpers/hub-emulator.ts serves any
 * byte range, computed on demand, so a multi-GB file never exists): E2B's real vocabulary, 30 layers of 256 PLE
 * values and whatever hidden size a test picks, with small attention / MLP matrices so only the big tables are big.
 * Values are random but sane (block scales and bf16 exponents in a small range); the PLE table's padding rows of a
 * GGUF are exact zeros, as llama.cpp's converter writes them.
 */
import { GGML_TYPE, ggmlTypeInfo } from '../../src/io/gguf-types.ts';
import { f32ToF16Bits } from '../../src/io/half.ts';
import { ggufHeader, type GgufTypedValue } from './gguf-writer.ts';
import type { VirtualFile } from './hub-emulator.ts';

/** Real Gemma 3n (E2B and E4B): LM-head rows and PLE rows. */
export const VOCAB = 262400;
export const PLE_VOCAB = 262144;

export interface SyntheticShape {
  /** Hidden size (E2B 2048, E4B 2560). */
  hidden: number;
  layers: number;
  ple: number;
  heads: number;
  kvHeads: number;
  headDim: number;
  ffn: number;
  laurelRank: number;
  kvShared: number;
}

/** E2B's embedding and PLE table at real size; tiny attention and MLP. */
export const E2B_TABLES: SyntheticShape = { hidden: 2048, layers: 30, ple: 256, heads: 2, kvHeads: 1, headDim: 256, ffn: 128, laurelRank: 64, kvShared: 10 };
/** Every dimension real (docs/gemma3n-formats.md §1.3). */
export const E2B: SyntheticShape = { hidden: 2048, layers: 30, ple: 256, heads: 8, kvHeads: 2, headDim: 256, ffn: 8192, laurelRank: 64, kvShared: 10 };
export const E4B: SyntheticShape = { hidden: 2048, layers: 35, ple: 256, heads: 8, kvHeads: 2, headDim: 256, ffn: 16384, laurelRank: 64, kvShared: 15 };

/** One 32-bit hash per 4-byte word of a file: the same bytes for the same offset, every time. */
function wordHash(i: number, seed: number): number {
  let x = Math.imul(i ^ seed, 0x9e3779b1);
  x ^= x >>> 15;
  x = Math.imul(x, 0x85ebca77);
  x ^= x >>> 13;
  x = Math.imul(x, 0xc2b2ae3d);
  return (x ^ (x >>> 16)) >>> 0;
}

/** Random bytes [start, end) of a stream identified by `seed`. */
function randomBytes(start: number, end: number, seed: number): Uint8Array {
  const w0 = Math.floor(start / 4), w1 = Math.ceil(end / 4);
  const words = new Uint32Array(w1 - w0);
  for (let i = 0; i < words.length; i++) words[i] = wordHash(w0 + i, seed);
  return new Uint8Array(words.buffer, start - w0 * 4, end - start);
}

type Fill = 'random' | 'ones';

interface TensorSpec {
  name: string;
  /** GGUF order (fastest first) for GGUF files; PyTorch order for safetensors. */
  dims: number[];
  type: number;
  fill: Fill;
  /** Rows (slowest dimension) from this one on are zero (a GGUF PLE table's padding). */
  zeroRowsFrom?: number;
  /** Constant bytes instead of random ones (see RandomWhich). */
  constant?: boolean;
}

const D16 = f32ToF16Bits(2 ** -14); // block scale of the random GGUF blocks: values of order 1e-3..1e-1

/**
 * Which tensors get random bytes; the others are constant (for tests and benchmarks that only move and convert
 * bytes, where hashing gigabytes would dominate): every byte 0x3c, a finite value in every type (f16 1.06, bf16
 * 0.0115, f32 0.0115), padding rows still zero. Default: all random.
 */
export type RandomWhich = (tensor: string) => boolean;

/** Bytes [start, end) of a tensor's data (offsets relative to the tensor). */
function tensorBytes(t: TensorSpec, start: number, end: number, seed: number): Uint8Array {
  if (t.constant) {
    const out = new Uint8Array(end - start).fill(0x3c);
    if (t.zeroRowsFrom !== undefined) {
      const info = ggmlTypeInfo(t.type)!;
      const zeroFrom = t.zeroRowsFrom * (t.dims[0] / info.blockSize) * info.blockBytes;
      if (end > zeroFrom) out.fill(0, Math.max(0, zeroFrom - start));
    }
    return out;
  }
  const out = randomBytes(start, end, seed);
  const info = ggmlTypeInfo(t.type)!;
  const rowElems = t.dims[0] * (t.dims.length > 2 ? t.dims[1] : 1);
  const rowBytes = (rowElems / info.blockSize) * info.blockBytes;
  const total = rowBytes * t.dims.slice(t.dims.length > 2 ? 2 : 1).reduce((a, b) => a * b, 1);
  const patch = (scaleAt: number) => {
    // Keep each block's f16 scale finite and small (random bytes could make it inf or NaN).
    for (let b = Math.floor(start / info.blockBytes) * info.blockBytes; b < end; b += info.blockBytes) {
      for (const k of [0, 1]) {
        const at = b + scaleAt + k;
        if (at >= start && at < end) out[at - start] = k === 0 ? D16 & 255 : D16 >> 8;
      }
    }
  };
  switch (t.type) {
    case GGML_TYPE.Q6_K: patch(208); break;
    case GGML_TYPE.Q4_0:
    case GGML_TYPE.Q8_0: patch(0); break;
    case GGML_TYPE.F32:
      for (let i = start; i < end; i++) out[i - start] = t.fill === 'ones' ? [0, 0, 0x80, 0x3f][i % 4] : out[i - start];
      if (t.fill !== 'ones') for (let i = start; i < end; i++) if (i % 4 === 3) out[i - start] = 0x3c | (out[i - start] & 0x80); // |x| in [2^-7, 2^-6)
      break;
    case GGML_TYPE.BF16:
    case GGML_TYPE.F16:
      // High byte: sign plus an exponent giving |x| of order 1e-3..1e-1 (bf16: 0x3b..0x3d; f16: 0x18..0x2c).
      for (let i = start; i < end; i++) {
        if (i % 2 === 1) out[i - start] = (out[i - start] & 0x80) | (t.type === GGML_TYPE.BF16 ? 0x3b + (out[i - start] % 3) : 0x18 + (out[i - start] % 20));
      }
      break;
  }
  if (t.zeroRowsFrom !== undefined) {
    const zeroFrom = t.zeroRowsFrom * rowBytes;
    for (let i = Math.max(start, zeroFrom); i < end; i++) out[i - start] = 0;
  }
  if (end > total) throw new Error(`${t.name}: bytes up to ${end} of ${total}`);
  return out;
}

/** A file of header bytes followed by tensors at `offsets` (from `dataStart`), zeros between them. */
function virtualFile(header: Uint8Array, dataStart: number, tensors: TensorSpec[], offsets: number[], lengths: number[], size: number): VirtualFile {
  return {
    size,
    read(start, end) {
      const out = new Uint8Array(end - start);
      if (start < header.length) out.set(header.subarray(start, Math.min(end, header.length)));
      tensors.forEach((t, i) => {
        const a = dataStart + offsets[i], b = a + lengths[i];
        const s = Math.max(start, a), e = Math.min(end, b);
        if (s < e) out.set(tensorBytes(t, s - a, e - a, i + 1), s - start);
      });
      return out;
    },
  };
}

function bytesOf(type: number, dims: number[]): number {
  const info = ggmlTypeInfo(type)!;
  return (dims.reduce((a, b) => a * b, 1) / info.blockSize) * info.blockBytes;
}

export interface GgufTypes {
  tokenEmbd: number;
  ple: number;
  /** Every other matrix (attention, MLP, projections). */
  matrices: number;
}

/** A llama.cpp-layout Gemma 3n GGUF (names, metadata and shapes as src/model/gemma3n/gguf.ts reads them), virtual. */
export function syntheticGemma3nGguf(s: SyntheticShape, types: GgufTypes, random: RandomWhich = () => true): VirtualFile & { tensorBytes: Map<string, number> } {
  const { hidden: D, layers: L, ple: P, heads: H, kvHeads: Hkv, headDim: dh, ffn: F, laurelRank: R } = s;
  const A = 4;
  const m = types.matrices;
  const tensors: TensorSpec[] = [
    { name: 'token_embd.weight', dims: [D, VOCAB], type: types.tokenEmbd, fill: 'random' },
    { name: 'per_layer_token_embd.weight', dims: [L * P, VOCAB], type: types.ple, fill: 'random', zeroRowsFrom: PLE_VOCAB },
    { name: 'per_layer_model_proj.weight', dims: [D, L * P], type: m, fill: 'random' },
    { name: 'per_layer_proj_norm.weight', dims: [P], type: GGML_TYPE.F32, fill: 'ones' },
    { name: 'altup_proj.weight', dims: [D, D, A - 1], type: m, fill: 'random' },
    { name: 'altup_unembd_proj.weight', dims: [D, D, A - 1], type: m, fill: 'random' },
    { name: 'output_norm.weight', dims: [D], type: GGML_TYPE.F32, fill: 'ones' },
  ];
  // Rows that are not whole blocks of the type fall back as llama.cpp's quantizer does (Q8_0, else F16).
  const fit = (type: number, dims: number[]) => (dims[0] % ggmlTypeInfo(type)!.blockSize === 0 ? type : dims[0] % 32 === 0 ? GGML_TYPE.Q8_0 : GGML_TYPE.F16);
  for (let l = 0; l < L; l++) {
    const b = (n: string, dims: number[], type = m, fill: Fill = 'random') => tensors.push({ name: `blk.${l}.${n}.weight`, dims, type: fit(type, dims), fill });
    b('attn_q', [D, H * dh]);
    b('attn_k', [D, Hkv * dh]);
    b('attn_v', [D, Hkv * dh]);
    b('attn_output', [H * dh, D]);
    b('ffn_gate', [D, F]);
    b('ffn_up', [D, F]);
    b('ffn_down', [F, D]);
    b('inp_gate', [D, P]);
    b('proj', [P, D]);
    b('laurel_l', [D, R]);
    b('laurel_r', [R, D]);
    b('altup_router', [D, A]);
    for (const n of ['attn_norm', 'post_attention_norm', 'ffn_norm', 'post_ffw_norm', 'post_norm', 'laurel_post_norm', 'altup_router_norm', 'altup_correct_scale']) b(n, [D], GGML_TYPE.F32, 'ones');
    b('attn_q_norm', [dh], GGML_TYPE.F32, 'ones');
    b('attn_k_norm', [dh], GGML_TYPE.F32, 'ones');
    b('altup_correct_coef', [A, A], GGML_TYPE.F32, 'random');
    b('altup_predict_coef', [A, A * A], GGML_TYPE.F32, 'random');
  }
  const arch = 'gemma3n';
  const u32 = (value: number): GgufTypedValue => ({ type: 'u32', value });
  const f32 = (value: number): GgufTypedValue => ({ type: 'f32', value });
  const metadata: Record<string, GgufTypedValue> = {
    'general.architecture': { type: 'string', value: arch },
    [`${arch}.block_count`]: u32(L),
    [`${arch}.context_length`]: u32(32768),
    [`${arch}.embedding_length`]: u32(D),
    [`${arch}.feed_forward_length`]: { type: 'array', elemType: 'i32', value: new Array(L).fill(F) },
    [`${arch}.attention.head_count`]: u32(H),
    [`${arch}.attention.head_count_kv`]: u32(Hkv),
    [`${arch}.attention.key_length`]: u32(dh),
    [`${arch}.attention.value_length`]: u32(dh),
    [`${arch}.attention.layer_norm_rms_epsilon`]: f32(1e-6),
    [`${arch}.attention.sliding_window`]: u32(512),
    [`${arch}.attention.sliding_window_pattern`]: { type: 'array', elemType: 'bool', value: Array.from({ length: L }, (_, i) => (i + 1) % 5 !== 0) },
    [`${arch}.attention.shared_kv_layers`]: u32(s.kvShared),
    [`${arch}.rope.freq_base`]: f32(1e6),
    [`${arch}.rope.freq_base_swa`]: f32(1e4),
    [`${arch}.final_logit_softcapping`]: f32(30),
    [`${arch}.altup.active_idx`]: u32(0),
    [`${arch}.altup.num_inputs`]: u32(A),
    [`${arch}.embedding_length_per_layer_input`]: u32(P),
  };
  for (const t of tensors) t.constant = !random(t.name);
  const lengths = tensors.map((t) => bytesOf(t.type, t.dims));
  const { header, dataStart, offsets, dataBytes } = ggufHeader({ metadata, tensors: tensors.map((t, i) => ({ name: t.name, ne: t.dims, type: t.type, byteLength: lengths[i] })) });
  const file = virtualFile(header, dataStart, tensors, offsets, lengths, dataStart + dataBytes);
  return Object.assign(file, { tensorBytes: new Map(tensors.map((t, i) => [t.name, lengths[i]])) });
}

/** An HF config.json for the shape (model_type gemma3n_text: no vision / audio towers). */
export function syntheticConfig(s: SyntheticShape): Record<string, unknown> {
  const L = s.layers;
  return {
    model_type: 'gemma3n_text',
    activation_sparsity_pattern: Array.from({ length: L }, (_, l) => (l < 10 ? 0.95 : 0)),
    altup_active_idx: 0,
    altup_coef_clip: 120,
    altup_correct_scale: true,
    altup_num_inputs: 4,
    final_logit_softcapping: 30,
    head_dim: s.headDim,
    hidden_activation: 'gelu_pytorch_tanh',
    hidden_size: s.hidden,
    hidden_size_per_layer_input: s.ple,
    intermediate_size: new Array(L).fill(s.ffn),
    laurel_rank: s.laurelRank,
    layer_types: Array.from({ length: L }, (_, i) => ((i + 1) % 5 === 0 ? 'full_attention' : 'sliding_attention')),
    max_position_embeddings: 32768,
    num_attention_heads: s.heads,
    num_hidden_layers: L,
    num_key_value_heads: s.kvHeads,
    num_kv_shared_layers: s.kvShared,
    query_pre_attn_scalar: s.headDim,
    rms_norm_eps: 1e-6,
    rope_local_base_freq: 10000,
    rope_scaling: null,
    rope_theta: 1000000,
    sliding_window: 512,
    vocab_size: VOCAB,
    vocab_size_per_layer_input: PLE_VOCAB,
    eos_token_id: [1, 106],
  };
}

/**
 * A single-file bf16 safetensors checkpoint of the shape (HF names, sorted as safetensors writes them), virtual;
 * `extra` adds tensors the text decoder never reads (stand-ins for the vision / audio towers).
 */
export function syntheticGemma3nSafetensors(s: SyntheticShape, extra: { name: string; params: number }[] = [], random: RandomWhich = () => true): VirtualFile {
  const { hidden: D, layers: L, ple: P, heads: H, kvHeads: Hkv, headDim: dh, ffn: F, laurelRank: R } = s;
  const A = 4;
  const LM = 'model.language_model.';
  const list: { name: string; shape: number[]; dtype: 'BF16' | 'F32' }[] = [
    { name: LM + 'embed_tokens.weight', shape: [VOCAB, D], dtype: 'BF16' },
    { name: LM + 'embed_tokens_per_layer.weight', shape: [PLE_VOCAB, L * P], dtype: 'BF16' },
    { name: LM + 'per_layer_model_projection.weight', shape: [L * P, D], dtype: 'BF16' },
    { name: LM + 'per_layer_projection_norm.weight', shape: [P], dtype: 'BF16' },
    { name: LM + 'norm.weight', shape: [D], dtype: 'BF16' },
  ];
  for (let i = 0; i < A - 1; i++) {
    list.push({ name: `${LM}altup_projections.${i}.weight`, shape: [D, D], dtype: 'BF16' });
    list.push({ name: `${LM}altup_unembed_projections.${i}.weight`, shape: [D, D], dtype: 'BF16' });
  }
  for (let l = 0; l < L; l++) {
    const p = `${LM}layers.${l}.`;
    const add = (n: string, shape: number[]) => list.push({ name: p + n, shape, dtype: 'BF16' });
    add('self_attn.q_proj.weight', [H * dh, D]);
    add('self_attn.k_proj.weight', [Hkv * dh, D]);
    add('self_attn.v_proj.weight', [Hkv * dh, D]);
    add('self_attn.o_proj.weight', [D, H * dh]);
    add('self_attn.q_norm.weight', [dh]);
    add('self_attn.k_norm.weight', [dh]);
    add('mlp.gate_proj.weight', [F, D]);
    add('mlp.up_proj.weight', [F, D]);
    add('mlp.down_proj.weight', [D, F]);
    add('laurel.linear_left.weight', [R, D]);
    add('laurel.linear_right.weight', [D, R]);
    add('per_layer_input_gate.weight', [P, D]);
    add('per_layer_projection.weight', [D, P]);
    add('altup.modality_router.weight', [A, D]);
    add('altup.prediction_coefs.weight', [A * A, A]);
    add('altup.correction_coefs.weight', [A, A]);
    add('altup.correct_output_scale', [D]);
    for (const n of ['input_layernorm', 'post_attention_layernorm', 'pre_feedforward_layernorm', 'post_feedforward_layernorm', 'post_per_layer_input_norm', 'laurel.post_laurel_norm', 'altup.router_norm']) add(`${n}.weight`, [D]);
  }
  for (const e of extra) list.push({ name: e.name, shape: [e.params], dtype: 'BF16' });
  list.sort((a, b) => (a.name < b.name ? -1 : 1));
  const header: Record<string, unknown> = { __metadata__: { format: 'pt' } };
  let at = 0;
  const offsets: number[] = [];
  const lengths: number[] = [];
  for (const t of list) {
    const n = t.shape.reduce((a, b) => a * b, 1) * 2;
    header[t.name] = { dtype: t.dtype, shape: t.shape, data_offsets: [at, at + n] };
    offsets.push(at);
    lengths.push(n);
    at += n;
  }
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - ((json.length + 8) % 8)) % 8);
  const jsonBytes = new TextEncoder().encode(json);
  const head = new Uint8Array(8 + jsonBytes.length);
  new DataView(head.buffer).setBigUint64(0, BigInt(jsonBytes.length), true);
  head.set(jsonBytes, 8);
  // Every tensor random bf16 of order 1e-3..1e-1, norms included (only loading is tested: values need only be finite).
  const specs: TensorSpec[] = list.map((t) => ({ name: t.name, dims: [t.shape.reduce((a, b) => a * b, 1)], type: GGML_TYPE.BF16, fill: 'random', constant: !random(t.name) }));
  return virtualFile(head, head.length, specs, offsets, lengths, head.length + at);
}
