/**
 * dispose() frees every GPU buffer the model created, so `core` users who own the device do not leak: the device's
 * createBuffer is wrapped to count live buffers, and 20 load → generate → dispose cycles of the tiny fixture (q4, so
 * the quantizer runs too) end with the same live count as after the first (what stays is per-device state created
 * once: the shared weight quantizer's dummies).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Engine } from '../../src/runtime/engine.ts';
import { loadFromSource } from '../../src/runtime/loading/model-factory.ts';
import { directoryFiles } from '../../src/node/checkpoint-files.ts';
import { testGpu } from '../helpers/gpu.ts';
import { tinyFixtures } from '../helpers/fixtures.ts';
import { collect } from '../helpers/stream.ts';
import { trackLiveBuffers } from '../helpers/live-buffers.ts';

test('20 load/generate/dispose cycles do not grow the live GPU buffers', async () => {
  const gpu = await testGpu();
  const { device } = gpu;
  const { live, stop } = trackLiveBuffers(device);
  try {
    const fx = tinyFixtures()[0];
    const counts: number[] = [];
    let peak = 0;
    for (let cycle = 0; cycle < 20; cycle++) {
      const loaded = await loadFromSource(gpu, { kind: 'folder', files: directoryFiles(fx.dir) }, { kind: 'none' }, { weights: 'q4', contextLength: 64, cache: false });
      peak = Math.max(peak, live.size);
      const engine = new Engine({ model: loaded.model });
      const r = await collect(engine.generate(fx.golden.greedy.prompt_ids.slice(0, 8), { temperature: 0, maxNewTokens: 2 }));
      assert.equal(r.stats.newTokens, 2);
      engine.dispose();
      counts.push(live.size);
    }
    console.log(`# live GPU buffers after each dispose: ${counts.join(' ')} (while loaded: ${peak})`);
    assert.ok(peak > 100, `a loaded model holds hundreds of buffers (saw ${peak})`);
    assert.ok(counts.every((n) => n === counts[0]), `live buffers changed across cycles: ${counts.join(' ')}`);
    assert.ok(counts[0] <= 8, `after dispose only per-device state remains (saw ${counts[0]} buffers)`);
  } finally {
    stop();
  }
});
