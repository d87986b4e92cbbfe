/**
 * The GPU forward pass in float mode against every gemma3n-tiny-* golden (HF logits): every position of every case
 * within tolerance.recommended_logit_atol_for_fp32, identical argmax wherever the golden top-1/top-2 margin exceeds
 * 2 × tol, identical greedy continuation (GPU argmax, KV cache), and token-by-token decoding equal to the golden's
 * full forward beyond the sliding window. Prefill runs in chunks smaller than the longest case and than the sliding
 * window, so chunking, ring wrap-around and KV sharing are all on the path.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { openSafetensorsCheckpoint } from '../../src/io/safetensors.ts';
import { directoryFiles } from '../../src/node/checkpoint-files.ts';
import { Gemma3nModel } from '../../src/model/gemma3n/model.ts';
import { testGpu } from '../helpers/gpu.ts';
import { tinyFixtures, maxAbsDiff2d, argmax } from '../helpers/fixtures.ts';

for (const fx of tinyFixtures()) {
  const g = fx.golden;
  const atol = g.tolerance.recommended_logit_atol_for_fp32;
  const setup = (async () => {
    const ctx = await testGpu();
    const ckpt = await openSafetensorsCheckpoint(directoryFiles(fx.dir));
    // Chunk 7: not a divisor of any case length, below the sliding window of tiny-a (16).
    return Gemma3nModel.load(ctx, ckpt, { weights: 'float', maxContext: 128, chunk: 7 });
  })();

  for (const gc of g.cases) {
    test(`${fx.name} float: logits of case ${gc.name} (T=${gc.input_ids.length})`, async () => {
      const model = await setup;
      model.reset();
      const logits = (await model.prefill(gc.input_ids, { allLogits: true }))!;
      const err = maxAbsDiff2d(logits, gc.logits);
      console.log(`# ${fx.name} float ${gc.name}: max |Δlogit| = ${err.toExponential(2)} (atol ${atol})`);
      assert.ok(err <= atol, `max |Δlogit| ${err} > ${atol}`);
      gc.argmax.forEach((a, t) => {
        if (gc.top2_margin[t] > 2 * atol) assert.equal(argmax(logits[t]), a, `argmax at position ${t}`);
      });
    });
  }

  test(`${fx.name} float: greedy continuation (GPU argmax, KV cache)`, async () => {
    const model = await setup;
    model.reset();
    await model.prefill(g.greedy.prompt_ids);
    const got: number[] = [];
    let err = 0;
    for (let k = 0; k < g.greedy.generated_ids.length; k++) {
      const logits = await model.logits();
      err = Math.max(err, maxAbsDiff2d([logits], [g.greedy.step_logits[k]]));
      got.push(await model.greedyToken());
      await model.step(got[k]);
    }
    console.log(`# ${fx.name} float greedy: step logits max |Δ| = ${err.toExponential(2)}`);
    assert.deepEqual(got, g.greedy.generated_ids);
    assert.ok(err <= atol, `greedy step logits max |Δ| ${err} > ${atol}`);
  });

  test(`${fx.name} float: token-by-token decode == full forward, beyond the sliding window`, async () => {
    const model = await setup;
    const longest = g.cases.reduce((a, b) => (b.input_ids.length > a.input_ids.length ? b : a));
    // Prefill a short prefix (chunked), then decode one token at a time past the sliding ring's capacity
    // (window + chunk − 1), so the ring wraps during decode. Each step's logits vs the golden's full forward.
    const window = model.config.text.slidingWindow;
    const start = Math.min(window - 4, longest.input_ids.length - 1);
    assert.ok(longest.input_ids.length > window + 7, 'the longest case must run past the window');
    model.reset();
    await model.prefill(longest.input_ids.slice(0, start));
    let err = 0;
    for (let t = start; t < longest.input_ids.length; t++) {
      await model.step(longest.input_ids[t]);
      err = Math.max(err, maxAbsDiff2d([await model.logits()], [longest.logits[t]]));
    }
    console.log(`# ${fx.name} float decode ${longest.name}: max |Δlogit| = ${err.toExponential(2)}`);
    assert.ok(err <= atol, `decode max |Δlogit| ${err} > ${atol}`);
  });

  test(`${fx.name} float: truncate keeps a prefix and prefill continues it`, async () => {
    const model = await setup;
    const longest = g.cases.reduce((a, b) => (b.input_ids.length > a.input_ids.length ? b : a));
    const ids = longest.input_ids;
    const n = Math.floor(ids.length / 2);
    model.reset();
    await model.prefill(ids);
    await model.truncate(n);
    assert.equal(model.length, n);
    const rest = (await model.prefill(ids.slice(n), { allLogits: true }))!;
    const err = maxAbsDiff2d(rest, longest.logits.slice(n));
    assert.ok(err <= atol, `after truncate: max |Δlogit| ${err} > ${atol}`);
  });
}
