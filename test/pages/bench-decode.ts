/**
 * The decode-step bench page (bench/chromium-decode.ts drives it; `npm run bench` prints what it returns): loads a
 * random Gemma 3n at real per-layer dimensions on the main thread's WebGPU device and runs the same decode-step
 * profile as the Node bench (bench/decode-profile.ts). `window.T.profileDecode` returns plain data for
 * page.evaluate.
 */
import { createGpuContext } from '../../src/gpu/device.ts';
import { Gemma3nModel } from '../../src/model/gemma3n/model.ts';
import { createRandomCheckpoint } from '../../src/model/gemma3n/random-checkpoint.ts';
import type { WeightMode } from '../../src/model/family.ts';
import { profileDecode, type DecodeProfile } from '../../bench/decode-profile.ts';

export interface PageProfileOptions {
  preset: 'e2b' | 'e4b';
  layers: number;
  vocab?: number;
  weights: WeightMode;
  prompt: number;
  tokens: number;
  timedTokens: number;
  maxContext: number;
}

async function profile(o: PageProfileOptions): Promise<DecodeProfile & { adapter: string; features: string[] }> {
  const ctx = await createGpuContext();
  const model = await Gemma3nModel.load(ctx, createRandomCheckpoint({ preset: o.preset, layers: o.layers, vocabSize: o.vocab }), { random: true, weights: o.weights, maxContext: o.maxContext });
  try {
    const ids = Array.from({ length: o.prompt }, (_, i) => 3 + ((i * 7919) % 200_000));
    await model.prefill(ids);
    const first = await model.greedyToken();
    const p = await profileDecode(ctx, model, { first, layers: o.layers, tokens: o.tokens, timedTokens: o.timedTokens });
    return { ...p, adapter: ctx.adapterName, features: [...ctx.device.features].sort() };
  } finally {
    model.dispose();
    ctx.device.destroy();
  }
}

(window as unknown as { T: unknown }).T = { profileDecode: profile };
