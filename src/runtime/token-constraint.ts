/**
 * A constraint on the tokens the engine may sample (structured output, tool calls): before each sample the engine
 * asks for the allowed set, after it reports the token. The mask travels to the model's GPU sampler, so the logits
 * never come back to the CPU.
 */
export interface TokenConstraint {
  /** Allowed ids for the next token as a packed bitmask (bit id & 31 of word id >> 5), or null = unconstrained. */
  nextMask(): Uint32Array | null;
  /** Advances with the sampled id (always one the mask allowed). */
  accept(id: number): void;
  /** The constrained output is complete: the engine stops with finishReason 'stop'. */
  isComplete(): boolean;
  /**
   * Optional: computes the next mask ahead of `nextMask()` (which then returns it at once). The grammar engine's
   * fast path is asynchronous (XGrammar's wasm hands its bitmask over through a promise), so an engine that awaits
   * this while the GPU runs the forward pass hides the mask time; without it `nextMask()` takes a slower
   * synchronous path (~1 ms at the 262k Gemma vocabulary, see bench/constrained.ts).
   */
  prepare?(): Promise<void>;
  /** Optional: forgets the last `n` accepted tokens (e.g. when the engine trims a stop string). */
  rollback?(n: number): void;
}

/** Number of u32 words of a packed mask over `vocabSize` ids. */
export function maskWords(vocabSize: number): number {
  return Math.ceil(vocabSize / 32);
}

/** Whether `id` is allowed by a packed mask. */
export function maskAllows(mask: Uint32Array, id: number): boolean {
  return ((mask[id >>> 5] >>> (id & 31)) & 1) === 1;
}
