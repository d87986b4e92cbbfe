/**
 * `gemma3n-webgpu embed-image`: its image decoding and its errors. The full command on a real-size tower runs once,
 * on the fixture's image C, in test/model/vision-golden.test.ts (minutes on SwiftShader).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { readImageFile } from '../../src/node/cli-vision.ts';
import { readU8File, visionFixtureDir } from '../helpers/vision-fixture.ts';
import { tinyFixtures } from '../helpers/fixtures.ts';

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
