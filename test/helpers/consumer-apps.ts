/**
 * Apps a new user would write, made from the packed package: `npm run build` + `npm pack` of this repository, then
 * fresh app folders in a temporary directory that `npm install` the tarball (from the local npm cache for
 * anything else; the registry is only asked when the cache lacks a package). Each app has the same page script
 * (APP_SCRIPT): it follows the README (loadGemma with the default worker), streams a greedy continuation of token
 * ids and tries a chat, and leaves the outcome in `window.gemmaResult` as plain data.
 * The bundlers (Vite, webpack 5) are this repository's devDependencies, run through their Node APIs on the app
 * folder: installed once, resolving the package from the app's own node_modules as an app's bundler would.
 */
import { execFileSync } from 'node:child_process';
import { mkdir, mkdtemp, readdir, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { REPO_ROOT } from './browser.ts';

/** What the page script reports. */
export type AppResult =
  | { ok: true; tokens: number[]; hasTokenizer: boolean; chat: { code?: string; message: string } | 'ok' }
  | { ok: false; name: string; code?: string; message: string };

/**
 * The app's page script, written as the README tells users to. Query parameters: model (URL), prompt (comma-separated
 * ids), n (new tokens). `workerSetup`: statements that define \`worker\` (the README's own-worker fallback), else the
 * default worker.
 */
export function appScript(workerSetup?: string): string {
  return `import { loadGemma, GemmaError } from 'gemma3n-webgpu';

const params = new URLSearchParams(location.search);

async function run() {
  ${workerSetup ?? 'const worker = undefined;'}
  // An absolute URL: the worker resolves relative ones against its own script URL (a blob: URL has no path).
  const model = new URL(params.get('model'), location.href).href;
  const gemma = await loadGemma({ model, weights: 'float', contextLength: 64, worker });
  try {
    const prompt = params.get('prompt').split(',').map(Number);
    const tokens = [];
    for await (const delta of gemma.generate(prompt, { temperature: 0, maxNewTokens: Number(params.get('n')) })) tokens.push(...delta.tokenIds);
    // Text goes through the tokenizer and the chat template in the worker (a tiny model's vocabulary may reject it).
    let chat = 'ok';
    try {
      for await (const delta of gemma.chat([{ role: 'user', content: 'Hello' }], { maxNewTokens: 1 })) void delta;
    } catch (e) {
      chat = { code: e instanceof GemmaError ? e.code : undefined, message: String(e?.message ?? e) };
    }
    return { tokens, hasTokenizer: gemma.info.hasTokenizer, chat };
  } finally {
    await gemma.dispose();
  }
}

run().then(
  (r) => (window.gemmaResult = { ok: true, ...r }),
  (e) => (window.gemmaResult = { ok: false, name: e?.name, code: e instanceof GemmaError ? e.code : undefined, message: String(e?.message ?? e) }),
);
`;
}

const HTML = (head: string, script: string) =>
  `<!doctype html>\n<html>\n<head><meta charset="utf-8"><title>gemma3n-webgpu app</title>${head}</head>\n<body>\n<script type="module" src="${script}"></script>\n</body>\n</html>\n`;

const run = (cmd: string, args: string[], cwd: string) => execFileSync(cmd, args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });

/** `npm run build` and `npm pack` of this repository into `dir`; returns the tarball's path. */
export function packPackage(dir: string): string {
  run('npm', ['run', 'build', '--silent'], REPO_ROOT);
  const out = run('npm', ['pack', '--silent', '--pack-destination', dir], REPO_ROOT);
  return join(dir, out.trim().split('\n').at(-1)!);
}

/**
 * A fresh app folder with a package.json and `npm install <tarball> ...extra`, offline-first from the local npm
 * cache, install scripts off (as in this repository's .npmrc).
 */
export async function makeApp(root: string, name: string, tarball: string, extra: string[] = []): Promise<string> {
  const dir = join(root, name);
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, 'package.json'), JSON.stringify({ name, private: true, type: 'module' }, null, 2));
  run('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund', '--ignore-scripts', '--loglevel=error', tarball, ...extra], dir);
  return dir;
}

/** A Vite app: index.html + main.js importing 'gemma3n-webgpu'. */
export async function writeViteApp(dir: string): Promise<void> {
  await writeFile(join(dir, 'index.html'), HTML('', '/main.js'));
  await writeFile(join(dir, 'main.js'), appScript());
}

/** A webpack 5 app: src/index.js importing 'gemma3n-webgpu'; the page (dist/index.html) is written by hand. */
export async function writeWebpackApp(dir: string): Promise<void> {
  await mkdir(join(dir, 'src'), { recursive: true });
  await writeFile(join(dir, 'src/index.js'), appScript());
}

/** The page webpack's output needs (no html plugin installed): loads dist/main.js. */
export async function writeWebpackPage(outDir: string): Promise<void> {
  await writeFile(join(outDir, 'index.html'), HTML('', './main.js'));
}

/**
 * A page without a bundler, served as files: an import map sends 'gemma3n-webgpu' to `moduleUrl` (default
 * ./node_modules/gemma3n-webgpu/dist/gemma3n-webgpu.js; a CDN URL for the cross-origin case).
 */
export async function writePlainApp(dir: string, options: { moduleUrl?: string; workerSetup?: string } = {}): Promise<void> {
  const moduleUrl = options.moduleUrl ?? './node_modules/gemma3n-webgpu/dist/gemma3n-webgpu.js';
  const importMap = `<script type="importmap">${JSON.stringify({ imports: { 'gemma3n-webgpu': moduleUrl } })}</script>`;
  await writeFile(join(dir, 'index.html'), HTML(importMap, './main.js'));
  await writeFile(join(dir, 'main.js'), appScript(options.workerSetup));
}

/** The README's way to start the worker from a CDN: a same-origin blob module that imports the worker script. */
export function cdnWorkerSetup(workerUrl: string): string {
  return `const url = ${JSON.stringify(workerUrl)};
  const worker = new Worker(URL.createObjectURL(new Blob([\`import \${JSON.stringify(url)};\`], { type: 'text/javascript' })), { type: 'module' });`;
}

/** Every file under `dir` with its size, paths relative to `dir` with '/' separators. */
export async function listFiles(dir: string): Promise<Array<{ path: string; bytes: number }>> {
  const out: Array<{ path: string; bytes: number }> = [];
  const walk = async (d: string): Promise<void> => {
    for (const entry of await readdir(d, { withFileTypes: true })) {
      const p = join(d, entry.name);
      if (entry.isDirectory()) await walk(p);
      else out.push({ path: relative(dir, p).split('\\').join('/'), bytes: (await stat(p)).size });
    }
  };
  await walk(dir);
  return out.sort((a, b) => a.path.localeCompare(b.path));
}

/** Total bytes of a folder (an installed node_modules). */
export async function folderBytes(dir: string): Promise<number> {
  return (await listFiles(dir)).reduce((sum, f) => sum + f.bytes, 0);
}

export async function tempRoot(): Promise<string> {
  return mkdtemp(join(tmpdir(), 'gemma-consumer-'));
}
