/**
 * A Gemma 4 GGUF written from a Gemma 4 safetensors checkpoint the way llama.cpp's converter lays one out
 * (conversion/gemma.py Gemma4Model; src/model/gemma4/gguf.ts lists what it writes): architecture `gemma4`,
 * key_length = the full layers' head dim and key_length_swa the sliding layers', a per-layer feed_forward_length,
 * the sliding pattern, `rope_freqs.weight` (1 for the rotating angles of the full layers, 1e30 for the rest),
 * `blk.N.layer_output_scale.weight`, and the KV-shared layers' k/v/k_norm copies too (the original release has them).
 * F32, or Q8_0 for every matrix whose rows are whole blocks (llama.cpp keeps the others, and the norms, in F32).
 */
import { parseGemma4Config } from '../../src/model/gemma4/config.ts';
import { readF32, type Checkpoint } from '../../src/io/checkpoint.ts';
import { GGML_TYPE } from '../../src/io/gguf-types.ts';
import { f32ToF16Bits } from '../../src/io/half.ts';
import { writeGguf, type GgufTypedValue, type SyntheticTensor } from './gguf-writer.ts';

const LM = 'model.language_model.';

/** HF name (after the prefix) → GGUF name. */
function ggufName(hf: string): string | undefined {
  const globals: Record<string, string> = {
    'embed_tokens.weight': 'token_embd.weight',
    'embed_tokens_per_layer.weight': 'per_layer_token_embd.weight',
    'per_layer_model_projection.weight': 'per_layer_model_proj.weight',
    'per_layer_projection_norm.weight': 'per_layer_proj_norm.weight',
    'norm.weight': 'output_norm.weight',
  };
  if (globals[hf]) return globals[hf];
  const layer: Record<string, string> = {
    'input_layernorm.weight': 'attn_norm', 'self_attn.q_proj.weight': 'attn_q', 'self_attn.k_proj.weight': 'attn_k',
    'self_attn.v_proj.weight': 'attn_v', 'self_attn.o_proj.weight': 'attn_output', 'self_attn.q_norm.weight': 'attn_q_norm',
    'self_attn.k_norm.weight': 'attn_k_norm', 'post_attention_layernorm.weight': 'post_attention_norm',
    'pre_feedforward_layernorm.weight': 'ffn_norm', 'mlp.gate_proj.weight': 'ffn_gate', 'mlp.up_proj.weight': 'ffn_up',
    'mlp.down_proj.weight': 'ffn_down', 'post_feedforward_layernorm.weight': 'post_ffw_norm',
    'per_layer_input_gate.weight': 'inp_gate', 'per_layer_projection.weight': 'proj',
    'post_per_layer_input_norm.weight': 'post_norm', layer_scalar: 'layer_output_scale',
  };
  const m = /^layers\.(\d+)\.(.+)$/.exec(hf);
  return m && layer[m[2]] ? `blk.${m[1]}.${layer[m[2]]}.weight` : undefined;
}

/** ggml Q8_0: per block of 32, d = absmax / 127 (f16), q = round(x / d). */
function q8_0(values: Float32Array): Uint8Array {
  const blocks = values.length / 32;
  const out = new Uint8Array(blocks * 34);
  const dv = new DataView(out.buffer);
  for (let b = 0; b < blocks; b++) {
    let amax = 0;
    for (let i = 0; i < 32; i++) amax = Math.max(amax, Math.abs(values[b * 32 + i]));
    const d = amax / 127;
    dv.setUint16(b * 34, f32ToF16Bits(d), true);
    for (let i = 0; i < 32; i++) dv.setInt8(b * 34 + 2 + i, d === 0 ? 0 : Math.round(values[b * 32 + i] / d));
  }
  return out;
}

export async function gemma4Gguf(ckpt: Checkpoint, type: 'F32' | 'Q8_0'): Promise<Uint8Array> {
  const c = parseGemma4Config(ckpt.config).text;
  const tc = (ckpt.config as { text_config: Record<string, unknown> }).text_config;
  const u32 = (value: number): GgufTypedValue => ({ type: 'u32', value });
  const f32 = (value: number): GgufTypedValue => ({ type: 'f32', value });
  const fullRope = (tc.rope_parameters as Record<string, { partial_rotary_factor?: number }>).full_attention;
  const rotated = Math.floor(((fullRope.partial_rotary_factor ?? 1) * c.globalHeadDim) / 2);
  const metadata: Record<string, GgufTypedValue> = {
    'general.architecture': { type: 'string', value: 'gemma4' },
    'gemma4.block_count': u32(c.numLayers),
    'gemma4.context_length': u32(c.maxPositionEmbeddings),
    'gemma4.embedding_length': u32(c.hiddenSize),
    'gemma4.embedding_length_per_layer_input': u32(c.pleDim),
    'gemma4.feed_forward_length': { type: 'array', elemType: 'i32', value: c.intermediateSize },
    'gemma4.attention.head_count': u32(c.numHeads),
    'gemma4.attention.head_count_kv': u32(c.numKvHeads),
    'gemma4.attention.key_length': u32(c.globalHeadDim),
    'gemma4.attention.value_length': u32(c.globalHeadDim),
    'gemma4.attention.key_length_swa': u32(c.headDim),
    'gemma4.attention.value_length_swa': u32(c.headDim),
    'gemma4.attention.sliding_window': u32(c.slidingWindow),
    'gemma4.attention.sliding_window_pattern': { type: 'array', elemType: 'bool', value: c.layerTypes.map((t) => t === 'sliding_attention') },
    'gemma4.attention.shared_kv_layers': u32(c.numKvSharedLayers),
    'gemma4.attention.layer_norm_rms_epsilon': f32(c.rmsNormEps),
    'gemma4.rope.freq_base': f32(c.ropeTheta[c.layerTypes.indexOf('full_attention')]),
    'gemma4.rope.freq_base_swa': f32(c.ropeTheta[c.layerTypes.indexOf('sliding_attention')]),
    'gemma4.rope.dimension_count': u32(c.globalHeadDim),
    'gemma4.rope.dimension_count_swa': u32(c.headDim),
    'gemma4.final_logit_softcapping': f32(c.finalLogitSoftcap ?? 0),
    'tokenizer.ggml.bos_token_id': u32(2),
    'tokenizer.ggml.eos_token_id': u32(1),
    'tokenizer.ggml.padding_token_id': u32(0),
  };
  const tensors: SyntheticTensor[] = [];
  const add = (name: string, shape: number[], values: Float32Array) => {
    const matrix = shape.length === 2 && shape[1] % 32 === 0;
    const quantized = type === 'Q8_0' && matrix;
    tensors.push({ name, ne: [...shape].reverse(), type: quantized ? GGML_TYPE.Q8_0 : GGML_TYPE.F32, data: quantized ? q8_0(values) : new Uint8Array(values.buffer, values.byteOffset, values.byteLength) });
  };
  for (const name of ckpt.tensorNames()) {
    const gguf = ggufName(name.slice(LM.length));
    if (!name.startsWith(LM) || !gguf) throw new Error(`gemma4Gguf: no GGUF name for ${name}`);
    add(gguf, ckpt.tensor(name)!.shape, await readF32(ckpt, name));
  }
  add('rope_freqs.weight', [c.globalHeadDim / 2], Float32Array.from({ length: c.globalHeadDim / 2 }, (_, i) => (i < rotated ? 1 : 1e30)));
  return writeGguf({ metadata, tensors });
}
