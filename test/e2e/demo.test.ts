// The demo app end to end in Chromium (SwiftShader WebGPU): builds demo/ with Vite (as `npx vite build` does),
// serves it on 127.0.0.1, loads the built-in tiny model (random weights, real tokenizer, real GPU forward), streams
// a reply, stops a generation with Esc, regenerates and clears; JSON mode (a schema typed into the editor) and tools
// (the call, its result, the reply after it); checks the Markdown renderer cannot be used for
// HTML injection, the no-WebGPU page, and that the app and tokenizer come from the service worker's cache when
// offline. Screenshots (desktop 1280×800, phone 390×844) go to test-results/ and are checked to be non-blank.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { build, transformWithOxc } from 'vite';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { CHROMIUM, CHROMIUM_FLAGS, REPO_ROOT, serveStatic, type StaticServer } from '../helpers/browser.ts';

const RESULTS = join(REPO_ROOT, 'test-results');

let outDir: string;
let server: StaticServer;
let context: BrowserContext;
let userDataDir: string;
let page: Page;
before(async () => {
  outDir = await mkdtemp(join(tmpdir(), 'gemma-demo-'));
  await build({
    configFile: join(REPO_ROOT, 'vite.config.ts'),
    logLevel: 'warn',
    build: { outDir, emptyOutDir: true, minify: false, reportCompressedSize: false, chunkSizeWarningLimit: 100_000 },
  });
  server = await serveStatic({ '/': outDir });
  userDataDir = await mkdtemp(join(tmpdir(), 'gemma-demo-chromium-'));
  context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: CHROMIUM,
    headless: false, // '--headless=new' is in the flags
    // A fake microphone (a beep) that needs no permission prompt, for the Record button.
    args: [...CHROMIUM_FLAGS, '--use-fake-device-for-media-stream', '--use-fake-ui-for-media-stream'],
    viewport: { width: 1280, height: 800 },
  });
  page = await context.newPage();
  page.on('console', (m) => {
    if (process.env.GEMMA_TEST_VERBOSE || m.type() === 'error') process.stderr.write(`[page ${m.type()}] ${m.text()}\n`);
  });
  page.on('pageerror', (e) => process.stderr.write(`[page error] ${e.message}\n`));
  await mkdir(RESULTS, { recursive: true });
});

after(async () => {
  await context?.close().catch(() => {});
  await server?.close();
  for (const dir of [outDir, userDataDir]) if (dir) await rm(dir, { recursive: true, force: true }).catch(() => {});
});

const state = (p: Page) => p.evaluate(() => document.body.dataset.state);
/** Waits for the app state; on timeout the error says what the page shows (progress, errors). */
async function waitState(p: Page, want: string, timeout = 600_000): Promise<void> {
  const until = Date.now() + timeout;
  let lastReport = Date.now();
  for (;;) {
    const now = await p.evaluate(() => ({
      state: document.body.dataset.state,
      progress: document.getElementById('progress')?.innerText.replace(/\s+/g, ' '),
      error: document.getElementById('load-error')?.innerText,
    }));
    if (now.state === want) return;
    if (Date.now() > until) throw new Error(`state ${now.state}, waiting for ${want}: ${JSON.stringify(now)}`);
    if (Date.now() - lastReport > 30_000) {
      process.stderr.write(`[demo.test] waiting for ${want}: ${JSON.stringify(now)}\n`);
      lastReport = Date.now();
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Saves a screenshot and checks it shows something: many distinct colours, no colour covering nearly all pixels. */
async function screenshot(p: Page, name: string): Promise<{ colors: number; dominant: number }> {
  const path = join(RESULTS, name);
  const png = await p.screenshot({ path, fullPage: false });
  const stats = await p.evaluate(async (dataUrl) => {
    const img = new Image();
    img.src = dataUrl;
    await img.decode();
    const canvas = new OffscreenCanvas(img.width, img.height);
    const g = canvas.getContext('2d')!;
    g.drawImage(img, 0, 0);
    const px = new Uint32Array(g.getImageData(0, 0, img.width, img.height).data.buffer);
    const counts = new Map<number, number>();
    for (const c of px) counts.set(c, (counts.get(c) ?? 0) + 1);
    return { colors: counts.size, dominant: Math.max(...counts.values()) / px.length };
  }, `data:image/png;base64,${png.toString('base64')}`);
  assert.ok(stats.colors >= 40 && stats.dominant < 0.97, `${name} looks blank: ${stats.colors} colours, the commonest covers ${(stats.dominant * 100).toFixed(1)}%`);
  return stats;
}

test('demo: loads the built-in tiny model, streams a reply, stops with Esc, regenerates, clears; screenshots', async (t) => {
  await page.goto(server.url + '/');
  await waitState(page, 'idle', 60_000);
  assert.equal(await page.isVisible('#no-webgpu'), false);
  assert.match(await page.textContent('#gpu-info') ?? '', /Adapter/);
  assert.equal(await page.inputValue('#source'), 'tiny', 'the built-in model is the default source');
  await screenshot(page, 'demo-desktop-start.png');

  // MatFormer sizes: offered for E4B only (whole first, then the 16 published configurations), with their memory.
  await page.selectOption('#source', 'e4b');
  assert.equal(await page.isVisible('#size-row'), true);
  const sizes = await page.$$eval('#model-size option', (o) => o.map((x) => (x as HTMLOptionElement).value));
  assert.equal(sizes.length, 16);
  assert.equal(sizes[0], '', 'E4B whole comes first');
  await page.selectOption('#model-size', 'E2B');
  assert.match(await page.textContent('#size-help') ?? '', /30 layers, 1\.91 B effective, MMLU 50\.9 %, ≈ [\d.]+ GB GPU/);
  await page.selectOption('#source', 'tiny');
  assert.equal(await page.isVisible('#size-row'), false);

  // Load: progress rows appear, then the random-weights notice and an enabled composer.
  await page.click('#load');
  await page.waitForSelector('.progress-item', { timeout: 60_000 });
  await waitState(page, 'ready');
  assert.equal(await page.isVisible('#random-notice'), true, 'the page says the weights are random');
  assert.match(await page.textContent('#model-badge') ?? '', /random weights/i);
  assert.equal(await page.isEnabled('#prompt'), true);

  // Send with Enter (Shift+Enter is a newline first); text must arrive while the reply is still streaming.
  await page.fill('#max-tokens', '24');
  await page.focus('#prompt');
  await page.keyboard.type('Hello Gemma!');
  await page.keyboard.press('Shift+Enter');
  await page.keyboard.type('Write one line of **Markdown**.');
  assert.equal(await page.inputValue('#prompt'), 'Hello Gemma!\nWrite one line of **Markdown**.');
  await page.keyboard.press('Enter');
  await page.waitForFunction(
    () => {
      const li = document.querySelector('.message.assistant.streaming .body');
      return !!li && (li.textContent ?? '').length > 0;
    },
    undefined,
    { timeout: 120_000, polling: 50 },
  );
  await waitState(page, 'ready');
  const userText = await page.textContent('.message.user .body');
  assert.equal(userText, 'Hello Gemma!\nWrite one line of **Markdown**.', 'user text is shown as typed (no Markdown, no HTML)');
  const reply = await page.textContent('.message.assistant .body');
  assert.ok((reply ?? '').trim().length > 0, 'a reply was streamed');
  assert.match(await page.textContent('.message.assistant .meta') ?? '', /tokens/);
  assert.match(await page.textContent('#stat-tps') ?? '', /tok\/s/);
  assert.match(await page.textContent('#stat-ttft') ?? '', /\d/);
  assert.match(await page.textContent('#stat-context') ?? '', /^\d[\d,]* \/ 4,096$/);
  await screenshot(page, 'demo-desktop.png');

  // Stop: a long generation, Esc as soon as text arrives.
  await page.fill('#max-tokens', '2000');
  await page.fill('#prompt', 'Tell me a very long story.');
  await page.click('#send');
  await page.waitForFunction(() => (document.querySelector('.message.assistant.streaming .body')?.textContent ?? '').length > 0, undefined, {
    timeout: 120_000,
    polling: 50,
  });
  assert.equal(await state(page), 'generating');
  assert.equal(await page.isEnabled('#stop'), true);
  // The Context figure moves while the reply streams (prompt + tokens so far), not only at the end.
  const contextAt = () => page.textContent('#stat-context');
  const early = await contextAt();
  await page.waitForFunction((was) => document.getElementById('stat-context')?.textContent !== was, early, { timeout: 120_000, polling: 50 });
  assert.equal(await state(page), 'generating', 'the context figure changed during generation');
  await page.keyboard.press('Escape');
  await waitState(page, 'ready', 60_000);
  const metas = await page.$$eval('.message.assistant .meta', (els) => els.map((e) => e.textContent ?? ''));
  assert.match(metas[metas.length - 1], /stopped/, `the stopped reply says so: ${metas.join(' | ')}`);
  const stoppedTokens = Number(/^(\d+) tokens/.exec(metas[metas.length - 1])?.[1]);
  assert.ok(stoppedTokens < 2000, `generation stopped early (${stoppedTokens} tokens)`);

  // Regenerate replaces the last reply (one token: "1 token", not "1 tokens"); Clear empties the conversation.
  await page.fill('#max-tokens', '1');
  const before = await page.$$eval('.message', (els) => els.length);
  await page.click('#regenerate');
  await waitState(page, 'ready');
  assert.equal(await page.$$eval('.message', (els) => els.length), before, 'regenerate replaced the last reply');
  const lastMeta = (await page.$$eval('.message.assistant .meta', (els) => els.map((e) => e.textContent ?? ''))).at(-1) ?? '';
  assert.match(lastMeta, /^1 token · /, lastMeta);

  // Phone width: the chat with the conversation, then the settings panel opened from the header.
  await page.setViewportSize({ width: 390, height: 844 });
  await screenshot(page, 'demo-phone.png');
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  assert.ok(overflow <= 0, `no horizontal scrolling at phone width (${overflow}px too wide)`);
  await page.click('#toggle-panel');
  await screenshot(page, 'demo-phone-settings.png');
  await page.click('#toggle-panel');
  await page.setViewportSize({ width: 1280, height: 800 });

  await page.click('#clear');
  await waitState(page, 'ready');
  assert.equal(await page.$$eval('.message', (els) => els.length), 0);
  assert.equal(await page.textContent('#stat-context'), '0 / 4,096');
});

test('demo: JSON mode follows the schema in the editor; tools show the call, its result and the answer after it', async () => {
  if ((await state(page)) !== 'ready') {
    await page.goto(server.url + '/');
    await waitState(page, 'idle', 60_000);
    await page.click('#load');
    await waitState(page, 'ready');
  }
  // JSON mode with a small bounded schema typed into the editor (random weights: any reply must still follow it).
  const schema = { type: 'object', properties: { ok: { type: 'boolean' }, n: { type: 'integer', minimum: 0, maximum: 9 } }, required: ['ok', 'n'] };
  await page.check('#json-toggle');
  assert.equal(await page.isVisible('#json-schema'), true);
  await page.fill('#json-schema', '{ not json');
  await page.fill('#prompt', 'JSON, please.');
  await page.click('#send');
  await page.waitForSelector('#json-schema-error:not([hidden])');
  assert.match((await page.textContent('#json-schema-error')) ?? '', /not valid JSON/);
  await page.fill('#json-schema', JSON.stringify(schema, null, 2));
  await page.fill('#max-tokens', '40');
  await page.click('#send');
  await waitState(page, 'ready');
  const last = await page.$$eval('.message.assistant', (els) => els.at(-1)?.textContent ?? '');
  const json = await page.$$eval('.message.assistant pre code', (els) => els.at(-1)?.textContent ?? '');
  assert.ok(json, `the reply shows pretty-printed JSON: ${last}`);
  const value = JSON.parse(json) as { ok: unknown; n: unknown };
  assert.ok(typeof value.ok === 'boolean' && Number.isInteger(value.n) && (value.n as number) >= 0 && (value.n as number) <= 9, json);
  assert.match((await page.$$eval('.message.assistant .json-status', (els) => els.at(-1)?.textContent)) ?? '', /valid JSON/);

  // Tools, a call required: the call and its result appear, then the model's next reply streams (stopped with Esc).
  await page.check('#tools-toggle');
  assert.equal(await page.isChecked('#json-toggle'), false, 'tools and JSON mode are one or the other');
  await page.selectOption('#tool-choice', 'required');
  await page.fill('#max-tokens', '100');
  await page.fill('#prompt', 'What is the weather in Paris?');
  await page.click('#send');
  await page.waitForSelector('.message.tool .result', { timeout: 600_000 });
  const call = (await page.textContent('.message.tool .call')) ?? '';
  assert.match(call, /^(get_current_weather|calculate)\(\{.*\}\)$/);
  const result = JSON.parse((await page.textContent('.message.tool .result')) ?? '') as Record<string, unknown>;
  assert.ok(call.startsWith('get_current_weather') ? result.sky === 'sunny' : 'result' in result || 'error' in result, JSON.stringify(result));
  await page.waitForFunction(
    () => {
      const next = document.querySelector('.message.tool')?.nextElementSibling;
      return !!next && next.classList.contains('assistant') && (next.querySelector('.body')?.textContent ?? '').length > 0;
    },
    undefined,
    { timeout: 600_000, polling: 100 },
  );
  await screenshot(page, 'demo-tools.png');
  await page.keyboard.press('Escape');
  await waitState(page, 'ready', 120_000);
  await page.uncheck('#tools-toggle');
  await page.click('#clear');
  await waitState(page, 'ready');
});

test('demo: records a clip (fake microphone) and uploads a WAV; Transcribe / Translate fill the prompt; clip length and encode time shown', async () => {
  assert.equal(await state(page), 'ready', 'the previous test left the built-in model loaded');
  await page.fill('#max-tokens', '4');
  assert.match(await page.textContent('#random-notice') ?? '', /audio encoder is random too/);
  // Record ~1.5 s from the fake microphone.
  await page.click('#record');
  await page.waitForFunction(() => document.getElementById('record')?.getAttribute('aria-pressed') === 'true');
  await new Promise((r) => setTimeout(r, 1500));
  await page.click('#record');
  await page.waitForSelector('#attachment:not([hidden])', { timeout: 30_000 });
  assert.match((await page.textContent('#attachment-label')) ?? '', /recording · \d\.\d s/);
  await page.click('#transcribe');
  assert.equal(await page.inputValue('#prompt'), 'Transcribe the following speech segment:');
  await page.click('#send');
  await waitState(page, 'generating', 30_000);
  await waitState(page, 'ready');
  const meta = () => page.$$eval('.message.user .meta', (els) => els.map((e) => e.textContent ?? ''));
  assert.match((await meta()).at(-1) ?? '', /^audio \d\.\d s · encoded in \d/, (await meta()).join(' | '));
  const reply = await page.$$eval('.message.assistant', (els) => els.at(-1)?.getAttribute('data-failed'));
  assert.equal(reply, null, 'the reply did not fail');
  // Upload a 3 s, 44.1 kHz stereo WAV; translate.
  const n = 3 * 44100;
  const wav = Buffer.alloc(44 + n * 4);
  wav.write('RIFF', 0);
  wav.writeUInt32LE(36 + n * 4, 4);
  wav.write('WAVEfmt ', 8);
  wav.writeUInt32LE(16, 16);
  wav.writeUInt16LE(1, 20);
  wav.writeUInt16LE(2, 22);
  wav.writeUInt32LE(44100, 24);
  wav.writeUInt32LE(44100 * 4, 28);
  wav.writeUInt16LE(4, 32);
  wav.writeUInt16LE(16, 34);
  wav.write('data', 36);
  wav.writeUInt32LE(n * 4, 40);
  for (let i = 0; i < n; i++) {
    wav.writeInt16LE(Math.round(8000 * Math.sin(i / 20)), 44 + 4 * i);
    wav.writeInt16LE(Math.round(8000 * Math.sin(i / 30)), 46 + 4 * i);
  }
  await page.setInputFiles('#audio-file', { name: 'voice.wav', mimeType: 'audio/wav', buffer: wav });
  await page.waitForFunction(() => /voice\.wav · 3\.0 s · 44\.1 kHz/.test(document.getElementById('attachment-label')?.textContent ?? ''), undefined, { timeout: 30_000 });
  await page.selectOption('#translate-to', 'French');
  await page.click('#translate');
  assert.equal(await page.inputValue('#prompt'), 'Transcribe the following speech segment, then translate it into French:');
  await page.click('#send');
  await waitState(page, 'generating', 30_000);
  await waitState(page, 'ready');
  assert.match((await meta()).at(-1) ?? '', /^audio 3\.0 s · encoded in/);
  await screenshot(page, 'demo-audio.png');
  await page.click('#clear');
  await waitState(page, 'ready');
});

test('demo: attaches an image with the button (and the camera input takes photos); thumbnail, encode time in the live figures', async () => {
  const t0 = performance.now();
  assert.equal(await state(page), 'ready', 'the previous tests left the built-in model loaded');
  await page.fill('#max-tokens', '2');
  assert.match(await page.textContent('#random-notice') ?? '', /vision\s+encoder is random as well/);
  assert.equal(await page.getAttribute('#camera-file', 'capture'), 'environment', 'the camera button opens the camera on phones');
  const png = await readFile(join(REPO_ROOT, 'test/fixtures/gemma3n-vision-procedural/image_c.png'));
  const memoryFact = () => page.$$eval('#gpu-info dt', (dts) => dts.find((dt) => dt.textContent === 'GPU memory in use')?.nextElementSibling?.textContent ?? '');
  assert.doesNotMatch(await memoryFact(), /image/, 'the vision tower loads on first use');
  await page.setInputFiles('#image-file', { name: 'photo.png', mimeType: 'image/png', buffer: png });
  await page.waitForSelector('#image-attachments:not([hidden]) img');
  await page.fill('#prompt', 'What is in this photo?');
  await page.click('#send');
  await waitState(page, 'generating', 30_000);
  await waitState(page, 'ready', 600_000);
  assert.equal(await page.$$eval('.message.user', (els) => els.at(-1)?.querySelectorAll('.thumbs img').length), 1, 'the thumbnail is in the conversation');
  assert.equal(await page.isHidden('#image-attachments'), true, 'the composer is cleared');
  const meta = await page.$$eval('.message.user .meta', (els) => els.at(-1)?.textContent ?? '');
  assert.match(meta, /^1 image · encoded in \d/);
  assert.match((await page.textContent('#stat-encode')) ?? '', /\d/, 'the encode time is in the live figures');
  // Total, then the decoder and each encoder loaded so far (the audio tower too: the previous test used it).
  const memory = await memoryFact();
  assert.match(memory, /^[\d.]+ [KMG]?B \(text [\d.]+ [KMG]?B(, (audio|image) [\d.]+ [KMG]?B)+\)$/, memory);
  assert.match(memory, /image [\d.]+ [KMG]?B/, `the GPU memory line counts the vision tower once it is loaded: ${memory}`);
  const reply = await page.$$eval('.message.assistant', (els) => els.at(-1)?.getAttribute('data-failed'));
  assert.equal(reply, null, 'the reply did not fail');
  await screenshot(page, 'demo-image.png');
  await page.click('#clear');
  await waitState(page, 'ready');
  console.log(`# demo image test: ${((performance.now() - t0) / 1000).toFixed(1)} s`);
});

test('demo: loading another model keeps the working one until it has loaded; a hidden field never blocks Load', async () => {
  // Continues from the previous test: the built-in model is loaded.
  await waitState(page, 'ready', 60_000);
  if (!(await page.isVisible('#load'))) await page.click('#toggle-panel');
  // A source that cannot load: the error shows, and the working model is still there.
  await page.selectOption('#source', 'url');
  await page.fill('#model-url', 'http://127.0.0.1:9/no-such-model/');
  await page.click('#load');
  await page.waitForFunction(() => !document.getElementById('load-error')?.hidden, undefined, { timeout: 120_000 });
  await waitState(page, 'ready', 60_000);
  assert.match(await page.textContent('#model-badge') ?? '', /random weights/i, 'the previous model is still the one loaded');
  await page.fill('#max-tokens', '2');
  await page.fill('#prompt', 'Still there?');
  await page.click('#send');
  await waitState(page, 'ready');
  assert.match((await page.$$eval('.message.assistant .meta', (els) => els.map((e) => e.textContent ?? ''))).at(-1) ?? '', /tokens · /);
  // An invalid value left in the URL field (hidden once another source is chosen) must not block Load.
  await page.fill('#model-url', 'not a url');
  await page.selectOption('#source', 'tiny');
  assert.equal(await page.isVisible('#model-url'), false);
  await page.click('#load');
  await page.waitForSelector('.progress-item', { timeout: 60_000 });
  await waitState(page, 'ready');
});

test('demo: Markdown from the model is rendered as DOM nodes, never as HTML', async () => {
  const source = await readFile(join(REPO_ROOT, 'demo/markdown.ts'), 'utf8');
  const js = (await transformWithOxc(source, 'markdown.ts', { lang: 'ts' })).code.replace(/^export /gm, '');
  const result = await page.evaluate((code) => {
    const renderMarkdown = new Function(`${code}; return renderMarkdown;`)() as (md: string) => DocumentFragment;
    (window as unknown as { pwned?: boolean }).pwned = false;
    const md = [
      '# Title <img src=x onerror="window.pwned=true">',
      'Some **bold**, *italic*, `<b>code</b>` and a [link](https://example.com) and [bad](javascript:window.pwned=true).',
      '<script>window.pwned = true</script>',
      '- one',
      '- two <iframe src="about:blank"></iframe>',
      '```html',
      '<img src=x onerror="window.pwned=true">',
      '```',
    ].join('\n');
    const host = document.createElement('div');
    host.append(renderMarkdown(md));
    document.body.append(host);
    const tags = [...host.querySelectorAll('*')].map((e) => e.tagName.toLowerCase());
    const links = [...host.querySelectorAll('a')].map((a) => a.getAttribute('href'));
    host.remove();
    return { tags, links, text: host.textContent, pwned: (window as unknown as { pwned?: boolean }).pwned };
  }, js);
  await new Promise((r) => setTimeout(r, 200)); // an injected onerror would have fired by now
  assert.equal(result.pwned, false);
  for (const bad of ['img', 'script', 'iframe']) assert.ok(!result.tags.includes(bad), `no <${bad}> element: ${result.tags}`);
  for (const good of ['h3', 'strong', 'em', 'code', 'a', 'ul', 'li', 'pre']) assert.ok(result.tags.includes(good), `renders <${good}>: ${result.tags}`);
  assert.deepEqual(result.links, ['https://example.com']);
  assert.match(result.text ?? '', /<script>window\.pwned = true<\/script>/, 'raw HTML is shown as text');
  assert.equal(await page.evaluate(() => (window as unknown as { pwned?: boolean }).pwned), false);
});

test('demo: works offline after the first visit (service worker precache: app, worker, tokenizer)', async () => {
  await page.goto(server.url + '/');
  await waitState(page, 'idle', 60_000);
  // The service worker installs after the first visit: wait until it controls the page.
  await page.evaluate(async () => {
    await navigator.serviceWorker.ready;
    if (!navigator.serviceWorker.controller) await new Promise((r) => navigator.serviceWorker.addEventListener('controllerchange', r, { once: true }));
  });
  const manifest = await page.evaluate(async () => (await fetch('./manifest.webmanifest')).json());
  assert.equal(manifest.display, 'standalone');
  await context.setOffline(true);
  try {
    await page.reload();
    await waitState(page, 'idle', 60_000);
    const tokenizer = await page.evaluate(async () => {
      const r = await fetch('./tokenizer/tokenizer_config.json');
      return { ok: r.ok, hasTemplate: 'chat_template' in (await r.json()) };
    });
    assert.deepEqual(tokenizer, { ok: true, hasTemplate: true });
    // The whole built-in model path offline: worker script, transformers.js chunk, tokenizer, GPU.
    await page.fill('#max-tokens', '4');
    await page.click('#load');
    await waitState(page, 'ready');
    await page.fill('#prompt', 'Offline?');
    await page.keyboard.press('Enter');
    await waitState(page, 'ready');
    assert.ok(((await page.textContent('.message.assistant .meta')) ?? '').includes('tokens'));
  } finally {
    await context.setOffline(false);
  }
});

/** Waits until the cache panel's listing has finished (the demo marks #cache-list aria-busy while it reads). */
async function cacheListDone(): Promise<void> {
  await page.waitForFunction(() => document.getElementById('cache-list')?.getAttribute('aria-busy') === 'false', undefined, { timeout: 30_000 });
}

test('demo: cached models are listed with their size and can be deleted', async () => {
  await page.goto(server.url + '/');
  await waitState(page, 'idle', 60_000);
  await cacheListDone();
  // A committed cache entry as src/io/cache.ts writes it: folder per entry, manifest.json last, under the writer's
  // lock (a listing that finds the manifest mid-write leaves a held folder alone); no files needed.
  await page.evaluate(async () => {
    const root = await (await navigator.storage.getDirectory()).getDirectoryHandle('gemma3n-webgpu-cache', { create: true });
    const name = `${encodeURIComponent('google/gemma-3n-E2B-it')}+main+q4+test1`;
    await navigator.locks.request(`gemma3n-webgpu-cache:${name}`, async () => {
      const folder = await root.getDirectoryHandle(name, { create: true });
      const manifest = { format: 1, modelId: 'google/gemma-3n-E2B-it', revision: 'main', weightMode: 'q4', createdAt: new Date().toISOString(), totalBytes: 3_141_592_653, files: [] };
      const writable = await (await folder.getFileHandle('manifest.json', { create: true })).createWritable();
      await writable.write(JSON.stringify(manifest));
      await writable.close();
    });
  });
  await page.reload();
  await waitState(page, 'idle', 60_000);
  await cacheListDone();
  assert.match(await page.textContent('#cache-list') ?? '', /gemma-3n-E2B-it/, `the cache panel lists the entry (the list: "${await page.textContent('#cache-list')}"; storage: "${await page.textContent('#storage')}")`);
  const row = await page.textContent('#cache-list li');
  assert.match(row ?? '', /google\/gemma-3n-E2B-it \(q4\)/);
  assert.match(row ?? '', /3\.14 GB/);
  await page.click('#cache-list li button');
  await page.waitForFunction(() => !document.getElementById('cache-list')?.textContent?.includes('gemma-3n-E2B-it'), undefined, { timeout: 30_000 });
  assert.match(await page.textContent('#cache-list') ?? '', /No models cached yet/);
});

test('demo: a clear page when WebGPU is missing', async () => {
  const p = await context.newPage();
  // A browser without WebGPU: navigator.gpu reads as undefined (an own property shadows the prototype's getter).
  await p.addInitScript(() => Object.defineProperty(navigator, 'gpu', { value: undefined, configurable: true }));
  await p.setViewportSize({ width: 1280, height: 800 });
  await p.goto(server.url + '/');
  await p.waitForFunction(() => document.body.dataset.state === 'no-webgpu', undefined, { timeout: 30_000 });
  assert.equal(await p.isVisible('#no-webgpu'), true);
  assert.equal(await p.isVisible('#app'), false);
  assert.match(await p.textContent('#no-webgpu') ?? '', /WebGPU is not available/);
  await screenshot(p, 'demo-no-webgpu.png');
  await p.close();
});
