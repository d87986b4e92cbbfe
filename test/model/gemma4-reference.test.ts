/**
 * The float64 CPU reference of Gemma 4 (test/helpers/reference-gemma4.ts) against the fixture's float32 goldens:
 * logits of all three cases within the README's atol (2.71e-3; float32 vs float64 measured 6.8e-4), the T=5
 * intermediates, and the greedy continuation. This checks our reading of the math (every trap in the README moves
 * the logits by ≥ 0.25, 90× the atol) before the GPU is compared with it.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { openSafetensorsCheckpoint } from '../../src/io/safetensors.ts';
import { directoryFiles } from '../../src/node/checkpoint-files.ts';
import { parseGemma4Config } from '../../src/model/gemma4/config.ts';
import { gemma4Fixture } from '../helpers/gemma4-fixture.ts';
import { gemma4ReferenceForward, loadGemma4RefWeights } from '../helpers/reference-gemma4.ts';
import { argmax, maxAbsDiff2d } from '../helpers/fixtures.ts';

const fx = gemma4Fixture();
const setup = (async () => {
  const ckpt = await openSafetensorsCheckpoint(directoryFiles(fx.dir));
  const cfg = parseGemma4Config(ckpt.config);
  return { cfg, w: await loadGemma4RefWeights(ckpt, cfg) };
})();

test('gemma4 reference: logits of every golden case within the atol, argmax equal', async () => {
  const { cfg, w } = await setup;
  const atol = fx.golden.tolerance.recommended_atol;
  for (const gc of fx.golden.cases) {
    const { logits } = gemma4ReferenceForward(cfg, w, gc.input_ids);
    const err = maxAbsDiff2d(logits, gc.logits);
    console.log(`# gemma4 f64 reference ${gc.name}: max |Δlogit| vs f32 golden ${err.toExponential(2)} (atol ${atol})`);
    assert.ok(err <= atol, `${gc.name}: ${err} > ${atol}`);
    gc.argmax.forEach((a, t) => assert.equal(argmax(logits[t]), a, `${gc.name} argmax at ${t}`));
  }
});

test('gemma4 reference: T=5 intermediates (embeddings, per-layer inputs, every layer output, final norm)', async () => {
  const { cfg, w } = await setup;
  const gc = fx.golden.cases.find((c) => c.debug_f32)!;
  const dbg = gc.debug_f32!;
  const r = gemma4ReferenceForward(cfg, w, gc.input_ids);
  const P = cfg.text.pleDim;
  assert.ok(maxAbsDiff2d(r.inputsEmbeds, dbg.inputs_embeds) < 1e-5, 'inputs_embeds');
  const ple = dbg.per_layer_inputs; // [L][T][P]
  let pleErr = 0;
  ple.forEach((layer, l) => layer.forEach((row, t) => row.forEach((v, p) => (pleErr = Math.max(pleErr, Math.abs(r.perLayerInputs[t][l * P + p] - v))))));
  assert.ok(pleErr < 1e-5, `per_layer_inputs ${pleErr}`);
  // Layer outputs grow to O(100) in magnitude; f32 vs f64 drift reaches ~3e-4 after layer 7 (README).
  dbg.layer_out.forEach((layer, l) => assert.ok(maxAbsDiff2d(r.layerOut[l], layer) < 1e-3, `layer ${l} output`));
  assert.ok(maxAbsDiff2d(r.finalNorm, dbg.final_norm) < 1e-3, 'final_norm');
});

test('gemma4 reference: the 12-token greedy continuation', async () => {
  const { cfg, w } = await setup;
  const ids = [...fx.golden.greedy.prompt_ids];
  for (let k = 0; k < fx.golden.greedy.generated_ids.length; k++) {
    const { logits } = gemma4ReferenceForward(cfg, w, ids);
    ids.push(argmax(logits[logits.length - 1]));
  }
  assert.deepEqual(ids.slice(fx.golden.greedy.prompt_ids.length), fx.golden.greedy.generated_ids);
});
