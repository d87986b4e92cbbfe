// Hub pinning against the hub emulator (test/helpers/hub-emulator.ts): the commit is resolved once from a small
// file's X-Repo-Commit, every file is fetched at /resolve/{commit}/, sizes come from the tree API (no probes), large
// files go through a 307 to a CDN whose ETag changes per response (validated by size, not ETag), the token is sent
// to the hub and never to the CDN; gated repos, unknown revisions, 429 bursts and stalled headers.
import { test, before, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { openHubRepo, hubFiles, parseHubUrl } from '../../src/io/hub.ts';
import { httpSource, type RetryNotice } from '../../src/io/http-source.ts';
import { GemmaError } from '../../src/errors.ts';
import { startHubEmulator, type HubEmulator } from '../helpers/hub-emulator.ts';
import { startFixtureServer } from '../helpers/fixture-server.ts';

const fixtureDir = fileURLToPath(new URL('../fixtures/gemma3n-tiny-a/', import.meta.url));
const COMMIT = 'c0ffee0123456789abcdef0123456789abcdef01';
const OLD = '0123456789abcdef0123456789abcdef01234567';
const text = (s: string) => new TextEncoder().encode(s);
const quick = { retryDelayMs: 1, maxRetryDelayMs: 5, rateLimitDelayMs: 20, headerTimeoutMs: 300 };

let hub: HubEmulator;
before(async () => {
  hub = await startHubEmulator();
});
after(() => hub.close());
beforeEach(() => {
  hub.reset();
  hub.repos.clear();
  hub.repos.set('test-org/tiny', {
    refs: { main: COMMIT, v1: OLD },
    files: new Map<string, Uint8Array | string>([
      ['config.json', fixtureDir + 'config.json'],
      ['model.safetensors', fixtureDir + 'model.safetensors'],
      ['tokenizer_config.json', text('{"bos_token":"<bos>"}')],
    ]),
  });
  hub.repos.set('google/gated', { refs: { main: COMMIT }, files: new Map([['config.json', text('{}')]]), gatedToken: 'hf_good' });
});

test('a repo is pinned to the commit of its config.json response; files at /resolve/{commit}/; sizes from the tree API', async () => {
  const files = await openHubRepo('test-org/tiny', { hubUrl: hub.hubUrl, http: quick });
  assert.equal(files.commit(), COMMIT);
  assert.equal(files.listed, true);
  assert.deepEqual(hub.log.map((r) => r.path), ['/test-org/tiny/resolve/main/config.json', `/api/models/test-org/tiny/tree/${COMMIT}`]);
  // Existence and sizes come from the listing: no request.
  assert.equal(await files.exists('model.safetensors'), true);
  assert.equal(await files.exists('tokenizer.json'), false);
  assert.equal(await files.open('model.safetensors').size(), 996728);
  assert.equal(hub.log.length, 2);
  // config.json was kept from the pinning request.
  assert.match(await files.readText('config.json'), /gemma3n/);
  assert.equal(hub.log.length, 2);
  const bytes = await files.open('model.safetensors').read(1000, 5000);
  assert.equal(bytes.length, 5000);
  const weightRequests = hub.log.slice(2);
  assert.deepEqual(weightRequests.map((r) => `${r.origin} ${r.status}`), ['hub 307', 'cdn 206']);
  assert.equal(weightRequests[0].path, `/test-org/tiny/resolve/${COMMIT}/model.safetensors`);
});

test('the CDN changes its ETag on every response: pinned reads succeed (validated by commit and size), unpinned ones fail', async () => {
  const pinned = (await openHubRepo('test-org/tiny', { hubUrl: hub.hubUrl, http: quick })).open('model.safetensors');
  for (const offset of [0, 100_000, 500_000]) assert.equal((await pinned.read(offset, 10_000)).length, 10_000);
  const unpinned = hubFiles('test-org/tiny', { hubUrl: hub.hubUrl, http: quick }).open('model.safetensors');
  await assert.rejects(unpinned.read(0, 10_000), (e: unknown) => e instanceof GemmaError && /changed on the server/.test(e.message));
});

test('a file that does not have the listed size fails clearly', async () => {
  const files = await openHubRepo('test-org/tiny', { hubUrl: hub.hubUrl, http: quick });
  const source = files.open('model.safetensors');
  hub.repos.get('test-org/tiny')!.files.set('model.safetensors', new Uint8Array(996_000)); // replaced behind the listing
  await assert.rejects(source.read(0, 100), (e: unknown) => e instanceof GemmaError && /996000 bytes on the server, but 996728 bytes were expected/.test(e.message));
});

test('a commit hash needs no pinning request; a tag resolves to its own commit; an unknown revision is a clear 404', async () => {
  const byHash = await openHubRepo('test-org/tiny', { hubUrl: hub.hubUrl, revision: COMMIT, http: quick });
  assert.equal(byHash.commit(), COMMIT);
  assert.deepEqual(hub.log.map((r) => r.path), [`/api/models/test-org/tiny/tree/${COMMIT}`]);
  assert.equal((await openHubRepo('test-org/tiny', { hubUrl: hub.hubUrl, revision: 'v1', http: quick })).commit(), OLD);
  await assert.rejects(openHubRepo('test-org/tiny', { hubUrl: hub.hubUrl, revision: 'nope', http: quick }), (e: unknown) => e instanceof GemmaError && /no revision "nope"/.test(e.message));
});

test('without a probe file (a GGUF repo) the revision API gives the commit', async () => {
  const files = await openHubRepo('test-org/tiny', { hubUrl: hub.hubUrl, probe: null, http: quick });
  assert.equal(files.commit(), COMMIT);
  assert.deepEqual(hub.log.map((r) => r.path), ['/api/models/test-org/tiny/revision/main', `/api/models/test-org/tiny/tree/${COMMIT}`]);
});

test('gated: 401 without the token names the fix; with it the hub gets the token and the CDN never does', async () => {
  await assert.rejects(openHubRepo('google/gated', { hubUrl: hub.hubUrl, http: quick }), (e: unknown) => e instanceof GemmaError && e.code === 'network' && /access denied \(HTTP 401\)/.test(e.message) && /token/.test(e.message));
  hub.reset();
  hub.repos.get('google/gated')!.files.set('model.safetensors', fixtureDir + 'model.safetensors');
  const files = await openHubRepo('google/gated', { hubUrl: hub.hubUrl, token: 'hf_good', http: quick });
  assert.equal((await files.open('model.safetensors').read(0, 100)).length, 100);
  assert.ok(hub.log.filter((r) => r.origin === 'hub').every((r) => r.authorization === 'Bearer hf_good'));
  const cdn = hub.log.filter((r) => r.origin === 'cdn');
  assert.ok(cdn.length > 0 && cdn.every((r) => r.authorization === undefined), 'the token must not follow the redirect to the CDN');
});

test('429 bursts: each waits at least rateLimitDelayMs (Retry-After when longer) and is reported; then the load goes on', async () => {
  hub.rateLimit = (n) => n < 2;
  const notices: RetryNotice[] = [];
  const files = await openHubRepo('test-org/tiny', { hubUrl: hub.hubUrl, http: { ...quick, rateLimitDelayMs: 30 }, onRetry: (r) => notices.push(r) });
  assert.equal(files.commit(), COMMIT);
  assert.equal(notices.length, 2);
  for (const n of notices) {
    assert.equal(n.reason, 'rate-limited');
    assert.ok(n.delayMs >= 1000, `Retry-After 1 s wins over 30 ms: ${n.delayMs}`);
  }
});

test('a 429 waits a minute by default (the hub counts requests per 5 minutes)', async () => {
  let calls = 0;
  const fetch429: typeof fetch = async () => {
    calls++;
    return new Response(null, { status: 429 });
  };
  const controller = new AbortController();
  const notices: RetryNotice[] = [];
  const source = httpSource('http://127.0.0.1:9/x.bin', { fetch: fetch429, signal: controller.signal, onRetry: (r) => (notices.push(r), controller.abort()) });
  await assert.rejects(source.size(), (e: unknown) => e instanceof GemmaError && e.code === 'aborted');
  assert.equal(calls, 1);
  assert.equal(notices[0].reason, 'rate-limited');
  assert.ok(notices[0].delayMs >= 60_000, String(notices[0].delayMs));
});

test('a response whose headers never come is cut after headerTimeoutMs and retried', async () => {
  let stalled = 0;
  hub.stallHeaders = (req) => req.origin === 'cdn' && stalled++ === 0;
  const notices: RetryNotice[] = [];
  const files = await openHubRepo('test-org/tiny', { hubUrl: hub.hubUrl, http: quick, onRetry: (r) => notices.push(r) });
  const t0 = performance.now();
  assert.equal((await files.open('model.safetensors').read(0, 1000)).length, 1000);
  assert.equal(stalled, 2);
  assert.equal(notices.length, 1);
  assert.match(notices[0].message, /no response headers within 300 ms/);
  assert.ok(performance.now() - t0 < 10_000);
});

test('416 with an unreadable Content-Range is an error naming the range, never a 0-byte file', async () => {
  const server = await startFixtureServer();
  try {
    server.fault = () => ({ status: 416 });
    server.files.set('/x.bin', new Uint8Array(10));
    await assert.rejects(httpSource(`${server.url}/x.bin`, quick).size(), (e: unknown) => e instanceof GemmaError && /HTTP 416/.test(e.message) && /bytes 0-0/.test(e.message));
    server.fault = undefined;
    server.files.set('/empty.bin', new Uint8Array(0));
    assert.equal(await httpSource(`${server.url}/empty.bin`, quick).size(), 0); // "bytes */0": really empty
  } finally {
    await server.close();
  }
});

test('hub links are recognised: resolve URLs on any host, repo pages and blob links on huggingface.co', () => {
  assert.deepEqual(parseHubUrl('https://huggingface.co/unsloth/gemma-3n-E2B-it-GGUF/resolve/main/gemma-3n-E2B-it-Q4_K_M.gguf'), {
    hubUrl: 'https://huggingface.co', repo: 'unsloth/gemma-3n-E2B-it-GGUF', revision: 'main', path: 'gemma-3n-E2B-it-Q4_K_M.gguf',
  });
  assert.deepEqual(parseHubUrl('https://huggingface.co/google/gemma-3n-E2B-it'), { hubUrl: 'https://huggingface.co', repo: 'google/gemma-3n-E2B-it', revision: 'main', path: '' });
  assert.deepEqual(parseHubUrl('https://hf.co/a/b/blob/refs%2Fpr%2F3/x.gguf'), { hubUrl: 'https://hf.co', repo: 'a/b', revision: 'refs/pr/3', path: 'x.gguf' });
  assert.deepEqual(parseHubUrl('http://127.0.0.1:8080/a/b/resolve/main/'), { hubUrl: 'http://127.0.0.1:8080', repo: 'a/b', revision: 'main', path: '' });
  assert.equal(parseHubUrl('https://example.com/a/b'), undefined);
  assert.equal(parseHubUrl('https://example.com/models/x.gguf'), undefined);
  assert.equal(parseHubUrl('https://huggingface.co/a/b/resolve/main/x.gguf?download=true'), undefined);
});
