// `npm run build`, first step: bundles the package's JavaScript into dist/ with rolldown (Vite's bundler).
//   dist/gemma3n-webgpu.js         the main-thread API ('gemma3n-webgpu')
//   dist/gemma3n-webgpu-worker.js  the default worker, its own entry next to the main module
//   dist/core.js                   the host-independent engine ('gemma3n-webgpu/core')
//   dist/cli.js                    the Node CLI behind bin/gemma3n-webgpu.mjs
//   dist/chunks/*.js               code shared between them
// The main module starts the worker with `new Worker(new URL('./gemma3n-webgpu-worker.js', import.meta.url),
// { type: 'module' })`: the form Vite, webpack and other bundlers turn into an emitted worker chunk of the app,
// and that a browser resolves next to the main module without any bundler. Dependencies used in the browser
// (comlink, the tokenizer, the template engine) are bundled in: a module worker cannot use the page's import map,
// so a bundler-free page could not resolve bare imports there. Only `webgpu` (Node's Dawn, optional, CLI only)
// and node: builtins stay external. WGSL `?raw` imports are inlined as strings. Licenses of bundled packages go
// to dist/THIRD_PARTY_LICENSES.md.
import { build } from 'rolldown';
import { wgslRaw } from './rolldown-wgsl.mjs';
import { existsSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const dist = join(root, 'dist');

const WORKER_ENTRY = 'gemma3n-webgpu-worker';
const WORKER_SOURCE_URL = './runtime/worker.ts';

/** In src/index.ts, the worker URL names the source file; in dist it names the worker entry beside the module. */
const workerUrl = {
  name: 'worker-url',
  transform(code, id) {
    if (id !== join(root, 'src/index.ts')) return null;
    const pattern = `new URL('${WORKER_SOURCE_URL}', import.meta.url)`;
    const count = code.split(pattern).length - 1;
    if (count !== 1) throw new Error(`src/index.ts must contain ${pattern} exactly once (found ${count})`);
    return code.replace(pattern, `new URL('./${WORKER_ENTRY}.js', import.meta.url)`);
  },
};

rmSync(dist, { recursive: true, force: true });
const result = await build({
  cwd: root,
  input: {
    'gemma3n-webgpu': 'src/index.ts',
    [WORKER_ENTRY]: 'src/runtime/worker.ts',
    core: 'src/core.ts',
    cli: 'src/node/cli.ts',
  },
  platform: 'browser',
  // The CLI decodes PNG/JPEG through transformers.js' RawImage when it is installed (an optional extra, never bundled).
  external: ['webgpu', '@huggingface/transformers', /^node:/],
  plugins: [wgslRaw, workerUrl],
  output: {
    dir: dist,
    format: 'es',
    entryFileNames: '[name].js',
    chunkFileNames: 'chunks/[name]-[hash].js',
    minify: false,
    // Keep license and /* @__PURE__ */ comments (the app's bundler tree-shakes with them); drop JSDoc (dist/types has it).
    comments: { legal: true, annotation: true, jsdoc: false },
  },
  write: true,
});

// The worker URL must survive bundling verbatim: bundlers only recognise this exact shape.
const main = readFileSync(join(dist, 'gemma3n-webgpu.js'), 'utf8');
if (!main.includes(`new Worker(new URL("./${WORKER_ENTRY}.js", import.meta.url)`)) {
  throw new Error(`dist/gemma3n-webgpu.js does not start its worker with new Worker(new URL("./${WORKER_ENTRY}.js", import.meta.url), ...)`);
}

// Which packages got bundled, with their license texts.
const bundled = new Map();
for (const chunk of result.output) {
  for (const id of chunk.type === 'chunk' ? Object.keys(chunk.modules) : []) {
    const m = /node_modules[\\/]((?:@[^\\/]+[\\/])?[^\\/]+)/.exec(id);
    if (m) bundled.set(m[1].split(sep).join('/'), join(id.slice(0, m.index), 'node_modules', m[1]));
  }
}
const sections = [...bundled].sort(([a], [b]) => a.localeCompare(b)).map(([name, dir]) => {
  const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8'));
  const licenseFile = readdirSync(dir).find((f) => /^licen[cs]e/i.test(f));
  const text = licenseFile && existsSync(join(dir, licenseFile)) ? readFileSync(join(dir, licenseFile), 'utf8').trim() : `(${pkg.license})`;
  return `## ${name} ${pkg.version} (${pkg.license})\n\n\`\`\`\n${text}\n\`\`\``;
});
writeFileSync(
  join(dist, 'THIRD_PARTY_LICENSES.md'),
  `# Third-party code bundled into dist/\n\n${sections.join('\n\n')}\n`,
);

for (const chunk of result.output) {
  const bytes = chunk.type === 'chunk' ? Buffer.byteLength(chunk.code) : chunk.source.length;
  console.log(`dist/${chunk.fileName}  ${(bytes / 1024).toFixed(1)} kB`);
}
console.log(`bundled: ${[...bundled.keys()].sort().join(', ')}`);
