/**
 * MatFormer sub-models of gemma3n-tiny-a on the GPU, cut at load time (src/model/gemma3n/matformer.ts) and loaded
 * by the unchanged Gemma 3n loader, against gemma3n-matformer-tiny-a's goldens (its README: float64, fp32 atol 1e-3,
 * argmax compared where top2_margin > 2e-3). One process, prefill chunk 64 (chunking is forward-float's subject).
 *
 * For each slice (identity, skip4: a KV-shared layer skipped plus narrower widths, widths: FFN prefixes only):
 * - float from safetensors: logits of both cases within 1e-3, argmax equal where the margin allows, the 12-token
 *   greedy continuation (fused GPU argmax, KV cache) identical;
 * - q4 from safetensors: equals the float64 CPU reference run on the same sliced weights quantized as the loader
 *   quantizes them (gate/up/down of the slice, the kept PLE columns re-grouped), to the golden atol — the pattern of
 *   forward-quantized.test.ts, which isolates kernel error from (large, expected) quantization error.
 * The same slices from llama.cpp's GGUFs of tiny-a (float mode, case `long`):
 * - F32 (skip4, widths) and BF16 (skip4): the file holds the checkpoint's values, so the logits equal the
 *   safetensors slice's to float rounding (1e-5) — and hence the goldens;
 * - Q8_0 (skip4: the PLE table's 16-column groups straddle its 32-blocks and are requantized to q8) and Q4_0 (widths:
 *   ffn_down prefixes repack losslessly): equal the CPU reference on exactly the weights the GPU holds,
 *   i.e. they differ from the goldens only by the file's own quantization noise. Tolerance per position: the atol, or
 *   10× the position's float32 sensitivity where that is larger. The quantized models are chaotic in places: at
 *   position 38 of `long`, multiplying every Q4_0 weight by (1 ± 2⁻²⁴) — half an f32 ulp — moves the exact float64
 *   reference by 7.4e-4 (widths slice; 3.2e-4 skip4; median position 6e-6), so an f32 GPU cannot be held closer
 *   than a few times that there (measured GPU error 2.5e-3 at that position, ≤ 8e-5 elsewhere). The sensitivity is
 *   measured in the test by exactly that perturbation;
 * - Q4_K_M: identity (its layer-3 ffn_down is Q4_K, 256-value blocks: the other slices cut it to 128 and are
 *   refused, tested in matformer-slice.test.ts).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { readFileSync } from 'node:fs';
import { openSafetensorsCheckpoint } from '../../src/io/safetensors.ts';
import { directoryFiles } from '../../src/node/checkpoint-files.ts';
import { fileSource } from '../../src/node/file-source.ts';
import { openGgufCheckpoint } from '../../src/model/registry.ts';
import { parseGemma3nConfig } from '../../src/model/gemma3n/config.ts';
import { Gemma3nModel } from '../../src/model/gemma3n/model.ts';
import { sliceGemma3n } from '../../src/model/gemma3n/matformer.ts';
import type { Checkpoint } from '../../src/io/checkpoint.ts';
import type { Gemma3nConfig } from '../../src/model/gemma3n/config.ts';
import { testGpu } from '../helpers/gpu.ts';
import { fixtureDir, maxAbsDiff2d, argmax } from '../helpers/fixtures.ts';
import { loadRefWeights, referenceForward, type RefWeights } from '../helpers/reference-gemma3n.ts';
import { gpuEquivalentWeights, recordHeldWeights } from '../helpers/quantized-reference.ts';

interface SliceCase {
  name: string;
  input_ids: number[];
  logits: number[][];
  argmax: number[];
  top2_margin: number[];
}
interface SliceGolden {
  name: string;
  skip_layers: number[];
  ffn_widths: number[];
  cases: SliceCase[];
  greedy: { prompt_ids: number[]; generated_ids: number[] };
}

/** The README's tolerance for a float32 implementation, and the margin above which argmax must agree. */
const ATOL = 1e-3;
const ARGMAX_MARGIN = 2e-3;
const CHUNK = 64;

const tinyDir = fixtureDir('gemma3n-tiny-a', ['model.safetensors', 'config.json']);
const slices = (JSON.parse(readFileSync(join(fixtureDir('gemma3n-matformer-tiny-a', ['golden.json']), 'golden.json'), 'utf8')) as { slices: SliceGolden[] }).slices;
const ggufDir = fixtureDir('gguf-gemma3n-tiny-a', ['gemma3n-tiny-a-F32.gguf']);
assert.deepEqual(slices.map((s) => s.name), ['identity', 'skip4', 'widths']);

const sizeOf = (s: SliceGolden) => ({ skipLayers: s.skip_layers, ffnWidths: s.ffn_widths });
const longCase = (s: SliceGolden) => s.cases.find((c) => c.name === 'long')!;
const load = async (ckpt: Checkpoint, weights: 'float' | 'q4') => Gemma3nModel.load(await testGpu(), ckpt, { weights, maxContext: 64, chunk: CHUNK });
const prefill = async (model: Gemma3nModel, ids: number[]) => {
  model.rewind(0);
  return (await model.prefill(ids, { allLogits: true }))!;
};

/**
 * Per position, how far the float64 reference's logits move when every weight is multiplied by (1 + u), u uniform
 * in ±2⁻²⁴ (half an f32 ulp, deterministic): the float32 conditioning of the model at that position.
 */
function f32Sensitivity(cfg: Gemma3nConfig, w: RefWeights, ids: number[], ref: ArrayLike<number>[]): number[] {
  let x = 12345;
  const u = () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return ((x >>> 0) / 4294967296 - 0.5) * 2 ** -23;
  };
  const perturbed = referenceForward(cfg, new Map([...w].map(([n, v]) => [n, v.map((a) => a * (1 + u()))])), ids).logits;
  return ref.map((row, t) => maxAbsDiff2d([row], [perturbed[t]]));
}

/** The safetensors float slices' logits of case `long`, for the GGUF comparisons. */
const floatLong = new Map<string, Float32Array[]>();

for (const s of slices) {
  test(`${s.name} float (safetensors): logits within ${ATOL}, argmax, 12-token greedy continuation`, async () => {
    const { checkpoint } = sliceGemma3n(await openSafetensorsCheckpoint(directoryFiles(tinyDir)), sizeOf(s));
    const model = await load(checkpoint, 'float');
    try {
      for (const gc of s.cases) {
        const logits = await prefill(model, gc.input_ids);
        if (gc.name === 'long') floatLong.set(s.name, logits);
        const err = maxAbsDiff2d(logits, gc.logits);
        console.log(`# ${s.name} float ${gc.name}: max |Δlogit| ${err.toExponential(2)}`);
        assert.ok(err <= ATOL, `${s.name} ${gc.name}: max |Δlogit| ${err} > ${ATOL}`);
        gc.argmax.forEach((a, t) => {
          if (gc.top2_margin[t] > ARGMAX_MARGIN) assert.equal(argmax(logits[t]), a, `${s.name} ${gc.name}: argmax at ${t}`);
        });
      }
      model.rewind(0);
      const greedy = { temperature: 0, allowMultimodal: true }; // HF greedy: argmax over every id
      const got = [await model.feedAndSample(s.greedy.prompt_ids, greedy)];
      while (got.length < s.greedy.generated_ids.length) got.push(await model.feedAndSample([got.at(-1)!], greedy));
      assert.deepEqual(got, s.greedy.generated_ids, `${s.name}: greedy continuation`);
    } finally {
      model.dispose();
    }
  });

  test(`${s.name} q4 (safetensors) == CPU reference on the same sliced q4 weights`, async () => {
    const { checkpoint } = sliceGemma3n(await openSafetensorsCheckpoint(directoryFiles(tinyDir)), sizeOf(s));
    const { onConverted, overlay } = recordHeldWeights(await testGpu());
    const model = await Gemma3nModel.load(await testGpu(), checkpoint, { weights: 'q4', maxContext: 64, chunk: CHUNK, onConverted });
    try {
      const cfg = parseGemma3nConfig(checkpoint.config);
      const qw = overlay(await loadRefWeights(checkpoint));
      let err = 0;
      for (const gc of s.cases) err = Math.max(err, maxAbsDiff2d(await prefill(model, gc.input_ids), referenceForward(cfg, qw, gc.input_ids).logits));
      console.log(`# ${s.name} q4: max |Δlogit| vs the CPU reference on the same quantized weights ${err.toExponential(2)}`);
      assert.ok(err <= ATOL, `${s.name} q4 vs CPU reference: ${err} > ${ATOL}`);
    } finally {
      model.dispose();
    }
  });
}

/**
 * Each container path once: F32 / BF16 column reads of floats, Q8_0's PLE groups re-blocked (skip4), Q4_0's ffn_down
 * prefixes repacked (widths), a K-quant file through the view (identity); the K-quant refusals are in
 * matformer-slice.test.ts.
 */
const GGUF_RUNS: Array<[type: string, slice: string]> = [
  ['F32', 'skip4'], ['F32', 'widths'], ['BF16', 'skip4'], ['Q8_0', 'skip4'], ['Q4_0', 'widths'], ['Q4_K_M', 'identity'],
];

for (const [type, sliceName] of GGUF_RUNS) {
  const s = slices.find((x) => x.name === sliceName)!;
  test(`GGUF ${type}, slice ${sliceName} (float mode, case long)`, async () => {
    const gguf = await openGgufCheckpoint(fileSource(join(ggufDir, `gemma3n-tiny-a-${type}.gguf`)));
    const { checkpoint } = sliceGemma3n(gguf, sizeOf(s));
    const model = await load(checkpoint, 'float');
    try {
      const gc = longCase(s);
      const logits = await prefill(model, gc.input_ids);
      const vsGolden = maxAbsDiff2d(logits, gc.logits);
      if (type === 'F32' || type === 'BF16') {
        const reference = floatLong.get(sliceName);
        assert.ok(reference, 'the safetensors float test of this slice runs first');
        const vsSafetensors = maxAbsDiff2d(logits, reference);
        console.log(`# GGUF ${type} ${sliceName}: max |Δlogit| vs the safetensors slice ${vsSafetensors.toExponential(2)}, vs golden ${vsGolden.toExponential(2)}`);
        assert.ok(vsSafetensors <= 1e-5, `${type} ${sliceName}: ${vsSafetensors} from the safetensors slice`);
        assert.ok(vsGolden <= ATOL);
        return;
      }
      const cfg = parseGemma3nConfig(checkpoint.config);
      const w = await gpuEquivalentWeights(checkpoint);
      const ref = referenceForward(cfg, w, gc.input_ids).logits;
      const errors = logits.map((row, t) => maxAbsDiff2d([row], [ref[t]]));
      // (Measured only where the atol alone is not met: a second reference run costs seconds.)
      const sensitivity = errors.some((e) => e > ATOL) ? f32Sensitivity(cfg, w, gc.input_ids, ref) : errors.map(() => 0);
      let worst = 0;
      errors.forEach((err, t) => {
        const tol = Math.max(ATOL, 10 * sensitivity[t]);
        worst = Math.max(worst, err / tol);
        assert.ok(err <= tol, `${type} ${sliceName}, position ${t}: GPU vs CPU reference on the same weights ${err} > ${tol} (f32 sensitivity ${sensitivity[t]})`);
      });
      console.log(`# GGUF ${type} ${sliceName}: max |Δlogit| vs the CPU reference on the same weights ${maxAbsDiff2d(logits, ref).toExponential(2)}, worst error/tolerance ${worst.toFixed(2)} (vs golden ${vsGolden.toFixed(2)}: the file's quantization noise)`);
    } finally {
      model.dispose();
    }
  });
}
