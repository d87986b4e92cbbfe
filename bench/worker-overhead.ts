/**
 * What streaming through the Web Worker costs: greedy decode tokens/s of the tiny fixtures in Chromium, through
 * loadGemma() and the shipped worker as the page receives the deltas, against the same engine called on the page
 * (the test page's `directApi`), alternating the two `--reps` times; plus the main thread's callback gaps while the
 * worker generates. The README's worker-overhead figure comes from here (a timing, so a bench: on this shared
 * machine one descheduling moves it by several percent). test/e2e/gemma3n.test.ts checks the responsiveness itself.
 *
 * Usage: node --import ./scripts/register.mjs bench/worker-overhead.ts [--reps N (5)] [--tokens N (32)] [--json FILE]
 */
import { writeFileSync } from 'node:fs';
import { startTestBrowser } from '../test/helpers/browser.ts';
import { tinyFixtures } from '../test/helpers/fixtures.ts';
import type { TestApi } from '../test/pages/main.ts';

declare const window: { T: TestApi };

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

const reps = Number(arg('reps') ?? 5);
const tokens = Number(arg('tokens') ?? 32);
const median = (a: number[]) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)];

const browser = await startTestBrowser();
const results = [];
try {
  const page = await browser.open();
  for (const fx of tinyFixtures()) {
    const r = await page.evaluate(
      async ({ name, prompt, reps, tokens }) => {
        const { T } = window;
        const load = { model: `/fixtures/${name}/`, tokenizer: false as const, contextLength: 512 };
        const client = await T.loadGemma(load);
        const onPage = await T.directApi(load, 'gemma3n');
        const opts = { temperature: 0, maxNewTokens: tokens, stopTokenIds: [] as number[] };
        const viaWorker: number[] = [];
        const inWorker: number[] = [];
        const direct: number[] = [];
        const p95Gaps: number[] = [];
        for (let rep = 0; rep < reps; rep++) {
          await client.reset();
          const stop = T.watchMainThread();
          const out = await T.collect(client.generate(prompt, opts));
          p95Gaps.push(stop().p95Gap);
          const n = out.deltas.reduce((s, d) => s + d.tokenIds.length, 0);
          viaWorker.push((n - 1) / ((out.arrivals.at(-1)! - out.arrivals[0]) / 1000));
          inWorker.push(out.stats!.decodeTokensPerSecond);
          await onPage.reset();
          direct.push((await onPage.run({ kind: 'prompt', prompt, options: opts })).stats.decodeTokensPerSecond);
        }
        await onPage.dispose();
        await client.dispose();
        return { viaWorker, inWorker, direct, p95Gaps };
      },
      { name: fx.name, prompt: fx.golden.greedy.prompt_ids, reps, tokens },
    );
    const overhead = 1 - median(r.viaWorker) / median(r.direct);
    results.push({ fixture: fx.name, tokens, ...r, overhead });
    const f = (a: number[]) => a.map((x) => x.toFixed(1)).join(', ');
    console.log(
      `${fx.name} (q4), greedy decode tok/s over ${reps} alternating runs: through the worker as received on the page ${f(r.viaWorker)} ` +
        `(engine inside the worker ${f(r.inWorker)}); engine on the page ${f(r.direct)}; ` +
        `worker overhead ${(overhead * 100).toFixed(1)} % (medians); main-thread p95 callback gap ${f(r.p95Gaps)} ms`,
    );
  }
} finally {
  await browser.close();
}
const out = arg('json');
if (out) writeFileSync(out, JSON.stringify({ bench: 'worker-overhead', results }, null, 2));
