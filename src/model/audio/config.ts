/**
 * Gemma 3n's audio tower configuration: `audio_config` of a `gemma3n` config.json (HF Gemma3nAudioConfig; keys
 * absent from the file take HF's defaults, which are E2B/E4B's values, docs/gemma3n-formats.md §1.4), plus the two
 * facts from outside it the tower's output needs: the text hidden size (embed_audio's projection) and the soft-token
 * span the processor reserves per clip. Derived sizes (sub-sampled lengths, attention context) live here too.
 */
import { GemmaError } from '../../errors.ts';

export interface AudioTowerConfig {
  /** D: conformer width (1536). */
  hiddenSize: number;
  /** Mel bins in (128). */
  inputFeatSize: number;
  numLayers: number;
  numHeads: number;
  headDim: number;
  /** Queries per attention block (12). */
  chunkSize: number;
  /** conf_attention_context_left (13): the query itself and 12 past steps. */
  contextLeft: number;
  contextRight: number;
  logitCap: number;
  /** Depthwise conv kernel of the light-conv module (5). */
  convKernel: number;
  /** Time reduction after the conformer (4: keep every 4th step). */
  reductionFactor: number;
  /** Scale of the half-step feed-forward residuals (0.5). */
  residualWeight: number;
  /** Sub-sampler: output channels, kernels and strides ([time, freq]) of its two convolutions. */
  sscpChannels: [number, number];
  sscpKernels: [[number, number], [number, number]];
  sscpStrides: [[number, number], [number, number]];
  groupNormEps: number;
  /** HF clamps activations to +-gradient_clipping (1e10) at several points. */
  gradientClipping: number;
  rmsNormEps: number;
  /** embed_audio hard-token range. */
  vocabSize: number;
  vocabOffset: number;
  /** Text hidden size: width of the soft tokens. */
  textHiddenSize: number;
  /** audio_soft_tokens_per_image: the span the processor reserves per clip (188). */
  softTokensPerClip: number;
}

/** HF Gemma3nAudioConfig defaults (= E2B / E4B). */
const DEFAULTS = {
  hidden_size: 1536,
  input_feat_size: 128,
  conf_num_hidden_layers: 12,
  conf_num_attention_heads: 8,
  conf_attention_chunk_size: 12,
  conf_attention_context_left: 13,
  conf_attention_context_right: 0,
  conf_attention_logit_cap: 50,
  conf_conv_kernel_size: 5,
  conf_reduction_factor: 4,
  conf_residual_weight: 0.5,
  sscp_conv_channel_size: [128, 32],
  sscp_conv_kernel_size: [[3, 3], [3, 3]],
  sscp_conv_stride_size: [[2, 2], [2, 2]],
  sscp_conv_group_norm_eps: 1e-3,
  gradient_clipping: 1e10,
  rms_norm_eps: 1e-6,
  vocab_size: 128,
  vocab_offset: 262272,
};

type Json = Record<string, unknown>;

function unsupported(key: string, value: unknown, why: string): GemmaError {
  return new GemmaError('unsupported-config', `config.json audio_config.${key} = ${JSON.stringify(value)}: ${why}`);
}

function num(c: Json, key: keyof typeof DEFAULTS, opts: { int?: boolean; min?: number; alias?: string } = {}): number {
  const v = c[key] ?? (opts.alias ? c[opts.alias] : undefined) ?? DEFAULTS[key];
  if (typeof v !== 'number' || !Number.isFinite(v)) throw unsupported(key, v, 'expected a number');
  if (opts.int && !Number.isInteger(v)) throw unsupported(key, v, 'expected an integer');
  if (opts.min !== undefined && v < opts.min) throw unsupported(key, v, `expected at least ${opts.min}`);
  return v;
}

function pair(v: unknown, key: string): [number, number] {
  if (!Array.isArray(v) || v.length !== 2 || !v.every((x) => Number.isInteger(x) && x > 0)) throw unsupported(key, v, 'expected two positive integers');
  return [v[0], v[1]];
}

/** A tensor every checkpoint with the audio tower's weights has (a text-only GGUF has the config but not this). */
export const AUDIO_TOWER_PROBE_TENSOR = 'model.audio_tower.subsample_conv_projection.conv_0.conv.weight';

/**
 * Whether a config.json has a Gemma 3n audio tower configured: `audio_config.model_type` 'gemma3n_audio' (or none,
 * under a top-level `gemma3n`). Gemma 4's `gemma4_audio` is another tower (other keys, other tensors): not this one.
 */
export function hasAudioConfig(raw: unknown): boolean {
  if (!raw || typeof raw !== 'object') return false;
  const audio = (raw as Json).audio_config;
  if (!audio || typeof audio !== 'object') return false;
  const type = (audio as Json).model_type;
  return type === 'gemma3n_audio' || (type === undefined && (raw as Json).model_type === 'gemma3n');
}

/** Parses the audio tower's config from a full `gemma3n` config.json. */
export function parseAudioTowerConfig(raw: unknown): AudioTowerConfig {
  if (!raw || typeof raw !== 'object') throw new GemmaError('bad-file', 'config.json is not a JSON object.');
  const top = raw as Json;
  if (!hasAudioConfig(top)) throw new GemmaError('unsupported-config', 'config.json has no audio_config: this checkpoint has no audio tower (a text-only model?)');
  const c = top.audio_config as Json;
  const text = (top.text_config ?? {}) as Json;
  const hiddenSize = num(c, 'hidden_size', { int: true, min: 1 });
  const numHeads = num(c, 'conf_num_attention_heads', { int: true, min: 1 });
  if (hiddenSize % numHeads !== 0) throw unsupported('conf_num_attention_heads', numHeads, `must divide hidden_size ${hiddenSize}`);
  const channels = c.sscp_conv_channel_size ?? DEFAULTS.sscp_conv_channel_size;
  const kernels = c.sscp_conv_kernel_size ?? DEFAULTS.sscp_conv_kernel_size;
  const strides = c.sscp_conv_stride_size ?? DEFAULTS.sscp_conv_stride_size;
  // HF's sub-sampler is two blocks, hard-wired.
  if (!Array.isArray(channels) || channels.length !== 2) throw unsupported('sscp_conv_channel_size', channels, 'expected two channel counts');
  if (!Array.isArray(kernels) || kernels.length !== 2) throw unsupported('sscp_conv_kernel_size', kernels, 'expected two [time, freq] kernels');
  if (!Array.isArray(strides) || strides.length !== 2) throw unsupported('sscp_conv_stride_size', strides, 'expected two [time, freq] strides');
  const textHiddenSize = text.hidden_size;
  if (typeof textHiddenSize !== 'number' || !Number.isInteger(textHiddenSize)) throw new GemmaError('unsupported-config', 'config.json text_config.hidden_size is missing: the audio soft tokens need the text width');
  const softTokens = top.audio_soft_tokens_per_image ?? 188;
  if (!Number.isInteger(softTokens) || (softTokens as number) < 1) throw new GemmaError('unsupported-config', `config.json audio_soft_tokens_per_image = ${JSON.stringify(softTokens)}: expected a positive integer`);
  return {
    hiddenSize,
    inputFeatSize: num(c, 'input_feat_size', { int: true, min: 1 }),
    numLayers: num(c, 'conf_num_hidden_layers', { int: true, min: 0 }),
    numHeads,
    headDim: hiddenSize / numHeads,
    chunkSize: num(c, 'conf_attention_chunk_size', { int: true, min: 1 }),
    contextLeft: num(c, 'conf_attention_context_left', { int: true, min: 0 }),
    contextRight: num(c, 'conf_attention_context_right', { int: true, min: 0 }),
    logitCap: num(c, 'conf_attention_logit_cap', { min: Number.MIN_VALUE }),
    convKernel: num(c, 'conf_conv_kernel_size', { int: true, min: 1 }),
    reductionFactor: num(c, 'conf_reduction_factor', { int: true, min: 1 }),
    residualWeight: num(c, 'conf_residual_weight'),
    sscpChannels: pair(channels, 'sscp_conv_channel_size'),
    sscpKernels: [pair(kernels[0], 'sscp_conv_kernel_size[0]'), pair(kernels[1], 'sscp_conv_kernel_size[1]')],
    sscpStrides: [pair(strides[0], 'sscp_conv_stride_size[0]'), pair(strides[1], 'sscp_conv_stride_size[1]')],
    // Pre-release configs spell it sscp_conv_eps.
    groupNormEps: num(c, 'sscp_conv_group_norm_eps', { min: 0, alias: 'sscp_conv_eps' }),
    gradientClipping: num(c, 'gradient_clipping', { min: 0 }),
    rmsNormEps: num(c, 'rms_norm_eps', { min: 0 }),
    vocabSize: num(c, 'vocab_size', { int: true, min: 1 }),
    vocabOffset: num(c, 'vocab_offset', { int: true, min: 0 }),
    textHiddenSize,
    softTokensPerClip: softTokens as number,
  };
}

/** HF's frequency padding of each sub-sampling convolution (hard-wired (1, 1)). */
export const SSCP_FREQ_PAD = 1;

/** Keys before a query in the attention window (HF max_past_horizon). */
export const attentionPast = (c: AudioTowerConfig) => Math.max(0, c.contextLeft - 1);

/** Sequence lengths through the tower for `frames` mel frames. */
export interface AudioLengths {
  frames: number;
  /** After each sub-sampling convolution: [time, freq]. */
  conv: [[number, number], [number, number]];
  /** T_sub: conformer steps. */
  steps: number;
  /** Soft tokens: ceil(steps / reductionFactor). */
  tokens: number;
}

export function audioLengths(c: AudioTowerConfig, frames: number): AudioLengths {
  let t = frames, f = c.inputFeatSize;
  const conv: [number, number][] = [];
  for (let i = 0; i < 2; i++) {
    const [kt, kf] = c.sscpKernels[i];
    const [st, sf] = c.sscpStrides[i];
    t = Math.floor((t + kt - 1 - kt) / st) + 1; // time padded by (0, kt - 1)
    f = Math.floor((f + 2 * SSCP_FREQ_PAD - kf) / sf) + 1;
    conv.push([t, f]);
  }
  if (f <= 0) throw new GemmaError('unsupported-config', `audio_config: ${c.inputFeatSize} mel bins leave no frequency bins after the sub-sampler`);
  return { frames, conv: conv as AudioLengths['conv'], steps: t, tokens: Math.ceil(t / c.reductionFactor) };
}
