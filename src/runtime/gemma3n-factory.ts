/**
 * The default model factory of the browser worker: opens the GPU device first (so a missing WebGPU, adapter,
 * feature or limit is reported before anything is downloaded), then loads the Gemma 3n checkpoint with
 * src/model/gemma3n/ and adapts it to the engine's LanguageModel.
 */
import { GemmaError } from '../errors.ts';
import type { ModelFactory } from './worker-host.ts';

export const gemma3nFactory: ModelFactory = async (ctx) => {
  await ctx.gpu();
  throw new GemmaError('internal', 'The Gemma 3n GPU model is not wired into this build yet (src/model/gemma3n is in progress).');
};
