/**
 * The CPU reference (test/helpers/reference-gemma3n.ts) against every gemma3n-tiny-* golden: proves our reading
 * of the spec (and of the checkpoint and config) before any GPU code is trusted.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { openSafetensorsCheckpoint } from '../../src/io/safetensors.ts';
import { directoryFiles } from '../../src/node/checkpoint-files.ts';
import { parseGemma3nConfig } from '../../src/model/gemma3n/config.ts';
import { loadRefWeights, referenceForward, referenceGreedy } from '../helpers/reference-gemma3n.ts';
import { tinyFixtures, maxAbsDiff2d, argmax } from '../helpers/fixtures.ts';

const fixtures = tinyFixtures();
test('there is at least one gemma3n-tiny fixture', () => assert.ok(fixtures.length > 0, 'no test/fixtures/gemma3n-tiny-* found'));

for (const fx of fixtures) {
  const setup = (async () => {
    const ckpt = await openSafetensorsCheckpoint(directoryFiles(fx.dir));
    const cfg = parseGemma3nConfig(ckpt.config);
    return { cfg, w: await loadRefWeights(ckpt) };
  })();
  // The reference computes in float64 from the same bf16 weights the golden upcast to f32; the golden itself is
  // f32 (its own fp32-vs-fp64 gap is tolerance.fp32_vs_fp64_max_abs_logit_diff), so the float tolerance applies.
  const atol = fx.golden.tolerance.recommended_logit_atol_for_fp32;

  test(`${fx.name}: KV sharing map matches the golden`, async () => {
    const { cfg } = await setup;
    for (const [consumer, producer] of Object.entries(fx.golden.kv_sharing ?? {})) assert.equal(cfg.text.kvSourceLayer[Number(consumer)], producer);
  });

  test(`${fx.name}: reference intermediates (case ${fx.golden.intermediates?.input_ids.length ?? '-'} tokens)`, async (t) => {
    const im = fx.golden.intermediates;
    if (!im) return t.skip('golden has no intermediates');
    const { cfg, w } = await setup;
    const { intermediates: r } = referenceForward(cfg, w, im.input_ids);
    const L = cfg.text.numLayers;
    // Intermediates are O(1..100) in magnitude; f32 rounding in the golden's own computation grows through the
    // layers (its README lists per-layer fp32-vs-fp64 ≤ 2.7e-5 abs), so compare with a relative component.
    const close = (got: ArrayLike<number>, want: number[], what: string) => {
      for (let i = 0; i < want.length; i++) {
        const tol = 1e-4 + 1e-5 * Math.abs(want[i]);
        assert.ok(Math.abs(got[i] - want[i]) <= tol, `${what}[${i}]: ${got[i]} vs golden ${want[i]}`);
      }
    };
    im.inputs_embeds.forEach((row, tIdx) => close(r.inputsEmbeds[tIdx], row, `inputs_embeds[${tIdx}]`));
    im.per_layer_inputs.forEach((rows, tIdx) => close(r.perLayerInputs[tIdx], rows.flat(), `per_layer_inputs[${tIdx}]`));
    im.per_layer_inputs_embedded.forEach((rows, tIdx) => close(r.perLayerInputsEmbedded[tIdx], rows.flat(), `per_layer_inputs_embedded[${tIdx}]`));
    for (let l = 0; l < L; l++) {
      im.layer_outputs[l].forEach((stream, i) => stream.forEach((row, tIdx) => close(r.layerOutputs[l][i][tIdx], row, `layer_outputs[${l}][${i}][${tIdx}]`)));
    }
    im.final_normed.forEach((row, tIdx) => close(r.finalNormed[tIdx], row, `final_normed[${tIdx}]`));
    const mm = fx.golden.intermediates_multimodal_ids;
    if (mm) {
      const { intermediates: r2 } = referenceForward(cfg, w, mm.input_ids);
      mm.inputs_embeds.forEach((row, tIdx) => close(r2.inputsEmbeds[tIdx], row, `multimodal inputs_embeds[${tIdx}]`));
      mm.per_layer_inputs.forEach((rows, tIdx) => close(r2.perLayerInputs[tIdx], rows.flat(), `multimodal per_layer_inputs[${tIdx}]`));
    }
  });

  for (const gc of fx.golden.cases) {
    test(`${fx.name}: reference logits, case ${gc.name} (T=${gc.input_ids.length})`, async () => {
      const { cfg, w } = await setup;
      const { logits } = referenceForward(cfg, w, gc.input_ids);
      const err = maxAbsDiff2d(logits, gc.logits);
      console.log(`# ${fx.name} ${gc.name}: reference max |Δlogit| = ${err.toExponential(2)} (atol ${atol})`);
      assert.ok(err <= atol, `max |Δlogit| ${err} > ${atol}`);
      gc.argmax.forEach((a, tIdx) => {
        if (gc.top2_margin[tIdx] > 2 * atol) assert.equal(argmax(logits[tIdx]), a, `argmax at position ${tIdx}`);
      });
    });
  }

  test(`${fx.name}: reference greedy continuation`, async () => {
    const { cfg, w } = await setup;
    const g = fx.golden.greedy;
    const { tokens, stepLogits } = referenceGreedy(cfg, w, g.prompt_ids, g.generated_ids.length);
    assert.deepEqual(tokens, g.generated_ids);
    const err = maxAbsDiff2d(stepLogits, g.step_logits);
    assert.ok(err <= atol, `greedy step logits max |Δ| ${err} > ${atol}`);
  });
}
