// Clear, typed errors instead of hangs: no WebGPU on the page or in the worker, no adapter, a too-small limit,
// a checkpoint that is not there, a worker script that does not load, bad calls.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { startTestBrowser, type TestBrowser } from '../helpers/browser.ts';
import type { TestApi } from '../pages/main.ts';
import { tinyFixtures } from '../helpers/fixtures.ts';

declare const window: { T: TestApi };

let browser: TestBrowser;

before(async () => {
  browser = await startTestBrowser();
});
after(async () => {
  await browser?.close();
});

/** Every load must settle (error or success) well within this. */
const TIMEOUT_MS = 20_000;

test('a page without WebGPU gets GemmaError(no-webgpu) from loadGemma, at once', async () => {
  const page = await browser.open('/index.html', { initScript: 'delete Navigator.prototype.gpu;' });
  const r = await page.evaluate(async (timeout) => {
    const { T } = window;
    const t0 = performance.now();
    const result = await T.outcome(T.loadGemma({ model: '/fixtures/gemma3n-tiny-a/' }), timeout);
    return { result, hasGpu: 'gpu' in navigator, ms: performance.now() - t0 };
  }, TIMEOUT_MS);
  assert.equal(r.hasGpu, false);
  assert.ok(typeof r.result === 'object', String(r.result));
  assert.deepEqual({ name: r.result.name, code: r.result.code }, { name: 'GemmaError', code: 'no-webgpu' });
  assert.match(r.result.message, /WebGPU is not available/);
  assert.ok(r.ms < 1000, `${r.ms} ms`);
  await page.close();
});

test('GPU failures inside the worker cross the boundary as typed errors: no WebGPU, no adapter, too-small limit', async () => {
  const page = await browser.open();
  const r = await page.evaluate(async (timeout) => {
    const { T } = window;
    const out: Record<string, unknown> = {};
    for (const how of ['none', 'no-adapter', 'small-limits'] as const) {
      out[how] = await T.outcome(T.connectGemmaWorker(T.testWorker(), { model: { breakGpu: how }, tokenizer: false }, true), timeout);
    }
    return out;
  }, TIMEOUT_MS);
  const expect = { none: ['no-webgpu', /WebGPU is not available/], 'no-adapter': ['no-adapter', /no GPU adapter/], 'small-limits': ['limit-too-small', /maxStorageBufferBindingSize is 67108864/] } as const;
  for (const [how, [code, pattern]] of Object.entries(expect)) {
    const e = r[how] as { name: string; code: string; message: string };
    assert.equal(e.name, 'GemmaError', `${how}: ${JSON.stringify(e)}`);
    assert.equal(e.code, code, `${how}: ${e.message}`);
    assert.match(e.message, pattern);
  }
  await page.close();
});

test('a checkpoint that is not there, a worker that does not start, bad calls: typed errors', async () => {
  const page = await browser.open();
  const r = await page.evaluate(async (timeout) => {
    const { T } = window;
    const missing = await T.outcome(T.connectGemmaWorker(T.testWorker(), { model: { reference: '/fixtures/no-such-model/' }, tokenizer: false }, true), timeout);
    const badWorker = await T.outcome(T.connectGemmaWorker(new Worker('/no-such-worker.js', { type: 'module' }), { model: 'x' }, true), timeout);
    const missingTokenizer = await T.outcome(T.connectGemmaWorker(T.testWorker(), { model: { fake: {} }, tokenizer: '/fixtures/no-such-tokenizer/' }, true), timeout);
    const client = await T.connectGemmaWorker(T.testWorker(), { model: { fake: { maxContext: 64 } }, tokenizer: false }, true);
    const overflow = await T.collect(client.generate(Array.from({ length: 100 }, (_, i) => i + 10)));
    const noTokenizer = await T.collect(client.chat([{ role: 'user', content: 'hi' }]));
    const badOption = await T.collect(client.generate([2], { temperature: -1 }));
    const length = await T.collect(client.generate(Array.from({ length: 60 }, (_, i) => i + 10), { maxNewTokens: 100 }));
    await client.dispose();
    const afterDispose = await T.collect(client.generate([2]));
    return { missing, badWorker, missingTokenizer, overflow: overflow.error, noTokenizer: noTokenizer.error, badOption: badOption.error, length: length.stats, afterDispose: afterDispose.error };
  }, TIMEOUT_MS);
  const is = (e: unknown, code: string, pattern: RegExp) => {
    const err = e as { name: string; code: string; message: string };
    assert.equal(err?.name, 'GemmaError', JSON.stringify(e));
    assert.equal(err.code, code, err.message);
    assert.match(err.message, pattern);
  };
  is(r.missing, 'bad-file', /config\.json/);
  is(r.badWorker, 'worker-load-failed', /could not load its script/);
  is(r.missingTokenizer, 'bad-file', /no-such-tokenizer has no tokenizer\.json/);
  is(r.overflow, 'context-overflow', /100 tokens.*context holds 64/s);
  is(r.noTokenizer, 'invalid-argument', /tokenizer/);
  is(r.badOption, 'invalid-argument', /temperature/);
  assert.equal(r.length?.finishReason, 'length');
  assert.equal(r.length?.newTokens, 64 - 60 + 1);
  is(r.afterDispose, 'disposed', /disposed/);
  await page.close();
});

test('the device is lost mid-generation: device-lost on the stream and in client.info, then reload() works without a page refresh; powerPreference reaches requestAdapter', async () => {
  const page = await browser.open();
  const { prompt_ids, generated_ids } = tinyFixtures()[0].golden.greedy;
  const r = await page.evaluate(
    async ({ prompt, n }) => {
      const { T } = window;
      const worker = T.testWorker();
      const control = T.testWorkerControl(worker);
      const client = await T.connectGemmaWorker(
        worker,
        { model: '/fixtures/gemma3n-tiny-a/', tokenizer: false, weights: 'float', contextLength: 200, cache: false, powerPreference: 'low-power' },
        true,
      );
      const adapterOptions = await control.adapterOptions();
      let lostAt = -1;
      const running = await T.collect(client.generate(prompt, { temperature: 0, maxNewTokens: 120, stopTokenIds: [] }), (_d, i) => {
        if (i === 1) {
          lostAt = i;
          void control.loseDevice();
        }
      });
      // The loss reaches client.info through the worker's event channel.
      for (let t = 0; t < 100 && !client.info.deviceLost; t++) await new Promise((res) => setTimeout(res, 20));
      const info = client.info;
      const next = await T.collect(client.generate([2, 3], { maxNewTokens: 1 }));
      await client.reload();
      const again = await T.collect(client.generate(prompt, { temperature: 0, maxNewTokens: n }));
      const infoAfter = client.info;
      await client.dispose();
      return { adapterOptions, lostAt, running: { error: running.error, tokens: running.deltas.length }, deviceLost: info.deviceLost, next: next.error, again: again.deltas.flatMap((d) => d.tokenIds), after: infoAfter.deviceLost ?? null };
    },
    { prompt: prompt_ids, n: generated_ids.length },
  );
  assert.equal(r.adapterOptions?.powerPreference, 'low-power');
  assert.equal(r.lostAt, 1);
  assert.equal(r.running.error?.code, 'device-lost', JSON.stringify(r.running));
  assert.match(r.running.error!.message, /GPU device was lost.*reload\(\)/s);
  assert.ok(r.running.tokens < 120, 'the stream ended at the loss, not after 120 tokens');
  assert.match(r.deviceLost?.message ?? '', /GPU device was lost/);
  assert.equal(r.next?.code, 'device-lost');
  assert.deepEqual(r.again, generated_ids, 'after reload() the model generates the golden tokens again');
  assert.equal(r.after, null);
  await page.close();
});
