// Load progress across the worker boundary: every event the worker reports has reached the page's onProgress
// callback when loadGemma() / preload() resolves. Through comlink each callback call travels on the callback's own
// port, which Chromium does not order with load()'s reply (CI once saw the decoder's last 'download' event arrive
// after the load had resolved), so the worker waits for its last call to be delivered before it replies.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { expose } from 'comlink';
import { connectGemmaWorker, type GemmaClient } from '../../src/runtime/client.ts';
import { createWorkerApi } from '../../src/runtime/worker-host.ts';
import { installErrorTransfer } from '../../src/runtime/comlink-errors.ts';
import type { LoadProgress } from '../../src/runtime/protocol.ts';
import { FakeModel } from './fake-model.ts';

installErrorTransfer();
const clients: GemmaClient[] = [];
after(async () => {
  for (const c of clients) await c.dispose();
});

const EVENTS = 500;
const factory = async ({ onProgress }: { onProgress: (p: LoadProgress) => void }) => {
  for (let i = 1; i <= EVENTS; i++) onProgress({ phase: 'download', loaded: i, total: EVENTS, file: 'model.safetensors' });
  return { model: new FakeModel({ reply: [] }), stopTokenIds: [1], adapterName: 'fake' };
};

test('load() replies only after its last progress call was delivered (a callback delivered late, as a proxy may be)', async () => {
  const api = createWorkerApi(factory);
  const delivered: number[] = [];
  // What the worker sees of a comlink proxy: each call returns a promise that settles once the page has run it.
  const lateCallback = (p: LoadProgress) => new Promise<void>((resolve) => setTimeout(() => (delivered.push(p.loaded), resolve()), 20));
  await api.load({ model: { fake: true }, tokenizer: false }, lateCallback as unknown as (p: LoadProgress) => void);
  assert.equal(delivered.at(-1), EVENTS, `the last event (${EVENTS}) was delivered before load() resolved; delivered: ${delivered.length}`);
  await api.dispose();
});

test('through the client and comlink: all events, in order, before loadGemma() resolves', async () => {
  const { port1, port2 } = new MessageChannel();
  expose(createWorkerApi(factory), port2);
  const worker = Object.assign(port1, { terminate: () => port1.close() }) as unknown as Worker;
  const seen: LoadProgress[] = [];
  const client = await connectGemmaWorker(worker, { model: { fake: true }, tokenizer: false, onProgress: (p) => seen.push(p) });
  const atLoad = seen.length;
  clients.push(client);
  assert.equal(atLoad, EVENTS, `all ${EVENTS} events before the load resolves (${atLoad} had arrived)`);
  assert.deepEqual(seen.map((p) => p.loaded), Array.from({ length: EVENTS }, (_, i) => i + 1), 'in order');
});
