// The test command (`npm test`): every test file under test/ in Node's test runner, TypeScript through tsx,
// WebGPU through Dawn on SwiftShader where there is no GPU. Usage: node test/run.mjs [filter-substring ...]
import { spawnSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const filters = process.argv.slice(2);

function findTests(dir) {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return findTests(path);
    return name.endsWith('.test.ts') ? [relative(root, path)] : [];
  });
}

const files = findTests(join(root, 'test'))
  .filter((f) => filters.length === 0 || filters.some((s) => f.includes(s)))
  .sort();
if (files.length === 0) {
  console.error(`no test files match ${filters.join(' ')}`);
  process.exit(1);
}
// --test-timeout is a hang guard, and it also bounds each FILE as a whole: the heaviest files (the full vision tower
// twice in test/model/vision-golden.test.ts, the quick end-to-end bench) need 10-15 minutes of one core, and more
// when the machine is shared, so the guard is 30 minutes (CI stops the whole run at 90).
const result = spawnSync(
  process.execPath,
  ['--import', './scripts/register.mjs', '--test', '--test-concurrency=2', '--test-timeout=1800000', ...files],
  { cwd: root, stdio: 'inherit', env: { ...process.env, XDG_RUNTIME_DIR: process.env.XDG_RUNTIME_DIR ?? '/tmp' } },
);
process.exit(result.status ?? 1);
