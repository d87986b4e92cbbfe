// Loading a published-layout checkpoint in Chromium from a local HTTP server (127.0.0.1, Range requests, fault
// injection): progress phases, the offline cache (second load with the server stopped), a truncated shard, a
// download cut mid-way, aborting a load; plus load throughput (server vs cache) and the peak JS heap.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { REPO_ROOT, startTestBrowser, type TestBrowser } from '../helpers/browser.ts';
import { CORS_HEADERS, startFixtureServer, type FixtureServer } from '../helpers/fixture-server.ts';
import type { TestApi } from '../pages/main.ts';
import { plannedDownloadBytes } from '../helpers/planned-bytes.ts';

declare const window: { T: TestApi };

const FIXTURE = join(REPO_ROOT, 'test/fixtures/gemma3n-tiny-a');
const WEIGHTS_BYTES = 996728;

const golden = JSON.parse(readFileSync(join(FIXTURE, 'golden.json'), 'utf8')).greedy as { prompt_ids: number[]; generated_ids: number[] };
const PROMPT = golden.prompt_ids;
const N = 6;

let browser: TestBrowser;
let page: Page;
let server: FixtureServer;
/** Results of the online load, compared with the offline one. */
let online: { tokens: number[]; logits: number[]; loadMs: number; downloadMs: number } | undefined;

type Event = { phase: string; loaded: number; total: number; file: string; t?: number; retry?: unknown };

before(async () => {
  browser = await startTestBrowser();
  page = await browser.open();
  server = await startFixtureServer();
  // The pages come from another 127.0.0.1 port: the model server allows them (CORS, range headers readable).
  server.extraHeaders = { ...CORS_HEADERS };
  const truncated = readFileSync(join(FIXTURE, 'model.safetensors')).subarray(0, 600_000);
  server.files.set('/truncated/model.safetensors', new Uint8Array(truncated));
  // Every folder serves the same fixture (a different URL = a different cache key).
  server.resolve = (path) => {
    const m = /^\/(\w+)\/(config\.json|model\.safetensors)$/.exec(path);
    return m ? join(FIXTURE, m[2]) : undefined;
  };
  await page.evaluate(() => window.T.clearCache());
});
after(async () => {
  await server?.close().catch(() => {});
  await browser?.close();
});

/** Per phase: loaded never goes backwards, never passes total, and the last event is exactly total. */
function assertCleanPhases(events: Event[], phases: string[]): void {
  for (const phase of phases) {
    // (Retry notices report a pause, not progress: before the total is known they carry total 0.)
    const list = events.filter((e) => e.phase === phase && !e.retry);
    assert.ok(list.length > 0, `no ${phase} events in ${JSON.stringify([...new Set(events.map((e) => e.phase))])}`);
    const total = list[0].total;
    assert.ok(total > 0, `${phase}: total ${total}`);
    for (let i = 0; i < list.length; i++) {
      assert.equal(list[i].total, total, `${phase}: total changed`);
      assert.ok(list[i].loaded <= total, `${phase}: ${list[i].loaded} > ${total}`);
      if (i > 0) assert.ok(list[i].loaded >= list[i - 1].loaded, `${phase}: went back ${list[i - 1].loaded} -> ${list[i].loaded}`);
    }
    assert.equal(list.at(-1)!.loaded, total, `${phase} ends at ${list.at(-1)!.loaded}/${total}`);
    assert.equal(list.filter((e) => e.loaded === total).length, 1, `${phase}: one completion event`);
  }
}

function span(events: Event[], phase: string): number {
  const list = events.filter((e) => e.phase === phase);
  return list.at(-1)!.t! - list[0].t!;
}

/** Loads `url` through the worker (float weights, context 64, progress recorded), generates the N golden greedy tokens, disposes. */
function workerLoadAndGenerate(url: string) {
  return page.evaluate(
    async ({ url, prompt, n }) => {
      const { T } = window;
      const events: { phase: string; loaded: number; total: number; file: string }[] = [];
      const client = await T.loadGemma({ model: url, tokenizer: false, weights: 'float', contextLength: 64, onProgress: (p) => events.push(p) });
      const out = await T.collect(client.generate(prompt, { temperature: 0, maxNewTokens: n }));
      const info = client.info;
      await client.dispose();
      return { events, info, out };
    },
    { url, prompt: PROMPT, n: N },
  );
}

test('worker load from the server: clean download/quantize/compile progress, the golden tokens, cached, gpuBytes reported', async () => {
  const r = await workerLoadAndGenerate(`${server.url}/tiny/`);
  const cached = await page.evaluate(() => window.T.listCachedModels());
  assert.equal(r.out.error, null, JSON.stringify(r.out.error));
  assert.deepEqual(r.out.deltas.flatMap((d) => d.tokenIds), golden.generated_ids.slice(0, N));
  assertCleanPhases(r.events, ['device', 'download', 'quantize', 'compile']);
  assert.equal(r.events.find((e) => e.phase === 'download')!.total, await plannedDownloadBytes(FIXTURE));
  assert.ok(!r.events.some((e) => e.phase === 'cache-read'));
  assert.equal(r.info.cache, 'stored', JSON.stringify(r.info.warnings));
  assert.ok(r.info.gpuBytes! > 0 && r.info.gpuBytes === r.info.memory?.gpuBytes, JSON.stringify(r.info));
  const entry = cached.find((e) => e.modelId === `${server.url}/tiny/`);
  assert.ok(entry, JSON.stringify(cached));
  assert.equal(entry.revision, 'url');
  assert.match(entry.weightMode, /^float-f(16|32)$/);
  assert.ok(entry.bytes > 0);
});

test('a truncated shard: a clear error naming the file, no cache entry (not even a half-written folder)', async () => {
  const r = await page.evaluate(async (url) => {
    const { T } = window;
    const before = await T.cacheFolders();
    const result = await T.outcome(T.loadGemma({ model: url, tokenizer: false, weights: 'float', contextLength: 64 }), 60_000);
    return { result, before, after: await T.cacheFolders(), cached: await T.listCachedModels() };
  }, `${server.url}/truncated/`);
  assert.ok(typeof r.result === 'object', JSON.stringify(r.result));
  assert.equal(r.result.code, 'bad-file', r.result.message);
  assert.match(r.result.message, /model\.safetensors/);
  assert.match(r.result.message, /truncated|incomplete|shorter/i);
  assert.ok(!r.cached.some((e) => e.modelId.includes('/truncated/')));
  assert.deepEqual(r.after, r.before);
});

test('a download cut mid-way resumes from where it stopped and the load succeeds', async () => {
  let resumeAt: string | undefined;
  server.reset();
  // Cut the first large range response for the weights half-way through its body.
  server.fault = (req) => {
    const m = /^bytes=(\d+)-(\d+)$/.exec(req.range ?? '');
    if (resumeAt || req.method !== 'GET' || req.path !== '/resume/model.safetensors' || !m) return undefined;
    const length = Number(m[2]) - Number(m[1]) + 1;
    if (length < 20_000) return undefined;
    const cutAfter = Math.floor(length / 2);
    resumeAt = `bytes=${Number(m[1]) + cutAfter}-`;
    return { cutAfter };
  };
  const r = await page.evaluate(async (url) => {
    const { T } = window;
    const events: { phase: string; loaded: number; total: number; file: string }[] = [];
    const client = await T.loadGemma({ model: url, tokenizer: false, weights: 'float', contextLength: 64, onProgress: (p) => events.push(p) });
    const info = client.info;
    await client.dispose();
    return { info, events };
  }, `${server.url}/resume/`);
  server.fault = undefined;
  assert.ok(resumeAt, 'the fault was injected');
  const gets = server.log.filter((l) => l.path === '/resume/model.safetensors' && l.method === 'GET').map((l) => l.range);
  // After the cut, the next request for that range starts at the first byte not received, not at its start.
  assert.ok(gets.some((range) => range?.startsWith(resumeAt!)), `${resumeAt} not in ${JSON.stringify(gets)}`);
  assert.equal(r.info.cache, 'stored');
  assertCleanPhases(r.events, ['download', 'quantize']);
});

test('loadGemma({ signal }) aborts a load: GemmaError aborted, no cache entry, the next load works', async () => {
  const r = await page.evaluate(async (url) => {
    const { T } = window;
    const controller = new AbortController();
    const before = await T.cacheFolders();
    const result = await T.outcome(
      T.loadGemma({ model: url, tokenizer: false, weights: 'float', contextLength: 64, signal: controller.signal, onProgress: (p) => p.phase === 'quantize' && p.loaded >= 5 && controller.abort() }),
      60_000,
    );
    const after = await T.cacheFolders();
    const again = await T.outcome(T.loadGemma({ model: url, tokenizer: false, weights: 'float', contextLength: 64, cache: false }), 60_000);
    return { result, before, after, again };
  }, `${server.url}/abort/`);
  assert.ok(typeof r.result === 'object', JSON.stringify(r.result));
  assert.equal(r.result.code, 'aborted', r.result.message);
  assert.deepEqual(r.after, r.before);
  assert.equal(r.again, 'loaded');
});

test('page-thread load from the server (cache off): logits, throughput and peak JS heap', async () => {
  const r = await page.evaluate(
    ({ url, prompt, n }) => window.T.pageModel({ model: url, tokenizer: false, weights: 'float', contextLength: 64, cache: false }, prompt, n),
    { url: `${server.url}/tiny/`, prompt: PROMPT, n: N },
  );
  assert.equal(r.cache, 'off');
  assert.deepEqual(r.tokens, golden.generated_ids.slice(0, N));
  online = { tokens: r.tokens, logits: r.logits, loadMs: r.loadMs, downloadMs: span(r.events, 'download') };
  console.log(
    `# load from 127.0.0.1: ${(WEIGHTS_BYTES / 1e6).toFixed(2)} MB download+convert in ${span(r.events, 'download').toFixed(0)} ms ` +
      `(${(WEIGHTS_BYTES / 1e3 / Math.max(1, span(r.events, 'download'))).toFixed(1)} MB/s), whole load ${r.loadMs.toFixed(0)} ms; ` +
      `JS heap ${(r.heapBefore / 2 ** 20).toFixed(1)} -> peak ${(r.heapPeak / 2 ** 20).toFixed(1)} MiB`,
  );
});

test('server stopped: the second load comes from the cache (no network), same logits and greedy tokens', async () => {
  assert.ok(online, 'needs the online load');
  await server.close();
  const requestsBefore = server.log.length;
  const worker = await workerLoadAndGenerate(`${server.url}/tiny/`);
  assert.equal(worker.info.cache, 'hit');
  assert.deepEqual(worker.out.deltas.flatMap((d) => d.tokenIds), online!.tokens);
  assertCleanPhases(worker.events, ['device', 'cache-read', 'compile']);
  assert.ok(!worker.events.some((e) => e.phase === 'download' || e.phase === 'quantize'), JSON.stringify([...new Set(worker.events.map((e) => e.phase))]));

  const r = await page.evaluate(
    ({ url, prompt, n }) => window.T.pageModel({ model: url, tokenizer: false, weights: 'float', contextLength: 64 }, prompt, n),
    { url: `${server.url}/tiny/`, prompt: PROMPT, n: N },
  );
  assert.equal(r.cache, 'hit');
  assert.equal(server.log.length, requestsBefore, 'no request reached the (stopped) server');
  assert.deepEqual(r.tokens, online!.tokens);
  assert.deepEqual(r.logits, online!.logits, 'cached weights give bit-identical logits');
  const cacheBytes = r.events.find((e) => e.phase === 'cache-read')!.total;
  const readMs = span(r.events, 'cache-read');
  console.log(
    `# load from the OPFS cache: ${(cacheBytes / 1e6).toFixed(2)} MB cache-read+upload in ${readMs.toFixed(0)} ms ` +
      `(${(cacheBytes / 1e3 / Math.max(1, readMs)).toFixed(1)} MB/s), whole load ${r.loadMs.toFixed(0)} ms (online: ${online!.loadMs.toFixed(0)} ms); ` +
      `JS heap ${(r.heapBefore / 2 ** 20).toFixed(1)} -> peak ${(r.heapPeak / 2 ** 20).toFixed(1)} MiB`,
  );
});
