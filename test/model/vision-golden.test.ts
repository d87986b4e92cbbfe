/**
 * The whole vision path against the gemma3n-vision-procedural goldens (its README, "How to check an
 * implementation"): the procedural checkpoint, written as bf16 safetensors and read by the ordinary loader, through
 * the MobileNet-V5 tower and embed_vision on our kernels, for images A, B and C. This is the suite's one run of the
 * full tower in Node (~436 GMAC per image, minutes each on SwiftShader), once per image: A and B here, C in Chromium
 * (test/e2e/vision-golden.test.ts); everything else uses small random shapes.
 *
 * Tolerances (README "Tolerance"): features max abs <= 4e-5, soft tokens <= 5e-5: 4x the worst float32-vs-float64
 * difference of the reference (a correct float32 implementation differs from the float32 goldens by about as much
 * as float32 differs from float64). Weights are stored bf16 on the GPU, which is lossless here (the procedural
 * values are bf16), so the bounds apply unchanged.
 */
import { before, after, test } from 'node:test';
import assert from 'node:assert/strict';
import { testGpu } from '../helpers/gpu.ts';
import { assertWithin } from '../helpers/vision-ref.ts';
import { proceduralVisionSafetensors, readF32File, readU8File } from '../helpers/vision-fixture.ts';
import { VisionEncoder } from '../../src/model/vision/encoder.ts';
import { pixelValuesFromRgb, resizeBilinearPillow } from '../../src/model/vision/preprocess.ts';

const FEATURES_ATOL = 4e-5;
const TOKENS_ATOL = 5e-5;
// One image through the full tower takes ~2-4 minutes on 2 free cores with SwiftShader; the shared CI machine can
// be several times slower.
const IMAGE_TIMEOUT = 60 * 60_000;

let encoder: Promise<VisionEncoder> | undefined;

before(() => proceduralVisionSafetensors(), { timeout: 15 * 60_000 }); // writes the cached checkpoint if missing

/** Loaded on first use. */
function inProcessEncoder(): Promise<VisionEncoder> {
  encoder ??= (async () => VisionEncoder.load(await testGpu(), (await proceduralVisionSafetensors()).checkpoint, { weights: 'bf16' }))();
  return encoder;
}

after(async () => (await encoder)?.destroy());

/** Our features are channels last [256, 2048]; the golden's are [2048, 16, 16]. */
function featuresChw(hwc: Float32Array, channels = 2048, pixels = 256): Float32Array {
  const out = new Float32Array(hwc.length);
  for (let p = 0; p < pixels; p++) for (let c = 0; c < channels; c++) out[c * pixels + p] = hwc[p * channels + c];
  return out;
}

async function checkImage(name: 'a' | 'b', rgbFile: string) {
  const enc = await inProcessEncoder();
  const t0 = performance.now();
  const { features, softTokens } = await enc.encode(pixelValuesFromRgb(readU8File(rgbFile), 768, 768));
  const seconds = (performance.now() - t0) / 1000;
  const fErr = assertWithin(featuresChw(features), readF32File(`${name}.features.f32`), FEATURES_ATOL, `image ${name} features`);
  const tErr = assertWithin(softTokens, readF32File(`${name}.soft_tokens.f32`), TOKENS_ATOL, `image ${name} soft tokens`);
  console.log(`# image ${name}: features max abs err ${fErr.toExponential(2)}, soft tokens ${tErr.toExponential(2)} (${seconds.toFixed(0)} s)`);
}

test('vision golden: image A features and soft tokens', { timeout: IMAGE_TIMEOUT }, () => checkImage('a', 'image_a.rgb8'));

test('vision golden: image B features and soft tokens', { timeout: IMAGE_TIMEOUT }, () => checkImage('b', 'image_b.rgb8'));

// Image C (the PNG through the library's own decode and resize, then the tower) runs once per suite, in Chromium
// through loadGemma() and the shipped worker: test/e2e/vision-golden.test.ts. The CLI's embed-image runs on a small
// tower in test/model/cli-vision.test.ts.
test('vision golden: image C resized Pillow-exactly (0 levels from image_c_resized.rgb8)', () => {
  const resized = resizeBilinearPillow(readU8File('image_c.rgb8'), 640, 480, 3, 768, 768);
  const reference = readU8File('image_c_resized.rgb8');
  let differing = 0;
  for (let i = 0; i < reference.length; i++) if (resized[i] !== reference[i]) differing++;
  assert.equal(differing, 0, 'resized image C differs from Pillow in some values');
});
