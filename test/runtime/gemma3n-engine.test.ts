// The engine over the real GPU model (Dawn/SwiftShader in Node) through the shipped factory and adapter: golden
// greedy tokens on every tiny fixture, KV reuse across turns, an edit that rewinds past the sliding window, and the
// full-vocabulary random model with the real tokenizer and chat template.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Engine } from '../../src/runtime/engine.ts';
import { gemma3nFactory, loadGemma3n } from '../../src/runtime/gemma3n-factory.ts';
import { openSafetensorsCheckpoint } from '../../src/io/safetensors.ts';
import { directoryFiles } from '../../src/node/checkpoint-files.ts';
import type { LoadRequest, Delta } from '../../src/runtime/protocol.ts';
import { testGpu } from '../helpers/gpu.ts';
import { tinyFixtures } from '../helpers/fixtures.ts';
import { gemmaTokenizer } from './gemma-tokenizer.ts';

async function load(request: LoadRequest) {
  const loaded = await gemma3nFactory({ request, gpu: testGpu, onProgress: () => {} });
  return new Engine({ model: loaded.model, tokenizer: loaded.tokenizer ?? (await gemmaTokenizer()), stopTokenIds: loaded.stopTokenIds });
}

const ids = (deltas: Delta[]) => deltas.flatMap((d) => d.tokenIds);

for (const fx of tinyFixtures()) {
  test(`${fx.name}: engine + GPU model (float) stream the golden greedy continuation; turns reuse the cache`, async () => {
    const ckpt = await openSafetensorsCheckpoint(directoryFiles(fx.dir));
    const loaded = await loadGemma3n(await testGpu(), ckpt, { weights: 'float', contextLength: 128 });
    const engine = new Engine({ model: loaded.model, stopTokenIds: loaded.stopTokenIds });
    const { prompt_ids, generated_ids } = fx.golden.greedy;
    const out: Delta[] = [];
    const s1 = await engine.generate(prompt_ids, { temperature: 0, maxNewTokens: generated_ids.length }, { onDelta: (d) => out.push(d) });
    assert.deepEqual(ids(out), generated_ids);
    assert.equal(s1.finishReason, 'length');
    // Continue: the prompt + 11 fed tokens are cached; only the new token is prefilled.
    const more: Delta[] = [];
    const s2 = await engine.generate([...prompt_ids, ...generated_ids.slice(0, 8)], { temperature: 0, maxNewTokens: 4 }, { onDelta: (d) => more.push(d) });
    assert.deepEqual(ids(more), generated_ids.slice(8, 12));
    assert.equal(s2.reusedTokens, prompt_ids.length + 7);
    // An edit far back (past the sliding window's ring): the model cannot rewind, so it is a full prefill, same tokens.
    const edited = [...prompt_ids.slice(0, 5), ...prompt_ids.slice(5)];
    const again: Delta[] = [];
    const s3 = await engine.generate(edited, { temperature: 0, maxNewTokens: 3 }, { onDelta: (d) => again.push(d) });
    assert.deepEqual(ids(again), generated_ids.slice(0, 3));
    assert.ok(s3.reusedTokens === 0 || s3.reusedTokens === prompt_ids.length - 1, `reused ${s3.reusedTokens}`);
    engine.dispose();
  });
}

test('random full-vocabulary Gemma 3n + real tokenizer: chat streams text, sampling is seeded, the second turn reuses the cache', async () => {
  const tok = await gemmaTokenizer();
  const engine = await load({ model: { randomCheckpoint: { preset: 'tiny', seed: 7 } }, tokenizer: false, contextLength: 256 });
  assert.equal(engine.model.vocabSize, 262400);
  const messages = [{ role: 'user' as const, content: 'Hello 😀 你好!' }];
  const a: Delta[] = [];
  const s1 = await engine.chat(messages, { seed: 5, maxNewTokens: 4 }, { onDelta: (d) => a.push(d) });
  const text = a.map((d) => d.text).join('');
  assert.equal(text, tok.decode(ids(a)), 'streamed text equals the full decode');
  assert.equal(s1.promptTokens, tok.applyChatTemplate(messages).length);
  // Same seed, fresh cache: same tokens (sampling with temperature, top-k, top-p).
  await engine.resetCache();
  const b: Delta[] = [];
  await engine.chat(messages, { seed: 5, maxNewTokens: 4 }, { onDelta: (d) => b.push(d) });
  assert.deepEqual(ids(b), ids(a));
  const turn2 = [...messages, { role: 'assistant' as const, content: text }, { role: 'user' as const, content: 'More?' }];
  const s2 = await engine.chat(turn2, { temperature: 0, maxNewTokens: 1 });
  assert.ok(s2.reusedTokens >= s1.promptTokens, `reused ${s2.reusedTokens} of ${s2.promptTokens}`);
  console.log(`# random tiny model: ${s1.newTokens} tokens at ${s1.decodeTokensPerSecond.toFixed(1)} tok/s decode; turn 2 reused ${s2.reusedTokens}/${s2.promptTokens}`);
  engine.dispose();
});
