/**
 * llama.cpp's GGUF tensor names of the Gemma families with per-layer embeddings (Gemma 3n, Gemma 4 E2B/E4B), as
 * Hugging Face names under `model.language_model.`, and the mapping loop both families' GGUF readers run
 * (src/model/<family>/gguf.ts adds its own names and special cases). Family-neutral: the names the two share are
 * written once here. Shapes: GGUF lists the fastest dimension first, so PyTorch shape = reversed `ne`.
 */
import type { GgufFile, GgufTensorInfo } from '../io/gguf.ts';
import { ggufTensor, type GgufTensor } from '../io/gguf-checkpoint.ts';

export const HF_LANGUAGE_MODEL = 'model.language_model.';

/** GGUF global tensor → HF name (after the prefix). */
export const GEMMA_GGUF_GLOBAL_NAMES: Readonly<Record<string, string>> = {
  'token_embd.weight': 'embed_tokens.weight',
  'per_layer_token_embd.weight': 'embed_tokens_per_layer.weight',
  'per_layer_model_proj.weight': 'per_layer_model_projection.weight',
  'per_layer_proj_norm.weight': 'per_layer_projection_norm.weight',
  'output_norm.weight': 'norm.weight',
};

/** GGUF `blk.N.<key>.weight` → HF `layers.N.<value>`: attention, MLP, norms and the per-layer-input gate. */
export const GEMMA_GGUF_LAYER_NAMES: Readonly<Record<string, string>> = {
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
};

export interface GgufNameTables {
  /** GGUF name → HF name after HF_LANGUAGE_MODEL. */
  globals: Readonly<Record<string, string>>;
  /** `blk.N.<key>.weight` key → HF name after `layers.N.`. */
  layers: Readonly<Record<string, string>>;
  /**
   * A family's special case (e.g. a stacked tensor split into several HF tensors): called first for every tensor;
   * returns true when it handled (added) the tensor.
   */
  special?: (t: GgufTensorInfo, add: (hfName: string, shape: number[], offset: number) => void) => boolean;
}

/** Every GGUF tensor as an HF-named GgufTensor; names no table knows are listed as unmapped (ignored). */
export function mapGgufTensors(gguf: GgufFile, tables: GgufNameTables): { tensors: Map<string, GgufTensor>; unmapped: string[] } {
  const tensors = new Map<string, GgufTensor>();
  const unmapped: string[] = [];
  for (const t of gguf.tensors.values()) {
    const add = (hfName: string, shape: number[], offset: number) => tensors.set(HF_LANGUAGE_MODEL + hfName, ggufTensor(HF_LANGUAGE_MODEL + hfName, t, shape, offset));
    if (tables.special?.(t, add)) continue;
    const shape = [...t.ne].reverse();
    const global = tables.globals[t.name];
    const layer = /^blk\.(\d+)\.(\w+)\.weight$/.exec(t.name);
    if (global) add(global, shape, t.offset);
    else if (layer && tables.layers[layer[2]]) add(`layers.${layer[1]}.${tables.layers[layer[2]]}`, shape, t.offset);
    else unmapped.push(t.name);
  }
  return { tensors, unmapped };
}
