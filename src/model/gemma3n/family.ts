/**
 * Gemma 3n in the model registry (src/model/registry.ts): HF checkpoints with model_type `gemma3n` (the multimodal
 * repo layout, text decoder under `model.language_model.`) or `gemma3n_text`, and llama.cpp GGUFs of architecture
 * `gemma3n`.
 */
import { GemmaError } from '../../errors.ts';
import type { ModelFamily } from '../family.ts';
import { parseGemma3nConfig } from './config.ts';
import { GEMMA3N_GGUF_ARCH, openGemma3nGguf } from './gguf.ts';
import { estimateGemma3nMemory } from './memory-estimate.ts';
import { sliceGemma3n } from './matformer.ts';
import { Gemma3nModel } from './model.ts';
import { PREFILL_CHUNK, loadFamilyDecoder } from '../gpu-decoder.ts';
import { createRandomCheckpoint, isRandomPreset } from './random-checkpoint.ts';

export const gemma3nFamily: ModelFamily = {
  name: 'gemma3n',
  modelTypes: ['gemma3n', 'gemma3n_text'],
  ggufArchitectures: [GEMMA3N_GGUF_ARCH],
  openGguf: openGemma3nGguf,
  estimateMemory: (checkpoint, options) => estimateGemma3nMemory(checkpoint, { ...options, chunk: PREFILL_CHUNK }),
  randomCheckpoint(options) {
    if (options.preset !== undefined && !isRandomPreset(options.preset)) {
      throw new GemmaError('invalid-argument', `randomCheckpoint: preset ${JSON.stringify(options.preset)} is not one of tiny, e2b, e4b.`);
    }
    return createRandomCheckpoint({ ...options, preset: options.preset });
  },
  slice: sliceGemma3n,
  async load(gpu, checkpoint, options) {
    const config = parseGemma3nConfig(checkpoint.config);
    const model = await loadFamilyDecoder(checkpoint, options, config.text.maxPositionEmbeddings, (opts) => Gemma3nModel.load(gpu, checkpoint, opts));
    return { model, eosTokenIds: config.eosTokenIds };
  },
};
