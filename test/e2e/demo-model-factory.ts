/**
 * Stand-in for src/runtime/gemma3n-factory.ts in the demo's e2e build, used only while the shipped factory does not
 * yet load `{ randomCheckpoint }` models (demo.test.ts swaps it in, and says so). It runs the real GPU model
 * (Gemma3nModel over the random-weight checkpoint, src/model/gemma3n/random-checkpoint.ts) with the real worker
 * host, tokenizer and public API: only the thin LanguageModel adapter below is test code. Sampling reads the
 * logits back and samples on the CPU (the shipped factory samples on the GPU).
 */
import type { ModelFactory } from '../../src/runtime/worker-host.ts';
import type { LanguageModel, SamplingParams } from '../../src/runtime/language-model.ts';
import { GemmaError } from '../../src/errors.ts';
import { Gemma3nModel } from '../../src/model/gemma3n/model.ts';
import { createRandomCheckpoint, isRandomCheckpointSpec } from '../../src/model/gemma3n/random-checkpoint.ts';

/** Samples from logits on the CPU: temperature, top-k, top-p, inverse CDF with the engine's random number. */
export function sampleFromLogits(logits: Float32Array, p: SamplingParams, maxId = logits.length): number {
  const n = Math.min(maxId, logits.length);
  if (p.temperature <= 0) {
    let best = 0;
    for (let i = 1; i < n; i++) if (logits[i] > logits[best]) best = i;
    return best;
  }
  let threshold = -Infinity;
  if (p.topK > 0 && p.topK < n) threshold = Float32Array.from(logits.subarray(0, n)).sort()[n - p.topK];
  const ids: number[] = [];
  for (let i = 0; i < n; i++) if (logits[i] >= threshold) ids.push(i);
  ids.sort((a, b) => logits[b] - logits[a]);
  const top = logits[ids[0]];
  const weights = ids.map((i) => Math.exp((logits[i] - top) / p.temperature));
  const sum = weights.reduce((a, b) => a + b, 0);
  let keep = ids.length;
  if (p.topP < 1) {
    let mass = 0;
    for (let j = 0; j < ids.length; j++) {
      mass += weights[j] / sum;
      if (mass >= p.topP) {
        keep = j + 1;
        break;
      }
    }
  }
  const kept = weights.slice(0, keep).reduce((a, b) => a + b, 0);
  let target = p.random * kept;
  for (let j = 0; j < keep; j++) {
    target -= weights[j];
    if (target < 0) return ids[j];
  }
  return ids[keep - 1];
}

class Gemma3nLanguageModel implements LanguageModel {
  readonly vocabSize: number;
  readonly maxContext: number;
  constructor(private readonly model: Gemma3nModel) {
    this.vocabSize = model.config.text.vocabSize;
    this.maxContext = model.maxContext;
  }
  async prefill(ids: readonly number[], startPos: number): Promise<void> {
    if (startPos !== this.model.length) throw new GemmaError('internal', `prefill at ${startPos}, cache holds ${this.model.length}`);
    await this.model.prefill(Array.from(ids));
  }
  async sample(params: SamplingParams): Promise<number> {
    if (params.temperature <= 0) return this.model.greedyToken();
    // Never sample the LM head's pad-copy rows (ids ≥ the PLE vocabulary are multimodal tokens).
    return sampleFromLogits(await this.model.logits(), params, this.model.config.text.vocabSizePerLayerInput);
  }
  truncate(length: number): number {
    if (length >= this.model.length) return this.model.length;
    // Gemma3nModel.truncate may have to re-run a prefix (async); the engine re-prefills whatever we drop instead.
    this.model.reset();
    return 0;
  }
  dispose(): void {
    this.model.dispose();
  }
}

export const gemma3nFactory: ModelFactory = async (ctx) => {
  const gpu = await ctx.gpu();
  if (!isRandomCheckpointSpec(ctx.request.model)) {
    throw new GemmaError('internal', 'The demo e2e test factory only loads the built-in random-weight model.');
  }
  const checkpoint = createRandomCheckpoint(ctx.request.model.randomCheckpoint);
  const model = await Gemma3nModel.load(gpu, checkpoint, {
    maxContext: ctx.request.contextLength ?? 4096,
    onProgress: (done, total) => ctx.onProgress({ phase: 'quantize', loaded: done, total, file: 'random weights' }),
  });
  return { model: new Gemma3nLanguageModel(model), stopTokenIds: model.config.eosTokenIds, adapterName: gpu.adapterName };
};
