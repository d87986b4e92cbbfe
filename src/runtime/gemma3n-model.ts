/**
 * Adapts the GPU model (src/model/gemma3n/model.ts, Gemma3nModel) to the engine's LanguageModel. Sampling runs
 * on the GPU and only the id is read back; a decode step feeds the last token and samples the next in one
 * submission. Greedy (temperature 0) is the argmax over every id, as HF generate; sampling never picks the
 * multimodal / pad-copy ids ≥ vocab_size_per_layer_input. The engine's uniform random number becomes the GPU
 * sampler's seed (its counter is the position), so an engine seed reproduces the same tokens.
 */
import { GemmaError } from '../errors.ts';
import type { Gemma3nModel, SampleOptions } from '../model/gemma3n/model.ts';
import type { LanguageModel, SamplingParams } from './language-model.ts';

/** The GPU sampler's largest top-k (its 0 means this). */
const GPU_TOP_K_MAX = 1024;

export class Gemma3nLanguageModel implements LanguageModel {
  readonly vocabSize: number;
  readonly maxContext: number;

  constructor(
    readonly model: Gemma3nModel,
    /** The prefill chunk the model was loaded with (sizes its sliding-window rings). */
    private readonly chunk: number,
  ) {
    this.vocabSize = model.config.text.vocabSize;
    this.maxContext = model.maxContext;
  }

  async prefill(ids: readonly number[], startPos: number): Promise<void> {
    this.checkPos(startPos);
    await this.model.prefill(Array.from(ids));
  }

  async sample(p: SamplingParams): Promise<number> {
    return this.model.sampleNext(this.options(p));
  }

  async step(id: number, pos: number, p: SamplingParams): Promise<number> {
    this.checkPos(pos);
    return this.model.feedAndSample([id], this.options(p));
  }

  private options(p: SamplingParams): SampleOptions {
    if (p.temperature <= 0) return { temperature: 0, allowMultimodal: true };
    return {
      temperature: p.temperature,
      topK: p.topK > 0 && p.topK <= GPU_TOP_K_MAX ? p.topK : 0,
      topP: p.topP,
      seed: Math.floor(p.random * 4294967296) >>> 0,
    };
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
