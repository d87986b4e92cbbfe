// Loading from the hub emulator (test/helpers/hub-emulator.ts) in Node: the tokenizer is resolved and validated
// before any weight byte is requested (a missing or broken one fails with no weight request at all); a pinned
// load's exact requests; a .gguf link loads with the tokenizer its own metadata carries; the chat template file wins;
// the tokenizer option's forms (repo id, { hub }, URL) and where the token goes; a plain folder URL's exact requests
// (a local server, test/helpers/fixture-server.ts, serving gemma3n-tiny-a with the Gemma tokenizer files): such a folder
// can hold either layout, so the load asks for manifest.json first (only a converted folder has one:
// converted-source.ts); every small file is then one plain GET, and a file the server does not have is asked for once.
import { test, before, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import { openSource, buildTokenizer } from '../../src/runtime/loading/open-source.ts';
import { loadFromSource } from '../../src/runtime/loading/model-factory.ts';
import { parseModelSource, parseTokenizerSource } from '../../src/runtime/loading/model-source.ts';
import { GemmaError } from '../../src/errors.ts';
import type { LoadProgress } from '../../src/io/progress.ts';
import { startHubEmulator, type HubEmulator, type HubRequest } from '../helpers/hub-emulator.ts';
import { addTinyRepos, tinyTokenizerTexts, TINY_COMMIT, TINY_GGUF_COMMIT, TINY_GGUF_REPO, TINY_REPO, TINY_TEMPLATE } from '../helpers/tiny-hub-repo.ts';
import { testGpu } from '../helpers/gpu.ts';
import { writeGguf } from '../helpers/gguf-writer.ts';
import { startFixtureServer, type FixtureServer } from '../helpers/fixture-server.ts';
import { fixtureDir } from '../helpers/fixtures.ts';
import { GEMMA_TOKENIZER_DIR } from './gemma-tokenizer.ts';
import { existsSync } from 'node:fs';
import { join } from 'node:path';

const quick = { retryDelayMs: 1, maxRetryDelayMs: 5, rateLimitDelayMs: 20, headerTimeoutMs: 2000 };
const enc = (s: string) => new TextEncoder().encode(s);
const noProgress = () => {};

let hub: HubEmulator;
let server: FixtureServer;
before(async () => {
  hub = await startHubEmulator();
  server = await startFixtureServer();
  // /tiny/<file>: the fixture's files and the tokenizer's; anything else is a 404.
  const fixture = fixtureDir('gemma3n-tiny-a', ['README.md', 'config.json', 'model.safetensors']);
  server.resolve = (path) => {
    if (!path.startsWith('/tiny/')) return undefined;
    return [fixture, GEMMA_TOKENIZER_DIR].map((dir) => join(dir, path.slice('/tiny/'.length))).find((p) => existsSync(p));
  };
});
after(async () => {
  await hub.close();
  await server.close();
});
beforeEach(async () => {
  hub.reset();
  hub.repos.clear();
  await addTinyRepos(hub);
});

const weightRequests = (log: HubRequest[]) => log.filter((r) => /\.(safetensors|gguf)$/.test(r.path) || r.origin === 'cdn');

test('a pinned hub load: every file at the commit, tokenizer before weights, and exactly these requests', async () => {
  const gpu = await testGpu();
  const events: LoadProgress[] = [];
  const source = parseModelSource({ model: `${hub.hubUrl}/${TINY_REPO}/resolve/main/` });
  assert.equal(source.kind, 'hub');
  const loaded = await loadFromSource(gpu, source, { kind: 'model' }, { weights: 'float', contextLength: 32, cache: false, http: quick, onProgress: (p) => events.push(p) });
  try {
    const hubPaths = hub.log.filter((r) => r.origin === 'hub').map((r) => r.path);
    assert.deepEqual(hubPaths.slice(0, 2), [
      `/${TINY_REPO}/resolve/main/config.json`, // pins the commit (X-Repo-Commit)
      `/api/models/${TINY_REPO}/tree/${TINY_COMMIT}`, // sizes and existence: no probes
    ]);
    // The tokenizer files (fetched together, in any order), then the weights file's header and its one window.
    assert.deepEqual(hubPaths.slice(2, 5).sort(), ['chat_template.jinja', 'tokenizer.json', 'tokenizer_config.json'].map((f) => `/${TINY_REPO}/resolve/${TINY_COMMIT}/${f}`));
    assert.deepEqual(hubPaths.slice(5), [`/${TINY_REPO}/resolve/${TINY_COMMIT}/model.safetensors`, `/${TINY_REPO}/resolve/${TINY_COMMIT}/model.safetensors`]);
    assert.equal(hub.log.filter((r) => r.origin === 'cdn').length, 2);
    // Tokenizer files were all fetched before the first weight request.
    const firstWeight = hub.log.findIndex((r) => r.path.endsWith('.safetensors'));
    assert.ok(hub.log.slice(firstWeight).every((r) => !/tokenizer|chat_template/.test(r.path)));
    // The download total is the bytes the load reads (the tiny checkpoint's towers are not among them).
    const download = events.filter((e) => e.phase === 'download');
    assert.equal(download.at(-1)!.loaded, download.at(-1)!.total);
    assert.ok(download[0].total < 996_728 && download[0].total > 800_000, String(download[0].total));
    // Phases in the documented order: the download ends (loaded === total) before compiling starts.
    const lastDownload = events.map((e) => e.phase).lastIndexOf('download');
    const firstCompile = events.findIndex((e) => e.phase === 'compile');
    assert.ok(firstCompile > lastDownload, `download ends at event ${lastDownload}, compile starts at ${firstCompile}`);
    assert.ok(loaded.tokenizer);
    assert.deepEqual(loaded.tokenizer!.applyChatTemplate([{ role: 'user', content: 'hi' }]).slice(0, 1), [2]);
  } finally {
    loaded.model.dispose();
  }
});

test('a folder URL: manifest.json asked once (the layout probe), each small file one GET, each absent file one 404', async () => {
  const model = `${server.url}/tiny/`;
  server.reset();
  const loaded = await loadFromSource(await testGpu(), parseModelSource({ model }), parseTokenizerSource({ model }), { weights: 'float', contextLength: 32, cache: false });
  try {
    const requests = server.log.map((r) => `${r.method} ${r.path}${r.range ? ` ${r.range}` : ''}`);
    console.log(`# ${requests.length} requests: ${requests.join(', ')}`);
    // The layout probe comes first and alone: a converted folder is read from its manifest, with no other probe.
    assert.equal(requests[0], 'GET /tiny/manifest.json');
    // Then the small files together (any order), each one plain GET: present (config, tokenizer) or 404 (the chat
    // template files and the index of a sharded checkpoint, which this one does not have).
    const small = ['config.json', 'tokenizer.json', 'tokenizer_config.json', 'chat_template.jinja', 'chat_template.json', 'model.safetensors.index.json'];
    assert.deepEqual(requests.slice(1, 1 + small.length).sort(), small.map((f) => `GET /tiny/${f}`).sort());
    // Then only the weights file: its size, then its read-ahead windows (the header's, the planned tensors').
    const weights = requests.slice(1 + small.length);
    assert.equal(weights[0], 'GET /tiny/model.safetensors bytes=0-0');
    assert.ok(weights.length <= 3 && weights.every((r) => r.startsWith('GET /tiny/model.safetensors bytes=')), weights.join(', '));
    assert.ok(loaded.tokenizer);
  } finally {
    loaded.model.dispose();
  }
});

test('a missing tokenizer.json fails before any weight request', async () => {
  hub.repos.get(TINY_REPO)!.files.delete('tokenizer.json');
  await assert.rejects(
    openSource({ kind: 'hub', repo: TINY_REPO, revision: 'main', hubUrl: hub.hubUrl }, { kind: 'model' }, { onProgress: noProgress, http: quick }),
    (e: unknown) => e instanceof GemmaError && e.code === 'bad-file' && /no tokenizer\.json/.test(e.message),
  );
  assert.deepEqual(weightRequests(hub.log), []);
});

test('an unusable tokenizer.json fails before any weight request', async () => {
  hub.repos.get(TINY_REPO)!.files.set('tokenizer.json', enc('{"model": {"type": "BPE", "vocab": '));
  await assert.rejects(
    openSource({ kind: 'hub', repo: TINY_REPO, revision: 'main', hubUrl: hub.hubUrl }, { kind: 'model' }, { onProgress: noProgress, http: quick }),
    (e: unknown) => e instanceof GemmaError && e.code === 'bad-file' && /tokenizer\.json/.test(e.message),
  );
  assert.deepEqual(weightRequests(hub.log), []);
});

test('a .gguf hub link: pinned, its own vocabulary as tokenizer, read from the header before any tensor data', async () => {
  const url = `${hub.hubUrl}/${TINY_GGUF_REPO}/resolve/main/gemma3n-tiny-a-Q8_0.gguf`;
  const source = parseModelSource({ model: url });
  assert.equal(source.kind, 'gguf-url');
  const opened = await openSource(source, parseTokenizerSource({ model: url }), { onProgress: noProgress, http: quick });
  assert.equal(opened.commit(), TINY_GGUF_COMMIT);
  assert.ok(hub.log.filter((r) => r.origin === 'hub' && r.path.endsWith('.gguf')).every((r) => r.path.includes(`/resolve/${TINY_GGUF_COMMIT}/`)));
  const reference = await buildTokenizer(await tinyTokenizerTexts(), 'tiny');
  assert.deepEqual(opened.tokenizer!.encode('the right night'), reference.encode('the right night'));
  opened.release();
});

test('a .gguf without tokenizer metadata fails after reading its header only (no tensor data requested)', async () => {
  const file = writeGguf({
    metadata: { 'general.architecture': { type: 'string', value: 'gemma3n' } },
    tensors: [{ name: 'token_embd.weight', ne: [64, 512], type: 0, data: new Uint8Array(64 * 512 * 4) }],
  });
  hub.repos.get(TINY_GGUF_REPO)!.files.set('no-vocab.gguf', file);
  const url = `${hub.hubUrl}/${TINY_GGUF_REPO}/resolve/main/no-vocab.gguf`;
  await assert.rejects(
    openSource(parseModelSource({ model: url }), { kind: 'model' }, { onProgress: noProgress, http: { ...quick } }),
    (e: unknown) => e instanceof GemmaError && /carries no tokenizer/.test(e.message),
  );
  const reads = hub.log.filter((r) => r.origin === 'cdn').map((r) => r.range);
  assert.deepEqual(reads, ['bytes=0-65535'], 'one header read; the 128 KiB of tensor data were never asked for separately');
});

test('chat_template.jinja wins over chat_template.json, which wins over tokenizer_config.json', async () => {
  const texts = await tinyTokenizerTexts();
  const config = JSON.parse(texts.get('tokenizer_config.json')!);
  const withConfig = new Map(texts).set('tokenizer_config.json', JSON.stringify({ ...config, chat_template: 'config{{ bos_token }}' }));
  const render = async (extra: [string, string][]) => {
    const tok = await buildTokenizer(new Map([...withConfig, ...extra]), 'tiny');
    return tok.decode(tok.applyChatTemplate([{ role: 'user', content: 'x' }]));
  };
  assert.equal(await render([]), 'config');
  assert.equal(await render([['chat_template.json', JSON.stringify({ chat_template: 'json{{ bos_token }}' })]]), 'json');
  assert.equal(await render([['chat_template.json', JSON.stringify({ chat_template: 'json' })], ['chat_template.jinja', 'jinja{{ bos_token }}']]), 'jinja');
  const jinja = await buildTokenizer(new Map([...withConfig, ['chat_template.jinja', TINY_TEMPLATE]]), 'tiny');
  // (The tiny vocabulary has no <start_of_turn> piece: the markers come back as text.)
  assert.equal(jinja.decode(jinja.applyChatTemplate([{ role: 'user', content: 'hello' }])), '<start_of_turn>user\nhello<end_of_turn>\n<start_of_turn>model\n');
});

test('tokenizer option: repo id and { hub } get the load token; a URL gets it only on the model\'s own server', () => {
  const base = 'https://app.example/';
  assert.deepEqual(parseTokenizerSource({ tokenizer: 'google/gemma-3n-E2B-it', model: 'x.gguf', token: 't' }, base), { kind: 'hub', repo: 'google/gemma-3n-E2B-it', revision: 'main', token: 't' });
  assert.deepEqual(parseTokenizerSource({ tokenizer: { hub: 'google/gemma-3n-E2B-it', revision: 'abc' }, model: 'x.gguf', token: 't' }, base), { kind: 'hub', repo: 'google/gemma-3n-E2B-it', revision: 'abc', token: 't' });
  assert.deepEqual(parseTokenizerSource({ tokenizer: { hub: 'a/b', token: 'own' }, model: 'x', token: 't' }, base), { kind: 'hub', repo: 'a/b', revision: 'main', token: 'own' });
  assert.deepEqual(parseTokenizerSource({ tokenizer: '/tok/', model: '/m/x.gguf', token: 't' }, base), { kind: 'url', url: 'https://app.example/tok/', token: 't' });
  assert.deepEqual(parseTokenizerSource({ tokenizer: 'https://other.example/tok/', model: '/m/x.gguf', token: 't' }, base), { kind: 'url', url: 'https://other.example/tok/', token: undefined });
  assert.deepEqual(parseTokenizerSource({ tokenizer: 'https://huggingface.co/google/gemma-3n-E2B-it', model: 'a/b', token: 't' }, base), { kind: 'hub', repo: 'google/gemma-3n-E2B-it', revision: 'main', token: 't' });
  assert.throws(() => parseTokenizerSource({ tokenizer: { hub: 'not a repo' } as never, model: 'a/b' }, base), GemmaError);
});

test('a tokenizer from another gated repo is fetched with the token, before the weights', async () => {
  hub.repos.clear();
  await addTinyRepos(hub, { gatedToken: 'hf_ok' });
  const url = `${hub.hubUrl}/${TINY_GGUF_REPO}/resolve/main/gemma3n-tiny-a-Q4_0.gguf`;
  const tokenizer = { kind: 'hub' as const, repo: TINY_REPO, revision: 'main', hubUrl: hub.hubUrl };
  await assert.rejects(openSource(parseModelSource({ model: url, token: 'hf_ok' }), tokenizer, { onProgress: noProgress, http: quick }), (e: unknown) => e instanceof GemmaError && /HTTP 401/.test(e.message));
  hub.reset();
  const opened = await openSource(parseModelSource({ model: url, token: 'hf_ok' }), { ...tokenizer, token: 'hf_ok' }, { onProgress: noProgress, http: quick });
  assert.ok(opened.tokenizer);
  const firstTokenizer = hub.log.findIndex((r) => r.path.includes(TINY_REPO + '/'));
  const firstTensorData = hub.log.findIndex((r) => r.origin === 'cdn' && r.range !== 'bytes=0-65535');
  assert.ok(firstTokenizer >= 0 && (firstTensorData < 0 || firstTokenizer < firstTensorData));
  opened.release();
});
