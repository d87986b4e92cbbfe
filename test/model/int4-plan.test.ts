/**
 * Our own int4 (q4 mode: float checkpoints quantized on the GPU into llama.cpp's Q4_K_M mix, quant-plan.ts) on
 * gemma3n-tiny-a, against llama.cpp's own Q4_K_M file of the same model (test/fixtures/gguf-gemma3n-tiny-a):
 * 1. mean KL(golden ‖ ours) over every golden position (73, the multimodal case included) no worse than the file's
 *    weights give: 0.3430 (fixture README §5.5, "Q4_K_M-dequant-F32", exact f32 activations; bench/int4-plans.ts
 *    reproduces it with our float64 reference). Measured here: see the log line (0.30 with the CPU definitions of
 *    the quantizers, bench/int4-plans.ts; the GPU's search differs in near-ties only, test/kernels/quantize-search).
 * 2. bits per weight no more than the file's, over the same tensors (every text-decoder tensor, 1-D ones in f32 on
 *    both sides): the file 7.31, this plan 6.57.
 * 3. the GPU's logits == the float64 CPU reference run on exactly the weights the GPU holds (read back as they were
 *    converted), to the golden's fp32 tolerance: kernels add no error beyond float rounding.
 * 4. the PLE table GPU-resident (q4 rows gathered by id) gives exactly the host-resident path's logits.
 * 5. int8 activations in the decode GEMV (src/kernels/matmul.ts; the default on software adapters): every position
 *    decoded one token at a time (chunk 1, so every projection is a GEMV) with int8 and with exact f32 activations;
 *    the mean KL against the golden must not get worse by more than INT8_KL_MARGIN, and the log states the added
 *    error (max |Δlogit| and mean KL between the two).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { openSafetensorsCheckpoint } from '../../src/io/safetensors.ts';
import { openGemma3nGguf } from '../../src/model/gemma3n/gguf.ts';
import { readGgufHeader } from '../../src/io/gguf.ts';
import { directoryFiles } from '../../src/node/checkpoint-files.ts';
import { fileSource } from '../../src/node/file-source.ts';
import { parseGemma3nConfig } from '../../src/model/gemma3n/config.ts';
import { Gemma3nModel } from '../../src/model/gemma3n/model.ts';
import { formatFor } from '../../src/model/gemma3n/quant-plan.ts';
import { dataBytes, scaleBytes } from '../../src/formats/weight-format.ts';
import { testGpu } from '../helpers/gpu.ts';
import { fixtureDir, loadGolden, maxAbsDiff2d, argmax, klDivergence } from '../helpers/fixtures.ts';
import { loadRefWeights, referenceForward } from '../helpers/reference-gemma3n.ts';
import { recordHeldWeights } from '../helpers/quantized-reference.ts';

const DIR = fixtureDir('gemma3n-tiny-a', ['model.safetensors', 'golden.json', 'config.json']);
const GGUF = join(fixtureDir('gguf-gemma3n-tiny-a', ['gemma3n-tiny-a-Q4_K_M.gguf']), 'gemma3n-tiny-a-Q4_K_M.gguf');
/** llama.cpp's Q4_K_M weights on gemma3n-tiny-a: mean KL over all 73 golden positions (fixture README §5.5). */
const LLAMA_CPP_Q4_K_M_KL = 0.343;
/**
 * int8 activations may move the mean KL by first-order noise either way (the added error is ~0.5-1 % of each
 * projection's output; these random tiny checkpoints are hypersensitive): allowed excess, measured shift below.
 */
const INT8_KL_MARGIN = 0.01;

test("gemma3n-tiny-a q4: KL no worse than llama.cpp's Q4_K_M at no more bits per weight; == CPU reference on the GPU's weights; PLE on GPU == off", async () => {
  const ctx = await testGpu();
  const golden = loadGolden(DIR);
  const ckpt = await openSafetensorsCheckpoint(directoryFiles(DIR));
  const cfg = parseGemma3nConfig(ckpt.config);
  const w = await loadRefWeights(ckpt);

  // The weights as the GPU holds them, read back as the loader converts them.
  const { onConverted, overlay } = recordHeldWeights(ctx);
  const t0 = performance.now();
  const model = await Gemma3nModel.load(ctx, ckpt, { weights: 'q4', maxContext: 128, chunk: 7, onConverted, activations: 'f32' });
  const loadMs = performance.now() - t0;
  const qw = overlay(w);

  const atol = golden.tolerance.recommended_logit_atol_for_fp32;
  let agree = 0, n = 0, kl = 0, refErr = 0;
  const all: Float32Array[][] = [];
  for (const gc of golden.cases) {
    model.rewind(0);
    const logits = (await model.prefill(gc.input_ids, { allLogits: true }))!;
    all.push(logits);
    refErr = Math.max(refErr, maxAbsDiff2d(logits, referenceForward(cfg, qw, gc.input_ids).logits));
    gc.logits.forEach((g, t) => {
      agree += argmax(logits[t]) === argmax(g) ? 1 : 0;
      kl += klDivergence(g, logits[t]);
      n++;
    });
  }
  model.dispose();

  // Bits per weight over every text-decoder tensor, ours (the plan's formats) and the file's.
  const gguf = await openGemma3nGguf(await readGgufHeader(fileSource(GGUF)));
  let ours = 0, file = 0, params = 0;
  for (const name of ckpt.tensorNames().filter((x) => x.startsWith('model.language_model.'))) {
    const shape = ckpt.tensor(name)!.shape;
    const count = shape.reduce((a, b) => a * b, 1);
    const rows = shape[0], cols = count / rows;
    const f = shape.length === 2 ? formatFor(name, 'q4', false, { shape, layers: cfg.text.numLayers }) : 'f32';
    ours += dataBytes(f, rows, cols) + scaleBytes(f, rows, cols);
    file += gguf.tensors.get(name)!.byteLength;
    params += count;
  }
  const bpw = (8 * ours) / params, fileBpw = (8 * file) / params;
  console.log(`# gemma3n-tiny-a q4: top-1 ${(agree / n).toFixed(3)}, mean KL ${(kl / n).toFixed(4)} over ${n} positions (llama.cpp Q4_K_M ${LLAMA_CPP_Q4_K_M_KL}); ${bpw.toFixed(3)} bits/weight (the Q4_K_M file ${fileBpw.toFixed(3)}); load ${loadMs.toFixed(0)} ms; max |Δlogit| vs the CPU reference on the GPU's weights ${refErr.toExponential(2)}`);
  assert.ok(refErr <= atol, `GPU vs CPU reference on the same weights: ${refErr} > ${atol}`);
  assert.ok(kl / n <= LLAMA_CPP_Q4_K_M_KL, `mean KL ${kl / n} > llama.cpp's Q4_K_M ${LLAMA_CPP_Q4_K_M_KL}`);
  assert.ok(bpw <= fileBpw, `${bpw} bits/weight > the Q4_K_M file's ${fileBpw}`);

  // PLE table on the GPU: every case (the multimodal one reads row 0 for its ids ≥ vocab_size_per_layer_input).
  const onGpu = await Gemma3nModel.load(ctx, ckpt, { weights: 'q4', maxContext: 128, chunk: 7, pleOnGpu: true, activations: 'f32' });
  for (const [i, gc] of golden.cases.entries()) {
    onGpu.rewind(0);
    assert.equal(maxAbsDiff2d((await onGpu.prefill(gc.input_ids, { allLogits: true }))!, all[i]), 0, `PLE on GPU, case ${gc.name}`);
  }
  onGpu.dispose();
});

test('gemma3n-tiny-a q4 decoded token by token: int8 activations do not make the KL against the golden worse', async () => {
  const ctx = await testGpu();
  const golden = loadGolden(DIR);
  const ckpt = await openSafetensorsCheckpoint(directoryFiles(DIR));
  const run = async (activations: 'f32' | 'int8') => {
    const model = await Gemma3nModel.load(ctx, ckpt, { weights: 'q4', maxContext: 128, chunk: 1, activations });
    const out: Float32Array[][] = [];
    for (const gc of golden.cases) {
      model.rewind(0);
      out.push((await model.prefill(gc.input_ids, { allLogits: true }))!);
    }
    model.dispose();
    return out;
  };
  const exact = await run('f32');
  const int8 = await run('int8');
  let klExact = 0, klInt8 = 0, between = 0, maxDiff = 0, n = 0;
  golden.cases.forEach((gc, i) => {
    maxDiff = Math.max(maxDiff, maxAbsDiff2d(exact[i], int8[i]));
    gc.logits.forEach((g, t) => {
      klExact += klDivergence(g, exact[i][t]);
      klInt8 += klDivergence(g, int8[i][t]);
      between += klDivergence(exact[i][t], int8[i][t]);
      n++;
    });
  });
  console.log(`# q4 decode, ${n} positions: mean KL vs golden f32 activations ${(klExact / n).toFixed(4)}, int8 ${(klInt8 / n).toFixed(4)}; added by int8: max |Δlogit| ${maxDiff.toFixed(3)}, mean KL(f32 ‖ int8) ${(between / n).toExponential(2)}`);
  assert.ok(klInt8 / n <= klExact / n + INT8_KL_MARGIN, `int8 activations: KL ${klInt8 / n} > f32 ${klExact / n} + ${INT8_KL_MARGIN}`);
});
