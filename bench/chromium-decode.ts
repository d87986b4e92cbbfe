/**
 * The decode-step profile (bench/decode-profile.ts) in Chromium: builds the bench page (test/pages/bench-decode.html)
 * with Vite, serves it, and runs the profile there through Playwright on the system Chromium with the test suite's
 * WebGPU flags (SwiftShader here), plus --enable-webgpu-developer-features so timestamps are not quantised.
 * Bench output only: nothing here is asserted.
 */
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { buildTestPages, CHROMIUM, CHROMIUM_FLAGS, serveStatic } from '../test/helpers/browser.ts';
import type { DecodeProfile } from './decode-profile.ts';
import type { PageProfileOptions } from '../test/pages/bench-decode.ts';

export const chromiumInstalled = (): boolean => existsSync(CHROMIUM);

export async function profileDecodeInChromium(o: {
  preset: 'e2b' | 'e4b';
  layers: number;
  vocab?: number;
  weights: PageProfileOptions['weights'];
  quick: boolean;
  maxContext: number;
}): Promise<DecodeProfile & { adapter: string; features: string[] }> {
  const pages = await buildTestPages({ input: { 'bench-decode': 'bench-decode.html' } });
  const server = await serveStatic({ '/': pages });
  const userDataDir = await mkdtemp(join(tmpdir(), 'gemma-bench-chromium-'));
  const context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: CHROMIUM,
    headless: false, // '--headless=new' is in the flags
    args: [...CHROMIUM_FLAGS, '--enable-webgpu-developer-features'],
  });
  try {
    const page = await context.newPage();
    page.on('pageerror', (e) => process.stderr.write(`[bench page error] ${e.message}\n`));
    page.on('console', (m) => m.type() === 'error' && process.stderr.write(`[bench page] ${m.text()}\n`));
    await page.addInitScript('globalThis.__name ??= (fn) => fn;');
    await page.goto(`${server.url}/bench-decode.html`);
    await page.waitForFunction(() => (window as unknown as { T?: unknown }).T !== undefined);
    const opts: PageProfileOptions = { preset: o.preset, layers: o.layers, vocab: o.vocab, weights: o.weights, prompt: o.quick ? 8 : 32, tokens: o.quick ? 3 : 8, timedTokens: o.quick ? 1 : 2, maxContext: Math.min(o.maxContext, 512) };
    return await page.evaluate(
      (a) => (window as unknown as { T: { profileDecode(x: typeof a): Promise<DecodeProfile & { adapter: string; features: string[] }> } }).T.profileDecode(a),
      opts,
    );
  } finally {
    await context.close().catch(() => {});
    await server.close();
    await rm(userDataDir, { recursive: true, force: true }).catch(() => {});
    await rm(pages, { recursive: true, force: true }).catch(() => {});
  }
}
