/**
 * The CLI's audio commands (src/node/cli-audio.ts through bin/gemma3n-webgpu.mjs), the interface outside checks use:
 * audio-features on a fixture clip (exact frame count, features within the fixture tolerance, the file written),
 * with resampling at 44.1 kHz; embed-audio from features + mask on the tiny tower (soft tokens within 1e-4 of HF);
 * errors on stderr with a non-zero exit.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fixtureDir } from '../helpers/fixtures.ts';
import { assertClose } from '../helpers/compare.ts';

const root = fileURLToPath(new URL('../..', import.meta.url));
const cli = (args: string[]) => spawnSync(process.execPath, ['bin/gemma3n-webgpu.mjs', ...args], { cwd: root, encoding: 'utf8', env: { ...process.env, XDG_RUNTIME_DIR: process.env.XDG_RUNTIME_DIR ?? '/tmp' } });
const tmp = mkdtempSync(join(tmpdir(), 'gemma-cli-audio-'));
const f32 = (path: string) => {
  const b = readFileSync(path);
  return new Float32Array(b.buffer, b.byteOffset, b.byteLength / 4).slice();
};
const features = fixtureDir('gemma3n-audio-features', ['golden.json', 'w2.wave.f32', 'w2.features.f32']);
const tiny = fixtureDir('gemma3n-audio-tiny', ['golden.json', 'config.json', 'model.safetensors']);

test('cli audio-features: w2 (the 512-vs-513 framing clip) gives 100 frames within tolerance; 44.1 kHz input is resampled', () => {
  const out = join(tmp, 'w2.f32');
  const r = cli(['audio-features', '--wave', join(features, 'w2.wave.f32'), '--sample-rate', '16000', '--out', out]);
  assert.equal(r.status, 0, r.stderr);
  const res = JSON.parse(r.stdout) as { frames: number; bins: number; resampled: boolean };
  assert.equal(res.frames, 100);
  assert.equal(res.bins, 128);
  assert.equal(res.resampled, false);
  assertClose(f32(out), f32(join(features, 'w2.features.f32')), { atol: 2e-3 });

  // One second at 44.1 kHz: 16,000 samples after resampling -> (16000 - 513) // 160 + 1 = 97 frames.
  const wave = new Float32Array(44100).map((_, i) => 0.5 * Math.sin((2 * Math.PI * 440 * i) / 44100));
  writeFileSync(join(tmp, 'tone.f32'), new Uint8Array(wave.buffer));
  const r2 = cli(['audio-features', '--wave', join(tmp, 'tone.f32'), '--sample-rate', '44100']);
  assert.equal(r2.status, 0, r2.stderr);
  const res2 = JSON.parse(r2.stdout) as { frames: number; samples: number; resampled: boolean };
  assert.deepEqual([res2.frames, res2.samples, res2.resampled], [97, 16000, true]);
});

test('cli embed-audio --features --mask: the tiny tower soft tokens within 1e-4 of HF', () => {
  const g = JSON.parse(readFileSync(join(tiny, 'golden.json'), 'utf8')) as { audio_input: { input_features: number[][]; input_features_mask: boolean[] }; audio_soft_tokens: number[][] };
  writeFileSync(join(tmp, 'feat.f32'), new Uint8Array(Float32Array.from(g.audio_input.input_features.flat()).buffer));
  writeFileSync(join(tmp, 'mask.u8'), Uint8Array.from(g.audio_input.input_features_mask, (v) => (v ? 1 : 0)));
  const out = join(tmp, 'tokens.f32');
  const r = cli(['embed-audio', '--model', tiny, '--features', join(tmp, 'feat.f32'), '--mask', join(tmp, 'mask.u8'), '--weights', 'f32', '--out', out]);
  assert.equal(r.status, 0, r.stderr);
  const res = JSON.parse(r.stdout) as { shape: number[]; valid: number[] };
  assert.deepEqual(res.shape, [7, 64]);
  assert.deepEqual(res.valid, [1, 1, 1, 1, 1, 1, 0]);
  assertClose(f32(out), g.audio_soft_tokens.flat(), { atol: 1e-4 });
});

test('cli audio errors: message on stderr, non-zero exit', () => {
  const r = cli(['embed-audio', '--model', tiny, '--wave', join(features, 'w2.wave.f32')]);
  assert.notEqual(r.status, 0);
  assert.match(r.stderr, /--sample-rate/);
  const r2 = cli(['audio-features', '--wave', join(tmp, 'missing.f32'), '--sample-rate', '16000']);
  assert.notEqual(r2.status, 0);
  assert.match(r2.stderr, /missing\.f32/);
  const r3 = cli(['embed-audio', '--model', tiny, '--features', join(features, 'w2.wave.f32'), '--wave', 'x']);
  assert.notEqual(r3.status, 0);
  assert.match(r3.stderr, /exactly one/);
});
