/**
 * Sizes in the load path (src/runtime/loading/model-factory.ts) with the offline cache, in Node: gemma3n-tiny-a
 * served over HTTP from 127.0.0.1, the cache on an in-memory Cache Storage (the browser backend used where OPFS is
 * missing). One ordered scenario:
 * 1. a size (skip4) downloads, loads (logits within the fixture's 1e-3 of the golden) and is stored as its own entry,
 *    keyed by the slice; loading it again is a hit with no weight byte requested;
 * 2. another size (widths) is not inside the skip4 entry (layer 4 is missing there): downloaded and stored too;
 * 3. the whole model is stored; then, with skip4's own entry deleted, skip4 is cut from the whole entry: a hit, no
 *    download, nothing new written, the same logits;
 * 4. q4: a size cut from the cached whole q4 entry (widths with layer 3 kept whole: down_proj prefixes of cached q5 /
 *    q8 blocks; layer 3's down_proj is q4k, whose 256-value super-blocks a cut must respect) equals the CPU reference
 *    on the weights a direct q4 load of the slice holds (so the cached blocks are exactly the slice's blocks); skip4
 *    would have to re-block tiny-a's 16-column PLE groups inside int4's 32-groups, so it is downloaded instead.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { readFileSync } from 'node:fs';
import { loadFromSource, type LoadedModel } from '../../src/runtime/loading/model-factory.ts';
import { parseModelSource } from '../../src/runtime/loading/model-source.ts';
import { Engine } from '../../src/runtime/engine.ts';
import { ModelCache } from '../../src/io/cache.ts';
import { openSafetensorsCheckpoint } from '../../src/io/safetensors.ts';
import { directoryFiles } from '../../src/node/checkpoint-files.ts';
import { sliceGemma3n } from '../../src/model/gemma3n/matformer.ts';
import { parseGemma3nConfig } from '../../src/model/gemma3n/config.ts';
import { Gemma3nModel } from '../../src/model/gemma3n/model.ts';
import type { ModelSize } from '../../src/model/family.ts';
import { testGpu } from '../helpers/gpu.ts';
import { fixtureDir, maxAbsDiff2d } from '../helpers/fixtures.ts';
import { startFixtureServer } from '../helpers/fixture-server.ts';
import { installMemoryCacheStorage } from '../helpers/memory-cache-storage.ts';
import { loadRefWeights, referenceForward } from '../helpers/reference-gemma3n.ts';
import { recordHeldWeights } from '../helpers/quantized-reference.ts';

interface SliceGolden {
  name: string;
  skip_layers: number[];
  ffn_widths: number[];
  cases: Array<{ name: string; input_ids: number[]; logits: number[][] }>;
}

const ATOL = 1e-3;
const tinyDir = fixtureDir('gemma3n-tiny-a', ['model.safetensors', 'config.json']);
const slices = (JSON.parse(readFileSync(join(fixtureDir('gemma3n-matformer-tiny-a', ['golden.json']), 'golden.json'), 'utf8')) as { slices: SliceGolden[] }).slices;
const slice = (name: string) => slices.find((s) => s.name === name)!;
const sizeOf = (s: SliceGolden): ModelSize => ({ skipLayers: s.skip_layers, ffnWidths: s.ffn_widths });
const shortIds = (s: SliceGolden) => s.cases.find((c) => c.name === 'short')!;

test('sizes with the offline cache: an entry per slice, hits, a slice cut from a cached bigger entry', async () => {
  installMemoryCacheStorage();
  const server = await startFixtureServer();
  server.resolve = (path) => (path.startsWith('/tiny/') ? join(tinyDir, path.slice('/tiny/'.length)) : undefined);
  const source = parseModelSource({ model: `${server.url}/tiny/` }, undefined);
  const gpu = await testGpu();
  /** Range requests for weight bytes (not the size probe). */
  const weightRequests = () => server.log.filter((r) => r.path.endsWith('.safetensors') && r.method === 'GET' && r.range !== 'bytes=0-0').length;
  let previous: LoadedModel | undefined;
  const load = async (size: ModelSize | undefined, weights: 'float' | 'q4' = 'float') => {
    previous?.model.dispose();
    server.reset();
    const loaded = (previous = await loadFromSource(gpu, source, { kind: 'none' }, { weights, contextLength: 64, size }));
    return { loaded, requests: weightRequests() };
  };
  const logits = async (loaded: LoadedModel, ids: number[]) => {
    const engine = new Engine({ model: loaded.model });
    try {
      return await engine.logits(ids);
    } finally {
      engine.dispose();
    }
  };
  const check = async (loaded: LoadedModel, s: SliceGolden) => {
    const gc = shortIds(s);
    const err = maxAbsDiff2d(await logits(loaded, gc.input_ids), gc.logits);
    assert.ok(err <= ATOL, `${s.name}: max |Δlogit| ${err}`);
  };
  const entries = async () => ((await (await ModelCache.open())!.list()).map((e) => `${e.weightMode}${e.slice ? ` ${e.slice}` : ''}`)).sort();
  try {
    // 1. skip4: downloaded, stored under its slice; then a hit.
    let r = await load(sizeOf(slice('skip4')));
    assert.equal(r.loaded.cache, 'stored');
    assert.deepEqual(r.loaded.slice && { layers: r.loaded.slice.layers, skipped: r.loaded.slice.skippedLayers }, { layers: 5, skipped: [4] });
    assert.ok(r.requests > 0);
    await check(r.loaded, slice('skip4'));
    assert.deepEqual(await entries(), ['float-f32 skip=4;ffn=64,160,128x2,96']);
    r = await load(sizeOf(slice('skip4')));
    assert.equal(r.loaded.cache, 'hit');
    assert.equal(r.requests, 0, 'a hit reads no weight byte over the network');
    assert.equal(r.loaded.slice?.layers, 5);
    await check(r.loaded, slice('skip4'));

    // 2. widths keeps layer 4, which the skip4 entry lacks: downloaded.
    r = await load(sizeOf(slice('widths')));
    assert.equal(r.loaded.cache, 'stored');
    assert.ok(r.requests > 0);
    await check(r.loaded, slice('widths'));

    // 3. whole, then skip4 (its own entry deleted) cut from the whole entry.
    r = await load(undefined);
    assert.equal(r.loaded.cache, 'stored');
    assert.equal(r.loaded.slice, undefined);
    assert.ok(await (await ModelCache.open())!.delete({ modelId: `${server.url}/tiny/`, revision: 'url', weightMode: 'float-f32', slice: 'skip=4;ffn=64,160,128x2,96' }));
    r = await load(sizeOf(slice('skip4')));
    assert.equal(r.loaded.cache, 'hit');
    assert.equal(r.requests, 0);
    assert.equal(r.loaded.slice?.layers, 5);
    await check(r.loaded, slice('skip4'));
    assert.deepEqual(await entries(), ['float-f32', 'float-f32 skip=;ffn=64,96x2,128,96,64'], 'a slice served from a bigger entry writes nothing');

    // 4. q4: a slice cut from the whole q4 entry == the CPU reference on the weights a direct q4 load of the source
    // slice holds (the quantizers work per group / super-block, so a column prefix quantizes alike). The entry keeps
    // layer 3's ffn_down (256 wide) as q4k, whose cuts must fall on its 256-value super-blocks, so this slice keeps
    // it whole and cuts the q5 / q8 layers as the fixture's widths slice does (which, cutting layer 3 to 128, the
    // slicer refuses to cut from this entry); skip4 cannot be cut exactly either: downloaded.
    r = await load(undefined, 'q4');
    assert.equal(r.loaded.cache, 'stored');
    const q4Size: ModelSize = { skipLayers: [], ffnWidths: slice('widths').ffn_widths.map((w, l) => (l === 3 ? 256 : w)) };
    r = await load(q4Size, 'q4');
    assert.equal(r.loaded.cache, 'hit');
    assert.equal(r.requests, 0);
    const { checkpoint } = sliceGemma3n(await openSafetensorsCheckpoint(directoryFiles(tinyDir)), q4Size);
    const { onConverted, overlay } = recordHeldWeights(gpu);
    (await Gemma3nModel.load(gpu, checkpoint, { weights: 'q4', maxContext: 64, onConverted })).dispose();
    const qw = overlay(await loadRefWeights(checkpoint));
    const gc = shortIds(slice('widths'));
    const err = maxAbsDiff2d(await logits(r.loaded, gc.input_ids), referenceForward(parseGemma3nConfig(checkpoint.config), qw, gc.input_ids).logits);
    assert.ok(err <= ATOL, `q4 slice from the cached whole entry vs CPU reference: ${err}`);
    r = await load(sizeOf(slice('skip4')), 'q4');
    assert.equal(r.loaded.cache, 'stored', 'a slice the cached entry cannot give exactly is downloaded');
    assert.ok(r.requests > 0);
  } finally {
    previous?.model.dispose();
    await server.close();
  }
});
