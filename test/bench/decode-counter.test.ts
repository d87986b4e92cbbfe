// The decode-step counter of `npm run bench` (bench/gpu-counters.ts, bench/decode-profile.ts) reports the true
// number of dispatches, so the figure the fusion work is judged by cannot drift silently: on the random tiny
// model (4 layers, vocabulary cut to 1,024 rows) a fused decode step's dispatch count equals the number of
// dispatches its recorded ops encode (counted independently, by encoding each op into a fake pass), the layer split
// finds every layer, and profiling (one pass per dispatch, with timestamps) changes neither the count nor the
// sampled token. No timing is asserted. ~20 s here (load + pipeline compilation).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { testGpu } from '../helpers/gpu.ts';
import { Gemma3nModel } from '../../src/model/gemma3n/model.ts';
import { createRandomCheckpoint } from '../../src/model/gemma3n/random-checkpoint.ts';
import type { StepRecorder } from '../../src/model/step-recorder.ts';
import type { SampleDispatch } from '../../src/kernels/sample.ts';
import { GpuCounter } from '../../bench/gpu-counters.ts';
import { kernelName, splitLayers } from '../../bench/decode-profile.ts';
import { submitDispatches } from '../../src/gpu/pipeline.ts';

/** Dispatches a list of recorded ops encodes, counted on a pass that only counts (no GPU involved). */
function encodedDispatches(ds: Array<{ encode(pass: GPUComputePassEncoder): void }>): number {
  let n = 0;
  const pass = { setPipeline() {}, setBindGroup() {}, dispatchWorkgroups: () => void n++ } as unknown as GPUComputePassEncoder;
  for (const d of ds) d.encode(pass);
  return n;
}

test('the decode counter reports the dispatches a fused decode step encodes (tiny model), with and without profiling', async () => {
  const ctx = await testGpu();
  const model = await Gemma3nModel.load(ctx, createRandomCheckpoint({ preset: 'tiny', seed: 11, vocabSize: 1024 }), { weights: 'q4', maxContext: 64, chunk: 8 });
  try {
    const fed = await model.feedAndSample([2, 105, 17], { temperature: 0, allowMultimodal: true });
    const start = model.length;
    // The forward pass's recorder and samplers (private to the model: reached through a cast, checked here).
    const fwd = (model as unknown as { fwd: { recorder: StepRecorder; samplers: { all: SampleDispatch } } }).fwd;
    assert.ok(fwd?.recorder?.ops?.length > 0 && fwd.samplers?.all, 'Gemma3nModel.fwd.recorder / samplers moved: update this test');

    const counter = GpuCounter.install(ctx.device, ctx.timestamps);
    try {
      const plain = await model.feedAndSample([fed], { temperature: 0, allowMultimodal: true });
      // Independently: what the recorded step encodes at T = 1 (layers, head, the 'all' sampler of a greedy step).
      const expected = encodedDispatches([...fwd.recorder.ops.map((o) => o.d), ...fwd.recorder.headOps.map((o) => o.d), fwd.samplers.all]);
      assert.equal(counter.counts.dispatches, expected);
      assert.equal(counter.records.length, expected);
      assert.equal(counter.counts.passes, 2, 'layers + head');
      assert.equal(counter.counts.submits, 2, 'the step + the id readback');
      const layers = splitLayers(counter.records, 4);
      assert.ok(layers, `no layer split in ${counter.records.map(kernelName).join(', ')}`);
      assert.equal(layers.groups.reduce((s, g) => s + g.layers.length, 0), 4);
      // Layers 0, 1 own KV caches (k/v projections, norms, RoPE, cache write); 2, 3 read them. Layer 0 has activation
      // sparsity (its gelu_gate needs the whole gate row: a dispatch of its own); the others' MLP gate is the GEMV's
      // epilogue: three sequences.
      assert.deepEqual(layers.groups.map((g) => g.layers), [[0], [1], [2, 3]]);
      assert.equal(layers.before + layers.meanDispatches * 4 + layers.after, expected);
      assert.deepEqual(layers.groups.map((g) => g.byKernel['kv-cache/main'] ?? 0), [1, 1, 0]);
      assert.deepEqual(layers.groups.map((g) => g.byKernel['gelu_gate/main'] ?? 0), [1, 0, 0]);

      // Profiling: same count, same token, one timestamp pair per dispatch when the adapter has timestamps.
      model.rewind(start);
      counter.reset();
      counter.profile = true;
      const profiled = await model.feedAndSample([fed], { temperature: 0, allowMultimodal: true });
      assert.equal(counter.counts.dispatches, expected);
      assert.equal(profiled, plain, 'profiling changed the sampled token');
      if (ctx.timestamps) {
        const ns = await counter.readTimestamps();
        assert.equal(ns.length, expected);
        assert.ok(ns.every((t) => Number.isFinite(t) && t >= 0));
      }
    } finally {
      counter.uninstall();
    }

    // The hooks are gone after uninstall, and a plain submission of k dispatches counts k.
    const again = GpuCounter.install(ctx.device, false);
    try {
      submitDispatches(ctx.device, fwd.recorder.headOps.map((o) => o.d));
      assert.equal(again.counts.dispatches, encodedDispatches(fwd.recorder.headOps.map((o) => o.d)));
      assert.equal(again.counts.submits, 1);
    } finally {
      again.uninstall();
    }
    assert.ok(!Object.prototype.hasOwnProperty.call(ctx.device, 'createCommandEncoder'));
  } finally {
    model.dispose();
  }
});
