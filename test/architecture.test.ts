/**
 * The layering of src/ (docs/DESIGN.md): imports point down only (base → gpu | io → kernels → model → runtime →
 * api / Node host), and nothing outside a model family's folder and the registry names a family, so adding a family
 * is a new folder plus one registry line.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
// @ts-expect-error plain ESM script without types
import { importEdges, upwardImports } from '../scripts/import-graph.mjs';

interface Edge {
  from: string;
  to: string;
  fromLayer: string;
  toLayer: string;
}

test('src imports point down the layers only', () => {
  const edges = importEdges() as Edge[];
  assert.ok(edges.length > 100, `found only ${edges.length} imports: is the scanner broken?`);
  assert.deepEqual(upwardImports(edges).map((e: Edge) => `${e.from} (${e.fromLayer}) -> ${e.to} (${e.toLayer})`), []);
});

test('no file outside src/model/<family>/ and the registry imports a model family', () => {
  const edges = importEdges() as Edge[];
  const family = /^model\/(?!registry\.ts|family\.ts|language-model\.ts|tensor-table\.ts|converted-tensor\.ts)[^/]+\//;
  const leaks = edges.filter((e) => family.test(e.to) && !family.test(e.from) && e.from !== 'model/registry.ts' && e.to.split('/')[1] !== e.from.split('/')[1]);
  assert.deepEqual(leaks.map((e) => `${e.from} -> ${e.to}`), []);
});
