// Real-size tables without real weights, loaded in Chromium through the hub emulator (files computed on demand:
// test/helpers/synthetic-gemma3n.ts), with memory watched (test/pages/measure-load.ts):
// - a GGUF with E2B's real token_embd (262,400 × 2,048, Q6_K blocks of random bytes: dequantized by row chunks and
//   requantized on the GPU, never one 2.1 GB f32 array) and E2B's real PLE table (7,680 × 262,400, Q4_0: kept as int4
//   in 64 MiB host blocks), 30 small layers, q4 mode;
// - a float-mode safetensors checkpoint with E2B's real bf16 PLE table (262,144 × 7,680, 3.75 GiB): streamed into f16
//   host blocks (4.03 GB), never one array and never f32.
// Asserted: no typed array larger than 64 MiB, the JS heap's peak within 768 MiB of the table the model keeps, the
// planned request count,
// the host table's size, and one decode step works. Peak ArrayBuffer memory (CDP) is reported.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import type { CDPSession } from 'playwright-core';
import type { LoadRequest } from '../../src/runtime/protocol.ts';
import { GGML_TYPE } from '../../src/io/gguf-types.ts';
import { startTestBrowser, type TestBrowser } from '../helpers/browser.ts';
import { startHubEmulator, type HubEmulator } from '../helpers/hub-emulator.ts';
import { E2B_TABLES, PLE_VOCAB, syntheticConfig, syntheticGemma3nGguf, syntheticGemma3nSafetensors } from '../helpers/synthetic-gemma3n.ts';
import { ALLOCATION_PROBE } from '../pages/measure-load.ts';
import type { TestApi } from '../pages/main.ts';

declare const window: { T: TestApi };

const MiB = 2 ** 20;
/** The largest single allocation allowed: a read-ahead window or a host-table block. */
const MAX_ALLOCATION = 64 * MiB;
/**
 * The JS heap's peak (performance.memory.usedJSHeapSize, which in Chromium counts ArrayBuffer contents too) may pass
 * the host table the model keeps by at most this: the read-ahead windows (3 × 64 MiB), a conversion chunk, the block
 * being filled, and garbage the collector has not reclaimed yet (measured here: see the test's log line). Holding any big tensor whole would pass it (E2B's
 * Q6_K token embedding as f32 is 2.1 GB; its bf16 PLE table 4 GB).
 */
const TRANSIENT_BOUND = 768 * MiB;
const COMMIT = '5eedc0de5eedc0de5eedc0de5eedc0de5eedc0de';

let browser: TestBrowser;
let hub: HubEmulator;

before(async () => {
  hub = await startHubEmulator();
  browser = await startTestBrowser();
});
after(async () => {
  await browser?.close();
  await hub?.close();
});

/** A load in a fresh page (so no earlier load's garbage is in its heap), with ArrayBuffer bytes watched over CDP. */
async function measure(load: LoadRequest) {
  const page = await browser.open('/index.html', { initScript: ALLOCATION_PROBE });
  const cdp = await page.context().newCDPSession(page);
  try {
    return await watchBackingStore(cdp, () => page.evaluate((request) => window.T.measuredLoad(request), load));
  } finally {
    await page.close();
  }
}

/** Samples ArrayBuffer backing-store bytes (CDP Runtime.getHeapUsage) while `run` goes on; the peak, if reported. */
async function watchBackingStore<T>(cdp: CDPSession, run: () => Promise<T>): Promise<{ result: T; peakBackingStore?: number }> {
  let peak: number | undefined;
  let running = true;
  const sampler = (async () => {
    while (running) {
      const u = (await cdp.send('Runtime.getHeapUsage').catch(() => undefined)) as { backingStorageSize?: number } | undefined;
      if (u?.backingStorageSize !== undefined) peak = Math.max(peak ?? 0, u.backingStorageSize);
      await new Promise((r) => setTimeout(r, 100));
    }
  })();
  try {
    return { result: await run(), peakBackingStore: peak };
  } finally {
    running = false;
    await sampler;
  }
}

const gb = (b: number) => `${(b / 1e9).toFixed(2)} GB`;

test('E2B-size GGUF (Q6_K token_embd, Q4_0 PLE table) in q4 mode: no allocation over 64 MiB, JS heap bounded', async () => {
  // token_embd: Q6_K blocks of random bytes; everything else constant bytes (hashing gigabytes would dominate the test).
  const file = syntheticGemma3nGguf(E2B_TABLES, { tokenEmbd: GGML_TYPE.Q6_K, ple: GGML_TYPE.Q4_0, matrices: GGML_TYPE.Q8_0 }, (name) => name === 'token_embd.weight');
  hub.repos.set('test-org/e2b-tables-GGUF', { refs: { main: COMMIT }, files: new Map([['e2b-tables.gguf', file]]) });
  hub.reset();
  const url = `${hub.hubUrl}/test-org/e2b-tables-GGUF/resolve/main/e2b-tables.gguf`;
  const { result: r, peakBackingStore } = await measure({ model: url, tokenizer: false, weights: 'q4', contextLength: 64, cache: false });
  const hubGets = hub.log.filter((q) => q.origin === 'hub' && q.method !== 'OPTIONS').length;
  const ple = 7680 * PLE_VOCAB;
  console.log(
    `# E2B-size GGUF q4: ${(file.size / 1e9).toFixed(2)} GB file, download ${gb(r.phases.download.total)} in ${hubGets} hub requests, load ${(r.loadMs / 1000).toFixed(0)} s; ` +
      `largest allocation ${(r.largestAllocation! / MiB).toFixed(1)} MiB; JS heap ${(r.heapBefore / MiB).toFixed(0)} -> peak ${(r.heapPeak / MiB).toFixed(0)} MiB; ` +
      `ArrayBuffers peak ${peakBackingStore === undefined ? 'n/a' : gb(peakBackingStore)}; host ${gb(r.memory!.host.total)}, GPU ${gb(r.memory!.gpu.total)}`,
  );
  assert.ok(r.largestAllocation! > 0 && r.largestAllocation! <= MAX_ALLOCATION, `largest allocation ${r.largestAllocation}`);
  assert.equal(r.memory!.host.total, (ple / 32) * 18, 'int4 PLE rows and their f16 scales');
  assert.ok(r.heapPeak - r.heapBefore <= r.memory!.host.total + TRANSIENT_BOUND, `JS heap grew by ${r.heapPeak - r.heapBefore}`);
  // The bytes read: token_embd, the PLE table's real rows and the small tensors; the 256 padding rows of the table
  // (read once at open) and the unused k/v of KV-shared layers are not in the plan.
  assert.ok(r.phases.download.total < file.size && r.phases.download.total > 440_832_000 + (ple / 32) * 18, String(r.phases.download.total));
  assert.ok(hubGets <= 40, `${hubGets} requests`);
  assert.ok(Number.isInteger(r.token));
});

test('float mode, safetensors with E2B\'s real bf16 PLE table: streamed into f16 blocks, never one array, never f32', async () => {
  const shape = { ...E2B_TABLES, hidden: 256 };
  const file = syntheticGemma3nSafetensors(shape, [], (name) => !name.endsWith('embed_tokens_per_layer.weight')); // the 3.75 GiB table: constant bytes
  hub.repos.set('test-org/e2b-tables', {
    refs: { main: COMMIT },
    files: new Map<string, Uint8Array | typeof file>([
      ['config.json', new TextEncoder().encode(JSON.stringify(syntheticConfig(shape)))],
      ['model.safetensors', file],
    ]),
  });
  hub.reset();
  const { result: r, peakBackingStore } = await measure({ model: `${hub.hubUrl}/test-org/e2b-tables/resolve/main/`, tokenizer: false, weights: 'float', contextLength: 64, cache: false });
  const hubGets = hub.log.filter((q) => q.origin === 'hub' && q.method !== 'OPTIONS').length;
  const ple = 7680 * PLE_VOCAB;
  console.log(
    `# E2B PLE, float mode: ${(file.size / 1e9).toFixed(2)} GB file, download ${gb(r.phases.download.total)} in ${hubGets} hub requests, load ${(r.loadMs / 1000).toFixed(0)} s; ` +
      `largest allocation ${(r.largestAllocation! / MiB).toFixed(1)} MiB; JS heap ${(r.heapBefore / MiB).toFixed(0)} -> peak ${(r.heapPeak / MiB).toFixed(0)} MiB; ` +
      `ArrayBuffers peak ${peakBackingStore === undefined ? 'n/a' : gb(peakBackingStore)}; host ${gb(r.memory!.host.total)}`,
  );
  assert.ok(r.largestAllocation! > 0 && r.largestAllocation! <= MAX_ALLOCATION, `largest allocation ${r.largestAllocation}`);
  assert.equal(r.memory!.host.total, ple * 2, 'f16 PLE rows, not f32');
  assert.ok(r.heapPeak - r.heapBefore <= r.memory!.host.total + TRANSIENT_BOUND, `JS heap grew by ${r.heapPeak - r.heapBefore}`);
  assert.ok(hubGets <= 80, `${hubGets} requests`);
  assert.ok(Number.isInteger(r.token));
});
