// A rolldown plugin shared by the library build (scripts/build-lib.mjs) and the GPU bench bundle
// (scripts/gpu-bench.mjs): `import src from '../../shaders/x.wgsl?raw'` -> the file's text (what Vite and
// scripts/wgsl-hooks.mjs do).
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

export const wgslRaw = {
  name: 'wgsl-raw',
  resolveId(source, importer) {
    if (!source.endsWith('.wgsl?raw') || !importer) return null;
    return join(dirname(importer), source.slice(0, -'?raw'.length)) + '?raw';
  },
  load(id) {
    if (!id.endsWith('.wgsl?raw')) return null;
    return `export default ${JSON.stringify(readFileSync(id.slice(0, -'?raw'.length), 'utf8'))};`;
  },
};
