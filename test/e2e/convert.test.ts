// A converted model (`gemma3n-webgpu convert`, here convertModel in Node on Dawn) loaded by URL in Chromium from a
// local static server (127.0.0.1, another port: CORS): gemma3n-tiny-a in q4 and q8, 96 KiB shards.
// - on the page thread (the worker's own factory): logits bit-identical to converting the original checkpoint in
//   the browser, and no 'quantize' phase;
// - through loadGemma() and the shipped worker: clean device / download / compile progress only, the same greedy
//   tokens, stored in the offline cache as-is, then a hit with no request;
// - a corrupt shard and a missing shard: GemmaError('bad-file') through the worker, nothing cached.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { cp, mkdtemp, readFile, rm, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { startTestBrowser, type TestBrowser } from '../helpers/browser.ts';
import { CORS_HEADERS, startFixtureServer, type FixtureServer } from '../helpers/fixture-server.ts';
import { fixtureDir } from '../helpers/fixtures.ts';
import { testGpu } from '../helpers/gpu.ts';
import { convertModel } from '../../src/node/convert.ts';
import { directoryFiles } from '../../src/node/checkpoint-files.ts';
import type { TestApi } from '../pages/main.ts';

declare const window: { T: TestApi };

const TINY = fixtureDir('gemma3n-tiny-a', ['model.safetensors', 'config.json']);
const PROMPT = [2, 105, 100, 107, 22, 7];
const N = 5;

let dir: string;
let browser: TestBrowser;
let page: Page;
let server: FixtureServer;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'gemma-convert-e2e-'));
  const gpu = await testGpu();
  for (const weights of ['q4', 'q8'] as const) {
    await convertModel(gpu, { kind: 'folder', files: directoryFiles(TINY) }, join(dir, weights), { weights, shardBytes: 96 * 1024 });
  }
  await cp(join(dir, 'q4'), join(dir, 'corrupt'), { recursive: true });
  const shard = await readFile(join(dir, 'corrupt', 'weights-00003.bin'));
  shard[100] ^= 1;
  await writeFile(join(dir, 'corrupt', 'weights-00003.bin'), shard);
  await cp(join(dir, 'q4'), join(dir, 'missing'), { recursive: true });
  await unlink(join(dir, 'missing', 'weights-00002.bin'));

  browser = await startTestBrowser();
  page = await browser.open();
  server = await startFixtureServer();
  server.extraHeaders = { ...CORS_HEADERS };
  server.resolve = (path) => (path.startsWith('/original/') ? join(TINY, path.slice('/original/'.length)) : join(dir, path));
  await page.evaluate(() => window.T.clearCache());
});
after(async () => {
  await server?.close().catch(() => {});
  await browser?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

const tokens: Record<string, number[]> = {};

for (const weights of ['q4', 'q8'] as const) {
  test(`${weights}: a converted folder by URL gives bit-identical logits to converting in the browser, with no quantize phase`, async () => {
    const run = (model: string) =>
      page.evaluate(({ model, weights, prompt, n }) => window.T.pageModel({ model, tokenizer: false, weights, contextLength: 64, cache: false }, prompt, n), {
        model,
        weights,
        prompt: PROMPT,
        n: N,
      });
    const original = await run(`${server.url}/original/`);
    const converted = await run(`${server.url}/${weights}/`);
    assert.ok(original.events.some((e) => e.phase === 'quantize'));
    assert.deepEqual([...new Set(converted.events.map((e) => e.phase))], ['download', 'compile']);
    assert.deepEqual(converted.logits, original.logits, 'bit-identical logits');
    assert.deepEqual(converted.tokens, original.tokens);
    tokens[weights] = original.tokens;
  });
}

test('loadGemma() + the shipped worker: download and compile only, same tokens, cached as-is, then a hit with no request', async () => {
  assert.ok(tokens.q4, 'needs the q4 page load');
  const workerLoad = (url: string) =>
    page.evaluate(
      async ({ url, prompt, n }) => {
        const { T } = window;
        const events: { phase: string; loaded: number; total: number }[] = [];
        const client = await T.loadGemma({ model: url, tokenizer: false, contextLength: 64, onProgress: (p) => events.push(p) });
        const out = await T.collect(client.generate(prompt, { temperature: 0, maxNewTokens: n }));
        const info = client.info;
        await client.dispose();
        return { events, info, out: out.deltas.flatMap((d) => d.tokenIds), error: out.error, cached: await T.listCachedModels() };
      },
      { url, prompt: PROMPT, n: N },
    );
  const manifest = JSON.parse(await readFile(join(dir, 'q4', 'manifest.json'), 'utf8')) as { totalBytes: number };
  server.reset();
  const first = await workerLoad(`${server.url}/q4/`);
  assert.equal(first.error, null);
  assert.deepEqual([...new Set(first.events.map((e) => e.phase))], ['device', 'download', 'compile']);
  const download = first.events.filter((e) => e.phase === 'download');
  assert.ok(download.every((e, i) => e.total === manifest.totalBytes && (i === 0 || e.loaded >= download[i - 1].loaded)));
  assert.equal(download.at(-1)!.loaded, manifest.totalBytes);
  assert.deepEqual(first.out, tokens.q4);
  assert.equal(first.info.cache, 'stored', JSON.stringify(first.info.warnings));
  const entry = first.cached.find((e) => e.modelId === `${server.url}/q4/`);
  assert.ok(entry && entry.weightMode === 'q4' && entry.bytes === manifest.totalBytes, JSON.stringify(first.cached));

  server.reset();
  const second = await workerLoad(`${server.url}/q4/`);
  assert.equal(second.info.cache, 'hit');
  assert.equal(server.log.length, 0, 'a hit sends no request');
  assert.deepEqual([...new Set(second.events.map((e) => e.phase))], ['device', 'cache-read', 'compile']);
  assert.deepEqual(second.out, tokens.q4);
});

test('a corrupt shard and a missing shard: GemmaError bad-file through the worker, nothing cached', async () => {
  const r = await page.evaluate(async (base) => {
    const { T } = window;
    const load = (name: string) => T.outcome(T.loadGemma({ model: `${base}/${name}/`, tokenizer: false, contextLength: 64 }), 60_000);
    return { corrupt: await load('corrupt'), missing: await load('missing'), cached: (await T.listCachedModels()).map((e) => e.modelId) };
  }, server.url);
  assert.ok(typeof r.corrupt === 'object' && r.corrupt.code === 'bad-file', JSON.stringify(r.corrupt));
  assert.match(r.corrupt.message, /weights-00003\.bin is corrupt: bytes 0-\d+ do not match their checksum/);
  assert.ok(typeof r.missing === 'object' && r.missing.code === 'bad-file', JSON.stringify(r.missing));
  assert.match(r.missing.message, /manifest lists weights-00002\.bin, but the file is not there/);
  assert.ok(!r.cached.some((id) => /corrupt|missing/.test(id)), JSON.stringify(r.cached));
});
