/** The CLI (bin/gemma3n-webgpu.mjs) on a tiny fixture: the exact interface outside checks use. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { tinyFixtures, maxAbsDiff2d, FIXTURES_DIR } from '../helpers/fixtures.ts';

const root = fileURLToPath(new URL('../..', import.meta.url));
const cli = (args: string[]) => spawnSync(process.execPath, ['bin/gemma3n-webgpu.mjs', ...args], { cwd: root, encoding: 'utf8', env: { ...process.env, XDG_RUNTIME_DIR: process.env.XDG_RUNTIME_DIR ?? '/tmp' } });

const fx = tinyFixtures()[0];

test('cli logits: final softcapped logits at every position, JSON on stdout', () => {
  const gc = fx.golden.cases[0];
  const r = cli(['logits', '--model', fx.dir, '--tokens', gc.input_ids.join(','), '--weights', 'float']);
  assert.equal(r.status, 0, r.stderr);
  const out = JSON.parse(r.stdout) as { logits: number[][] };
  assert.equal(out.logits.length, gc.input_ids.length);
  const err = maxAbsDiff2d(out.logits, gc.logits);
  assert.ok(err <= fx.golden.tolerance.recommended_logit_atol_for_fp32, `max |Δlogit| ${err}`);
});

const gguf = join(FIXTURES_DIR, 'gguf-gemma3n-tiny-a', 'gemma3n-tiny-a-F32.gguf');
test('cli generate --model FILE.gguf: greedy continuation of the golden prompt (short)', (t) => {
  if (!existsSync(gguf)) return t.skip('no GGUF fixture');
  // The F32 GGUF holds the checkpoint's values: its greedy continuation is the golden's (the first 4 tokens, all
  // text ids, so the missing multimodal embedders of a text GGUF do not matter).
  const g = fx.golden.greedy;
  const r = cli(['generate', '--model', gguf, '--tokens', g.prompt_ids.join(','), '--max-new-tokens', '4', '--weights', 'float']);
  assert.equal(r.status, 0, r.stderr);
  assert.deepEqual((JSON.parse(r.stdout) as { tokens: number[] }).tokens, g.generated_ids.slice(0, 4));
});

test('cli errors: message on stderr, non-zero exit', () => {
  const r = cli(['logits', '--model', '/nonexistent/model', '--tokens', '1,2']);
  assert.notEqual(r.status, 0);
  assert.match(r.stderr, /nonexistent/);
  const r2 = cli(['generate', '--model', fx.dir, '--tokens', 'a,b']);
  assert.notEqual(r2.status, 0);
  assert.match(r2.stderr, /--tokens/);
});

test('cli --help / -h: the usage on stdout, exit 0', () => {
  for (const flag of ['--help', '-h']) {
    const r = cli([flag]);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /^usage:[\s\S]*gemma3n-webgpu generate/);
  }
});
