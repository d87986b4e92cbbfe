/**
 * Gemma3nModel: the Gemma 3n text decoder as a LanguageModel (src/model/language-model.ts). Takes a GpuContext and
 * a Checkpoint, knows nothing of workers, the DOM or the conversation: it loads the weights and builds the forward
 * pass; feeding, GPU sampling, rewinding and memory accounting are the family-neutral GpuDecoderModel's
 * (src/model/gpu-decoder.ts). The engine (src/runtime/engine.ts) owns the token history and the decode loop.
 */
import type { GpuContext } from '../../gpu/device.ts';
import type { Checkpoint } from '../../io/checkpoint.ts';
import { parseGemma3nConfig, type Gemma3nConfig } from './config.ts';
import { loadWeights, destroyWeights } from './weights.ts';
import { Gemma3nForward } from './forward.ts';
import type { WeightMode } from '../family.ts';
import { GpuDecoderModel, buildDecoder, type DecoderLoadOptions, type GpuDecoderParts } from '../gpu-decoder.ts';

export type { SampleOptions } from '../gpu-decoder.ts';

/** How to load (src/model/gpu-decoder.ts). */
export type LoadOptions = DecoderLoadOptions;

export class Gemma3nModel extends GpuDecoderModel {
  private constructor(
    ctx: GpuContext,
    readonly config: Gemma3nConfig,
    readonly weightMode: WeightMode,
    fwd: Gemma3nForward,
    parts: GpuDecoderParts,
  ) {
    super(ctx, fwd, parts);
  }

  static async load(ctx: GpuContext, checkpoint: Checkpoint, opts: LoadOptions = {}): Promise<Gemma3nModel> {
    const config = parseGemma3nConfig(checkpoint.config);
    const mode = opts.weights ?? 'q4';
    const maxContext = opts.maxContext ?? 4096;
    const chunk = Math.min(opts.chunk ?? 64, maxContext);
    const { weights, fwd } = await buildDecoder(
      checkpoint.name,
      opts,
      () => loadWeights(ctx, checkpoint, config, { mode, onTensor: opts.onProgress, onConverted: opts.onConverted, random: opts.random, pleOnGpu: opts.pleOnGpu, signal: opts.signal }),
      (w) => Gemma3nForward.create(ctx, config.text, w, { chunk, maxContext, activations: opts.activations }),
      destroyWeights,
    );
    return new Gemma3nModel(ctx, config, mode, fwd, {
      vocabSize: config.text.vocabSize,
      embeddingWidth: config.text.hiddenSize,
      weightBytes: weights.gpuBytes,
      hostBytes: weights.pleTable.bytes,
      destroyWeights: () => destroyWeights(weights),
    });
  }
}
