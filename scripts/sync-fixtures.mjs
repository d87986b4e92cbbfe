// `npm run fixtures:sync`: copies ../shared/fixtures (the source of truth, beside the repo) and the docs the code
// cites (../shared/docs) into test/fixtures/ and docs/, so any clone runs the tests. Prints what changed.
import { cpSync, existsSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { compareTrees } from './tree-diff.mjs';

const root = fileURLToPath(new URL('..', import.meta.url));
const pairs = [
  [join(root, '../shared/fixtures'), join(root, 'test/fixtures')],
  [join(root, '../shared/docs'), join(root, 'docs'), ['DESIGN.md', 'gemma3n-formats.md']],
];
for (const [from, to, only] of pairs) {
  if (!existsSync(from)) {
    console.error(`${from} does not exist: nothing to copy`);
    process.exitCode = 1;
    continue;
  }
  const diff = compareTrees(from, to, only);
  for (const line of diff) console.log(line);
  for (const name of readdirSync(from)) {
    if (only && !only.includes(name)) continue;
    rmSync(join(to, name), { recursive: true, force: true });
    cpSync(join(from, name), join(to, name), { recursive: true });
  }
}
