// Gemma 4 in Chromium: loadGemma() + the shipped worker (src/runtime/worker.ts) load the gemma4-tiny-a fixture
// folder (served at /fixtures/gemma4-tiny-a/) through the registry and stream the golden 12-token greedy
// continuation, as the Gemma 3n fixtures do in gemma3n.test.ts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { useTestPage } from '../helpers/browser.ts';
import { gemma4Fixture } from '../helpers/gemma4-fixture.ts';
import type { TestApi } from '../pages/main.ts';

declare const window: { T: TestApi };

const shared = useTestPage();
const fx = gemma4Fixture();

test(`${fx.name}: loadGemma() + the shipped worker stream the golden greedy continuation`, async () => {
  const { prompt_ids, generated_ids } = fx.golden.greedy;
  const r = await shared.page.evaluate(
    async ({ name, prompt, n }) => {
      const { T } = window;
      const phases = new Set<string>();
      const client = await T.loadGemma({ model: `/fixtures/${name}/`, tokenizer: false, weights: 'float', contextLength: 128, cache: false, onProgress: (p) => phases.add(p.phase) });
      const out = await T.collect(client.generate(prompt, { temperature: 0, maxNewTokens: n }));
      const info = client.info;
      await client.dispose();
      return { out, info, phases: [...phases] };
    },
    { name: fx.name, prompt: prompt_ids, n: generated_ids.length },
  );
  assert.equal(r.out.error, null, JSON.stringify(r.out.error));
  assert.deepEqual(r.out.deltas.flatMap((d) => d.tokenIds), generated_ids);
  assert.equal(r.out.stats?.finishReason, 'length');
  assert.equal(r.info.vocabSize, 512);
  assert.equal(r.info.maxContext, 128);
  // Float mode keeps the host PLE table in f16 (512 tokens × 192 per-layer values × 2 bytes).
  assert.ok(r.info.memory && r.info.memory.gpuBytes > 0 && r.info.memory.hostBytes === 512 * 192 * 2, JSON.stringify(r.info.memory));
  assert.ok(r.phases.includes('download') && r.phases.includes('quantize') && r.phases.includes('compile'), JSON.stringify(r.phases));
});

test(`${fx.name}: q4 through the offline cache: stored on the first load, served on the second, same greedy tokens`, async () => {
  const { prompt_ids } = fx.golden.greedy;
  const r = await shared.page.evaluate(
    async ({ name, prompt }) => {
      const { T } = window;
      const run = async () => {
        const phases = new Set<string>();
        const client = await T.loadGemma({ model: `/fixtures/${name}/`, tokenizer: false, weights: 'q4', contextLength: 128, onProgress: (p) => phases.add(p.phase) });
        const out = await T.collect(client.generate(prompt, { temperature: 0, maxNewTokens: 6 }));
        const info = client.info;
        await client.dispose();
        return { tokens: out.deltas.flatMap((d) => d.tokenIds), error: out.error, cache: info.cache, phases: [...phases] };
      };
      return [await run(), await run()];
    },
    { name: fx.name, prompt: prompt_ids },
  );
  const [first, second] = r;
  assert.equal(first.error, null, JSON.stringify(first.error));
  assert.equal(first.cache, 'stored');
  assert.equal(second.cache, 'hit');
  assert.ok(second.phases.includes('cache-read') && !second.phases.includes('quantize'), JSON.stringify(second.phases));
  assert.equal(first.tokens.length, 6);
  assert.deepEqual(second.tokens, first.tokens);
});
