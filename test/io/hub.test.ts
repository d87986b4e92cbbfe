import { test, before, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { hubFileUrl, hubFiles, urlFiles } from '../../src/io/hub.ts';
import { listCheckpoint } from '../../src/io/checkpoint-listing.ts';
import { openSafetensorsCheckpoint } from '../../src/io/safetensors.ts';
import { directoryFiles } from '../../src/node/checkpoint-files.ts';
import { GemmaError } from '../../src/errors.ts';
import { startFixtureServer, type FixtureServer } from '../helpers/fixture-server.ts';

const fixtureDir = fileURLToPath(new URL('../fixtures/gemma3n-tiny-a/', import.meta.url));
const text = (s: string) => new TextEncoder().encode(s);
const COMMIT = '0123456789abcdef0123456789abcdef01234567';

let server: FixtureServer;
before(async () => {
  server = await startFixtureServer();
});
after(() => server.close());
beforeEach(() => {
  server.reset();
  server.files.clear();
  server.extraHeaders = { 'X-Repo-Commit': COMMIT };
  // A hub-shaped tree: /{owner}/{name}/resolve/{revision}/{file}, the tiny fixture plus small tokenizer files
  // (the fixture has none; their contents do not matter here).
  server.resolve = (path) => {
    const m = /^\/test-org\/gemma3n-tiny\/resolve\/main\/([^/]+)$/.exec(path) ?? /^\/plain\/([^/]+)$/.exec(path);
    return m && ['config.json', 'model.safetensors'].includes(m[1]) ? fixtureDir + m[1] : undefined;
  };
  for (const prefix of ['/test-org/gemma3n-tiny/resolve/main', '/plain']) {
    server.files.set(`${prefix}/tokenizer.json`, text('{"model":{}}'));
    server.files.set(`${prefix}/tokenizer_config.json`, text('{"bos_token":"<bos>"}'));
    server.files.set(`${prefix}/chat_template.jinja`, text('{{ bos_token }}'));
  }
});

test('hub URLs: resolve path, encoded revision, rejected repo ids', () => {
  assert.equal(hubFileUrl('google/gemma-3n-E2B-it', 'config.json'), 'https://huggingface.co/google/gemma-3n-E2B-it/resolve/main/config.json');
  assert.equal(hubFileUrl('a/b', 'x.json', { revision: 'refs/pr/1', hubUrl: 'http://127.0.0.1:9/' }), 'http://127.0.0.1:9/a/b/resolve/refs%2Fpr%2F1/x.json');
  for (const bad of ['', 'a/b/c', '../x', 'a/..', 'https://huggingface.co/a/b']) {
    assert.throws(() => hubFiles(bad), (e: unknown) => e instanceof GemmaError && e.code === 'invalid-argument', bad);
  }
});

test('a hub repo lists its files, sends the token, records the commit, and reads tensors like a local directory', async () => {
  const files = hubFiles('test-org/gemma3n-tiny', { hubUrl: server.url, token: 'hf_secret' });
  const listing = await listCheckpoint(files);
  assert.deepEqual([...listing.texts.keys()].sort(), ['chat_template.jinja', 'config.json', 'tokenizer.json', 'tokenizer_config.json']);
  assert.equal(listing.index, undefined);
  assert.deepEqual(listing.weightFiles.map((f) => f.name), ['model.safetensors']);
  assert.ok(listing.totalWeightBytes > 900_000);
  assert.equal(files.commit(), COMMIT);
  assert.ok(server.log.length > 0 && server.log.every((r) => r.authorization === 'Bearer hf_secret'));

  const remote = await openSafetensorsCheckpoint(files);
  const local = await openSafetensorsCheckpoint(directoryFiles(fixtureDir));
  assert.deepEqual(remote.tensorNames(), local.tensorNames());
  const name = remote.tensorNames()[0];
  assert.deepEqual((await remote.read(name)).bytes, (await local.read(name)).bytes);
});

test('a plain base URL works the same way', async () => {
  const listing = await listCheckpoint(urlFiles(`${server.url}/plain`));
  assert.deepEqual(listing.weightFiles.map((f) => f.name), ['model.safetensors']);
  assert.ok(listing.texts.has('tokenizer.json'));
});

test('missing files are named: a required text file, a shard listed by the index', async () => {
  server.files.delete('/plain/tokenizer.json');
  await assert.rejects(listCheckpoint(urlFiles(`${server.url}/plain`)), (e: unknown) => e instanceof GemmaError && e.code === 'bad-file' && /no tokenizer\.json/.test(e.message));
  server.files.set('/plain/tokenizer.json', text('{}'));
  server.files.set(
    '/plain/model.safetensors.index.json',
    text(JSON.stringify({ weight_map: { a: 'model-00001-of-00002.safetensors', b: 'model-00002-of-00002.safetensors' } })),
  );
  server.files.set('/plain/model-00001-of-00002.safetensors', new Uint8Array(100));
  await assert.rejects(
    listCheckpoint(urlFiles(`${server.url}/plain`)),
    (e: unknown) => e instanceof GemmaError && e.code === 'bad-file' && /model-00002-of-00002\.safetensors but model\.safetensors\.index\.json lists it/.test(e.message),
  );
  server.files.set('/plain/model.safetensors.index.json', text(JSON.stringify({ weight_map: { a: '../../etc/passwd.safetensors' } })));
  await assert.rejects(listCheckpoint(urlFiles(`${server.url}/plain`)), /not a plain \.safetensors file name/);
});

test('a gated repo without a valid token: the error says to accept the license and pass a token', async () => {
  server.fault = () => ({ status: 401 });
  await assert.rejects(
    listCheckpoint(hubFiles('test-org/gemma3n-tiny', { hubUrl: server.url })),
    (e: unknown) => e instanceof GemmaError && e.code === 'network' && /accept the license/.test(e.message) && /token/.test(e.message),
  );
});
