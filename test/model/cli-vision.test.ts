/**
 * `gemma3n-webgpu embed-image`: its image decoding, its errors, and the whole command on a small tower (the PNG of
 * image C through the CLI equals the in-process encoder on the fixture's resized pixels). The real-size tower on
 * image C runs once per suite, in Chromium: test/e2e/vision-golden.test.ts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { readImageFile } from '../../src/node/cli-vision.ts';
import { readU8File, visionFixtureDir } from '../helpers/vision-fixture.ts';
import { tinyFixtures } from '../helpers/fixtures.ts';
import { testGpu } from '../helpers/gpu.ts';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { MEDIA_ENCODERS } from '../../src/model/registry.ts';
import { VISION_ARCHS } from '../../src/model/vision/arch.ts';
import { writeProceduralVisionCheckpoint } from '../../src/node/procedural-vision-fixture.ts';

const root = fileURLToPath(new URL('../..', import.meta.url));
const cli = (args: string[]) => spawnSync(process.execPath, ['bin/gemma3n-webgpu.mjs', ...args], { cwd: root, encoding: 'utf8', env: { ...process.env, XDG_RUNTIME_DIR: process.env.XDG_RUNTIME_DIR ?? '/tmp' } });

test('embed-image decodes PNG exactly (transformers.js RawImage: 0 levels from the fixture decode) and raw .rgb8 with --size', async () => {
  const png = await readImageFile(join(visionFixtureDir(), 'image_c.png'));
  assert.deepEqual([png.width, png.height, png.channels], [640, 480, 3]);
  const reference = readU8File('image_c.rgb8');
  assert.ok(Buffer.from(png.data).equals(Buffer.from(reference)), 'PNG decode differs from image_c.rgb8');
  const raw = await readImageFile(join(visionFixtureDir(), 'image_c.rgb8'), '640x480');
  assert.deepEqual([raw.width, raw.height, raw.channels], [640, 480, 3]);
  await assert.rejects(readImageFile(join(visionFixtureDir(), 'image_c.rgb8')), /needs --size/);
  await assert.rejects(readImageFile(join(visionFixtureDir(), 'image_c.rgb8'), '10x10'), /bytes/);
  await assert.rejects(readImageFile(join(visionFixtureDir(), 'README.md')), /cannot decode/);
});

test('embed-image errors: message on stderr, non-zero exit', () => {
  const image = join(visionFixtureDir(), 'image_c.png');
  const missing = cli(['embed-image', '--image', image]);
  assert.notEqual(missing.status, 0);
  assert.match(missing.stderr, /--model and --image are required/);
  const notDir = cli(['embed-image', '--model', image, '--image', image]);
  assert.notEqual(notDir.status, 0);
  assert.match(notDir.stderr, /checkpoint directory/);
  // A text-only checkpoint (vision_config present, no tower tensors): a typed unsupported-input error.
  const textOnly = cli(['embed-image', '--model', tinyFixtures()[0].dir, '--image', image]);
  assert.notEqual(textOnly.status, 0);
  assert.match(textOnly.stderr, /unsupported-input.*no vision tower/);
});

test('embed-image on a small tower: the PNG through the CLI gives the soft tokens the library computes in process', async () => {
  const t0 = performance.now();
  const family = MEDIA_ENCODERS.image;
  const arch = VISION_ARCHS.gemma3n_webgpu_tiny_random;
  const dir = await mkdtemp(join(tmpdir(), 'vision-cli-small-'));
  try {
    await writeProceduralVisionCheckpoint(dir, arch, 96);
    const out = join(dir, 'tokens.f32');
    const r = cli(['embed-image', '--model', dir, '--image', join(visionFixtureDir(), 'image_c.png'), '--out', out]);
    assert.equal(r.status, 0, r.stderr);
    const summary = JSON.parse(r.stdout) as { shape: number[]; out: string; image: { width: number; height: number } };
    assert.deepEqual([summary.shape, summary.out, summary.image], [[256, 96], out, { width: 640, height: 480 }]);
    const got = new Float32Array(new Uint8Array(readFileSync(out)).buffer);
    const encoder = await family.loadWith(await testGpu(), family.procedural.checkpoint(arch, 96));
    try {
      const expected = (await encoder.encode(family.pixelValuesFromRgb(readU8File('image_c_resized.rgb8'), 768, 768))).softTokens;
      assert.deepEqual(got, expected, 'the CLI (PNG decode + our resize) = in-process on image_c_resized.rgb8, bit for bit');
    } finally {
      encoder.destroy();
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
  console.log(`# embed-image small tower: ${((performance.now() - t0) / 1000).toFixed(1)} s`);
});
