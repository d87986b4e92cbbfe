/**
 * GGUF files through the model. (The q4 mode on safetensors is test/model/int4-plan.test.ts.)
 *
 * B. llama.cpp's GGUF conversions of gemma3n-tiny-a (every *.gguf in test/fixtures/gguf-gemma3n-tiny-a/) through
 * openGgufCheckpoint → Gemma3nModel.load, float mode (float-stored tensors stay f32; pre-quantized tensors keep the
 * file's quantization, repacked losslessly: Q4_0 → q4, Q8_0 → q8, Q5_0 → q5, Q4_K / Q6_K → q4k / q6k, quant-plan.ts
 * `formatForStored`; test/model/gguf-kquant.test.ts compares that with the int8 path it replaced).
 *
 * - F32 / BF16 files hold the checkpoint's own values: logits must equal the safetensors path's to float rounding
 *   (measured: identical, 0). Text-only cases: a GGUF text file has no multimodal embedders (llama.cpp writes them
 *   to a separate mmproj file), so a hard token id there falls back to its embed_tokens row and the multimodal case
 *   legitimately differs from the safetensors path (which runs the embedder).
 * - Quantized files: (1) == the float64 CPU reference on exactly the weights the GPU holds (the file's dequantized
 *   values; tensors requantized to q8 go through the same CPU quantizer), to the golden's fp32 tolerance — this
 *   isolates kernel error; (2) top-1 / mean KL(golden ‖ ours) over the text-only golden positions, bounds set from
 *   measurement (below) with a margin. These random tiny checkpoints are hypersensitive to weight noise (README
 *   §5.5 of the fixture: llama.cpp's own Q4_0 gets top-1 0.52 / KL 0.71).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { openSafetensorsCheckpoint } from '../../src/io/safetensors.ts';
import { openGgufCheckpoint } from '../../src/model/registry.ts';
import { directoryFiles } from '../../src/node/checkpoint-files.ts';
import { fileSource } from '../../src/node/file-source.ts';
import { parseGemma3nConfig } from '../../src/model/gemma3n/config.ts';
import { Gemma3nModel } from '../../src/model/gemma3n/model.ts';
import { testGpu } from '../helpers/gpu.ts';
import { FIXTURES_DIR, tinyFixtures, maxAbsDiff2d, argmax, klDivergence, type GoldenCase } from '../helpers/fixtures.ts';
import { referenceForward } from '../helpers/reference-gemma3n.ts';
import { gpuEquivalentWeights } from '../helpers/quantized-reference.ts';
const GGUF_DIR = join(FIXTURES_DIR, 'gguf-gemma3n-tiny-a');
const files = existsSync(GGUF_DIR) ? readdirSync(GGUF_DIR).filter((f) => f.endsWith('.gguf')).sort() : [];
const fx = tinyFixtures().find((f) => f.name === 'gemma3n-tiny-a');

/**
 * Bounds per quantized file type (top-1 at least, mean KL at most), over the 53 text-only golden positions: the
 * measured value (in the comment) with a margin for float noise across near-tied argmaxes.
 */
const BOUNDS: Record<string, { top1: number; kl: number }> = {
  Q8_0: { top1: 0.8, kl: 0.03 }, // measured 0.868 / 0.0137
  Q6_K: { top1: 0.83, kl: 0.02 }, // measured 0.906 / 0.0076 (only blk.3.ffn_down is real Q6_K; the rest degrade to Q8_0)
  Q4_K_M: { top1: 0.62, kl: 0.35 }, // measured 0.717 / 0.269 (mostly Q5_0 → lossless q8; blk.3.ffn_down Q4_K → q4k)
  Q4_0: { top1: 0.43, kl: 0.85 }, // measured 0.509 / 0.708 (llama.cpp itself, weight-only: 0.53 / 0.71)
};

if (!fx || files.length === 0) {
  test('GGUF fixtures', (t) => t.skip('no gguf-gemma3n-tiny-a fixture'));
} else {
  const golden = fx.golden;
  const atol = golden.tolerance.recommended_logit_atol_for_fp32;
  let textCases: GoldenCase[] = [];
  const setup = (async () => {
    const ctx = await testGpu();
    const st = await Gemma3nModel.load(ctx, await openSafetensorsCheckpoint(directoryFiles(fx.dir)), { weights: 'float', maxContext: 64, chunk: 64, activations: 'f32' });
    const V = st.config.text.vocabSizePerLayerInput;
    textCases = golden.cases.filter((c) => c.input_ids.every((id) => id < V));
    const reference = new Map<string, Float32Array[]>();
    for (const gc of textCases) {
      st.rewind(0);
      reference.set(gc.name, (await st.prefill(gc.input_ids, { allLogits: true }))!);
    }
    st.dispose();
    return { ctx, reference };
  })();

  for (const file of files) {
    const type = /-([A-Z0-9_]+)\.gguf$/.exec(file)?.[1] ?? file;
    test(`GGUF ${file} through Gemma3nModel.load`, async () => {
      const { ctx, reference } = await setup;
      const ckpt = await openGgufCheckpoint(fileSource(join(GGUF_DIR, file)));
      const model = await Gemma3nModel.load(ctx, ckpt, { weights: 'float', maxContext: 64, chunk: 64, activations: 'f32' });
      try {
        assert.ok(textCases.length > 0);
        const logits = new Map<string, Float32Array[]>();
        for (const gc of textCases) {
          model.rewind(0);
          logits.set(gc.name, (await model.prefill(gc.input_ids, { allLogits: true }))!);
        }
        const vsSafetensors = Math.max(...textCases.map((gc) => maxAbsDiff2d(logits.get(gc.name)!, reference.get(gc.name)!)));
        if (type === 'F32' || type === 'BF16') {
          console.log(`# ${file}: max |Δlogit| vs the safetensors path ${vsSafetensors.toExponential(2)}`);
          assert.ok(vsSafetensors <= 1e-5, `${file}: logits differ from the safetensors path by ${vsSafetensors}`);
          return;
        }
        const cfg = parseGemma3nConfig(ckpt.config);
        const w = await gpuEquivalentWeights(ckpt);
        let refErr = 0, agree = 0, kl = 0, n = 0;
        for (const gc of textCases) {
          const got = logits.get(gc.name)!;
          refErr = Math.max(refErr, maxAbsDiff2d(got, referenceForward(cfg, w, gc.input_ids).logits));
          gc.logits.forEach((g, t) => {
            agree += argmax(got[t]) === argmax(g) ? 1 : 0;
            kl += klDivergence(g, got[t]);
            n++;
          });
        }
        console.log(`# ${file}: top-1 ${(agree / n).toFixed(3)}, mean KL ${(kl / n).toFixed(4)} over ${n} positions; max |Δlogit| vs CPU reference on the same weights ${refErr.toExponential(2)}, vs safetensors float ${vsSafetensors.toExponential(2)}`);
        assert.ok(refErr <= atol, `${file}: GPU vs CPU reference on the same weights ${refErr} > ${atol}`);
        const bound = BOUNDS[type];
        assert.ok(bound, `no bounds for ${type}: measure and add them`);
        assert.ok(agree / n >= bound.top1, `${file}: top-1 ${agree / n} < ${bound.top1}`);
        assert.ok(kl / n <= bound.kl, `${file}: mean KL ${kl / n} > ${bound.kl}`);
      } finally {
        model.dispose();
      }
    });
  }
}
