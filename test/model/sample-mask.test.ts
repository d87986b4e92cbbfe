// Constrained sampling through the real model path (GpuDecoderModel on the GPU: Gemma3nModel on the gemma3n-tiny-a
// fixture, Gemma4Model on gemma4-tiny-a; the mask lives in the family-neutral gpu-decoder.ts): over
// random masks (dense, sparse, a single id) and sampling settings (greedy, temperature up to 50, top-k, top-p),
// via sample() and via step() with the mask computed on demand, the token is always one the mask allows; greedy is
// the argmax within the mask (the logits are read back to check); a seed reproduces; and an unconstrained sample
// afterwards is the plain one again (the mask does not stick).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Gemma3nModel } from '../../src/model/gemma3n/model.ts';
import { Gemma4Model } from '../../src/model/gemma4/model.ts';
import type { GpuDecoderModel } from '../../src/model/gpu-decoder.ts';
import { openSafetensorsCheckpoint } from '../../src/io/safetensors.ts';
import { directoryFiles } from '../../src/node/checkpoint-files.ts';
import type { SamplingParams } from '../../src/model/language-model.ts';
import { testGpu } from '../helpers/gpu.ts';
import { fixtureDir, loadGolden } from '../helpers/fixtures.ts';
import { freshRng, type Rng } from '../helpers/random.ts';

const FIXTURE = fixtureDir('gemma3n-tiny-a', ['config.json', 'model.safetensors', 'golden.json']);
const GEMMA4_FIXTURE = fixtureDir('gemma4-tiny-a', ['config.json', 'model.safetensors', 'golden.json']);
const allows = (m: Uint32Array, id: number) => ((m[id >>> 5] >>> (id & 31)) & 1) === 1;

function randomMask(rng: Rng, vocab: number, valid: number, density: number): Uint32Array {
  const m = new Uint32Array(Math.ceil(vocab / 32));
  const n = Math.max(1, Math.round(valid * density));
  for (let k = 0; k < n; k++) {
    const id = rng.int(0, valid);
    m[id >>> 5] |= 1 << (id & 31);
  }
  return m;
}

/**
 * `valid`: the ids sampling (temperature > 0) may pick (Gemma 3n: below vocab_size_per_layer_input; Gemma 4: all);
 * masks draw only from them.
 */
async function checkMaskedSampling(model: GpuDecoderModel, valid: number, prompt: readonly number[], rng: Rng, tag: string): Promise<void> {
  const V = model.vocabSize;
  await model.prefill(prompt);
  const plainGreedy = await model.sample({ temperature: 0, topK: 0, topP: 1, random: 0 });
  const settings = [
    { temperature: 0, topK: 0, topP: 1 },
    { temperature: 1, topK: 64, topP: 0.95 },
    { temperature: 50, topK: 0, topP: 1 },
    { temperature: 0.7, topK: 1, topP: 1 },
    { temperature: 2, topK: 300, topP: 0.5 },
  ];
  const densities = [0.5, 0.05, 0]; // 0: a single allowed id
  let token = prompt[prompt.length - 1];
  for (let trial = 0; trial < 15; trial++) {
    const s = settings[trial % settings.length];
    const density = densities[trial % densities.length];
    const mask = density === 0 ? randomMask(rng, V, valid, 0) : randomMask(rng, V, valid, density);
    const single = density === 0 ? Array.from({ length: valid }, (_, i) => i).find((i) => allows(mask, i)) : undefined;
    const params: SamplingParams = { ...s, random: rng.next(), mask };
    // sample(): the last position's logits as they are.
    const a = await model.sample(params);
    assert.ok(a < valid && allows(mask, a), `trial ${trial}: sample() drew ${a} outside the mask (${JSON.stringify(s)}, density ${density}) ${tag}`);
    if (single !== undefined) assert.equal(a, single, tag);
    if (s.temperature === 0 || s.topK === 1) {
      const logits = await model.logits();
      let best = -1;
      for (let i = 0; i < V; i++) if (allows(mask, i) && (best < 0 || logits[i] > logits[best])) best = i;
      assert.equal(a, best, `greedy is the argmax within the mask ${tag}`);
    }
    assert.equal(await model.sample(params), a, `same random number, same token ${tag}`);
    // step() with the mask computed on demand (after the forward pass is submitted).
    let asked = 0;
    const b = await model.step(token, { ...params, random: rng.next(), mask: async () => (asked++, mask) });
    assert.equal(asked, 1);
    assert.ok(b < valid && allows(mask, b), `trial ${trial}: step() drew ${b} outside the mask ${tag}`);
    token = b;
  }
  // Unconstrained again: the same position's plain greedy token as a fresh model gives.
  model.rewind(prompt.length - 1);
  await model.feed({ ids: prompt.slice(-1) });
  assert.equal(await model.sample({ temperature: 0, topK: 0, topP: 1, random: 0 }), plainGreedy, `an unmasked sample after masked ones ${tag}`);
  const lazyNull = await model.step(token, { temperature: 0, topK: 0, topP: 1, random: 0, mask: async () => null });
  assert.ok(Number.isInteger(lazyNull) && lazyNull < V);
}

test('Gemma3nModel samples within the mask (sample and step, random masks and settings); the mask does not stick', async () => {
  const { rng, tag } = freshRng();
  const ckpt = await openSafetensorsCheckpoint(directoryFiles(FIXTURE));
  const model = await Gemma3nModel.load(await testGpu(), ckpt, { weights: 'float', maxContext: 96 });
  await checkMaskedSampling(model, model.config.text.vocabSizePerLayerInput, loadGolden(FIXTURE).greedy.prompt_ids, rng, tag);
  model.dispose();
});

test('Gemma4Model samples within the mask as Gemma 3n does (the same GpuDecoderModel path)', async () => {
  const { rng, tag } = freshRng();
  const ckpt = await openSafetensorsCheckpoint(directoryFiles(GEMMA4_FIXTURE));
  const model = await Gemma4Model.load(await testGpu(), ckpt, { weights: 'float', maxContext: 96 });
  await checkMaskedSampling(model, model.vocabSize, loadGolden(GEMMA4_FIXTURE).greedy.prompt_ids, rng, tag);
  model.dispose();
});
