import { test, before, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { httpSource, parseContentRange } from '../../src/io/http-source.ts';
import { ProgressAggregator, type LoadProgress } from '../../src/io/progress.ts';
import { GemmaError } from '../../src/errors.ts';
import { startFixtureServer, type FixtureServer } from '../helpers/fixture-server.ts';

const fixtures = fileURLToPath(new URL('../fixtures/', import.meta.url));
const modelPath = `${fixtures}gemma3n-tiny-a/model.safetensors`;
const model = new Uint8Array(readFileSync(modelPath)); // ~1 MB
const KiB = 1024;

// Fast retries: the tests exercise the retry paths, not the waiting.
const quick = { retryDelayMs: 1, maxRetryDelayMs: 5 };

let server: FixtureServer;
before(async () => {
  server = await startFixtureServer();
  server.files.set('/model.safetensors', modelPath);
  server.files.set('/small.bin', model.subarray(0, 10_000));
  server.files.set('/empty.bin', new Uint8Array(0));
});
after(() => server.close());
beforeEach(() => server.reset());

async function rejectsWith(promise: Promise<unknown>, code: string, ...patterns: RegExp[]): Promise<GemmaError> {
  const err = await promise.then(
    () => assert.fail('expected a rejection'),
    (e: unknown) => e,
  );
  assert.ok(err instanceof GemmaError, `expected a GemmaError, got ${String(err)}`);
  assert.equal(err.code, code, err.message);
  for (const p of patterns) assert.match(err.message, p);
  return err;
}

test('size from a 0-0 probe; whole file and random ranges match the file, in chunks across parallel requests', async () => {
  const src = httpSource(`${server.url}/model.safetensors`, { chunkSize: 64 * KiB, concurrency: 3 });
  assert.equal(await src.size(), model.length);
  assert.equal(server.log[0].range, 'bytes=0-0');
  assert.deepEqual(await src.read(0, model.length), model);
  const ranged = server.log.filter((r) => r.range && r.range !== 'bytes=0-0');
  assert.equal(ranged.length, Math.ceil(model.length / (64 * KiB)));
  for (const [offset, length] of [[0, 8], [12345, 1], [100_000, 300_000], [model.length - 7, 7]]) {
    assert.deepEqual(await src.read(offset, length), model.subarray(offset, offset + length));
  }
  assert.equal((await src.read(5, 0)).length, 0);
  assert.equal(await httpSource(`${server.url}/empty.bin`).size(), 0);
});

test('a connection cut mid-body is resumed from the last byte received', async () => {
  // The first response of every chunk dies after 10 000 bytes.
  server.fault = (req) => (req.range && req.range !== 'bytes=0-0' && !server.log.some((r) => r !== req && r.range === req.range) ? { cutAfter: 10_000 } : undefined);
  const chunk = 256 * KiB;
  const src = httpSource(`${server.url}/model.safetensors`, { chunkSize: chunk, concurrency: 2, ...quick });
  assert.deepEqual(await src.read(0, model.length), model);
  const starts = server.log.map((r) => parseRange(r.range)?.start).filter((s) => s !== undefined);
  // Each chunk at k*chunk was asked for again from k*chunk + 10 000, not from its start.
  for (let at = 0; at < model.length; at += chunk) {
    assert.ok(starts.includes(at), `chunk at ${at} requested`);
    if (model.length - at > 10_000) assert.ok(starts.includes(at + 10_000), `chunk at ${at} resumed at +10000`);
  }
});

test('a stalled body is cut after stallTimeoutMs and resumed', async () => {
  server.fault = (req, n) => (n === 1 ? { stallAfter: 5000 } : undefined);
  const src = httpSource(`${server.url}/model.safetensors`, { stallTimeoutMs: 150, ...quick });
  const t0 = performance.now();
  assert.deepEqual(await src.read(0, model.length), model);
  assert.ok(performance.now() - t0 < 5000);
  assert.ok(server.log.some((r) => r.range === `bytes=5000-${model.length - 1}`), JSON.stringify(server.log));
});

test('HTTP 401 / 403 explain gated models and tokens; 404 says to check repo, revision and file', async () => {
  for (const status of [401, 403]) {
    server.fault = () => ({ status });
    const err = await rejectsWith(httpSource(`${server.url}/model.safetensors`, quick).size(), 'network', new RegExp(`HTTP ${status}`), /accept the license/, /access token/);
    assert.equal((err as { status?: number }).status, status);
  }
  server.fault = undefined;
  await rejectsWith(httpSource(`${server.url}/nope.safetensors`, quick).read(0, 1), 'network', /not found \(HTTP 404\)/, /revision/, /nope\.safetensors/);
  // Client errors are not retried.
  assert.equal(server.log.filter((r) => r.path === '/nope.safetensors').length, 1);
});

test('5xx is retried with backoff: transient errors recover, persistent ones say "try again later"', async () => {
  server.fault = (req, n) => (n < 2 ? { status: 503 } : undefined);
  assert.deepEqual(await httpSource(`${server.url}/small.bin`, quick).read(0, 10_000), model.subarray(0, 10_000));
  server.fault = () => ({ status: 500 });
  server.log.length = 0;
  await rejectsWith(httpSource(`${server.url}/small.bin`, { ...quick, maxAttempts: 3 }).size(), 'network', /HTTP 500/, /try again later/, /3 attempts/);
  assert.equal(server.log.length, 3);
});

test('an unreachable server gives a network error after bounded attempts, mentioning CORS', async () => {
  const dead = await startFixtureServer();
  const url = `${dead.url}/x.bin`;
  await dead.close();
  await rejectsWith(httpSource(url, { ...quick, maxAttempts: 2 }).size(), 'network', /could not download x\.bin/, /2 attempts/, /CORS/);
});

test('progress through an aggregator is monotonic and ends exactly at total, despite cuts and re-reads', async () => {
  server.fault = (req, n) => (n % 3 === 1 ? { cutAfter: 7_000 } : undefined);
  const events: LoadProgress[] = [];
  const agg = new ProgressAggregator('download', model.length, (p) => events.push(p));
  const src = httpSource(`${server.url}/model.safetensors`, { chunkSize: 100 * KiB, onBytes: (n) => agg.advance('model.safetensors', n), ...quick });
  await src.read(0, 1000); // a header read, read again below: over-reports
  await src.read(0, model.length);
  agg.finish();
  assert.ok(events.length > 5);
  for (let i = 1; i < events.length; i++) assert.ok(events[i].loaded > events[i - 1].loaded, `event ${i} not increasing`);
  const last = events[events.length - 1];
  assert.deepEqual(last, { phase: 'download', loaded: model.length, total: model.length, file: 'model.safetensors' });
  assert.equal(events.filter((e) => e.loaded === e.total).length, 1);
});

test('a server that ignores Range: small files are served from one download, big ones fail clearly', async () => {
  server.fault = () => ({ ignoreRange: true });
  const src = httpSource(`${server.url}/small.bin`, quick);
  assert.equal(await src.size(), 10_000);
  assert.deepEqual(await src.read(100, 50), model.subarray(100, 150));
  assert.deepEqual(await src.read(9_000, 1_000), model.subarray(9_000, 10_000));
  assert.equal(server.log.length, 1);
  await rejectsWith(httpSource(`${server.url}/model.safetensors`, { ...quick, wholeFileLimit: 100_000 }).size(), 'network', /ignores HTTP range requests/);
});

test('reading past the end is a bad-file truncation error; a file changing mid-download is caught by its ETag', async () => {
  const src = httpSource(`${server.url}/small.bin`, quick);
  await rejectsWith(src.read(9_990, 20), 'bad-file', /truncated/, /small\.bin/);
  server.fault = (req) => (req.range === 'bytes=0-0' ? undefined : { etag: '"changed"' });
  await rejectsWith(httpSource(`${server.url}/small.bin`, quick).read(0, 100), 'network', /changed on the server/, /commit/);
});

test('headers (Authorization) are sent; an abort rejects with code aborted', async () => {
  await httpSource(`${server.url}/small.bin`, { headers: { Authorization: 'Bearer hf_test' } }).read(0, 10);
  assert.ok(server.log.every((r) => r.authorization === 'Bearer hf_test'));
  server.fault = () => ({ stallAfter: 10 });
  const controller = new AbortController();
  const reading = httpSource(`${server.url}/small.bin`, { signal: controller.signal, size: 10_000 }).read(0, 10_000);
  setTimeout(() => controller.abort(), 50);
  await rejectsWith(reading, 'aborted', /aborted/);
});

test('parseContentRange', () => {
  assert.deepEqual(parseContentRange('bytes 0-0/1234'), { start: 0, end: 0, total: 1234 });
  assert.deepEqual(parseContentRange('bytes 5-9/*'), { start: 5, end: 9, total: undefined });
  assert.equal(parseContentRange('bytes */77')?.total, 77);
  assert.equal(parseContentRange(null), undefined);
  assert.equal(parseContentRange('items 1-2/3'), undefined);
});

function parseRange(range: string | undefined): { start: number } | undefined {
  const m = /^bytes=(\d+)-/.exec(range ?? '');
  return m ? { start: Number(m[1]) } : undefined;
}
