/**
 * The fixtures the tests read live in test/fixtures/ (copied from ../shared/fixtures, their source, by
 * `npm run fixtures:sync`; test/fixtures.test.ts fails when the two differ). Tiny Gemma 3n checkpoints are
 * discovered by name, never hard-coded, so new ones are tested as they appear; a missing fixture folder fails the
 * suite instead of registering zero tests.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const FIXTURES_DIR = fileURLToPath(new URL('../fixtures/', import.meta.url));

export interface GoldenCase {
  name: string;
  input_ids: number[];
  logits: number[][];
  argmax: number[];
  top2_margin: number[];
}

export interface Golden {
  tolerance: { recommended_logit_atol_for_fp32: number; fp32_vs_fp64_max_abs_logit_diff?: number };
  kv_sharing?: Record<string, number>;
  cases: GoldenCase[];
  greedy: { prompt_ids: number[]; generated_ids: number[]; step_logits: number[][]; step_top2_margin: number[]; max_new_tokens: number };
  intermediates?: {
    input_ids: number[];
    inputs_embeds: number[][];
    per_layer_inputs_embedded: number[][][];
    per_layer_inputs: number[][][];
    altup_streams_in: number[][][];
    layer_outputs: number[][][][];
    altup_unembedded_mean: number[][];
    final_normed: number[][];
  };
  intermediates_multimodal_ids?: {
    input_ids: number[];
    per_layer_input_token_ids: number[];
    inputs_embeds: number[][];
    per_layer_inputs: number[][][];
  };
}

export interface TinyFixture {
  name: string;
  dir: string;
  golden: Golden;
}

/** Every `gemma3n-tiny-*` fixture directory that has a config, weights and a golden. */
export function tinyFixtureDirs(): Array<{ name: string; dir: string }> {
  const dirs = readdirSync(FIXTURES_DIR)
    .filter((n) => n.startsWith('gemma3n-tiny-'))
    .map((name) => ({ name, dir: join(FIXTURES_DIR, name) }))
    .filter(({ dir }) => existsSync(join(dir, 'config.json')) && existsSync(join(dir, 'golden.json')))
    .sort((a, b) => a.name.localeCompare(b.name));
  if (dirs.length === 0) throw new Error(`no gemma3n-tiny-* fixture with config.json and golden.json in ${FIXTURES_DIR}`);
  return dirs;
}

/** The folder of a named fixture (test/fixtures/<name>); throws, failing the suite, when it is missing. */
export function fixtureDir(name: string, mustContain: string[] = ['README.md']): string {
  const dir = join(FIXTURES_DIR, name);
  for (const file of mustContain) {
    if (!existsSync(join(dir, file))) throw new Error(`fixture ${name} is missing ${file} (expected in ${dir}; run npm run fixtures:sync)`);
  }
  return dir;
}

const goldenCache = new Map<string, Golden>();

export function loadGolden(dir: string): Golden {
  let g = goldenCache.get(dir);
  if (!g) goldenCache.set(dir, (g = JSON.parse(readFileSync(join(dir, 'golden.json'), 'utf8')) as Golden));
  return g;
}

export function tinyFixtures(): TinyFixture[] {
  return tinyFixtureDirs().map(({ name, dir }) => ({ name, dir, golden: loadGolden(dir) }));
}

export function argmax(v: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < v.length; i++) if (v[i] > v[best]) best = i;
  return best;
}

/** Max |a − b| over two [T][V] arrays. */
export function maxAbsDiff2d(a: ArrayLike<ArrayLike<number>>, b: ArrayLike<ArrayLike<number>>): number {
  let m = 0;
  for (let t = 0; t < a.length; t++) for (let i = 0; i < a[t].length; i++) m = Math.max(m, Math.abs(a[t][i] - b[t][i]));
  return m;
}

/** KL(p‖q) of the softmaxes of two logit rows (nats). */
export function klDivergence(pLogits: ArrayLike<number>, qLogits: ArrayLike<number>): number {
  const logSoftmax = (z: ArrayLike<number>) => {
    let mx = -Infinity;
    for (let i = 0; i < z.length; i++) mx = Math.max(mx, z[i]);
    let s = 0;
    for (let i = 0; i < z.length; i++) s += Math.exp(z[i] - mx);
    const lse = mx + Math.log(s);
    return Array.from(z, (v) => v - lse);
  };
  const lp = logSoftmax(pLogits), lq = logSoftmax(qLogits);
  let kl = 0;
  for (let i = 0; i < lp.length; i++) kl += Math.exp(lp[i]) * (lp[i] - lq[i]);
  return kl;
}
