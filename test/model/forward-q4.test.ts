/**
 * q4 mode (int4 MLP/attention/PLE table, int8 embedding/AltUp/LAuReL/PLE projections: quant-plan.ts) against every
 * gemma3n-tiny-* fixture.
 *
 * 1. Against the HF golden: top-1 agreement and mean KL(golden ‖ ours) over every position of every case. These random
 *    tiny checkpoints are hypersensitive to weight noise (fixtures/gguf-gemma3n-tiny-a/README.md §5.5: llama.cpp's
 *    own Q4_0 gets top-1 0.52 / KL 0.72; even weight-only Q8_0 flips 10 % of argmaxes). Our float64 reference on
 *    the same quantized weights measured top-1 0.521 / KL 0.700 on tiny-a (bench/q4-families.ts); the bounds allow
 *    that plus a margin for float noise across near-tied argmaxes: top-1 ≥ 0.45, KL ≤ 0.85.
 * 2. Against the CPU reference run on exactly the dequantized weights the GPU uses (the GPU quantizer and
 *    src/model/gemma3n/cpu-quant.ts are bit-identical by construction): this isolates kernel error from
 *    quantization error and must hold to the float tolerance (the golden's fp32 atol; measured 6.0e-5 on tiny-a).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { openSafetensorsCheckpoint } from '../../src/io/safetensors.ts';
import { directoryFiles } from '../../src/node/checkpoint-files.ts';
import { parseGemma3nConfig } from '../../src/model/gemma3n/config.ts';
import { Gemma3nModel } from '../../src/model/gemma3n/model.ts';
import { Q4_PLAN } from '../../src/model/gemma3n/quant-plan.ts';
import { testGpu } from '../helpers/gpu.ts';
import { tinyFixtures, maxAbsDiff2d, argmax, klDivergence } from '../helpers/fixtures.ts';
import { loadRefWeights, referenceForward } from '../helpers/reference-gemma3n.ts';
import { quantizeRefWeights } from '../helpers/quantized-reference.ts';

const MIN_TOP1 = 0.45;
const MAX_MEAN_KL = 0.85;

for (const fx of tinyFixtures()) {
  test(`${fx.name} q4: top-1 / KL vs golden, and == CPU reference on the same quantized weights`, async () => {
    const ctx = await testGpu();
    const ckpt = await openSafetensorsCheckpoint(directoryFiles(fx.dir));
    const cfg = parseGemma3nConfig(ckpt.config);
    const model = await Gemma3nModel.load(ctx, ckpt, { weights: 'q4', maxContext: 128, chunk: 7 });
    const w = await loadRefWeights(ckpt);
    const shapes = new Map([...w.keys()].map((n) => [n, ckpt.tensor(n)!.shape]));
    const qw = quantizeRefWeights(w, shapes, Q4_PLAN, cfg.text.hiddenSize);
    const atol = fx.golden.tolerance.recommended_logit_atol_for_fp32;
    let agree = 0, n = 0, kl = 0, refErr = 0;
    for (const gc of fx.golden.cases) {
      model.reset();
      const logits = (await model.prefill(gc.input_ids, { allLogits: true }))!;
      const ref = referenceForward(cfg, qw, gc.input_ids).logits;
      refErr = Math.max(refErr, maxAbsDiff2d(logits, ref));
      gc.logits.forEach((g, t) => {
        agree += argmax(logits[t]) === argmax(g) ? 1 : 0;
        kl += klDivergence(g, logits[t]);
        n++;
      });
    }
    model.dispose();
    console.log(`# ${fx.name} q4: top-1 ${(agree / n).toFixed(3)}, mean KL ${(kl / n).toFixed(4)} over ${n} positions; max |Δlogit| vs quantized CPU reference ${refErr.toExponential(2)}`);
    assert.ok(refErr <= atol, `GPU q4 vs CPU reference on the same weights: ${refErr} > ${atol}`);
    assert.ok(agree / n >= MIN_TOP1, `top-1 ${agree / n} < ${MIN_TOP1}`);
    assert.ok(kl / n <= MAX_MEAN_KL, `mean KL ${kl / n} > ${MAX_MEAN_KL}`);
  });
}
