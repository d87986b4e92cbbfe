/**
 * Gemma 4 (E2B, E4B) in the model registry (src/model/registry.ts): HF checkpoints with model_type `gemma4` (the
 * multimodal repo layout, text decoder under `model.language_model.`; the vision and audio towers are not loaded)
 * or `gemma4_text`, and llama.cpp GGUFs of architecture `gemma4`. Its native tool-calling tokens are declared here
 * (chat-tokens.ts) for the function-calling work.
 */
import { GemmaError } from '../../errors.ts';
import type { ModelFamily } from '../family.ts';
import { PREFILL_CHUNK, loadFamilyDecoder } from '../gpu-decoder.ts';
import { GEMMA4_TOOL_TOKENS } from './chat-tokens.ts';
import { parseGemma4Config } from './config.ts';
import { GEMMA4_GGUF_ARCH, openGemma4Gguf } from './gguf.ts';
import { estimateGemma4Memory } from './memory-estimate.ts';
import { Gemma4Model } from './model.ts';
import { createGemma4RandomCheckpoint, isGemma4RandomPreset } from './random-checkpoint.ts';

export const gemma4Family: ModelFamily = {
  name: 'gemma4',
  modelTypes: ['gemma4', 'gemma4_text'],
  ggufArchitectures: [GEMMA4_GGUF_ARCH],
  openGguf: openGemma4Gguf,
  toolTokens: GEMMA4_TOOL_TOKENS,
  estimateMemory: (checkpoint, options) => estimateGemma4Memory(checkpoint, { ...options, chunk: PREFILL_CHUNK }),
  randomCheckpoint(options) {
    if (options.preset !== undefined && !isGemma4RandomPreset(options.preset)) {
      throw new GemmaError('invalid-argument', `randomCheckpoint: Gemma 4 preset ${JSON.stringify(options.preset)} is not one of tiny, e2b, e4b.`);
    }
    return createGemma4RandomCheckpoint(options);
  },
  async load(gpu, checkpoint, options) {
    const config = parseGemma4Config(checkpoint.config);
    const model = await loadFamilyDecoder(checkpoint, options, config.text.maxPositionEmbeddings, (opts) => Gemma4Model.load(gpu, checkpoint, opts));
    return { model, eosTokenIds: config.eosTokenIds };
  },
};
