/**
 * Gemma4Model: the Gemma 4 (E2B/E4B) text decoder as a LanguageModel (src/model/language-model.ts): loads the
 * weights (weights.ts) and builds the forward pass (forward.ts); feeding, GPU sampling, rewinding and memory
 * accounting are the family-neutral GpuDecoderModel's (src/model/gpu-decoder.ts).
 */
import type { GpuContext } from '../../gpu/device.ts';
import type { Checkpoint } from '../../io/checkpoint.ts';
import type { WeightMode } from '../family.ts';
import { GpuDecoderModel, buildDecoder, type DecoderLoadOptions, type GpuDecoderParts } from '../gpu-decoder.ts';
import { parseGemma4Config, type Gemma4Config } from './config.ts';
import { Gemma4Forward } from './forward.ts';
import { destroyGemma4Weights, loadGemma4Weights } from './weights.ts';

export class Gemma4Model extends GpuDecoderModel {
  private constructor(
    ctx: GpuContext,
    readonly config: Gemma4Config,
    readonly weightMode: WeightMode,
    fwd: Gemma4Forward,
    parts: GpuDecoderParts,
  ) {
    super(ctx, fwd, parts);
  }

  static async load(ctx: GpuContext, checkpoint: Checkpoint, opts: DecoderLoadOptions = {}): Promise<Gemma4Model> {
    const config = parseGemma4Config(checkpoint.config);
    const mode = opts.weights ?? 'q4';
    const maxContext = opts.maxContext ?? 4096;
    const chunk = Math.min(opts.chunk ?? 64, maxContext);
    const { weights, fwd } = await buildDecoder(
      checkpoint.name,
      opts,
      () => loadGemma4Weights(ctx, checkpoint, config, { mode, onTensor: opts.onProgress, onConverted: opts.onConverted, random: opts.random, pleOnGpu: opts.pleOnGpu, signal: opts.signal }),
      (w) => Gemma4Forward.create(ctx, config, w, { chunk, maxContext, activations: opts.activations }),
      destroyGemma4Weights,
    );
    return new Gemma4Model(ctx, config, mode, fwd, {
      vocabSize: config.text.vocabSize,
      embeddingWidth: config.text.hiddenSize,
      weightBytes: weights.gpuBytes,
      hostBytes: weights.pleTable.bytes,
      destroyWeights: () => destroyGemma4Weights(weights),
    });
  }
}
