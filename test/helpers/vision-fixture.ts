/**
 * The gemma3n-vision-procedural fixture for tests: its folder (README, goldens, images) and its procedural
 * checkpoint written as bf16 safetensors once per machine into the OS temp folder (~600 MB, generated in ~30 s;
 * several test files share it). The cache is keyed by a version and checked against the generator on open, so a
 * changed generator never reads a stale file.
 */
import { existsSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fixtureDir } from './fixtures.ts';
import { writeProceduralVisionCheckpoint } from '../../src/node/procedural-vision-fixture.ts';
import { openSafetensorsCheckpoint } from '../../src/io/safetensors.ts';
import { directoryFiles } from '../../src/node/checkpoint-files.ts';
import { proceduralVisionCheckpoint } from '../../src/model/vision/procedural.ts';
import type { Checkpoint } from '../../src/io/checkpoint.ts';

export const VISION_FIXTURE = 'gemma3n-vision-procedural';

export function visionFixtureDir(): string {
  return fixtureDir(VISION_FIXTURE, ['README.md', 'golden.json', 'tensors.tsv', 'image_a.rgb8', 'image_b.rgb8', 'image_c.png', 'image_c.rgb8', 'image_c_resized.rgb8']);
}

export function readF32File(name: string): Float32Array {
  const b = readFileSync(join(visionFixtureDir(), name));
  return new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
}

export function readU8File(name: string): Uint8Array {
  return new Uint8Array(readFileSync(join(visionFixtureDir(), name)));
}

let golden: any;
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export function visionGolden(): any {
  return (golden ??= JSON.parse(readFileSync(join(visionFixtureDir(), 'golden.json'), 'utf8')));
}

const CACHE = join(tmpdir(), 'gemma3n-webgpu-vision-procedural-v1');

async function sameAsGenerator(ckpt: Checkpoint): Promise<boolean> {
  const gen = proceduralVisionCheckpoint();
  for (const name of ['model.vision_tower.timm_model.conv_stem.conv.weight', 'model.embed_vision.soft_embedding_norm.weight']) {
    const [a, b] = await Promise.all([ckpt.read(name), gen.read(name)]);
    if (a.bytes.length !== b.bytes.length || a.bytes.some((v, i) => v !== b.bytes[i])) return false;
  }
  return true;
}

/** The procedural checkpoint opened from its cached safetensors copy (written first when missing or stale). */
export async function proceduralVisionSafetensors(): Promise<{ dir: string; checkpoint: Checkpoint }> {
  if (existsSync(join(CACHE, 'model.safetensors')) && existsSync(join(CACHE, 'config.json'))) {
    const checkpoint = await openSafetensorsCheckpoint(directoryFiles(CACHE)).catch(() => undefined);
    if (checkpoint && (await sameAsGenerator(checkpoint))) return { dir: CACHE, checkpoint };
  }
  await writeProceduralVisionCheckpoint(CACHE);
  return { dir: CACHE, checkpoint: await openSafetensorsCheckpoint(directoryFiles(CACHE)) };
}

/** HF pixel_values [3, 768, 768] of a 768x768 RGB file of the fixture. */
export function fixturePixels(rgbFile: string): Uint8Array {
  return readU8File(rgbFile);
}
