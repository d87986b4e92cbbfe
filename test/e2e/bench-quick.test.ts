// The end-to-end benchmark runs in CI in its short mode, shortened further: `npm run bench -- --quick --decode-tokens 2
// --long-context 64 --json FILE` (real E2B per-layer dimensions and the real 262,400-row vocabulary, one layer, a
// 32-token prompt, random int4/int8 codes written on the GPU), and its report is complete and sane, constrained
// decoding included. The test checks that the bench runs and reports every field, not its numbers: 2 decode tokens
// (not --quick's 4) and a long context of 64 (not 128) exercise the same code, and each decode token costs ~6 s of
// SwiftShader here (the real LM head, 441 MB of q6k). The published --quick numbers (README) use the defaults.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { REPO_ROOT } from '../helpers/browser.ts';
import { TEST_SCHEMAS } from '../runtime/constrained/schemas.ts';

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

test('bench/e2e.ts --quick (1 layer, full vocabulary) runs and reports prefill, TTFT, decode, memory and the roofline', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'gemma-bench-'));
  try {
    const json = join(dir, 'e2e.json');
    const r = await run(['--quick', '--decode-tokens', '2', '--long-context', '64', '--json', json]);
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
      assert.equal(d.tokens, 2, 'the --decode-tokens override');
      assert.ok(d.tokensPerSecond > 0 && d.rooflinePercent > 0, JSON.stringify(d));
      // One E2B layer (the Q4_K_M mix: q4k attention + MLP, q6k v/down in a more-bits layer ≈ 40 MB) + AltUp (q8,
      // 6 × 4.2 MB) + the LM head (q6k, 262,400 × 2048 × 6.5625 bits ≈ 441 MB): 508 MB measured.
      assert.ok(d.bytesPerToken.weights > 470e6 && d.bytesPerToken.weights < 560e6, `weights/token ${d.bytesPerToken.weights}`);
    }
    assert.ok(report.decode[1].bytesPerToken.kvCache > report.decode[0].bytesPerToken.kvCache, 'the long context reads more KV');
    assert.equal(report.vocabSize, 262400);
    assert.match(r.stdout, /--quick: prompt 32 tokens/);
    assert.match(r.stdout, /roofline ceiling = best streaming-read kernel/);
    assert.ok(report.memory.gpu.total > 550e6, `GPU bytes ${report.memory.gpu.total}`); // 599 MB measured (weights 508 MB)
    // Constrained decoding in the same run: mask times per test schema beside this model's decode steps.
    assert.match(r.stdout, /Constrained decoding, same run/);
    assert.equal(report.constrained.masks.length, Object.keys(TEST_SCHEMAS).length, 'one row per test schema');
    for (const m of report.constrained.masks) assert.ok(m.tokens > 0 && m.maskMedianMs > 0 && m.maskP95Ms >= m.maskMedianMs, JSON.stringify(m));
    assert.ok(report.constrained.plainStepMs > 0 && report.constrained.constrainedStepMs > 0 && report.constrained.stepMaskMedianMs > 0, JSON.stringify(report.constrained));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
