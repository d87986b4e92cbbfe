// Chromium against the hub emulator (test/helpers/hub-emulator.ts: huggingface.co-style resolve URLs, 307 to a
// second "CDN" origin with per-request signed URLs and changing ETags, the hub's CORS headers, gated repos): the
// tiny safetensors checkpoint and a tiny GGUF, each pinned to its commit, with their requests counted; a single .gguf
// chatting with no `tokenizer:` option; a gated repo with a token (never sent to the CDN); the chat template from
// chat_template.jinja on the first and on the cached load; a 429 burst reported in progress.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Page } from 'playwright-core';
import { startTestBrowser, type TestBrowser } from '../helpers/browser.ts';
import { startHubEmulator, type HubEmulator } from '../helpers/hub-emulator.ts';
import { buildTokenizer } from '../../src/runtime/loading/open-source.ts';
import { addTinyRepos, tinyTokenizerTexts, TINY_COMMIT, TINY_GGUF_COMMIT, TINY_GGUF_REPO, TINY_REPO } from '../helpers/tiny-hub-repo.ts';
import type { TestApi } from '../pages/main.ts';

declare const window: { T: TestApi };

let browser: TestBrowser;
let page: Page;
let hub: HubEmulator;

before(async () => {
  hub = await startHubEmulator();
  await addTinyRepos(hub);
  browser = await startTestBrowser();
  page = await browser.open();
  await page.evaluate(() => window.T.clearCache());
});
after(async () => {
  await browser?.close();
  await hub?.close();
});

/**
 * The text prompt for the GGUFs: every id of its encoding is below the tiny model's vocab_size_per_layer_input (448);
 * the 512-piece vocabulary's last pieces share ids with the tiny model's multimodal tokens, which a text GGUF refuses.
 */
const TEXT = 'and then';

const gets = () => hub.log.filter((r) => r.method !== 'OPTIONS');

/**
 * Loads `model` in the worker, chats one turn (or, for a file without a chat template, continues a text prompt), and
 * returns what came back plus the progress phases seen.
 */
function chat(model: string, extra: Record<string, unknown> = {}, mode: 'chat' | 'text' = 'chat') {
  return page.evaluate(
    async ({ model, extra, mode, TEXT }) => {
      const { T } = window;
      const phases: Record<string, { total: number; last: number; retries: number }> = {};
      const client = await T.loadGemma({
        model,
        weights: 'float',
        contextLength: 64,
        ...extra,
        onProgress: (p) => {
          const s = (phases[p.phase] ??= { total: p.total, last: 0, retries: 0 });
          s.total = p.total;
          s.last = p.loaded;
          if (p.retry) s.retries++;
        },
      });
      const options = { temperature: 0, maxNewTokens: 4 };
      const out = await T.collect(mode === 'chat' ? client.chat([{ role: 'user', content: 'the night' }], options) : client.generate(TEXT, options));
      const info = client.info;
      await client.dispose();
      return { out, info, phases };
    },
    { model, extra, mode, TEXT },
  );
}

test('tiny safetensors from the hub: pinned to the commit, tokenizer first, 7 requests, chats, cached with its template', async () => {
  hub.reset();
  const r = await chat(`${hub.hubUrl}/${TINY_REPO}/resolve/main/`);
  assert.equal(r.out.error, null, JSON.stringify(r.out.error));
  assert.ok(r.out.stats!.promptTokens > 3 && r.out.stats!.newTokens > 0);
  assert.equal(r.info.cache, 'stored');
  const requests = gets();
  const hubGets = requests.filter((q) => q.origin === 'hub');
  // config.json (pins), the tree listing, 3 tokenizer files, the weights file's header and its one read-ahead window.
  assert.equal(hubGets.length, 7, JSON.stringify(hubGets.map((q) => q.path)));
  assert.ok(hubGets.slice(2).every((q) => q.path.includes(`/resolve/${TINY_COMMIT}/`) || q.path.includes(TINY_COMMIT)), 'every file at the commit');
  assert.equal(requests.filter((q) => q.origin === 'cdn').length, 2);
  assert.ok(requests.every((q) => q.status !== undefined && q.status < 400), JSON.stringify(requests.filter((q) => (q.status ?? 0) >= 400)));
  const firstWeight = requests.findIndex((q) => q.path.endsWith('model.safetensors'));
  assert.ok(requests.slice(firstWeight).every((q) => !/tokenizer|chat_template/.test(q.path)), 'the tokenizer came before any weight');
  console.log(`# tiny safetensors via the hub emulator: ${hubGets.length} hub requests + ${requests.length - hubGets.length} CDN, ${hub.log.length - requests.length} CORS preflights`);

  // The cached load (no request at all) renders the same chat from the same template (chat_template.jinja).
  hub.reset();
  const cached = await chat(`${hub.hubUrl}/${TINY_REPO}/resolve/main/`);
  assert.equal(cached.info.cache, 'hit');
  assert.equal(hub.log.length, 0);
  assert.equal(cached.out.stats!.promptTokens, r.out.stats!.promptTokens);
  assert.deepEqual(cached.out.deltas.flatMap((d) => d.tokenIds), r.out.deltas.flatMap((d) => d.tokenIds));
});

test('a single .gguf link with no tokenizer option: pinned, its own vocabulary, 6 requests, generates from text', async () => {
  hub.reset();
  // (The tiny GGUFs carry a vocabulary but no chat template: a text prompt, which the tokenizer encodes with <bos>.)
  const r = await chat(`${hub.hubUrl}/${TINY_GGUF_REPO}/resolve/main/gemma3n-tiny-a-Q8_0.gguf`, { cache: false }, 'text');
  assert.equal(r.out.error, null, JSON.stringify(r.out.error));
  assert.equal(r.info.hasTokenizer, true);
  // The 512-piece vocabulary's own encoding of the prompt, as Node builds it from the same file.
  const expected = (await buildTokenizer(await tinyTokenizerTexts(), 'tiny')).encode(TEXT);
  assert.equal(r.out.stats!.promptTokens, expected.length);
  assert.ok(r.out.stats!.newTokens > 0);
  const hubGets = gets().filter((q) => q.origin === 'hub');
  // The revision API (pins), the tree listing, the header, two reads of the PLE table's zero padding, one window.
  assert.equal(hubGets.length, 6, JSON.stringify(hubGets.map((q) => q.path)));
  assert.ok(hubGets.filter((q) => q.path.endsWith('.gguf')).every((q) => q.path.includes(`/resolve/${TINY_GGUF_COMMIT}/`)));
  assert.equal(r.phases.download.last, r.phases.download.total);
});

test('a gated repo: the token reaches the hub, never the CDN; without it a clear error before any download', async () => {
  hub.repos.clear();
  await addTinyRepos(hub, { gatedToken: 'hf_secret' });
  try {
    await gated();
  } finally {
    hub.repos.clear();
    await addTinyRepos(hub);
  }
});

async function gated(): Promise<void> {
  hub.reset();
  const refused = await page.evaluate((model) => window.T.outcome(window.T.loadGemma({ model, cache: false })), `${hub.hubUrl}/${TINY_GGUF_REPO}/resolve/main/gemma3n-tiny-a-Q4_0.gguf`);
  assert.ok(typeof refused === 'object' && /HTTP 401/.test(refused.message) && /token/.test(refused.message), JSON.stringify(refused));
  assert.equal(gets().filter((q) => q.origin === 'cdn').length, 0);
  hub.reset();
  const r = await chat(`${hub.hubUrl}/${TINY_GGUF_REPO}/resolve/main/gemma3n-tiny-a-Q4_0.gguf`, { token: 'hf_secret', cache: false }, 'text');
  assert.equal(r.out.error, null, JSON.stringify(r.out.error));
  assert.ok(gets().filter((q) => q.origin === 'hub').every((q) => q.authorization === 'Bearer hf_secret'));
  const cdn = gets().filter((q) => q.origin === 'cdn');
  assert.ok(cdn.length > 0 && cdn.every((q) => q.authorization === undefined), 'the browser must not forward the token to the CDN');
}

test('a 429: progress says the load is rate-limited and waits at least a minute (aborted here rather than waited for)', async () => {
  hub.reset();
  hub.rateLimit = (_n, req) => req.path.endsWith('.gguf');
  const r = await page.evaluate(async (model) => {
    const { T } = window;
    const controller = new AbortController();
    const retries: { reason: string; delayMs: number; message: string }[] = [];
    const result = await T.outcome(
      T.loadGemma({ model, cache: false, signal: controller.signal, onProgress: (p) => p.retry && (retries.push(p.retry), controller.abort()) }),
      30_000,
    );
    return { result, retries };
  }, `${hub.hubUrl}/${TINY_GGUF_REPO}/resolve/main/gemma3n-tiny-a-BF16.gguf`);
  assert.equal(r.retries.length, 1, JSON.stringify(r));
  assert.equal(r.retries[0].reason, 'rate-limited');
  assert.ok(r.retries[0].delayMs >= 60_000, String(r.retries[0].delayMs));
  assert.match(r.retries[0].message, /rate-limiting/);
  assert.ok(typeof r.result === 'object' && r.result.code === 'aborted', JSON.stringify(r.result));
});
