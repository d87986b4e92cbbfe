// Prints the import graph of src/ by layer (`node scripts/import-graph.mjs`), or checks it (`--check`: exit 1 on an
// import that points up a layer). Layers, low to high: base (errors, math, formats, audio) · gpu | io (beside each other) ·
// kernels · model · runtime · api (index, core, cache-api) and the Node host (node/).
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../src/', import.meta.url));
export const LAYERS = { base: 0, gpu: 1, io: 1, kernels: 2, model: 3, runtime: 4, api: 5, node: 5 };

export function layerOf(file) {
  const rel = relative(root, file).split('/');
  if (rel.length === 1) return ['errors.ts'].includes(rel[0]) ? 'base' : 'api';
  if (rel[0] === 'math' || rel[0] === 'formats' || rel[0] === 'audio') return 'base';
  return rel[0];
}

function files(dir) {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    return statSync(p).isDirectory() ? files(p) : p.endsWith('.ts') ? [p] : [];
  });
}

/** Every relative import between src files: { from, to, fromLayer, toLayer, typeOnly }. */
export function importEdges() {
  const edges = [];
  for (const file of files(root)) {
    const text = readFileSync(file, 'utf8');
    for (const m of text.matchAll(/^\s*(import|export)\s+(type\s+)?[^'"]*?from\s+'(\.[^']+)'/gm)) {
      const target = resolve(dirname(file), m[3]);
      if (!target.startsWith(root) || !target.endsWith('.ts')) continue;
      edges.push({ from: relative(root, file), to: relative(root, target), fromLayer: layerOf(file), toLayer: layerOf(target), typeOnly: Boolean(m[2]) });
    }
  }
  return edges;
}

/** Imports that point up a layer (or sideways between gpu and io). */
export function upwardImports(edges = importEdges()) {
  return edges.filter((e) => e.fromLayer !== e.toLayer && (LAYERS[e.toLayer] > LAYERS[e.fromLayer] || (LAYERS[e.toLayer] === LAYERS[e.fromLayer] && e.fromLayer !== e.toLayer)));
}

if (process.argv[1] && fileURLToPath(import.meta.url) === resolve(process.argv[1])) {
  const edges = importEdges();
  const counts = new Map();
  for (const e of edges) if (e.fromLayer !== e.toLayer) counts.set(`${e.fromLayer} -> ${e.toLayer}`, (counts.get(`${e.fromLayer} -> ${e.toLayer}`) ?? 0) + 1);
  for (const [k, v] of [...counts].sort()) console.log(`${k}: ${v}`);
  const bad = upwardImports(edges);
  for (const e of bad) console.log(`UPWARD ${e.from} (${e.fromLayer}) -> ${e.to} (${e.toLayer})`);
  if (process.argv.includes('--check') && bad.length) process.exit(1);
}
