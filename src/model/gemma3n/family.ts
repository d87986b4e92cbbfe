/**
 * Gemma 3n in the model registry (src/model/registry.ts): HF checkpoints with model_type `gemma3n` (the multimodal
 * repo layout, text decoder under `model.language_model.`) or `gemma3n_text`, and llama.cpp GGUFs of architecture
 * `gemma3n`.
 */
import { GemmaError } from '../../errors.ts';
import type { ModelFamily } from '../family.ts';
import { parseGemma3nConfig } from './config.ts';
import { GEMMA3N_GGUF_ARCH, openGemma3nGguf } from './gguf.ts';
import { Gemma3nModel } from './model.ts';
import { createRandomCheckpoint, isRandomPreset } from './random-checkpoint.ts';

/** Tokens per prefill chunk: sizes the sliding-window rings (window + chunk − 1) and the activation buffers. */
export const PREFILL_CHUNK = 64;

export const gemma3nFamily: ModelFamily = {
  name: 'gemma3n',
  modelTypes: ['gemma3n', 'gemma3n_text'],
  ggufArchitectures: [GEMMA3N_GGUF_ARCH],
  openGguf: openGemma3nGguf,
  randomCheckpoint(options) {
    if (options.preset !== undefined && !isRandomPreset(options.preset)) {
      throw new GemmaError('invalid-argument', `randomCheckpoint: preset ${JSON.stringify(options.preset)} is not one of tiny, e2b, e4b.`);
    }
    return createRandomCheckpoint({ ...options, preset: options.preset });
  },
  async load(gpu, checkpoint, options) {
    const config = parseGemma3nConfig(checkpoint.config);
    const maxContext = Math.min(options.maxContext, config.text.maxPositionEmbeddings);
    try {
      const model = await Gemma3nModel.load(gpu, checkpoint, {
        weights: options.weights,
        maxContext,
        chunk: PREFILL_CHUNK,
        onProgress: options.onTensor,
        onConverted: options.onConverted,
        onCompile: options.onCompile,
        random: options.random,
        signal: options.signal,
      });
      return { model, eosTokenIds: config.eosTokenIds };
    } catch (err) {
      if (err instanceof GemmaError) throw err;
      // A GPU out-of-memory or validation failure while creating buffers: say what was being loaded.
      throw new GemmaError('internal', `Loading ${checkpoint.name} onto the GPU failed: ${(err as Error)?.message ?? err}`, { cause: err });
    }
  },
};
