// Clear, typed errors instead of hangs: no WebGPU on the page or in the worker, no adapter, a too-small limit,
// a checkpoint that is not there, a worker script that does not load, bad calls.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { startTestBrowser, type TestBrowser } from '../helpers/browser.ts';
import type { TestApi } from '../pages/main.ts';

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
