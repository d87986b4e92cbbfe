/**
 * The offline cache in Chromium (OPFS needs a browser and a secure context: pages come from http://127.0.0.1):
 * write / list / read back / checksum mismatch / truncation / delete / quota, the Cache Storage fallback,
 * browser file sources, and the download-vs-cache-read throughput of the same run.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { CHROMIUM, CHROMIUM_FLAGS, buildTestPages, serveStatic, type StaticServer } from '../helpers/browser.ts';

type C = typeof import('../pages/cache-page.ts') extends never ? never : Record<string, (...args: never[]) => Promise<unknown>>;

const KEY = { modelId: 'google/gemma-3n-E2B-it', revision: 'main', weightMode: 'q4' };
const WEIGHTS = { name: 'weights/q4-000.bin', size: 5 * 1024 * 1024 + 12_345, seed: 7 };
const BIG_BYTES = 128 * 1024 * 1024;

let dir: string;
let server: StaticServer;
let context: BrowserContext;
let page: Page;

/** Calls window.C[fn](...args) in the page. */
function call<T = any>(fn: string, ...args: unknown[]): Promise<T> {
  return page.evaluate(([f, a]) => (window as unknown as { C: C }).C[f as string](...(a as never[])), [fn, args] as const) as Promise<T>;
}

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'gemma-cache-e2e-'));
  await buildTestPages({ input: { cache: 'cache.html' }, outDir: join(dir, 'pages') });
  // A file big enough to time (the fixtures are ~1 MB): pseudo-random so nothing compresses it.
  const big = new Uint8Array(BIG_BYTES);
  const words = new Uint32Array(big.buffer);
  let x = 0x12345678;
  for (let i = 0; i < words.length; i++) words[i] = x = (Math.imul(x, 1664525) + 1013904223) >>> 0;
  await writeFile(join(dir, 'big.bin'), big);
  server = await serveStatic({ '/': join(dir, 'pages'), '/data/': dir });
  context = await chromium.launchPersistentContext(join(dir, 'profile'), { executablePath: CHROMIUM, headless: false, args: CHROMIUM_FLAGS });
  page = await context.newPage();
  page.on('pageerror', (e) => process.stderr.write(`[page error] ${e.message}\n`));
  await page.goto(`${server.url}/cache.html`);
  await page.waitForFunction(() => (window as unknown as { C?: unknown }).C !== undefined);
});

after(async () => {
  await context?.close().catch(() => {});
  await server?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

test('OPFS is the default backend here', async () => {
  assert.equal(await call('defaultKind'), 'opfs');
});

test('write an entry as chunk streams, list it, read it back exactly', async () => {
  await call('clear');
  const written = await call('writeEntry', KEY, [WEIGHTS], { chunk: 777_777, blockSize: 1 << 20 });
  assert.ok(written.ok, JSON.stringify(written));
  const manifest = written.value;
  assert.equal(manifest.files.length, 2);
  assert.equal(manifest.files[0].blocks.length, 6);
  assert.match(manifest.files[0].checksum, /^xxh32:[0-9a-f]{8}$/);

  const list = await call('list');
  assert.equal(list.length, 1);
  assert.deepEqual({ ...list[0], createdAt: undefined }, { ...KEY, commit: 'abc123', createdAt: undefined, bytes: WEIGHTS.size + 24, files: 2 });

  // Ranges inside one block, across blocks, the unaligned tail, the whole file.
  const ranges = [[0, 10], [1_048_570, 20], [2_000_000, 3_000_000], [WEIGHTS.size - 5, 5], [0, WEIGHTS.size]];
  const back = await call('readBack', KEY, WEIGHTS, ranges);
  assert.ok(back.ok, JSON.stringify(back));
  assert.deepEqual(back.value.results, ranges.map(() => true));
  assert.equal(back.value.size, WEIGHTS.size);
  assert.deepEqual(back.value.config, { model_type: 'gemma3n' });
  assert.deepEqual(back.value.manifest.meta, { note: 'test' });
  // Other keys are not found.
  assert.equal((await call('readBack', { ...KEY, weightMode: 'f16' }, WEIGHTS, [[0, 1]])).error.code, 'absent');
});

test('a flipped byte is caught on read: error names the file, the entry is dropped', async () => {
  await call('clear');
  assert.ok((await call('writeEntry', KEY, [WEIGHTS], { blockSize: 1 << 20 })).ok);
  assert.ok(await call('corrupt', KEY, WEIGHTS.name, 3_500_000));
  // A read that does not touch the corrupt block still works...
  assert.deepEqual((await call('readBack', KEY, WEIGHTS, [[0, 1000]])).value.results, [true]);
  // ...one that does fails clearly.
  const bad = await call('readBack', KEY, WEIGHTS, [[3_400_000, 200_000]]);
  assert.equal(bad.ok, false);
  assert.equal(bad.error.code, 'bad-file');
  assert.match(bad.error.message, /weights\/q4-000\.bin/);
  assert.match(bad.error.message, /corrupt/);
  assert.match(bad.error.message, /3145728-4194303 do not match their checksum/);
  assert.deepEqual(await call('list'), []);
  assert.deepEqual(await call('folders'), []);
});

test('a truncated cached file is caught before any read', async () => {
  await call('clear');
  assert.ok((await call('writeEntry', KEY, [WEIGHTS])).ok);
  await call('truncate', KEY, WEIGHTS.name, 1000);
  const bad = await call('readBack', KEY, WEIGHTS, [[0, 10]]);
  assert.equal(bad.error.code, 'bad-file');
  assert.match(bad.error.message, /has 1000 bytes, the manifest says 5255225/);
  assert.deepEqual(await call('list'), []);
});

test('uncommitted entries are invisible; a new write removes abandoned ones; delete and clear', async () => {
  await call('clear');
  await call('writeUncommitted', KEY);
  assert.deepEqual(await call('list'), []);
  assert.equal((await call('folders')).length, 1);
  // That writer still holds its lock (same page): a new write must leave its folder alone.
  assert.ok((await call('writeEntry', KEY, [{ ...WEIGHTS, size: 1000 }])).ok);
  assert.equal((await call('folders')).length, 2);
  assert.equal((await call('list')).length, 1);
  // A second complete version replaces the first.
  assert.ok((await call('writeEntry', KEY, [{ ...WEIGHTS, size: 2000 }])).ok);
  const list = await call('list');
  assert.equal(list.length, 1);
  assert.equal(list[0].bytes, 2000 + 24);
  const other = { ...KEY, weightMode: 'f16' };
  assert.ok((await call('writeEntry', other, [{ ...WEIGHTS, size: 10 }])).ok);
  assert.equal((await call('list')).length, 2);
  assert.equal(await call('remove', KEY), true);
  assert.deepEqual((await call('list')).map((e: { weightMode: string }) => e.weightMode), ['f16']);
  assert.equal(await call('remove', KEY), false);
  await call('clear');
  assert.deepEqual(await call('folders'), []);
});

test('listing while another tab commits keeps the entry (its manifest is still empty); a broken manifest no writer holds is removed', async () => {
  await call('clear');
  // Before the fix the listing read the empty manifest as broken and removed the folder under the writer.
  assert.deepEqual(await call('listDuringCommit', KEY), { midCommit: { listed: 0, folderKept: true, emptyBytes: 0 }, afterCommit: 1 });
  await call('clear');
  assert.deepEqual(await call('listBrokenManifest'), { listed: 0, folders: [] });
});

test('quota: a write past the quota fails with code quota and leaves nothing behind', async () => {
  await call('clear');
  const cdp = await context.newCDPSession(page);
  const origin = new URL(server.url).origin;
  await cdp.send('Storage.overrideQuotaForOrigin' as never, { origin, quotaSize: 3 * 1024 * 1024 } as never);
  try {
    // Early: expectedBytes beyond what estimate() reports as free fails before anything is written. (The CDP
    // override does not change estimate() here, so ask for more than any disk has.)
    const estimate = await call('estimate');
    assert.ok(estimate.quota > 0, JSON.stringify(estimate));
    const early = await call('writeEntry', KEY, [WEIGHTS], { expectedBytes: estimate.quota + 1 });
    assert.equal(early.error.code, 'quota');
    assert.match(early.error.message, /not enough browser storage to cache google\/gemma-3n-E2B-it \(q4\)/);
    assert.match(early.error.message, /deleting cached models/);
    assert.deepEqual(await call('folders'), []);
    // Late: the browser refuses mid-write.
    const late = await call('writeEntry', KEY, [WEIGHTS]);
    assert.equal(late.ok, false, 'the write should have hit the quota');
    assert.equal(late.error.code, 'quota', late.error.message);
    assert.deepEqual(await call('list'), []);
    assert.deepEqual(await call('folders'), []);
  } finally {
    await cdp.send('Storage.overrideQuotaForOrigin' as never, { origin } as never);
    await cdp.detach();
  }
});

test('Cache Storage fallback: same write / read / delete', async () => {
  await call('clear', 'cache-storage');
  const w = await call('writeEntry', KEY, [WEIGHTS], { kind: 'cache-storage', blockSize: 1 << 20 });
  assert.ok(w.ok, JSON.stringify(w));
  assert.equal((await call('list', 'cache-storage')).length, 1);
  const back = await call('readBack', KEY, WEIGHTS, [[0, WEIGHTS.size], [4_000_000, 10]], 'cache-storage');
  assert.deepEqual(back.value.results, [true, true]);
  assert.equal(await call('remove', KEY, 'cache-storage'), true);
  assert.deepEqual(await call('list', 'cache-storage'), []);
});

test('File / FileSystemFileHandle sources', async () => {
  const r = await call('fileSources');
  assert.deepEqual(r.ok, [true, true, true]);
  assert.equal(r.past.error.code, 'bad-file');
});

test('throughput: range download from 127.0.0.1 vs reading the OPFS cache (same run)', async () => {
  await call('clear');
  const t = await call('throughput', `${server.url}/data/big.bin`, 16 << 20);
  console.log(`# throughput (${t.size / 2 ** 20} MiB, 16 MiB reads): http ${t.networkMBps} MB/s, http+cache write ${t.networkToCacheMBps} MB/s, cache read (verified) ${t.cacheReadMBps} MB/s`);
  assert.ok(t.cacheReadMBps > 0 && t.networkMBps > 0);
});
