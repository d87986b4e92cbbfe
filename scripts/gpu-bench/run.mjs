// gpu-bench driver (run by run.sh with the bundled Node): the adapter's name, features and limits, then the kernel
// bench and the end-to-end bench (bundled from bench/kernels.ts and bench/e2e.ts), each in its own process with a
// time cap, so that the whole run ends inside `--budget` seconds (default 540). Prints one JSON object on stdout
// (also written to --out FILE); the benches' tables go to stderr as they come.
//   --quick       the benches' short modes (CI/SwiftShader size: one layer, short prompts)
//   --allow-cpu   run on a fallback (CPU) adapter too; without it the run stops when no real GPU is found
//   --skip-kernels / --skip-e2e
//   -- ARGS       passed on to the e2e bench (e.g. -- --layers 4 --vocab 8192)
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const argv = process.argv.slice(2);
const dash = argv.indexOf('--');
const own = dash >= 0 ? argv.slice(0, dash) : argv;
const passOn = dash >= 0 ? argv.slice(dash + 1) : [];
const value = (k) => (own.includes(k) ? own[own.indexOf(k) + 1] : undefined);
const quick = own.includes('--quick');
const budgetS = Number(value('--budget') ?? 540);
const out = value('--out');
const started = Date.now();
const work = mkdtempSync(join(tmpdir(), 'gpu-bench-'));
const manifest = JSON.parse(readFileSync(join(here, 'manifest.json'), 'utf8'));
const log = (s) => process.stderr.write(`[gpu-bench ${((Date.now() - started) / 1000).toFixed(0)} s] ${s}\n`);

/** Runs a bundled bench; resolves with its exit code, stdout and whether it was stopped at `capS`. */
function runBench(file, args, capS) {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [join(here, 'bench', file), ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
    let stdout = '';
    child.stdout.on('data', (d) => {
      stdout += d;
      process.stderr.write(d);
    });
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, Math.max(1, capS) * 1000);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, timedOut });
    });
  });
}

const report = { bundle: manifest, quick, startedAt: new Date(started).toISOString(), env: { VK_ICD_FILENAMES: process.env.VK_ICD_FILENAMES ?? null, VK_DRIVER_FILES: process.env.VK_DRIVER_FILES ?? null } };
const left = () => budgetS - (Date.now() - started) / 1000;
const finish = (code) => {
  report.totalSeconds = (Date.now() - started) / 1000;
  const text = JSON.stringify(report, null, 2);
  if (out) writeFileSync(out, text + '\n');
  process.stdout.write(text + '\n');
  process.exit(code);
};

const info = await runBench('adapter-info.js', [], 60);
try {
  report.adapter = JSON.parse(info.stdout.trim().split('\n').pop());
} catch {
  report.adapter = { error: `adapter query failed (exit ${info.code}${info.timedOut ? ', timed out' : ''})` };
}
if (!report.adapter.name) finish(2);
log(`adapter: ${report.adapter.name} (fallback ${report.adapter.isFallbackAdapter})`);
if (report.adapter.isFallbackAdapter && !own.includes('--allow-cpu')) {
  report.error = 'the adapter is a CPU fallback (no GPU Vulkan driver found): check VK_DRIVER_FILES, or pass --allow-cpu';
  finish(3);
}

const benches = [];
if (!own.includes('--skip-kernels')) benches.push(['kernels', 'kernels.js', quick ? ['--quick'] : [], 0.35]);
if (!own.includes('--skip-e2e')) benches.push(['e2e', 'e2e.js', [...(quick ? ['--quick'] : []), '--no-chromium', ...passOn], 1]);
let failed = 0;
for (const [name, file, args, share] of benches) {
  const json = join(work, `${name}.json`);
  const cap = Math.floor(left() * share) - 5;
  if (cap < 20) {
    report[name] = { error: 'skipped: no time left in the budget' };
    failed++;
    continue;
  }
  log(`${name}: up to ${cap} s`);
  const t = Date.now();
  const r = await runBench(file, [...args, '--json', json], cap);
  const seconds = (Date.now() - t) / 1000;
  if (r.code === 0 && existsSync(json)) report[name] = { seconds, ...JSON.parse(readFileSync(json, 'utf8')) };
  else {
    report[name] = { seconds, error: r.timedOut ? `stopped at its ${cap} s cap` : `exit code ${r.code}` };
    failed++;
  }
}
finish(failed ? 1 : 0);
