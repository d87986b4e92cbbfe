/**
 * `gemma3n-webgpu convert` round trip in Node (Dawn): gemma3n-tiny-a converted to q4 and q8 with small shards (so
 * tensors straddle shard boundaries), then loaded
 * - from the local folder (as the CLI does): no 'quantize' phase, logits bit-identical to loading the original
 *   checkpoint in the same mode (the same GPU conversion, done once ahead of time);
 * - from a URL (127.0.0.1), with the offline cache (in-memory Cache Storage): stored as-is, then a hit with no request;
 * - corrupt (a flipped byte in one shard) and incomplete (a shard missing) folders: GemmaError('bad-file') naming the
 *   shard; a q8 folder asked for q4: GemmaError('invalid-argument').
 * Also: gemma4-tiny-a converts and loads the same way (the format is family-neutral), and bench/download-bytes.ts's
 * count of converted bytes equals what the converter wrote (so the README's E2B/E4B figures are exact).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { cp, mkdtemp, readFile, rm, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GemmaError } from '../../src/errors.ts';
import type { CacheManifest } from '../../src/io/cache.ts';
import { ModelCache } from '../../src/io/cache.ts';
import { parseGemma3nConfig } from '../../src/model/gemma3n/config.ts';
import type { WeightMode } from '../../src/model/family.ts';
import { Engine } from '../../src/runtime/engine.ts';
import { loadFromSource, type LoadedModel } from '../../src/runtime/loading/model-factory.ts';
import { parseModelSource, type ModelSource } from '../../src/runtime/loading/model-source.ts';
import type { LoadProgress } from '../../src/runtime/protocol.ts';
import { directoryFiles } from '../../src/node/checkpoint-files.ts';
import { convertModel } from '../../src/node/convert.ts';
import { convertedWeightBytes } from '../../bench/download-bytes.ts';
import { testGpu } from '../helpers/gpu.ts';
import { fixtureDir } from '../helpers/fixtures.ts';
import { startFixtureServer, type FixtureServer } from '../helpers/fixture-server.ts';
import { installMemoryCacheStorage } from '../helpers/memory-cache-storage.ts';

const TINY = fixtureDir('gemma3n-tiny-a', ['model.safetensors', 'config.json']);
const GEMMA4 = fixtureDir('gemma4-tiny-a', ['model.safetensors', 'config.json']);
/** 96 KiB shards: tiny-a's ~0.4 MB (q4) becomes several, with tensors across the boundaries. */
const SHARD = 96 * 1024;
const IDS = [2, 105, 2364 % 512, 107, 100, 22, 7];

let dir: string;
let server: FixtureServer;
const folder = (path: string): ModelSource => ({ kind: 'folder', files: directoryFiles(path) });

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'gemma-convert-'));
  server = await startFixtureServer();
  server.resolve = (path) => join(dir, path);
});
after(async () => {
  await server?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

async function convert(src: string, out: string, weights: 'q4' | 'q8'): Promise<CacheManifest> {
  return convertModel(await testGpu(), folder(src), join(dir, out), { weights, shardBytes: SHARD });
}

async function load(source: ModelSource, weights?: WeightMode, cache = false) {
  const events: LoadProgress[] = [];
  const loaded = await loadFromSource(await testGpu(), source, { kind: 'none' }, { weights, contextLength: 32, cache, onProgress: (p) => events.push(p) });
  return { loaded, phases: [...new Set(events.map((e) => e.phase))], events };
}

async function logits(loaded: LoadedModel, ids = IDS): Promise<Float32Array[]> {
  const engine = new Engine({ model: loaded.model });
  try {
    return await engine.logits(ids);
  } finally {
    engine.dispose();
    loaded.model.dispose();
  }
}

function assertBitIdentical(a: Float32Array[], b: Float32Array[], what: string): void {
  assert.equal(a.length, b.length);
  a.forEach((row, i) => assert.ok(Buffer.from(row.buffer, row.byteOffset, row.byteLength).equals(Buffer.from(b[i].buffer, b[i].byteOffset, b[i].byteLength)), `${what}: position ${i} differs`));
}

const weightBytes = (m: CacheManifest) => m.files.filter((f) => f.name.startsWith('weights-')).reduce((s, f) => s + f.size, 0);

for (const mode of ['q4', 'q8'] as const) {
  test(`tiny-a ${mode}: converted folder loads with no conversion phase, bit-identical logits to converting on load`, async () => {
    const manifest = await convert(TINY, `tiny-${mode}`, mode);
    assert.equal(manifest.weightMode, mode);
    const shards = manifest.files.filter((f) => f.name.startsWith('weights-'));
    assert.ok(shards.length >= 3 && shards.slice(0, -1).every((f) => f.size === SHARD), JSON.stringify(shards.map((f) => f.size)));
    assert.equal(weightBytes(manifest), convertedWeightBytes(parseGemma3nConfig(JSON.parse(await readFile(join(TINY, 'config.json'), 'utf8'))), mode), 'bench/download-bytes.ts counts exactly what convert writes');

    const original = await load(folder(TINY), mode);
    assert.ok(original.phases.includes('quantize'));
    const expected = await logits(original.loaded);

    const converted = await load(folder(join(dir, `tiny-${mode}`)));
    assert.deepEqual(converted.phases, ['download', 'compile'], 'no quantize phase');
    const download = converted.events.filter((e) => e.phase === 'download');
    assert.equal(download.at(-1)!.loaded, manifest.totalBytes);
    assertBitIdentical(await logits(converted.loaded), expected, `${mode} converted vs converted on load`);
  });
}

test('by URL with the offline cache: enters the cache as-is, then a hit with no request', async () => {
  installMemoryCacheStorage();
  const source = parseModelSource({ model: `${server.url}/tiny-q4/` }, undefined);
  server.reset();
  const first = await load(source, undefined, true);
  assert.equal(first.loaded.cache, 'stored');
  assert.ok(!first.phases.includes('quantize'));
  // Found by its manifest, read whole in one request (no size probe first), and no other layout's file asked for.
  assert.deepEqual(server.log.filter((r) => r.path.endsWith('/manifest.json')).map((r) => r.range ?? 'whole'), ['whole']);
  assert.ok(!server.log.some((r) => /\.safetensors/.test(r.path)), server.log.map((r) => r.path).join(', '));
  const expected = await logits(first.loaded);
  const entries = await (await ModelCache.open())!.list();
  assert.deepEqual(entries.map((e) => [e.modelId, e.weightMode]), [[`${server.url}/tiny-q4/`, 'q4']]);
  const hosted = JSON.parse(await readFile(join(dir, 'tiny-q4', 'manifest.json'), 'utf8')) as CacheManifest;
  assert.equal(entries[0].bytes, hosted.totalBytes);

  server.reset();
  const second = await load(source, undefined, true);
  assert.equal(second.loaded.cache, 'hit');
  assert.equal(server.log.length, 0, 'a hit sends no request');
  assertBitIdentical(await logits(second.loaded), expected, 'cache hit vs hosted');
});

test('a corrupt shard, a missing shard, the wrong weight mode: typed errors', async () => {
  const manifest = JSON.parse(await readFile(join(dir, 'tiny-q4', 'manifest.json'), 'utf8')) as CacheManifest;
  await cp(join(dir, 'tiny-q4'), join(dir, 'corrupt'), { recursive: true });
  const shard = join(dir, 'corrupt', 'weights-00002.bin');
  const bytes = await readFile(shard);
  bytes[1234] ^= 0x40;
  await writeFile(shard, bytes);
  await assert.rejects(load(folder(join(dir, 'corrupt'))), (err: GemmaError) => {
    assert.equal(err.code, 'bad-file');
    assert.match(err.message, /weights-00002\.bin is corrupt: bytes 0-\d+ do not match their checksum/);
    return true;
  });
  // Over HTTP the same.
  await assert.rejects(load(parseModelSource({ model: `${server.url}/corrupt/` }, undefined)), (err: GemmaError) => err.code === 'bad-file' && /weights-00002\.bin is corrupt/.test(err.message));

  await cp(join(dir, 'tiny-q4'), join(dir, 'missing'), { recursive: true });
  const last = manifest.files.at(-1)!.name;
  await unlink(join(dir, 'missing', last));
  for (const source of [folder(join(dir, 'missing')), parseModelSource({ model: `${server.url}/missing/` }, undefined)]) {
    await assert.rejects(load(source), (err: GemmaError) => {
      assert.equal(err.code, 'bad-file');
      assert.match(err.message, new RegExp(`manifest lists ${last.replace('.', '\\.')}, but the file is not there`));
      return true;
    });
  }

  await assert.rejects(load(folder(join(dir, 'tiny-q8')), 'q4'), (err: GemmaError) => err.code === 'invalid-argument' && /converted to q8/.test(err.message));
});

test('gemma4-tiny-a: converts and loads with bit-identical logits (the format is family-neutral)', async () => {
  await convert(GEMMA4, 'gemma4-q4', 'q4');
  const expected = await logits((await load(folder(GEMMA4), 'q4')).loaded, [2, 10, 20, 30]);
  const converted = await load(folder(join(dir, 'gemma4-q4')));
  assert.deepEqual(converted.phases, ['download', 'compile']);
  assertBitIdentical(await logits(converted.loaded, [2, 10, 20, 30]), expected, 'gemma4 q4');
});

test('an aborted converted load rejects with aborted and caches nothing', async () => {
  installMemoryCacheStorage();
  const controller = new AbortController();
  const source = parseModelSource({ model: `${server.url}/tiny-q4/` }, undefined);
  const loading = loadFromSource(await testGpu(), source, { kind: 'none' }, {
    contextLength: 32,
    signal: controller.signal,
    onProgress: (p) => {
      if (p.phase === 'download' && p.loaded > 0) controller.abort();
    },
  });
  await assert.rejects(loading, (err: GemmaError) => err.code === 'aborted');
  assert.deepEqual(await (await ModelCache.open())!.list(), []);
});
