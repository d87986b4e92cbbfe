/**
 * The float64 CPU reference forward (test/helpers/reference-gemma3n.ts) as a LanguageModel: greedy only, no
 * real cache (each sample recomputes the whole sequence). Slow and exact: it lets the engine, the worker and
 * the public API be checked against golden.json before (and independently of) the GPU model.
 */
import type { LanguageModel, SamplingParams } from '../../src/runtime/language-model.ts';
import type { Gemma3nConfig } from '../../src/model/gemma3n/config.ts';
import { referenceForward, type RefWeights } from '../helpers/reference-gemma3n.ts';

export class ReferenceLanguageModel implements LanguageModel {
  readonly vocabSize: number;
  private ids: number[] = [];

  constructor(
    private readonly cfg: Gemma3nConfig,
    private readonly weights: RefWeights,
    readonly maxContext = 256,
  ) {
    this.vocabSize = cfg.text.vocabSize;
  }

  async prefill(ids: readonly number[], startPos: number): Promise<void> {
    if (startPos !== this.ids.length) throw new Error(`ReferenceLanguageModel: fed at ${startPos}, cache holds ${this.ids.length}`);
    this.ids.push(...ids);
  }

  async sample(params: SamplingParams): Promise<number> {
    if (params.temperature !== 0) throw new Error('ReferenceLanguageModel samples greedily only (temperature 0)');
    const { logits } = referenceForward(this.cfg, this.weights, this.ids);
    const last = logits[logits.length - 1];
    let best = 0;
    for (let i = 1; i < last.length; i++) if (last[i] > last[best]) best = i;
    return best;
  }

  truncate(length: number): number {
    this.ids.length = Math.min(length, this.ids.length);
    return this.ids.length;
  }

  dispose(): void {
    this.ids = [];
  }
}
