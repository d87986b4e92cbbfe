/**
 * What a model family provides to the loader (src/model/registry.ts lists the families): how to read its GGUF files
 * and how to build its decoder on the GPU from a Checkpoint.
 */
import type { GpuContext } from '../gpu/device.ts';
import type { Checkpoint } from '../io/checkpoint.ts';
import type { GgufFile } from '../io/gguf.ts';
import type { ConvertedTensor } from './converted-tensor.ts';
import type { LanguageModel } from './language-model.ts';
import type { ToolTokens } from './tool-tokens.ts';

/**
 * How the decoder's matrices are stored on the GPU: 'q4' (int4/int8 by tensor family), 'q8' (the q4 plan with int8
 * wherever it has int4: twice the bytes of those tensors, close to float quality) or 'float' (f32, f16 where the
 * adapter has shader-f16).
 */
export type WeightMode = 'q4' | 'q8' | 'float';

export interface FamilyLoadOptions {
  weights: WeightMode;
  /** KV-cache positions wanted; the family caps it at the checkpoint's max positions. */
  maxContext: number;
  /** Tensors converted so far, of the family's exact total (the last call has done === total). */
  onTensor?: (done: number, total: number) => void;
  /** Each converted tensor as soon as it exists (the offline cache's writer). */
  onConverted?: (t: ConvertedTensor) => Promise<void>;
  /** Pipeline compilation: false when it starts, true when done. */
  onCompile?: (done: boolean) => void;
  /** Synthetic weights drawn on the GPU (memory accounting at real size); the checkpoint gives only the config. */
  random?: boolean;
  /** Checked between tensors: an aborted load frees what it made and rejects with GemmaError('aborted'). */
  signal?: AbortSignal;
}

export interface LoadedDecoder {
  model: LanguageModel;
  /** Token ids that end a turn (config.json / generation_config `eos_token_id`). */
  eosTokenIds: number[];
}

/** A random-weight checkpoint at a family's real shapes (tests, demos, benchmarks; its text is gibberish). */
export interface RandomCheckpointOptions {
  /** Which family (default 'gemma3n'). */
  family?: string;
  /** Which dimensions: 'tiny' (default), or a real model's ('e2b', 'e4b'). */
  preset?: string;
  /** Seed of every value (default 1). */
  seed?: number;
  /** Decoder layers (default: the preset's); per-layer dimensions stay the preset's. */
  layers?: number;
  /** LM-head rows (default the family's real vocabulary). */
  vocabSize?: number;
  /** Stored dtype of the float tensors (default 'BF16', as the published checkpoints). */
  dtype?: 'BF16' | 'F32';
}

/** What a load is expected to allocate (the pre-flight check before any weight is downloaded). */
export interface MemoryEstimate {
  /** GPU buffers: weights, KV cache, scratch. */
  gpuBytes: number;
  /** Host memory the model keeps (Gemma 3n: the per-layer-embedding table). */
  hostBytes: number;
  /** The largest single GPU buffer (checked against the adapter's maxBufferSize / binding size). */
  largestGpuBuffer: number;
  /** Of gpuBytes, the weights. */
  weightBytes: number;
}

/**
 * A sub-model cut at load time from a MatFormer checkpoint (Gemma 3n: E2B and the other published sizes inside
 * E4B): a published configuration by name ('E2B', 'E2.54B', …), or explicit — layers to skip and one FFN width per
 * kept layer, in the original model's layer numbering.
 */
export type ModelSize = string | { skipLayers?: readonly number[]; ffnWidths?: readonly number[] };

/** What a sliced model is (ModelInfo.slice). */
export interface SliceInfo {
  /** The published configuration's id when the size named one ('E2B'). */
  name?: string;
  /** Decoder layers kept, of the original model's `sourceLayers`. */
  layers: number;
  sourceLayers: number;
  /** Original indices of the skipped layers. */
  skippedLayers: number[];
  /** FFN width per kept layer. */
  ffnWidths: number[];
  /** Parameters of the text decoder without its two embedding tables (our count of the loaded tensors' shapes). */
  effectiveParams: number;
  /** The published figures of a named configuration (effective parameters in billions, MMLU pretrained %). */
  published?: { effectiveParamsB: number; mmluPt: number };
}

/** A checkpoint cut to a size: a view of the original files (nothing is rewritten), and what it is. */
export interface SlicedCheckpoint {
  checkpoint: Checkpoint;
  slice: SliceInfo;
}

export interface ModelFamily {
  /** For messages and the cache ('gemma3n'). */
  readonly name: string;
  /** config.json `model_type` values this family reads (top level, or `text_config.model_type`). */
  readonly modelTypes: readonly string[];
  /** GGUF `general.architecture` values. */
  readonly ggufArchitectures: readonly string[];
  /** A GGUF file of this family as a Checkpoint (HF tensor names and an HF-style config). */
  openGguf(gguf: GgufFile): Promise<Checkpoint>;
  /**
   * The family's native tool-calling control tokens as its tokenizer spells them (Gemma 4), absent for a family
   * that has none (Gemma 3n: tools are prompted); ids through the checkpoint's tokenizer with resolveToolTokens.
   */
  readonly toolTokens?: ToolTokens<string>;
  /** A random checkpoint with this family's shapes (see RandomCheckpointOptions). */
  randomCheckpoint?(options: RandomCheckpointOptions): Checkpoint;
  /**
   * MatFormer families: `checkpoint` cut to `size` (a GemmaError('invalid-argument') for a size it cannot give).
   * The checkpoint may itself be a sliced one (a cached entry): the size is still in the original numbering and must
   * lie inside it. `exact`: also refuse a cut that would change stored values (re-blocking quantized columns), for
   * serving a slice from a cached bigger one.
   */
  slice?(checkpoint: Checkpoint, size: ModelSize, options?: { exact?: boolean }): SlicedCheckpoint;
  /** Builds the decoder on the GPU. */
  load(gpu: GpuContext, checkpoint: Checkpoint, options: FamilyLoadOptions): Promise<LoadedDecoder>;
  /** What `load` will allocate, from the opened checkpoint alone (config, stored dtypes): read before any weight. */
  estimateMemory?(checkpoint: Checkpoint, options: { weights: WeightMode; maxContext: number; f16: boolean; maxBufferBytes?: number }): MemoryEstimate;
}

