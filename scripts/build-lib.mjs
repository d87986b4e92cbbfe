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
//   dist/xgrammar.js               XGrammar's UMD file as published (the grammar engine, 1.1 MB with its wasm
//                                  embedded), loaded at run time only when a generation is constrained: see xgrammarFile.
import { createRequire } from 'node:module';
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

/**
 * XGrammar (src/runtime/constrained/xgrammar.ts imports it on first use) is not bundled: its package entry is a UMD
 * file that bundlers mishandle, and an app bundler that cannot split a worker (Vite's default `worker.format: 'iife'`
 * inlines dynamic imports) would put its 1.1 MB into every first visit. Instead dist/xgrammar.js is the published
 * file, and the import becomes `import(new URL('<relative>/xgrammar.js', import.meta.url).href)`: app bundlers emit
 * the file as an asset (Vite and webpack both turn `new URL(literal, import.meta.url)` into an emitted file and its
 * URL) and leave the import to the browser (@vite-ignore / webpackIgnore), a bundler-free page fetches it beside
 * the chunk, and the Node CLI evaluates it as CommonJS (src/node/xgrammar.ts).
 */
const XGRAMMAR_FILE = 'xgrammar.js';
const XGRAMMAR_SPECIFIER = '@mlc-ai/web-xgrammar';
const xgrammarFile = {
  name: 'xgrammar-file',
  transform(code, id) {
    if (id !== join(root, 'src/runtime/constrained/xgrammar.ts')) return null;
    const pattern = `import('${XGRAMMAR_SPECIFIER}')`;
    if (code.split(pattern).length !== 2) throw new Error(`src/runtime/constrained/xgrammar.ts must contain ${pattern} exactly once`);
    return code.replace(pattern, `import(/* @vite-ignore */ /* webpackIgnore: true */ new URL('./${XGRAMMAR_FILE}', import.meta.url).href)`);
  },
  renderChunk(code, chunk) {
    // Each `new URL('./xgrammar.js', import.meta.url)` must point at dist/xgrammar.js from where its chunk landed.
    const prefix = chunk.fileName.includes('/') ? '../'.repeat(chunk.fileName.split('/').length - 1) : './';
    const re = /new URL\((["'])\.\/xgrammar\.js\1, import\.meta\.url\)/g;
    if (!re.test(code)) return null;
    return code.replace(re, `new URL("${prefix}${XGRAMMAR_FILE}", import.meta.url)`);
  },
  generateBundle() {
    const file = createRequire(import.meta.url).resolve(XGRAMMAR_SPECIFIER);
    // As published, minus its source-map comment (the map is not shipped: a browser would ask for it and get a 404).
    const source = readFileSync(file, 'utf8').replace(/\n\/\/# sourceMappingURL=.*\s*$/, '\n');
    this.emitFile({ type: 'asset', fileName: XGRAMMAR_FILE, source });
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
  plugins: [wgslRaw, workerUrl, xgrammarFile],
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

// Which packages got bundled, with their license texts (XGrammar's file ships beside them).
const bundled = new Map([[XGRAMMAR_SPECIFIER, join(root, 'node_modules', XGRAMMAR_SPECIFIER)]]);
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
