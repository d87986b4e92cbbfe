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
}
