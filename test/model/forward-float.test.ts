/**
 * The GPU forward pass in float mode against every gemma3n-tiny-* golden (HF logits): every position of every case
 * within tolerance.recommended_logit_atol_for_fp32, identical argmax wherever the golden top-1/top-2 margin exceeds
 * 2 × tol, identical greedy continuation (GPU argmax, KV cache), and token-by-token decoding equal to the golden's
 * full forward beyond the sliding window. Prefill runs in chunks smaller than the longest case and than the sliding
 * window, so chunking, ring wrap-around and KV sharing are all on the path. One model per fixture is loaded once and
 * reset/truncated between checks (pipelines compile once per process). Also: GPU sampling (masking, determinism)
 * and the GPU-resident PLE table giving exactly the same logits as the default host-resident one.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { openSafetensorsCheckpoint } from '../../src/io/safetensors.ts';
import { directoryFiles } from '../../src/node/checkpoint-files.ts';
import { Gemma3nModel } from '../../src/model/gemma3n/model.ts';
import { testGpu } from '../helpers/gpu.ts';
import { tinyFixtures, maxAbsDiff2d, argmax } from '../helpers/fixtures.ts';

const CHUNK = 7;

for (const fx of tinyFixtures()) {
  const g = fx.golden;
  const atol = g.tolerance.recommended_logit_atol_for_fp32;
  const setup = (async () => {
    const ctx = await testGpu();
    const ckpt = await openSafetensorsCheckpoint(directoryFiles(fx.dir));
    // Chunk 7: not a divisor of any case length, below the sliding window of tiny-a (16).
    return Gemma3nModel.load(ctx, ckpt, { weights: 'float', maxContext: 128, chunk: CHUNK });
  })();

  for (const gc of g.cases) {
    test(`${fx.name} float: logits of case ${gc.name} (T=${gc.input_ids.length})`, async () => {
      const model = await setup;
      model.rewind(0);
      const logits = (await model.prefill(gc.input_ids, { allLogits: true }))!;
      const err = maxAbsDiff2d(logits, gc.logits);
      console.log(`# ${fx.name} float ${gc.name}: max |Δlogit| = ${err.toExponential(2)} (atol ${atol})`);
      assert.ok(err <= atol, `max |Δlogit| ${err} > ${atol}`);
      gc.argmax.forEach((a, t) => {
        if (gc.top2_margin[t] > 2 * atol) assert.equal(argmax(logits[t]), a, `argmax at position ${t}`);
      });
    });
  }

  test(`${fx.name} float: greedy continuation (fused decode step + GPU argmax, KV cache)`, async () => {
    const model = await setup;
    model.rewind(0);
    // HF's greedy is an argmax over every id (the golden continuation contains multimodal ids): allowMultimodal.
    const greedy = { temperature: 0, allowMultimodal: true };
    let next = await model.feedAndSample(g.greedy.prompt_ids, greedy);
    const got: number[] = [];
    let err = 0;
    for (let k = 0; k < g.greedy.generated_ids.length; k++) {
      const logits = await model.logits();
      err = Math.max(err, maxAbsDiff2d([logits], [g.greedy.step_logits[k]]));
      assert.equal(next, argmax(logits), `fused GPU argmax at step ${k}`);
      got.push(next);
      if (k + 1 < g.greedy.generated_ids.length) next = await model.feedAndSample([next], greedy);
    }
    console.log(`# ${fx.name} float greedy: step logits max |Δ| = ${err.toExponential(2)}`);
    assert.deepEqual(got, g.greedy.generated_ids);
    assert.ok(err <= atol, `greedy step logits max |Δ| ${err} > ${atol}`);
  });

  test(`${fx.name} float: token-by-token decode == full forward, beyond the sliding window`, async () => {
    const model = await setup;
    const longest = g.cases.reduce((a, b) => (b.input_ids.length > a.input_ids.length ? b : a));
    // Prefill a short prefix (chunked), then decode one token at a time from before the window until a few steps past
    // the sliding ring's capacity (window + chunk − 1), so both the window mask and the ring's wrap-around happen
    // during decode. Later positions exercise nothing new (the ring just keeps wrapping), so the check stops there.
    // Each step's logits vs the golden's full forward.
    const window = model.config.text.slidingWindow;
    const capacity = window + CHUNK - 1;
    const start = window - 4;
    const end = capacity + 4;
    assert.ok(longest.input_ids.length >= end, 'the longest case must run past the ring capacity');
    model.rewind(0);
    await model.prefill(longest.input_ids.slice(0, start));
    let err = 0;
    for (let t = start; t < end; t++) {
      await model.feed({ ids: [longest.input_ids[t]] });
      err = Math.max(err, maxAbsDiff2d([await model.logits()], [longest.logits[t]]));
    }
    console.log(`# ${fx.name} float decode ${longest.name}: max |Δlogit| = ${err.toExponential(2)}`);
    assert.ok(err <= atol, `decode max |Δlogit| ${err} > ${atol}`);
  });

  test(`${fx.name} float: rewind keeps a prefix the sliding rings still hold, and feeding continues it`, async () => {
    const model = await setup;
    const longest = g.cases.reduce((a, b) => (b.input_ids.length > a.input_ids.length ? b : a));
    const ids = longest.input_ids;
    model.rewind(0);
    await model.prefill(ids);
    // The ring holds window + chunk − 1 positions; rewinding further back than capacity − window is refused (0).
    const reach = CHUNK - 1;
    assert.equal(model.rewindableTo(ids.length - reach - 1), 0, 'a prefix the ring overwrote cannot be kept');
    const n = ids.length - reach;
    assert.equal(model.rewindableTo(n), n);
    model.rewind(n);
    assert.equal(model.length, n);
    const rest = (await model.prefill(ids.slice(n), { allLogits: true }))!;
    const err = maxAbsDiff2d(rest, longest.logits.slice(n));
    assert.ok(err <= atol, `after rewind: max |Δlogit| ${err} > ${atol}`);
  });
}

for (const fx of tinyFixtures()) {
  const setup = (async () => {
    const ctx = await testGpu();
    return Gemma3nModel.load(ctx, await openSafetensorsCheckpoint(directoryFiles(fx.dir)), { weights: 'float', maxContext: 64, chunk: 64 });
  })();
  const textVocab = () => setup.then((m) => m.config.text.vocabSizePerLayerInput);

  test(`${fx.name} GPU sampling: greedy = masked argmax; seeded draws are reproducible and never multimodal unless allowed`, async () => {
    const model = await setup;
    const ids = fx.golden.cases[0].input_ids;
    model.rewind(0);
    await model.prefill(ids);
    const logits = await model.logits();
    const V = await textVocab();
    // temperature 0: the argmax over ids < vocab_size_per_layer_input (the default mask) / over all ids.
    assert.equal(await model.sampleNext({ temperature: 0 }), argmax(logits.subarray(0, V)));
    assert.equal(await model.greedyToken(), argmax(logits));
    // Hot sampling over everything: seeded, reproducible, masked ids never drawn; allowed, they are drawn.
    const hot = { temperature: 4, topK: 0, topP: 1 };
    const draws: number[] = [];
    const open: number[] = [];
    for (let step = 0; step < 48; step++) {
      draws.push(await model.sampleNext({ ...hot, seed: 7, step }));
      open.push(await model.sampleNext({ ...hot, seed: 7, step, allowMultimodal: true }));
    }
    assert.ok(draws.every((id) => id < V), `a masked id was sampled: ${draws.filter((id) => id >= V)}`);
    assert.ok(open.some((id) => id >= V), 'with allowMultimodal the hot sampler never reached ids ≥ vocab_size_per_layer_input');
    assert.ok(new Set(draws).size > 10, 'temperature sampling should spread');
    for (let step = 0; step < 4; step++) assert.equal(await model.sampleNext({ ...hot, seed: 7, step }), draws[step], 'same seed and step, same token');
    // The fused decode step samples the same token as feeding then sampling.
    const next = draws[0];
    model.rewind(ids.length);
    const fused = await model.feedAndSample([next], { ...hot, seed: 3 });
    model.rewind(ids.length);
    await model.feed({ ids: [next] });
    assert.equal(await model.sampleNext({ ...hot, seed: 3 }), fused);
  });

  test(`${fx.name} PLE table GPU-resident == host-resident (identical logits)`, async () => {
    const host = await setup;
    const ctx = await testGpu();
    const gpu = await Gemma3nModel.load(ctx, await openSafetensorsCheckpoint(directoryFiles(fx.dir)), { weights: 'float', maxContext: 64, chunk: 64, pleOnGpu: true });
    // The multimodal case has ids ≥ vocab_size_per_layer_input: both paths must read PLE row 0 for them.
    const gc = fx.golden.cases.find((c) => c.input_ids.some((id) => id >= host.config.text.vocabSizePerLayerInput)) ?? fx.golden.cases[0];
    host.rewind(0);
    const a = (await host.prefill(gc.input_ids, { allLogits: true }))!;
    const b = (await gpu.prefill(gc.input_ids, { allLogits: true }))!;
    assert.equal(maxAbsDiff2d(a, b), 0);
    assert.ok(gpu.memory().gpu.weights > host.memory().gpu.weights);
    gpu.dispose();
  });
}
