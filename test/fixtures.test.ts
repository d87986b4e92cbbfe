/**
 * test/fixtures/ and docs/ are copies of ../shared/fixtures and ../shared/docs (their source). Where the source is
 * beside this clone (the team's machines and CI), a refreshed or new fixture must be copied in (npm run
 * fixtures:sync) before it is tested; a clone without ../shared runs on its own copies.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
// @ts-expect-error plain ESM script without types
import { compareTrees } from '../scripts/tree-diff.mjs';

const shared = fileURLToPath(new URL('../../shared/', import.meta.url));
const root = fileURLToPath(new URL('../', import.meta.url));

test('test/fixtures and docs equal ../shared (when it is beside the clone)', { skip: existsSync(shared + 'fixtures') ? false : 'no ../shared beside this clone' }, () => {
  const fixtures = compareTrees(shared + 'fixtures', root + 'test/fixtures') as string[];
  const docs = compareTrees(shared + 'docs', root + 'docs', ['DESIGN.md', 'gemma3n-formats.md']) as string[];
  assert.deepEqual([...fixtures, ...docs], [], 'run `npm run fixtures:sync` and commit the copies');
});
