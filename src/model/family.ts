/**
 * What a model family provides to the loader (src/model/registry.ts lists the families): how to read its GGUF files
 * and how to build its decoder on the GPU from a Checkpoint.
 */
import type { GpuContext } from '../gpu/device.ts';
import type { Checkpoint } from '../io/checkpoint.ts';
import type { GgufFile } from '../io/gguf.ts';
import type { ConvertedTensor } from './converted-tensor.ts';
import type { LanguageModel } from './language-model.ts';

/** How the decoder's matrices are stored on the GPU: 'q4' (int4/int8 by tensor family) or 'float' (f32, f16 where the adapter has shader-f16). */
export type WeightMode = 'q4' | 'float';

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

export interface ModelFamily {
  /** For messages and the cache ('gemma3n'). */
  readonly name: string;
  /** config.json `model_type` values this family reads (top level, or `text_config.model_type`). */
  readonly modelTypes: readonly string[];
  /** GGUF `general.architecture` values. */
  readonly ggufArchitectures: readonly string[];
  /** A GGUF file of this family as a Checkpoint (HF tensor names and an HF-style config). */
  openGguf(gguf: GgufFile): Promise<Checkpoint>;
  /** A random checkpoint with this family's shapes (see RandomCheckpointOptions). */
  randomCheckpoint?(options: RandomCheckpointOptions): Checkpoint;
  /** Builds the decoder on the GPU. */
  load(gpu: GpuContext, checkpoint: Checkpoint, options: FamilyLoadOptions): Promise<LoadedDecoder>;
}

