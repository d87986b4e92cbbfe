/**
 * The CLI (bin/gemma3n-webgpu.mjs) runs Gemma 4 exactly as Gemma 3n, through the registry: `logits` on the fixture's
 * safetensors folder (every position within the README's atol) and `generate` on a Gemma 4 GGUF written from the
 * fixture's weights (the golden 12-token greedy continuation).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { openSafetensorsCheckpoint } from '../../src/io/safetensors.ts';
import { directoryFiles } from '../../src/node/checkpoint-files.ts';
import { maxAbsDiff2d } from '../helpers/fixtures.ts';
import { gemma4Fixture } from '../helpers/gemma4-fixture.ts';
import { gemma4Gguf } from '../helpers/gemma4-gguf.ts';

const root = fileURLToPath(new URL('../..', import.meta.url));
const cli = (args: string[]) => spawnSync(process.execPath, ['bin/gemma3n-webgpu.mjs', ...args], { cwd: root, encoding: 'utf8', env: { ...process.env, XDG_RUNTIME_DIR: process.env.XDG_RUNTIME_DIR ?? '/tmp' } });
const fx = gemma4Fixture();

test('cli logits --model <gemma4 folder>: softcapped logits at every position within the atol', () => {
  const gc = fx.golden.cases[1];
  const r = cli(['logits', '--model', fx.dir, '--tokens', gc.input_ids.join(','), '--weights', 'float']);
  assert.equal(r.status, 0, r.stderr);
  const out = JSON.parse(r.stdout) as { logits: number[][] };
  assert.equal(out.logits.length, gc.input_ids.length);
  const err = maxAbsDiff2d(out.logits, gc.logits);
  assert.ok(err <= fx.golden.tolerance.recommended_atol, `max |Δlogit| ${err}`);
});

test('cli generate --model <gemma4 GGUF>: the golden greedy continuation', async () => {
  const path = join(mkdtempSync(join(tmpdir(), 'gemma4-cli-')), 'gemma4-tiny-a-F32.gguf');
  writeFileSync(path, await gemma4Gguf(await openSafetensorsCheckpoint(directoryFiles(fx.dir)), 'F32'));
  const g = fx.golden.greedy;
  const r = cli(['generate', '--model', path, '--tokens', g.prompt_ids.join(','), '--max-new-tokens', String(g.generated_ids.length), '--weights', 'float']);
  assert.equal(r.status, 0, r.stderr);
  assert.deepEqual((JSON.parse(r.stdout) as { tokens: number[] }).tokens, g.generated_ids);
});
