/**
 * The narrow interface the engine drives a model through. The Gemma 3n forward pass (src/model/gemma3n/)
 * implements it through an adapter (model-factory.ts); tests implement it with tiny fakes.
 *
 * Contract: the model owns a KV cache of `maxContext` positions, of which the first `length` are filled.
 * After `prefill` or `step`, the logits of the last fed position are ready for `sample`.
 */
export interface SamplingParams {
  /** 0 = greedy (argmax). */
  temperature: number;
  /** 0 = no top-k limit. */
  topK: number;
  /** 1 = no nucleus limit. */
  topP: number;
  /** A uniform random number in [0, 1) from the engine's seeded stream: the model samples with it (inverse CDF). */
  random: number;
}

export interface LanguageModel {
  /** Rows of the LM head (token ids are < vocabSize). */
  readonly vocabSize: number;
  /** Positions the KV cache holds. */
  readonly maxContext: number;
  /**
   * Runs `ids` at positions startPos..startPos+ids.length-1 (startPos = current cache length), appending their
   * K/V to the cache, and leaves the logits of the last one ready for `sample`.
   */
  prefill(ids: readonly number[], startPos: number): Promise<void>;
  /** Samples one token id from the current logits (on the GPU; only the id comes back). */
  sample(params: SamplingParams): Promise<number>;
  /**
   * Optional fused decode step: feed `id` at `pos`, then sample the next token, ideally in one submission.
   * Without it the engine calls prefill([id], pos) then sample(params).
   */
  step?(id: number, pos: number, params: SamplingParams): Promise<number>;
  /**
   * Shrinks the cache to at most `length` positions and returns how many it kept. A model whose sliding-window
   * ring buffers have overwritten positions it would need may keep fewer (0 is always allowed); the engine then
   * prefills the rest, so `reusedTokens` counts only what was really not recomputed.
   */
  truncate(length: number): number | Promise<number>;
  /** Frees GPU memory. */
  dispose(): void;
}
