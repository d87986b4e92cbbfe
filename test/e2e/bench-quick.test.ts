// The end-to-end benchmark runs in CI in its short mode: `npm run bench -- --quick --layers 1 --vocab 16384 --json FILE`
// (real E2B per-layer dimensions, one layer, the vocabulary cut so SwiftShader finishes in minutes, random int4
// weights drawn on the GPU), and its report is complete and sane.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { REPO_ROOT } from '../helpers/browser.ts';

function run(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', './scripts/register.mjs', 'bench/e2e.ts', ...args], {
      cwd: REPO_ROOT,
      env: { ...process.env, XDG_RUNTIME_DIR: process.env.XDG_RUNTIME_DIR ?? '/tmp' },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

test('bench/e2e.ts --quick --layers 1 --vocab 16384 runs and reports prefill, TTFT, decode, memory and the roofline', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'gemma-bench-'));
  try {
    const json = join(dir, 'e2e.json');
    const r = await run(['--quick', '--layers', '1', '--vocab', '16384', '--json', json]);
    assert.equal(r.code, 0, `bench failed:\n${r.stderr}\n${r.stdout}`);
    for (const line of r.stdout.trim().split('\n')) t.diagnostic(line);
    assert.match(r.stdout, /1 of 30 layers \(--layers: every per-layer dimension real/);
    assert.match(r.stdout, /\| prefill \| tokens\/s \| time to first token \|/);
    assert.match(r.stdout, /% of roofline/);
    const report = JSON.parse(await readFile(json, 'utf8'));
    assert.equal(report.layers, 1);
    assert.equal(report.realLayers, 30);
    assert.ok(report.bandwidth.readBytesPerSecond > 0);
    assert.deepEqual(report.prefill.map((p: { promptTokens: number }) => p.promptTokens), [32]);
    for (const p of report.prefill) assert.ok(p.tokensPerSecond > 0 && p.timeToFirstTokenMs > 0);
    assert.equal(report.decode.length, 2);
    for (const d of report.decode) {
      assert.ok(d.tokensPerSecond > 0 && d.rooflinePercent > 0, JSON.stringify(d));
      // One E2B layer (q4 attention + MLP ≈ 39 MB) + AltUp (q8, 6 × 4.2 MB) + the cut LM head (q8, 16384 × 2048 ≈ 35 MB).
      assert.ok(d.bytesPerToken.weights > 80e6 && d.bytesPerToken.weights < 140e6, `weights/token ${d.bytesPerToken.weights}`);
    }
    assert.ok(report.decode[1].bytesPerToken.kvCache > report.decode[0].bytesPerToken.kvCache, 'the long context reads more KV');
    assert.equal(report.vocabSize, 16384);
    assert.ok(report.memory.gpu.total > 80e6, `GPU bytes ${report.memory.gpu.total}`);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
