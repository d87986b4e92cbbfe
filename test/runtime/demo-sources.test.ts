// The demo's model choices (demo/model-sources.ts): Gemma 4 E2B/E4B beside Gemma 3n, as hub requests for the
// registry to read (the family comes from the checkpoint's config.json), each offered by the page's select.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { CONVERTED_URLS, HUB_REPOS, SOURCES, loadRequestFor, sourceLabel, type SourceKind } from '../../demo/model-sources.ts';

test('demo sources: Gemma 4 E2B/E4B from the hub beside Gemma 3n; every kind is an option of the page', () => {
  const form = (kind: SourceKind) => ({ kind, url: '', token: 'hf_x', files: [], size: '' });
  assert.deepEqual(loadRequestFor(form('gemma4-e2b')).model, { hub: 'google/gemma-4-E2B-it', revision: 'main', token: 'hf_x' });
  assert.deepEqual(loadRequestFor(form('gemma4-e4b')).model, { hub: 'google/gemma-4-E4B-it', revision: 'main', token: 'hf_x' });
  assert.deepEqual(loadRequestFor(form('e2b')).model, { hub: 'google/gemma-3n-E2B-it', revision: 'main', token: 'hf_x' });
  assert.equal(sourceLabel(form('gemma4-e4b')), 'Gemma 4 E4B');
  assert.equal(Object.keys(HUB_REPOS).length, 4);
  const html = readFileSync(fileURLToPath(new URL('../../demo/index.html', import.meta.url)), 'utf8');
  for (const kind of Object.keys(SOURCES)) assert.match(html, new RegExp(`<option value="${kind}">`), kind);
});

test('demo sources: a configured converted copy replaces the hub repo (none is hosted yet: the hub is the default)', () => {
  const form = (kind: SourceKind, size = '') => ({ kind, url: '', token: 'hf_x', files: [], size });
  assert.deepEqual(CONVERTED_URLS, {}, 'no converted E2B/E4B is hosted yet');
  const converted = { e2b: 'https://example.org/gemma-3n-E2B-it-q4/', e4b: 'https://example.org/gemma-3n-E4B-it-q4/' };
  assert.deepEqual(loadRequestFor(form('e2b'), converted), { model: converted.e2b });
  assert.deepEqual(loadRequestFor(form('e4b', 'E2B'), converted), { model: converted.e4b, size: 'E2B' });
  assert.deepEqual(loadRequestFor(form('gemma4-e2b'), converted).model, { hub: 'google/gemma-4-E2B-it', revision: 'main', token: 'hf_x' });
});
