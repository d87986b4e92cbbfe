import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SampleKernel, type SamplingParams } from '../../src/kernels/sample.ts';
import { submitDispatches } from '../../src/gpu/pipeline.ts';
import { testGpu, upload, download, poisonedBuffer, POISON_U32 } from '../helpers/gpu.ts';
import { freshRng } from '../helpers/random.ts';
import type { GpuContext } from '../../src/gpu/device.ts';

const GEMMA_VOCAB = 262400;
const GEMMA_VALID = 262144;

/** The exact sampling distribution (float64): top-k (ties with the k-th kept), softmax(x / T), top-p. */
function exactDistribution(logits: Float32Array, valid: number, k: number, p: number, temperature: number): Map<number, number> {
  const ids = Array.from({ length: valid }, (_, i) => i).sort((a, b) => logits[b] - logits[a] || a - b);
  const kth = logits[ids[Math.min(k, valid) - 1]];
  const top = ids.filter((i) => logits[i] >= kth);
  const w = top.map((i) => Math.exp((logits[i] - logits[top[0]]) / temperature));
  const z = w.reduce((a, b) => a + b, 0);
  let before = 0;
  const kept: number[] = [];
  for (let j = 0; j < top.length; j++) {
    if (j === 0 || before < p) kept.push(j);
    before += w[j] / z;
  }
  const mass = kept.reduce((a, j) => a + w[j], 0);
  return new Map(kept.map((j) => [top[j], w[j] / mass]));
}

/** A top-p that keeps exactly m of the top-k tokens, halfway between two cumulative masses (no f32 ambiguity). */
function topPKeeping(logits: Float32Array, valid: number, k: number, temperature: number, m: number): number {
  const full = exactDistribution(logits, valid, k, 1, temperature);
  const probs = [...full.values()].sort((a, b) => b - a);
  let c = 0;
  for (let j = 0; j < m - 1; j++) c += probs[j];
  return c + probs[m - 1] / 2;
}

/** Upper critical value of chi-square with df degrees of freedom at p = 1e-4 (Wilson-Hilferty; z = 3.719). */
function chiSquareCritical(df: number): number {
  const z = 3.719;
  const a = 2 / (9 * df);
  return df * (1 - a + z * Math.sqrt(a)) ** 3;
}

/** Pearson chi-square of draws against `dist`, pooling categories whose expected count is < 5. */
function chiSquare(draws: Uint32Array, dist: Map<number, number>): { stat: number; df: number } {
  const n = draws.length;
  const counts = new Map<number, number>();
  for (const d of draws) counts.set(d, (counts.get(d) ?? 0) + 1);
  let stat = 0;
  let bins = 0;
  let pooledExp = 0;
  let pooledObs = 0;
  for (const [id, prob] of dist) {
    const e = prob * n;
    const o = counts.get(id) ?? 0;
    if (e >= 5) {
      stat += (o - e) ** 2 / e;
      bins++;
    } else {
      pooledExp += e;
      pooledObs += o;
    }
  }
  if (pooledExp > 0) {
    stat += (pooledObs - pooledExp) ** 2 / pooledExp;
    bins++;
  }
  return { stat, df: bins - 1 };
}

async function sample(ctx: GpuContext, logits: Float32Array, batch: number, vocab: number, s: SamplingParams & { maxTokenId?: number; maxTopK?: number; seed?: number; step?: number }): Promise<Uint32Array> {
  const kernel = await SampleKernel.create(ctx, { maxTopK: s.maxTopK ?? 1024 });
  const out = poisonedBuffer(ctx, batch * 4);
  const d = kernel.bind({ logits: upload(ctx, logits), out, batch, vocab, maxTokenId: s.maxTokenId, maxTopK: s.maxTopK });
  d.setSampling(s);
  d.setSeed(s.seed ?? 1);
  d.setStep(s.step ?? 0);
  submitDispatches(ctx.device, [d]);
  return new Uint32Array(await download(ctx, out, batch * 4));
}

function repeatRows(row: Float32Array, batch: number): Float32Array {
  const all = new Float32Array(row.length * batch);
  for (let b = 0; b < batch; b++) all.set(row, b * row.length);
  return all;
}

function argmaxRef(row: Float32Array, valid: number): number {
  let best = 0;
  for (let i = 1; i < valid; i++) if (row[i] > row[best]) best = i;
  return best;
}

test('sample greedy at the Gemma vocab: ties -> lowest id, pad ids masked (temperature 0 and top-k 1)', async () => {
  const ctx = await testGpu();
  const { rng, tag } = freshRng();
  const V = GEMMA_VOCAB;
  const rows: Float32Array[] = [];
  rows.push(rng.normals(V, 3)); // plain
  const tied = rng.normals(V, 3);
  tied[200000] = tied[100001] = 50; // tie across chunks
  tied[262300] = 99; // larger, but a masked pad id
  rows.push(tied);
  rows.push(new Float32Array(V).fill(-2.5)); // all equal -> 0
  const sameThread = rng.normals(V, 1);
  sameThread[4096 + 300 + 256] = sameThread[4096 + 300] = 20; // tie inside one thread's elements
  rows.push(sameThread);
  const masked = rng.normals(V, 1);
  for (let i = GEMMA_VALID; i < V; i++) masked[i] = 1000;
  masked[GEMMA_VALID - 1] = 30; // the last allowed id
  rows.push(masked);
  const logits = new Float32Array(rows.length * V);
  rows.forEach((r, b) => logits.set(r, b * V));
  const want = rows.map((r) => argmaxRef(r, GEMMA_VALID));
  assert.deepEqual([want[1], want[2], want[3], want[4]], [100001, 0, 4396, GEMMA_VALID - 1]);
  for (const s of [{ temperature: 0 }, { temperature: 0.7, topK: 1 }]) {
    const got = await sample(ctx, logits, rows.length, V, { ...s, maxTokenId: GEMMA_VALID });
    assert.deepEqual(Array.from(got), want, `${JSON.stringify(s)} ${tag}`);
  }
});

test('sample greedy small vocab (V=512 and V=1000, batch 7)', async () => {
  const ctx = await testGpu();
  const { rng, tag } = freshRng();
  for (const V of [512, 1000]) {
    const B = 7;
    const logits = rng.normals(B * V, 2);
    for (let b = 0; b < B; b++) logits[b * V + rng.int(0, V)] = logits[b * V + rng.int(0, V)] = 9; // random ties (maybe one id)
    const got = await sample(ctx, logits, B, V, { temperature: 0 });
    const want = Array.from({ length: B }, (_, b) => argmaxRef(logits.subarray(b * V, b * V + V), V));
    assert.deepEqual(Array.from(got), want, `V=${V} ${tag}`);
  }
});

// Statistics: B rows of identical logits are B independent draws (each row has its own RNG stream). A correct
// sampler fails the chi-square test with probability 1e-4; draws outside the kept set fail outright.
interface StatCase {
  V: number;
  maxTokenId: number;
  k: number;
  keep?: number; // tokens top-p should keep (sets topP between two cumulative masses); undefined = topP 1
  temperature: number;
  batch: number;
}

const statCases: StatCase[] = [
  { V: 700, maxTokenId: 700, k: 40, keep: 15, temperature: 0.8, batch: 2000 },
  { V: 4700, maxTokenId: 4500, k: 50, temperature: 1.5, batch: 1200 }, // 2 chunks, the second partly masked
];

for (const c of statCases) {
  test(`sample top-k/top-p statistics V=${c.V} maxTokenId=${c.maxTokenId} k=${c.k} keep=${c.keep} T=${c.temperature} draws=${c.batch}`, async () => {
    const ctx = await testGpu();
    const { rng, tag } = freshRng();
    const row = rng.normals(c.V, 1.5);
    for (let i = c.maxTokenId; i < c.V; i += 7) row[i] = 100; // masked ids with huge logits
    const topP = c.keep ? topPKeeping(row, c.maxTokenId, c.k, c.temperature, c.keep) : 1;
    const dist = exactDistribution(row, c.maxTokenId, c.k, topP, c.temperature);
    assert.equal(dist.size, c.keep ?? c.k);
    const seed = rng.int(0, 2 ** 31);
    const s = { temperature: c.temperature, topK: c.k, topP, maxTokenId: c.maxTokenId, maxTopK: 64, seed, step: 3 };
    const logits = repeatRows(row, c.batch);
    const draws = await sample(ctx, logits, c.batch, c.V, s);
    for (const d of draws) assert.ok(dist.has(d), `drew ${d}, outside the kept set ${tag}`);
    const { stat, df } = chiSquare(draws, dist);
    assert.ok(stat < chiSquareCritical(df), `chi-square ${stat.toFixed(1)} >= ${chiSquareCritical(df).toFixed(1)} (df ${df}, p < 1e-4) ${tag}`);
    // Determinism: a row's draw depends only on (seed, step, row), so a smaller batch repeats the first draws;
    // another step or seed gives other draws.
    const few = 200;
    const small = logits.subarray(0, few * c.V);
    const again = await sample(ctx, small, few, c.V, s);
    assert.deepEqual(again, draws.subarray(0, few), `not deterministic ${tag}`);
    const nextStep = await sample(ctx, small, few, c.V, { ...s, step: 4 });
    const otherSeed = await sample(ctx, small, few, c.V, { ...s, seed: seed + 1 });
    const agree = (a: Uint32Array) => a.reduce((n, x, i) => n + (x === draws[i] ? 1 : 0), 0);
    // The most likely token has p < 0.5 here, so two independent streams agree on ~< 40% of rows.
    assert.ok(agree(nextStep) < few * 0.7 && agree(otherSeed) < few * 0.7, `streams do not change with step/seed ${tag}`);
    for (const d of [...nextStep, ...otherSeed]) assert.ok(dist.has(d), `drew ${d}, outside the kept set ${tag}`);
  });
}

test('sample at the Gemma vocab: Gemma defaults (k 64, p 0.95) and k 1024 / p 0.9 stay inside the kept set', async () => {
  const ctx = await testGpu();
  const { rng, tag } = freshRng();
  const V = GEMMA_VOCAB;
  const B = 6;
  const logits = rng.normals(B * V, 2);
  for (let b = 0; b < B; b++) for (let i = GEMMA_VALID; i < V; i += 3) logits[b * V + i] = 50;
  for (const s of [{ temperature: 1, topK: 64, topP: 0.95 }, { temperature: 0.6, topK: 1024, topP: 0.9 }, { temperature: 1.3, topK: 300, topP: 1 }]) {
    const got = await sample(ctx, logits, B, V, { ...s, maxTokenId: GEMMA_VALID, seed: rng.int(0, 1e9), step: 17 });
    for (let b = 0; b < B; b++) {
      const dist = exactDistribution(logits.subarray(b * V, b * V + V), GEMMA_VALID, s.topK, s.topP, s.temperature);
      assert.ok(got[b] !== POISON_U32 && dist.has(got[b]), `row ${b}: ${got[b]} not in the kept set ${JSON.stringify(s)} ${tag}`);
    }
  }
});

test('sample top-k 0 (= maxTopK 256) over a small vocab: statistics with every token a candidate (V=250)', async () => {
  const ctx = await testGpu();
  const { rng, tag } = freshRng();
  const V = 250;
  const B = 1000;
  const row = rng.normals(V, 2.5);
  const dist = exactDistribution(row, V, V, 1, 1);
  const draws = await sample(ctx, repeatRows(row, B), B, V, { temperature: 1, topK: 0, topP: 1, maxTopK: 256, seed: rng.int(0, 1e9) });
  for (const d of draws) assert.ok(d < V, `drew ${d} ${tag}`);
  const { stat, df } = chiSquare(draws, dist);
  assert.ok(stat < chiSquareCritical(df), `chi-square ${stat.toFixed(1)} >= ${chiSquareCritical(df).toFixed(1)} (df ${df}) ${tag}`);
});

