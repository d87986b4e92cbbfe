/**
 * Sampling options as users run them: through the engine and the GPU model (tiny-a), not only the sampler kernel.
 * The last prompt position's logits are read back once; then many seeded one-token generations must respect each
 * option: top-k 1 and a tiny top-p are the argmax, top-k k draws only from the k largest logits, top-p p only from
 * the smallest set with mass ≥ p, and temperature changes the spread. An option the model path ignored (e.g. top-p
 * not set where the model configures the sampler) fails one of these.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Engine } from '../../src/runtime/engine.ts';
import { loadModel } from '../../src/runtime/loading/model-factory.ts';
import { openSafetensorsCheckpoint } from '../../src/io/safetensors.ts';
import { directoryFiles } from '../../src/node/checkpoint-files.ts';
import type { Gemma3nModel } from '../../src/model/gemma3n/model.ts';
import type { GenerateOptions } from '../../src/runtime/protocol.ts';
import { testGpu } from '../helpers/gpu.ts';
import { tinyFixtures } from '../helpers/fixtures.ts';
import { collect } from '../helpers/stream.ts';

const fx = tinyFixtures()[0];
const DRAWS = 40;

test(`${fx.name}: temperature, top-k and top-p reach the GPU sampler through the engine`, async () => {
  const ckpt = await openSafetensorsCheckpoint(directoryFiles(fx.dir));
  const { model } = await loadModel(await testGpu(), ckpt, { weights: 'float', contextLength: 64 });
  const engine = new Engine({ model });
  const prompt = fx.golden.cases[0].input_ids;
  // The sampler never draws ids ≥ vocab_size_per_layer_input (multimodal / pad copies): rank only the text ids.
  const textVocab = (model as Gemma3nModel).config.text.vocabSizePerLayerInput;
  await (model as Gemma3nModel).prefill(prompt);
  const logits = Array.from((await (model as Gemma3nModel).logits()).subarray(0, textVocab));
  const order = logits.map((v, i) => [v, i] as const).sort((a, b) => b[0] - a[0]).map(([, i]) => i);
  const draw = async (opts: GenerateOptions): Promise<number[]> => {
    const out: number[] = [];
    for (let seed = 1; seed <= DRAWS; seed++) out.push(...(await collect(engine.generate(prompt, { ...opts, seed, maxNewTokens: 1 }))).ids);
    return out;
  };
  // Softmax probabilities at temperature T, by rank.
  const probs = (T: number) => {
    const m = logits[order[0]];
    const e = order.map((i) => Math.exp((logits[i] - m) / T));
    const z = e.reduce((a, b) => a + b, 0);
    return e.map((x) => x / z);
  };

  assert.deepEqual(new Set(await draw({ temperature: 1, topK: 1, topP: 1 })), new Set([order[0]]), 'topK 1 = argmax');
  const p1 = probs(1);
  assert.ok(p1[0] < 0.9, `the top token should not dominate (p = ${p1[0]})`);
  assert.deepEqual(new Set(await draw({ temperature: 1, topK: 0, topP: p1[0] / 2 })), new Set([order[0]]), 'a top-p below the top mass = argmax');

  const k = 3;
  const topK = await draw({ temperature: 1, topK: k, topP: 1 });
  assert.ok(topK.every((id) => order.slice(0, k).includes(id)), `topK ${k} drew ${[...new Set(topK)]}, allowed ${order.slice(0, k)}`);
  assert.ok(new Set(topK).size > 1, 'top-k sampling should spread over more than one id');

  // The nucleus for p: the smallest prefix of the ranking whose mass reaches p.
  const p = 0.5;
  let mass = 0;
  let n = 0;
  while (mass < p) mass += p1[n++];
  const nucleus = await draw({ temperature: 1, topK: 0, topP: p });
  assert.ok(nucleus.every((id) => order.slice(0, n).includes(id)), `topP ${p} drew ${[...new Set(nucleus)]}, nucleus ${order.slice(0, n)}`);

  // Temperature: hot sampling reaches beyond the top few ids, cold sampling stays on the argmax.
  const hot = await draw({ temperature: 5, topK: 0, topP: 1 });
  assert.ok(hot.some((id) => !order.slice(0, 3).includes(id)), 'temperature 5 should draw outside the top 3');
  const cold = await draw({ temperature: 0.05, topK: 0, topP: 1 });
  const pc = probs(0.05);
  if (pc[0] > 0.999) assert.deepEqual(new Set(cold), new Set([order[0]]), 'temperature 0.05 = argmax here');
  engine.dispose();
});
