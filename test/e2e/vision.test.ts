// Images and video frames in chat through loadGemma() and the shipped worker in Chromium, on a small random Gemma 3n
// (tiny preset cut to 2 layers and a 512-id vocabulary; its vision tower is the library's small random tower of every
// MobileNet-V5 block kind at the real 768 x 768 input and 256 tokens per image), written as safetensors and served by
// URL so the offline cache keys it. Seconds per image; the full tower runs once in test/e2e/vision-golden.test.ts.
// - every image source kind (PNG Blob, data: URL, OpenAI image_url, ImageData, canvas, OffscreenCanvas, ImageBitmap,
//   <img>, VideoFrame) crosses as transferables and makes one 256-token span; the same pixels from two source kinds
//   are the same content (reused, the tower does not run); a different image at the same position is recomputed;
// - the tower loads on first use with progress events of its own, its memory line, unload / preload, and the
//   offline cache (a second load reads the tower's own entry back);
// - video: frames sampled by sampleVideoFrames() from a WebM Chromium records itself, one span per frame;
// - bad input: undecodable and truncated files, an empty file, a zero-size canvas, an unsupported source type, more
//   images than the context holds, an abort while encoding, a checkpoint without the tower's tensors: typed errors
//   naming the part, the client stays usable.
import { before, after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { serveStatic, useTestPage, type StaticServer } from '../helpers/browser.ts';
import { writeSafetensorsFolder } from '../helpers/safetensors-writer.ts';
import { randomCheckpoint } from '../../src/model/registry.ts';
import type { TestApi } from '../pages/main.ts';

declare const window: { T: TestApi };

const shared = useTestPage();
let dir: string;
let server: StaticServer;
const MODEL = '/tiny-vision/';

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'gemma-tiny-vision-'));
  await writeSafetensorsFolder(randomCheckpoint({ preset: 'tiny', layers: 2, vocabSize: 512, seed: 4 }), dir);
  server = await serveStatic({ '/': dir });
});

/** The page and its worker fetch /tiny-vision/* from the test server's origin; the folder is served from ours. */
async function routeModel(): Promise<void> {
  await shared.browser.context.route(`**${MODEL}*`, (route) => route.continue({ url: `${server.url}/${new URL(route.request().url()).pathname.split('/').pop()}` }));
}

after(async () => {
  await server?.close();
  await rm(dir, { recursive: true, force: true });
});

test('every image source kind through chat: transferred, one span each, content-keyed reuse; tower on first use, memory line, unload/preload, offline cache', async () => {
  const t0 = performance.now();
  await routeModel();
  const r = await shared.page.evaluate(async (model) => {
    const { T } = window;
    const events: { phase: string; component?: string }[] = [];
    const load = (preload: 'image'[] = []) => T.loadGemma({ model, tokenizer: false, weights: 'float', contextLength: 1024, onProgress: (p) => events.push({ phase: p.phase, component: p.component }), preload });
    // A 120 x 90 picture on a canvas, and the same pixels as every other source kind.
    const canvas = document.createElement('canvas');
    canvas.width = 120;
    canvas.height = 90;
    const g = canvas.getContext('2d')!;
    const grad = g.createLinearGradient(0, 0, 120, 90);
    grad.addColorStop(0, '#d22');
    grad.addColorStop(1, '#22d');
    g.fillStyle = grad;
    g.fillRect(0, 0, 120, 90);
    g.fillStyle = '#fe0';
    g.fillRect(30, 20, 40, 30);
    const png = await new Promise<Blob>((res) => canvas.toBlob((b) => res(b!), 'image/png'));
    const dataUrl = canvas.toDataURL('image/png');
    const imageData = g.getImageData(0, 0, 120, 90);
    const bitmap = await createImageBitmap(canvas);
    const img = new Image();
    img.src = dataUrl;
    await img.decode();
    const offscreen = new OffscreenCanvas(120, 90);
    offscreen.getContext('2d')!.drawImage(canvas, 0, 0);
    const frame = new VideoFrame(canvas, { timestamp: 0 });
    // What crosses to the worker: the pixels / bytes / bitmaps are in the transfer list.
    const prepared = await T.prepareMessages([{ role: 'user', content: [{ type: 'image', image: png }, { type: 'image', image: imageData }, { type: 'image', image: canvas }] }]);
    const parts = prepared.messages[0].content as unknown as { payload: { kind: string; bytes?: Uint8Array; data?: Uint8ClampedArray; bitmap?: ImageBitmap } }[];
    const transferred = parts.map((p) => prepared.transfer.includes(p.payload.bytes?.buffer ?? p.payload.data?.buffer ?? p.payload.bitmap!));
    const kinds = parts.map((p) => p.payload.kind);
    const callerData = imageData.data.length; // the caller's ImageData is not detached

    let client = await load();
    const loadEvents = events.length;
    const ask = (image: unknown) => T.collect(client.generate([2, 105, { type: 'image', image: image as Blob }, 107], { temperature: 0, maxNewTokens: 2 }));
    const first = await ask(png);
    const afterFirst = { memory: structuredClone(client.info.memory), media: client.info.media, towerEvents: events.slice(loadEvents) };
    const sources: Record<string, unknown> = { dataUrl, imageUrl: null, imageData, canvas, offscreen, bitmap, img, frame };
    const same: Record<string, { reused: number; encodeMs?: number; error: unknown }> = {};
    for (const [name, source] of Object.entries(sources)) {
      const out =
        name === 'imageUrl'
          ? await T.collect(client.generate([2, 105, { type: 'image_url', image_url: { url: dataUrl } }, 107], { temperature: 0, maxNewTokens: 2 }))
          : await ask(source);
      same[name] = { reused: out.stats?.reusedTokens ?? -1, encodeMs: out.stats?.encodeMs, error: out.error };
    }
    frame.close();
    // Another image at the same position.
    g.fillStyle = '#0a0';
    g.fillRect(0, 0, 10, 10);
    const different = await ask(canvas);
    await client.unload('image');
    const unloaded = structuredClone(client.info.memory);
    await client.preload('image');
    const preloaded = structuredClone(client.info.memory);
    await client.dispose();
    // A second load preloading the tower: the decoder and the tower come from the offline cache.
    events.length = 0;
    client = await load(['image']);
    const cachedInfo = structuredClone(client.info);
    const second = await ask(png);
    const cachedEvents = events.filter((e) => e.component === 'image');
    T.clients.vision = client; // kept for the next tests
    const cached = (await T.listCachedModels()).map((m) => m.weightMode).sort();
    return { transferred, kinds, callerData, first, afterFirst, same, different, unloaded, preloaded, cachedInfo, second, cachedEvents, cached };
  }, MODEL);
  assert.deepEqual(r.kinds, ['encoded', 'pixels', 'bitmap']);
  assert.deepEqual(r.transferred, [true, true, true], 'bytes, pixels and bitmaps are transferred, not copied');
  assert.equal(r.callerData, 120 * 90 * 4);
  assert.equal(r.first.error, null, JSON.stringify(r.first.error));
  assert.equal(r.first.stats?.promptTokens, 2 + 1 + 256 + 1 + 1);
  assert.ok(r.first.stats!.encodeMs! > 0);
  assert.deepEqual(r.afterFirst.media, ['audio', 'image']);
  const tower = r.afterFirst.towerEvents;
  assert.ok(tower.length > 0 && tower.every((e) => e.component === 'image'), JSON.stringify(tower.slice(0, 3)));
  assert.ok(tower.some((e) => e.phase === 'quantize') && tower.some((e) => e.phase === 'compile'), JSON.stringify(tower.map((e) => e.phase)));
  assert.ok((r.afterFirst.memory?.encoders?.image ?? 0) > 0, `the tower's memory line: ${JSON.stringify(r.afterFirst.memory)}`);
  // The same pixels from every source kind: the same content, served from the KV cache without the tower.
  for (const [name, s] of Object.entries(r.same)) {
    assert.equal(s.error, null, `${name}: ${JSON.stringify(s.error)}`);
    assert.equal(s.reused, 260, `${name}: the same pixels reuse the whole prompt but its last position`);
    assert.equal(s.encodeMs, undefined, `${name}: the tower does not run again`);
  }
  assert.equal(r.different.error, null);
  assert.ok(r.different.stats!.reusedTokens <= 3 && r.different.stats!.encodeMs! > 0, `a different image is recomputed: ${JSON.stringify(r.different.stats)}`);
  assert.equal(r.unloaded?.encoders?.image, undefined, 'unload frees the tower');
  assert.ok((r.preloaded?.encoders?.image ?? 0) > 0, 'preload brings it back');
  assert.equal(r.cachedInfo.cache, 'hit');
  assert.ok((r.cachedInfo.memory?.encoders?.image ?? 0) > 0, 'preload: the tower is in at load');
  assert.ok(r.cachedEvents.some((e) => e.phase === 'cache-read') && !r.cachedEvents.some((e) => e.phase === 'quantize'), JSON.stringify(r.cachedEvents.map((e) => e.phase)));
  assert.deepEqual(r.second.deltas.flatMap((d) => d.tokenIds), r.first.deltas.flatMap((d) => d.tokenIds), 'the cached tower gives the same answer');
  assert.ok(r.cached.includes('image-bf16'), JSON.stringify(r.cached));
  console.log(`# image sources test: ${((performance.now() - t0) / 1000).toFixed(1)} s; encode ${r.first.stats!.encodeMs!.toFixed(0)} ms per image (small tower)`);
});

test('video: frames sampled from a WebM Chromium records, one span each', async () => {
  const t0 = performance.now();
  const r = await shared.page.evaluate(async () => {
    const { T } = window;
    const client = T.clients.vision!;
    // 1.5 s of a moving square, recorded from a canvas stream.
    const canvas = document.createElement('canvas');
    canvas.width = 160;
    canvas.height = 120;
    const g = canvas.getContext('2d')!;
    const stream = canvas.captureStream(30);
    const recorder = new MediaRecorder(stream, { mimeType: 'video/webm' });
    const chunks: Blob[] = [];
    recorder.ondataavailable = (e) => chunks.push(e.data);
    const started = performance.now();
    recorder.start(100);
    await new Promise<void>((resolve) => {
      const draw = () => {
        const t = (performance.now() - started) / 1000;
        g.fillStyle = '#123';
        g.fillRect(0, 0, 160, 120);
        g.fillStyle = '#f80';
        g.fillRect(10 + t * 60, 40, 30, 30);
        if (t < 1.5) requestAnimationFrame(draw);
        else resolve();
      };
      draw();
    });
    await new Promise((res) => ((recorder.onstop = res), recorder.stop()));
    const video = new Blob(chunks, { type: 'video/webm' });
    const sampled = await T.sampleVideoFrames(video, { fps: 2, maxFrames: 3 });
    const info = { frames: sampled.frames.length, times: sampled.times, tokens: sampled.tokens, sizes: sampled.frames.map((f) => [f.width, f.height]) };
    const out = await T.collect(client.generate([2, 105, { type: 'video', frames: sampled.frames }, 107], { temperature: 0, maxNewTokens: 2 }));
    return { info, out };
  });
  assert.equal(r.info.frames, 3);
  assert.deepEqual(r.info.times, [0, 0.5, 1]);
  assert.deepEqual(r.info.sizes, [[160, 120], [160, 120], [160, 120]]);
  assert.equal(r.out.error, null, JSON.stringify(r.out.error));
  assert.equal(r.out.stats?.promptTokens, 2 + 3 * 258 + 1);
  assert.ok(r.out.stats!.encodeMs! > 0);
  console.log(`# video test: ${((performance.now() - t0) / 1000).toFixed(1)} s`);
});

test('bad image input in the browser: typed errors naming the part, an abort while encoding, the client stays usable', async () => {
  const t0 = performance.now();
  const r = await shared.page.evaluate(async () => {
    const { T } = window;
    const client = T.clients.vision!;
    const say = (content: unknown[]) => T.collect(client.generate([2, ...(content as never[]), 107], { maxNewTokens: 1 }));
    const canvas = document.createElement('canvas');
    canvas.width = 64;
    canvas.height = 64;
    canvas.getContext('2d')!.fillRect(0, 0, 32, 32);
    const png = new Uint8Array(await (await new Promise<Blob>((res) => canvas.toBlob((b) => res(b!), 'image/png'))).arrayBuffer());
    const garbage = await say([{ type: 'image', image: new Blob([new Uint8Array(4000).fill(7)], { type: 'image/png' }) }]);
    const truncated = await say([{ type: 'image', image: new Blob([png.slice(0, Math.floor(png.length / 2))], { type: 'image/png' }) }]);
    const empty = await say([{ type: 'image', image: new Blob([]) }]);
    const zero = document.createElement('canvas');
    zero.width = 0;
    const zeroSize = await say([{ type: 'image', image: zero }]);
    const unsupported = await say([{ type: 'image', image: { width: 3 } }]);
    const tooMany = await say(Array.from({ length: 5 }, () => ({ type: 'image', image: canvas })));
    const controller = new AbortController();
    const other = document.createElement('canvas');
    other.width = 50;
    other.height = 70;
    other.getContext('2d')!.fillRect(5, 5, 9, 9);
    const long = client.generate([2, { type: 'image', image: other }, 107], { signal: controller.signal, maxNewTokens: 2 });
    setTimeout(() => controller.abort(), 150);
    const aborted = await T.collect(long);
    const next = await say([{ type: 'image', image: canvas }]);
    await client.dispose();
    // A checkpoint whose config names a vision tower but whose file has none of its tensors.
    const textOnly = await T.loadGemma({ model: '/fixtures/gemma3n-tiny-a/', tokenizer: false, contextLength: 300 });
    const noTower = await T.collect(textOnly.generate([2, 105, { type: 'image', image: canvas }], { maxNewTokens: 1 }));
    const stillText = await T.collect(textOnly.generate([2, 105, 17], { maxNewTokens: 1 }));
    await textOnly.dispose();
    return { garbage, truncated, empty, zeroSize, unsupported, tooMany, aborted, next, noTower, stillText };
  });
  const fails = (out: { error: { code?: string; message: string } | null }, code: string, message: RegExp) => {
    assert.equal(out.error?.code, code, JSON.stringify(out.error));
    assert.match(out.error!.message, message);
  };
  fails(r.garbage, 'invalid-argument', /prompt item 2 \(image\): the browser could not decode this image \(image\/png\), 4000 bytes/);
  fails(r.truncated, 'invalid-argument', /prompt item 2 \(image\): the browser could not decode this image .*truncated/);
  fails(r.empty, 'invalid-argument', /prompt item 2 \(image\): the image file is empty/);
  fails(r.zeroSize, 'invalid-argument', /prompt item 2 \(image\): the canvas is 0x150 pixels \(zero-size\)/);
  fails(r.unsupported, 'invalid-argument', /prompt item 2 \(image\): an image must be a Blob\/File, .* got Object/);
  fails(r.tooMany, 'context-overflow', /5 images .* take 1290 of them .* at most 3 images fit/);
  assert.equal(r.aborted.error, null, JSON.stringify(r.aborted.error));
  assert.equal(r.aborted.stats?.finishReason, 'abort');
  assert.equal(r.aborted.stats?.newTokens, 0, 'stopped before the first token');
  assert.equal(r.next.error, null, JSON.stringify(r.next.error));
  assert.equal(r.next.stats?.newTokens, 1);
  fails(r.noTower, 'unsupported-input', /no image encoder weights|cannot take images/);
  assert.equal(r.stillText.error, null);
  console.log(`# bad image input test: ${((performance.now() - t0) / 1000).toFixed(1)} s`);
});
