// Image C of gemma3n-vision-procedural through loadGemma() and the shipped worker in Chromium (the suite's one
// full-tower run in a browser; the small-tower browser tests are test/e2e/vision.test.ts):
// - the library's own preprocessing on the page (createImageBitmap + OffscreenCanvas decode, the Pillow-exact
//   resize): the decoded pixels equal image_c.rgb8 and the resized ones image_c_resized.rgb8, 0 levels;
// - a random decoder of text width 2048 (the e2b preset cut to 1 layer and a 512-id vocabulary) whose vision tower
//   is the fixture's procedural MobileNet-V5-300M (the registry adds it to random checkpoints): the PNG goes in as
//   a Blob, is transferred to the worker, decoded, resized and encoded there, and the embeddings the decoder
//   receives at the 256 image positions (seen by a probe the test puts into the worker, src/runtime/prompt.ts) equal
//   the golden soft tokens: the first 64 within the README's 5e-5, all 256 through the per-token checksums.
// ~450 CPU-seconds of SwiftShader for the tower: minutes on free cores, much longer on a shared machine.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { useTestPage } from '../helpers/browser.ts';
import { assertWithin } from '../helpers/vision-ref.ts';
import { readF32File, visionFixtureDir, visionGolden } from '../helpers/vision-fixture.ts';
import type { TestApi } from '../pages/main.ts';

declare const window: { T: TestApi };

const shared = useTestPage();
visionFixtureDir(); // a missing fixture fails here
const TOKENS_ATOL = 5e-5;
const D = 2048;
const FIXTURE = '/fixtures/gemma3n-vision-procedural/';

test('image C via loadGemma() + the shipped worker: page preprocessing exact, the decoder receives the golden soft tokens', { timeout: 120 * 60_000 }, async () => {
  const t0 = performance.now();
  const pre = await shared.page.evaluate(async (base) => {
    const { T } = window;
    const get = async (name: string) => new Uint8Array(await (await fetch(base + name)).arrayBuffer());
    const png = new Blob([await get('image_c.png')], { type: 'image/png' });
    const r = await T.preprocessOnPage(png);
    const diff = (a: Uint8Array, b: Uint8Array) => {
      let n = 0, max = 0;
      for (let i = 0; i < Math.max(a.length, b.length); i++) {
        const d = Math.abs((a[i] ?? 0) - (b[i] ?? 0));
        if (d) n++;
        max = Math.max(max, d);
      }
      return { lengths: [a.length, b.length], differing: n, max };
    };
    return { size: [r.width, r.height], decoded: diff(r.rgb, await get('image_c.rgb8')), resized: diff(r.resized, await get('image_c_resized.rgb8')) };
  }, FIXTURE);
  assert.deepEqual(pre.size, [640, 480]);
  assert.deepEqual(pre.decoded, { lengths: [921600, 921600], differing: 0, max: 0 }, 'decoded pixels = image_c.rgb8');
  assert.deepEqual(pre.resized, { lengths: [1769472, 1769472], differing: 0, max: 0 }, 'resized pixels = image_c_resized.rgb8');

  const loaded = await shared.page.evaluate(async () => {
    const { T } = window;
    const t = performance.now();
    T.clients.golden = await T.loadGemma({ model: { randomCheckpoint: { preset: 'e2b', layers: 1, vocabSize: 512, seed: 1 } }, tokenizer: false, weights: 'float', contextLength: 300 });
    return { ms: performance.now() - t, media: T.clients.golden.info.media };
  });
  assert.deepEqual(loaded.media, ['audio', 'image']);
  const worker = shared.page.workers().find((w) => /worker/.test(w.url()) && !/test-worker/.test(w.url()));
  assert.ok(worker, `the library's worker: ${shared.page.workers().map((w) => w.url()).join(', ')}`);
  // The probe keeps what the decoder receives at each position (src/runtime/prompt.ts softTokenProbe).
  await worker.evaluate(() => {
    const g = globalThis as unknown as { __rows: Map<number, Float32Array>; __gemma3nSoftTokenProbe: unknown };
    g.__rows = new Map();
    g.__gemma3nSoftTokenProbe = (start: number, soft: Array<{ offset: number; rows: Float32Array }>) => {
      for (const s of soft) {
        const width = 2048;
        for (let r = 0; r < s.rows.length / width; r++) g.__rows.set(start + s.offset + r, s.rows.slice(r * width, (r + 1) * width));
      }
    };
  });
  const out = await shared.page.evaluate(async (base) => {
    const { T } = window;
    const png = new Blob([await (await fetch(base + 'image_c.png')).arrayBuffer()], { type: 'image/png' });
    const client = T.clients.golden!;
    const r = await T.collect(client.generate([2, 105, { type: 'image', image: png }, 106], { temperature: 0, maxNewTokens: 1 }));
    return { ...r, memory: structuredClone(client.info.memory) };
  }, FIXTURE);
  assert.equal(out.error, null, JSON.stringify(out.error));
  assert.equal(out.stats?.promptTokens, 2 + 1 + 256 + 1 + 1);
  assert.ok((out.memory?.encoders?.image ?? 0) > 500e6, `the tower's memory line: ${JSON.stringify(out.memory)}`);
  const received = await worker.evaluate(() => {
    const rows = (globalThis as unknown as { __rows: Map<number, Float32Array> }).__rows;
    const positions = [...rows.keys()].sort((a, b) => a - b);
    const first64: number[] = [];
    const sums: number[] = [];
    const sumSqs: number[] = [];
    for (const [k, p] of positions.entries()) {
      const r = rows.get(p)!;
      if (k < 64) first64.push(...r);
      let s = 0, q = 0;
      for (const v of r) {
        s += v;
        q += v * v;
      }
      sums.push(s);
      sumSqs.push(q);
    }
    return { positions, first64, sums, sumSqs };
  });
  await shared.page.evaluate(() => window.T.clients.golden?.dispose()); // ends the worker: read the probe first
  assert.deepEqual(received.positions, Array.from({ length: 256 }, (_, i) => 3 + i), 'soft tokens at exactly the 256 image positions');
  const tErr = assertWithin(Float32Array.from(received.first64), readF32File('c.soft_tokens.f32'), TOKENS_ATOL, 'image c first 64 soft tokens (as the decoder received them)');
  // Checksums of all 256 tokens (see test/model/vision-golden.test.ts for the bounds).
  const { token_sum: sums, token_sum_sq: sumSqs } = visionGolden().outputs.c.soft_tokens;
  assertWithin(received.sums, sums, D * TOKENS_ATOL, 'image c token sums');
  assertWithin(received.sumSqs, sumSqs, D * TOKENS_ATOL * 8, 'image c token sums of squares');
  console.log(`# image c in Chromium: first 64 soft tokens max abs err ${tErr.toExponential(2)}; load ${(loaded.ms / 1000).toFixed(1)} s, encode ${((out.stats?.encodeMs ?? 0) / 1000).toFixed(1)} s, test ${((performance.now() - t0) / 1000).toFixed(0)} s`);
});
