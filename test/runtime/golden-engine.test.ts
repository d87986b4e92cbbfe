// The engine over the CPU reference model on every tiny fixture: greedy streamed tokens equal golden.json's
// continuation; a second, longer prompt reuses the cache and still matches a fresh run.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Engine } from '../../src/runtime/engine.ts';
import { openSafetensorsCheckpoint } from '../../src/io/safetensors.ts';
import { directoryFiles } from '../../src/node/checkpoint-files.ts';
import { parseGemma3nConfig } from '../../src/model/gemma3n/config.ts';
import { loadRefWeights } from '../helpers/reference-gemma3n.ts';
import { tinyFixtures } from '../helpers/fixtures.ts';
import { ReferenceLanguageModel } from './reference-model.ts';
import { collect } from '../helpers/stream.ts';

for (const fx of tinyFixtures()) {
  test(`${fx.name}: engine greedy stream equals the golden continuation`, async () => {
    const ckpt = await openSafetensorsCheckpoint(directoryFiles(fx.dir));
    const cfg = parseGemma3nConfig(ckpt.config);
    const model = new ReferenceLanguageModel(cfg, await loadRefWeights(ckpt));
    const engine = new Engine({ model, stopTokenIds: cfg.eosTokenIds });
    const { prompt_ids, generated_ids } = fx.golden.greedy;
    const { ids: got, stats } = await collect(engine.generate(prompt_ids, { temperature: 0, maxNewTokens: generated_ids.length }));
    assert.deepEqual(got, generated_ids);
    assert.equal(stats.finishReason, 'length');
    assert.equal(stats.newTokens, generated_ids.length);
    // Continue from a prefix of the golden: the prompt + 6 generated tokens are cached, 6 more come out the same.
    const { ids: cont, stats: s2 } = await collect(engine.generate([...prompt_ids, ...generated_ids.slice(0, 6)], { temperature: 0, maxNewTokens: 6 }));
    assert.deepEqual(cont, generated_ids.slice(6, 12));
    assert.equal(s2.reusedTokens, prompt_ids.length + 5);
  });
}
