/**
 * What a decoder model can do, as the engine (src/runtime/engine.ts) drives it. Every model family implements it
 * (src/model/gemma3n/model.ts); tests implement it with fakes.
 *
 * The model holds a KV cache and a write position (`length`), nothing else about the conversation: the engine owns
 * the token history, prefix reuse and the decode loop. The contract:
 * - `feed` runs a chunk at positions length..length+n−1, appends its K/V and leaves the last position's logits ready
 *   for `sample`. It resolves when the GPU has finished the chunk, so a caller that checks an AbortSignal between
 *   chunks stops within one chunk of compute.
 * - `rewindableTo(n)` says how far back the cache can be set without recomputation (n itself, or less when a
 *   sliding-window ring has already overwritten what position n needs); `rewind(n)` then moves the write position.
 */

/** Soft-token rows that replace the embeddings of `rows.length / width` consecutive positions of a chunk. */
export interface SoftTokens {
  /** Position within the chunk of the first row. */
  offset: number;
  /** [count, embeddingWidth] f32, row-major. */
  rows: Float32Array;
}

/** One chunk for `feed`: token ids, with soft tokens (image/audio encoder outputs) at some positions. */
export interface FeedInput {
  ids: readonly number[];
  /** The embedding of these positions is the given row instead of the id's (the id stays the placeholder). */
  soft?: readonly SoftTokens[];
}

export interface SamplingParams {
  /** 0 = greedy (argmax). */
  temperature: number;
  /** 0 = no top-k limit. */
  topK: number;
  /** 1 = no nucleus limit. */
  topP: number;
  /** A uniform random number in [0, 1) from the engine's seeded stream: the model samples with it (inverse CDF). */
  random: number;
  /**
   * Allowed ids as a packed bitmask (bit id & 31 of word id >> 5, ceil(vocabSize / 32) words), or absent for no
   * constraint: constrained decoding (src/runtime/token-constraint.ts). The sampler never picks a masked-out id.
   * A function instead of the mask: the model calls it once the step's forward pass is submitted and samples with
   * what it resolves to (null: unconstrained), so the CPU computes the mask while the GPU runs the layers.
   */
  mask?: Uint32Array | LazyMask;
}

/** A mask computed on demand (see SamplingParams.mask). */
export type LazyMask = () => Promise<Uint32Array | null>;

/** GPU and host memory a loaded model holds. */
export interface MemoryReport {
  /**
   * GPU bytes by group; `total` is every byte of every GPU buffer the model holds. `scratch`: the forward pass's
   * activations and logits. `kernels`: the buffers its kernels own: dispatch parameters, placeholders for unused
   * bindings and the kernels' own scratch (the int8-activation GEMV's staged x on CPU adapters, attention's split
   * partials, the sampler's candidates).
   */
  gpu: { weights: number; kvCache: number; scratch: number; kernels: number; total: number };
  /** Bytes in host memory (Gemma 3n: the per-layer-embedding table). */
  host: { total: number };
}

export interface LanguageModel {
  /** Rows of the LM head (token ids are < vocabSize). */
  readonly vocabSize: number;
  /** Positions the KV cache holds. */
  readonly maxContext: number;
  /** Most tokens one `feed` takes (the prefill chunk). */
  readonly maxChunk: number;
  /** Width of a soft-token row (the decoder's hidden size). */
  readonly embeddingWidth: number;
  /** Positions written: the next `feed` starts here. */
  readonly length: number;
  /**
   * Runs one chunk (1..maxChunk tokens) at positions length.. and waits for the GPU. With `allLogits`, the logits
   * of every position of the chunk are kept for `readLogits`.
   */
  feed(input: FeedInput, options?: { allLogits?: boolean }): Promise<void>;
  /** Logits [n][vocabSize] of the last chunk's positions (after `feed(…, { allLogits: true })`); tests and the CLI. */
  readLogits(): Promise<Float32Array[]>;
  /** Samples the token after the last fed position (on the GPU; only the id comes back). */
  sample(params: SamplingParams): Promise<number>;
  /**
   * Optional fused decode step: feed `id` at `length`, then sample the next token, in one submission. Without it
   * the engine feeds then samples.
   */
  step?(id: number, params: SamplingParams): Promise<number>;
  /** The largest m ≤ n such that the cache can be rewound to m without recomputation (m is n or 0). */
  rewindableTo(n: number): number;
  /** Moves the write position back to n (0 ≤ n ≤ length, and rewindableTo(n) === n). */
  rewind(n: number): void;
  /** GPU and host bytes held. */
  memory?(): MemoryReport;
  /** Frees GPU memory. */
  dispose(): void;
}
