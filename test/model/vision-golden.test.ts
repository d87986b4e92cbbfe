/**
 * The whole vision path against the gemma3n-vision-procedural goldens (its README, "How to check an
 * implementation"): the procedural checkpoint, written as bf16 safetensors and read by the ordinary loader, through
 * the MobileNet-V5 tower and embed_vision on our kernels, for images A, B and C. This is the suite's one run of the
 * full tower (~436 GMAC per image, minutes each on SwiftShader); everything else uses small random shapes. Image C
 * goes through the command line (`embed-image` on the PNG), which is the interface outside checks use.
 *
 * Tolerances (README "Tolerance"): features max abs <= 4e-5, soft tokens <= 5e-5: 4x the worst float32-vs-float64
 * difference of the reference (a correct float32 implementation differs from the float32 goldens by about as much
 * as float32 differs from float64). Weights are stored bf16 on the GPU, which is lossless here (the procedural
 * values are bf16), so the bounds apply unchanged.
 */
import { before, after, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { testGpu } from '../helpers/gpu.ts';
import { assertWithin } from '../helpers/vision-ref.ts';
import { proceduralVisionSafetensors, readF32File, readU8File, visionFixtureDir, visionGolden } from '../helpers/vision-fixture.ts';
import { VisionEncoder } from '../../src/model/vision/encoder.ts';
import { pixelValuesFromRgb, resizeBilinearPillow } from '../../src/model/vision/preprocess.ts';

const FEATURES_ATOL = 4e-5;
const TOKENS_ATOL = 5e-5;
// One image through the full tower takes ~2-4 minutes on 2 free cores with SwiftShader; the shared CI machine can
// be several times slower.
const IMAGE_TIMEOUT = 60 * 60_000;

let encoder: Promise<VisionEncoder> | undefined;

before(() => proceduralVisionSafetensors(), { timeout: 15 * 60_000 }); // writes the cached checkpoint if missing

/** Loaded on first use (image C runs through the CLI, which loads its own). */
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

test('vision golden: image C through the CLI (PNG decode, Pillow-exact resize, tower): features, first 64 soft tokens, per-token checksums', { timeout: IMAGE_TIMEOUT }, async () => {
  // The resize alone first: a mismatch here explains any difference below.
  const resized = resizeBilinearPillow(readU8File('image_c.rgb8'), 640, 480, 3, 768, 768);
  const reference = readU8File('image_c_resized.rgb8');
  let differing = 0;
  for (let i = 0; i < reference.length; i++) if (resized[i] !== reference[i]) differing++;
  assert.equal(differing, 0, 'resized image C differs from Pillow in some values');

  // The command outside checks use, on the PNG: its decoder (test/model/cli-vision.test.ts checks it alone), our
  // resize and rescale, the encoder loaded again from the same safetensors.
  const dir = await mkdtemp(join(tmpdir(), 'vision-cli-'));
  try {
    const out = join(dir, 'c.soft_tokens.f32');
    const featuresFile = join(dir, 'c.features.f32');
    const { dir: model } = await proceduralVisionSafetensors();
    const r = spawnSync(process.execPath, ['bin/gemma3n-webgpu.mjs', 'embed-image', '--model', model, '--image', join(visionFixtureDir(), 'image_c.png'), '--out', out, '--features', featuresFile], {
      cwd: fileURLToPath(new URL('../..', import.meta.url)),
      encoding: 'utf8',
      env: { ...process.env, XDG_RUNTIME_DIR: process.env.XDG_RUNTIME_DIR ?? '/tmp' },
    });
    assert.equal(r.status, 0, r.stderr);
    const summary = JSON.parse(r.stdout) as { shape: number[]; out: string };
    assert.deepEqual(summary.shape, [256, 2048]);
    assert.equal(summary.out, out);
    const softTokens = new Float32Array(new Uint8Array(readFileSync(out)).buffer);
    const features = new Float32Array(new Uint8Array(readFileSync(featuresFile)).buffer);
    assert.equal(softTokens.length, 256 * 2048);
    const fErr = assertWithin(features, readF32File('c.features.f32'), FEATURES_ATOL, 'image c features');
    const first = readF32File('c.soft_tokens.f32');
    const tErr = assertWithin(softTokens.subarray(0, first.length), first, TOKENS_ATOL, 'image c first 64 soft tokens');
    // Checksums of all 256 tokens (float64 sums over each token's 2048 values of the float32 goldens): each value
    // is within 5e-5, so a token's sum is within 2048 * 5e-5 and its sum of squares within 2048 * 5e-5 * (2 |x| +
    // 5e-5) <= 2048 * 5e-5 * 8 (|x| < 3.9).
    const { token_sum: sums, token_sum_sq: sumSqs } = visionGolden().outputs.c.soft_tokens;
    const D = 2048;
    const ours = { sum: [] as number[], sq: [] as number[] };
    for (let t = 0; t < 256; t++) {
      let s = 0, q = 0;
      for (let i = 0; i < D; i++) {
        const v = softTokens[t * D + i];
        s += v;
        q += v * v;
      }
      ours.sum.push(s);
      ours.sq.push(q);
    }
    assertWithin(ours.sum, sums, D * TOKENS_ATOL, 'image c token sums');
    assertWithin(ours.sq, sumSqs, D * TOKENS_ATOL * 8, 'image c token sums of squares');
    console.log(`# image c (CLI): features max abs err ${fErr.toExponential(2)}, first 64 soft tokens ${tErr.toExponential(2)}; ${r.stdout.trim()}`);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
