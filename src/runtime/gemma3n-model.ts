/**
 * Adapts the GPU model (src/model/gemma3n/model.ts, Gemma3nModel) to the engine's LanguageModel: positions are
 * checked against the model's own history, greedy tokens come from the GPU argmax (only the id is read back),
 * and sampling with temperature reads the logits back and samples on the CPU until the model samples on the GPU.
 */
import { GemmaError } from '../errors.ts';
import type { Gemma3nModel } from '../model/gemma3n/model.ts';
import { sampleLogits } from './cpu-sampler.ts';
import type { LanguageModel, SamplingParams } from './language-model.ts';

export class Gemma3nLanguageModel implements LanguageModel {
  readonly vocabSize: number;
  readonly maxContext: number;
  /** Ids ≥ this (multimodal soft/hard tokens, pad-row copies in the LM head) are never sampled. */
  private readonly textVocab: number;

  constructor(
    readonly model: Gemma3nModel,
    /** The prefill chunk the model was loaded with (sizes its sliding-window rings). */
    private readonly chunk: number,
  ) {
    this.vocabSize = model.config.text.vocabSize;
    this.maxContext = model.maxContext;
    this.textVocab = model.config.text.vocabSizePerLayerInput;
  }

  async prefill(ids: readonly number[], startPos: number): Promise<void> {
    this.checkPos(startPos);
    await this.model.prefill(Array.from(ids));
  }

  async sample(p: SamplingParams): Promise<number> {
    if (p.temperature <= 0 || p.topK === 1) return this.model.greedyToken();
    return sampleLogits(await this.model.logits(), p, this.textVocab);
  }

  async step(id: number, pos: number, p: SamplingParams): Promise<number> {
    this.checkPos(pos);
    await this.model.step(id);
    return this.sample(p);
  }

  /**
   * Keeps `length` positions when every sliding-window ring still holds the window before it; otherwise drops
   * everything (returns 0) so the engine re-prefills and reports it as prefill, not reuse.
   */
  async truncate(length: number): Promise<number> {
    const written = this.model.length;
    if (length >= written) return written;
    const window = this.model.config.text.slidingWindow;
    const capacity = Math.min(this.maxContext, window + this.chunk - 1);
    const hasSliding = this.model.config.text.layerTypes.includes('sliding_attention');
    if (length === 0 || (hasSliding && written - length > capacity - window)) {
      this.model.reset();
      return 0;
    }
    await this.model.truncate(length);
    return length;
  }

  dispose(): void {
    this.model.dispose();
  }

  private checkPos(pos: number): void {
    if (pos !== this.model.length) {
      throw new GemmaError('internal', `The engine fed position ${pos} but the model's cache holds ${this.model.length} tokens.`);
    }
  }
}
