/**
 * The media encoders' memory line as a page reads it (`client.info.memory.encoders`, through the worker host and
 * comlink, in Node on Dawn), on gemma3n-audio-tiny: the audio tower sizes its activations and binds its dispatches
 * (their parameters, the group norms' statistics) on its first clip, so after that generation the line must be the
 * tower's whole memory() (weights + activations + the buffers its kernels own), not the weights it had at load.
 * Unloading removes the line.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { expose } from 'comlink';
import { connectGemmaWorker, type GemmaClient } from '../../src/runtime/client.ts';
import { createWorkerApi } from '../../src/runtime/worker-host.ts';
import { installErrorTransfer } from '../../src/runtime/comlink-errors.ts';
import { loadFromSource } from '../../src/runtime/loading/model-factory.ts';
import { MEDIA_ENCODERS } from '../../src/model/registry.ts';
import type { MediaEncoder, MediaEncoderFamily } from '../../src/model/media-encoder.ts';
import { directoryFiles } from '../../src/node/checkpoint-files.ts';
import { nodeGpu } from '../../src/node/gpu.ts';
import type { PromptInput } from '../../src/runtime/protocol.ts';
import { fixtureDir } from '../helpers/fixtures.ts';
import { collect } from '../helpers/stream.ts';

installErrorTransfer();
const dir = fixtureDir('gemma3n-audio-tiny', ['config.json', 'model.safetensors', 'golden.json']);
const golden = JSON.parse(readFileSync(join(dir, 'golden.json'), 'utf8')) as { audio_input: { input_features: number[][]; input_features_mask: boolean[] }; end_to_end: { input_ids: number[] } };
const config = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')) as { boa_token_id: number; eoa_token_id: number };
const ids = golden.end_to_end.input_ids;
const features = Float32Array.from(golden.audio_input.input_features.flat());
const mask = Uint8Array.from(golden.audio_input.input_features_mask, (v) => (v ? 1 : 0));
const prompt = [...ids.slice(0, ids.indexOf(config.boa_token_id)), { type: 'audio_features', features, mask }, ...ids.slice(ids.indexOf(config.eoa_token_id) + 1)] as PromptInput;

const clients: GemmaClient[] = [];
after(async () => {
  for (const c of clients) await c.dispose();
});

test('gemma3n-audio-tiny through the client: after the first clip, info.memory.encoders.audio is the tower\'s whole memory()', async () => {
  const tStart = performance.now();
  // The tower the worker loads (the registry's family, its loader wrapped), to read its memory() after the clip.
  let tower: MediaEncoder | undefined;
  const family = MEDIA_ENCODERS.audio as unknown as MediaEncoderFamily;
  const load = family.load;
  family.load = async (...args) => (tower = await load.apply(family, args));
  after(() => {
    family.load = load;
  });
  // The worker host opens its device through navigator.gpu, as in a browser (Node 20 has no navigator).
  Object.defineProperty(globalThis, 'navigator', { value: { gpu: await nodeGpu() }, configurable: true });
  const { port1, port2 } = new MessageChannel();
  expose(createWorkerApi(async ({ gpu }) => loadFromSource(await gpu(), { kind: 'folder', files: directoryFiles(dir) }, { kind: 'none' }, { weights: 'float', contextLength: 64, cache: false })), port2);
  const worker = Object.assign(port1, { terminate: () => port1.close() }) as unknown as Worker;
  const client = await connectGemmaWorker(worker, { model: { fixture: 'gemma3n-audio-tiny' }, tokenizer: false });
  clients.push(client);
  const encoderLines = () => client.info.memory?.encoders;
  assert.equal(encoderLines(), undefined, 'the tower loads on first use');
  const t0 = performance.now();
  const out = await collect(client.generate(prompt, { temperature: 0, maxNewTokens: 1 }));
  assert.ok(out.stats.encodeMs! > 0, 'the tower ran');
  console.log(`# load ${(t0 - tStart).toFixed(0)} ms, first generation ${(performance.now() - t0).toFixed(0)} ms`);
  const want = tower!.memory().gpu;
  assert.ok(want.scratch > 0 && want.kernels > 0 && want.total === want.weights + want.scratch + want.kernels, JSON.stringify(want));
  assert.equal(encoderLines()?.audio, want.total, `the memory line ${JSON.stringify(client.info.memory)} vs the tower's memory() ${JSON.stringify(want)}`);

  await client.unload('audio');
  assert.equal(encoderLines(), undefined, 'unload removes the line');
});
