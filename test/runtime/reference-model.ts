/**
 * The float64 CPU reference forward (test/helpers/reference-gemma3n.ts) as a LanguageModel: greedy only, no
 * real cache (each sample recomputes the whole sequence). Slow and exact: it lets the engine, the worker and
 * the public API be checked against golden.json before (and independently of) the GPU model.
 */
import type { FeedInput, LanguageModel, SamplingParams } from '../../src/model/language-model.ts';
import type { Gemma3nConfig } from '../../src/model/gemma3n/config.ts';
import { referenceForward, type RefWeights } from '../helpers/reference-gemma3n.ts';

export class ReferenceLanguageModel implements LanguageModel {
  readonly vocabSize: number;
  readonly maxChunk = 64;
  readonly embeddingWidth: number;
  private ids: number[] = [];

  constructor(
    private readonly cfg: Gemma3nConfig,
    private readonly weights: RefWeights,
    readonly maxContext = 256,
  ) {
    this.vocabSize = cfg.text.vocabSize;
    this.embeddingWidth = cfg.text.hiddenSize;
  }

  get length(): number {
    return this.ids.length;
  }

  async feed(input: FeedInput): Promise<void> {
    if (input.soft?.length) throw new Error('ReferenceLanguageModel takes no soft tokens');
    this.ids.push(...input.ids);
  }

  async readLogits(): Promise<Float32Array[]> {
    throw new Error('ReferenceLanguageModel: use referenceForward for logits');
  }

  async sample(params: SamplingParams): Promise<number> {
    if (params.temperature !== 0) throw new Error('ReferenceLanguageModel samples greedily only (temperature 0)');
    const { logits } = referenceForward(this.cfg, this.weights, this.ids);
    const last = logits[logits.length - 1];
    let best = 0;
    for (let i = 1; i < last.length; i++) if (last[i] > last[best]) best = i;
    return best;
  }

  rewindableTo(length: number): number {
    return Math.min(length, this.ids.length);
  }

  rewind(length: number): void {
    this.ids.length = length;
  }

  dispose(): void {
    this.ids = [];
  }
}
