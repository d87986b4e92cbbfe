// The engine over the real GPU model (Dawn/SwiftShader in Node) through the shipped factory and adapter: golden
// greedy tokens on every tiny fixture, KV reuse across turns, an edit that rewinds past the sliding window, and the
// full-vocabulary random model with the real tokenizer and chat template.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Engine } from '../../src/runtime/engine.ts';
import { defaultModelFactory, loadModel } from '../../src/runtime/loading/model-factory.ts';
import { openSafetensorsCheckpoint } from '../../src/io/safetensors.ts';
import { directoryFiles } from '../../src/node/checkpoint-files.ts';
import type { LoadRequest } from '../../src/runtime/protocol.ts';
import { collect } from '../helpers/stream.ts';
import { testGpu } from '../helpers/gpu.ts';
import { tinyFixtures } from '../helpers/fixtures.ts';
import { gemmaTokenizer } from './gemma-tokenizer.ts';

async function load(request: LoadRequest) {
  const loaded = await defaultModelFactory({ request, gpu: testGpu, onProgress: () => {} });
  return new Engine({ model: loaded.model, tokenizer: loaded.tokenizer ?? (await gemmaTokenizer()), stopTokenIds: loaded.stopTokenIds });
}


for (const fx of tinyFixtures()) {
  test(`${fx.name}: engine + GPU model (float) stream the golden greedy continuation; turns reuse the cache`, async () => {
    const ckpt = await openSafetensorsCheckpoint(directoryFiles(fx.dir));
    const loaded = await loadModel(await testGpu(), ckpt, { weights: 'float', contextLength: 128 });
    const engine = new Engine({ model: loaded.model, stopTokenIds: loaded.stopTokenIds });
    const { prompt_ids, generated_ids } = fx.golden.greedy;
    const { ids: out, stats: s1 } = await collect(engine.generate(prompt_ids, { temperature: 0, maxNewTokens: generated_ids.length }));
    assert.deepEqual(out, generated_ids);
    assert.equal(s1.finishReason, 'length');
    // Continue: the prompt + 11 fed tokens are cached; only the new token is prefilled.
    const { ids: more, stats: s2 } = await collect(engine.generate([...prompt_ids, ...generated_ids.slice(0, 8)], { temperature: 0, maxNewTokens: 4 }));
    assert.deepEqual(more, generated_ids.slice(8, 12));
    assert.equal(s2.reusedTokens, prompt_ids.length + 7);
    // An edit far back (past the sliding window's ring): the model cannot rewind, so it is a full prefill, same tokens.
    const edited = [...prompt_ids.slice(0, 5), ...prompt_ids.slice(5)];
    const { ids: again, stats: s3 } = await collect(engine.generate(edited, { temperature: 0, maxNewTokens: 3 }));
    assert.deepEqual(again, generated_ids.slice(0, 3));
    assert.ok(s3.reusedTokens === 0 || s3.reusedTokens === prompt_ids.length - 1, `reused ${s3.reusedTokens}`);
    engine.dispose();
  });
}

test('random full-vocabulary Gemma 3n + real tokenizer: chat streams text, sampling is seeded, the second turn reuses the cache', async () => {
  const tok = await gemmaTokenizer();
  const engine = await load({ model: { randomCheckpoint: { preset: 'tiny', seed: 7 } }, tokenizer: false, contextLength: 256 });
  assert.equal(engine.model.vocabSize, 262400);
  const messages = [{ role: 'user' as const, content: 'Hello 😀 你好!' }];
  const { ids: a, text, stats: s1 } = await collect(engine.chat(messages, { seed: 5, maxNewTokens: 4 }));
  assert.equal(text, tok.decode(a), 'streamed text equals the full decode');
  assert.equal(s1.promptTokens, tok.applyChatTemplate(messages).length);
  // Same seed, fresh cache: same tokens (sampling with temperature, top-k, top-p).
  await engine.resetCache();
  const { ids: b } = await collect(engine.chat(messages, { seed: 5, maxNewTokens: 4 }));
  assert.deepEqual(b, a);
  const turn2 = [...messages, { role: 'assistant' as const, content: text }, { role: 'user' as const, content: 'More?' }];
  const s2 = await engine.chat(turn2, { temperature: 0, maxNewTokens: 1 }).stats;
  assert.ok(s2.reusedTokens >= s1.promptTokens, `reused ${s2.reusedTokens} of ${s2.promptTokens}`);
  console.log(`# random tiny model: ${s1.newTokens} tokens at ${s1.decodeTokensPerSecond.toFixed(1)} tok/s decode; turn 2 reused ${s2.reusedTokens}/${s2.promptTokens}`);
  engine.dispose();
});

for (const fx of tinyFixtures()) {
  test(`${fx.name}: rewinding into a sliding-window ring that has wrapped recomputes, with the same tokens as a fresh cache`, async () => {
    const ckpt = await openSafetensorsCheckpoint(directoryFiles(fx.dir));
    const { model } = await loadModel(await testGpu(), ckpt, { weights: 'float', contextLength: 160 });
    const engine = new Engine({ model }); // no stop ids: generate exactly what is asked
    const { prompt_ids } = fx.golden.greedy;
    // Run well past the ring's capacity (window + chunk − 1), so its slots have been reused.
    const first = await collect(engine.generate(prompt_ids, { temperature: 0, maxNewTokens: 48 }));
    const written = prompt_ids.length + first.ids.length - 1;
    assert.ok(written > model.maxChunk + 16, `wrote ${written} positions`);
    // Near the end the rings still hold the window: reuse.
    const near = [...prompt_ids, ...first.ids.slice(0, 40), 7];
    const rNear = await collect(engine.generate(near, { temperature: 0, maxNewTokens: 4 }));
    assert.equal(rNear.stats.reusedTokens, near.length - 1);
    // Far back (the slots the window needs were overwritten): recomputed from position 0.
    const far = [...prompt_ids.slice(0, 20), 9, 8, 7];
    const rFar = await collect(engine.generate(far, { temperature: 0, maxNewTokens: 6 }));
    assert.equal(rFar.stats.reusedTokens, 0);
    await engine.resetCache();
    const fresh = await collect(engine.generate(far, { temperature: 0, maxNewTokens: 6 }));
    assert.deepEqual(rFar.ids, fresh.ids);
    const freshNear = await collect(engine.generate(near, { temperature: 0, maxNewTokens: 4 }));
    assert.deepEqual(rNear.ids, freshNear.ids);
    engine.dispose();
  });
}
