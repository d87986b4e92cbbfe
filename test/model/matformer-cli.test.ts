/**
 * The CLI's size flags (bin/gemma3n-webgpu.mjs): `--skip-layers` / `--ffn-widths` cut the skip4 slice of
 * gemma3n-matformer-tiny-a from the tiny-a checkpoint (logits within the fixture's 1e-3 of its golden), and a size
 * the checkpoint cannot give fails with the GemmaError's message on stderr and a non-zero exit.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { readFileSync } from 'node:fs';
import { fixtureDir, maxAbsDiff2d } from '../helpers/fixtures.ts';

const root = fileURLToPath(new URL('../..', import.meta.url));
const cli = (args: string[]) => spawnSync(process.execPath, ['bin/gemma3n-webgpu.mjs', ...args], { cwd: root, encoding: 'utf8', env: { ...process.env, XDG_RUNTIME_DIR: process.env.XDG_RUNTIME_DIR ?? '/tmp' } });
const tinyDir = fixtureDir('gemma3n-tiny-a', ['model.safetensors']);
const golden = JSON.parse(readFileSync(join(fixtureDir('gemma3n-matformer-tiny-a', ['golden.json']), 'golden.json'), 'utf8')) as {
  slices: Array<{ name: string; skip_layers: number[]; ffn_widths: number[]; cases: Array<{ name: string; input_ids: number[]; logits: number[][] }> }>;
};

test('cli logits --skip-layers --ffn-widths: the sliced model\'s logits', () => {
  const s = golden.slices.find((x) => x.name === 'skip4')!;
  const gc = s.cases.find((c) => c.name === 'short')!;
  const r = cli(['logits', '--model', tinyDir, '--tokens', gc.input_ids.join(','), '--weights', 'float', '--skip-layers', s.skip_layers.join(','), '--ffn-widths', s.ffn_widths.join(',')]);
  assert.equal(r.status, 0, r.stderr);
  const err = maxAbsDiff2d((JSON.parse(r.stdout) as { logits: number[][] }).logits, gc.logits);
  assert.ok(err <= 1e-3, `max |Δlogit| ${err}`);
});

test('cli --size / bad size flags: the error on stderr, exit 1', () => {
  const r = cli(['generate', '--model', tinyDir, '--tokens', '2,3', '--size', 'E2B']);
  assert.equal(r.status, 1);
  assert.match(r.stderr, /error \(invalid-argument\): size "E2B" is a slice of Gemma 3n E4B/);
  const r2 = cli(['logits', '--model', tinyDir, '--tokens', '2,3', '--skip-layers', '3']);
  assert.equal(r2.status, 1);
  assert.match(r2.stderr, /skips layer 3, whose K\/V cache layer 4 reads/);
  const r3 = cli(['logits', '--model', tinyDir, '--tokens', '2,3', '--ffn-widths', 'a,b']);
  assert.equal(r3.status, 1);
  assert.match(r3.stderr, /--ffn-widths a,b/);
});
