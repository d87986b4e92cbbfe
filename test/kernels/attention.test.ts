import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AttentionKernel } from '../../src/kernels/attention.ts';
import { KvCache, KvWriteKernel } from '../../src/kernels/kv-cache.ts';
import { submitDispatches } from '../../src/gpu/pipeline.ts';
import { testGpu, upload, download, f16SkipReason, POISON_U32 } from '../helpers/gpu.ts';
import { freshRng, type Rng } from '../helpers/random.ts';
import { assertClose } from '../helpers/compare.ts';
import { f32ArrayToF16, f16ArrayToF32 } from '../../src/io/half.ts';
import type { GpuContext } from '../../src/gpu/device.ts';

interface Shape {
  H: number;
  Hkv: number;
  dh: number;
}

interface History {
  q: Float32Array; // [total, H, dh]
  k: Float32Array; // [total, Hkv, dh]
  v: Float32Array;
}

/** Scores q.k get a standard deviation of about `scoreStd` (Gemma's normed q/k give scores of a few units). */
function makeHistory(rng: Rng, s: Shape, total: number, scoreStd = 3): History {
  const sigma = Math.sqrt(scoreStd / Math.sqrt(s.dh));
  return { q: rng.normals(total * s.H * s.dh, sigma), k: rng.normals(total * s.Hkv * s.dh, sigma), v: rng.normals(total * s.Hkv * s.dh, 1) };
}

/** float64 reference for the queries at positions p0..p0+T-1: [T, H, dh]. window 0 = full causal. */
function attentionRef(hist: History, s: Shape, p0: number, T: number, window: number, scale: number, softcap: number): Float64Array {
  const { H, Hkv, dh } = s;
  const G = H / Hkv;
  const out = new Float64Array(T * H * dh);
  for (let t = 0; t < T; t++) {
    const p = p0 + t;
    const lo = window === 0 ? 0 : Math.max(0, p - window + 1);
    for (let h = 0; h < H; h++) {
      const g = Math.floor(h / G);
      const qb = (p * H + h) * dh;
      const scores = new Float64Array(p - lo + 1);
      let m = -Infinity;
      for (let k = lo; k <= p; k++) {
        const kb = (k * Hkv + g) * dh;
        let dot = 0;
        for (let d = 0; d < dh; d++) dot += hist.q[qb + d] * hist.k[kb + d];
        let sc = dot * scale;
        if (softcap > 0) sc = softcap * Math.tanh(sc / softcap);
        scores[k - lo] = sc;
        m = Math.max(m, sc);
      }
      let sum = 0;
      for (let i = 0; i < scores.length; i++) sum += scores[i] = Math.exp(scores[i] - m);
      const ob = (t * H + h) * dh;
      for (let k = lo; k <= p; k++) {
        const w = scores[k - lo] / sum;
        const vb = (k * Hkv + g) * dh;
        for (let d = 0; d < dh; d++) out[ob + d] += w * hist.v[vb + d];
      }
    }
  }
  return out;
}

interface Step {
  T: number;
  /** Attend and compare this step (otherwise only its keys are written, to build a long history cheaply). */
  check?: boolean;
  splits?: number;
}

interface Scenario extends Shape {
  kind: 'full' | 'sliding';
  window: number; // cache window (sliding) / 0
  maxChunk: number;
  steps: Step[];
  scale?: number;
  softcap?: number;
  maxSplits?: number;
}

// f32 accumulation: a score carries ~1e-6 absolute error (dh products of magnitude <= ~3), SwiftShader's exp
// is allowed a few ulp per unit of |x|, so weights are good to ~1e-5 relative; outputs are convex combinations
// of N(0, 1) values.
const TOL = { atol: 5e-5, rtol: 1e-4 };

/** Runs the steps through the write and attention kernels; returns the outputs of the checked steps. */
async function runScenario(ctx: GpuContext, rng: Rng, tag: string, sc: Scenario, hist?: History): Promise<{ outs: Float32Array[]; splits: number[]; hist: History }> {
  const { H, Hkv, dh } = sc;
  const total = sc.steps.reduce((a, s) => a + s.T, 0);
  hist ??= makeHistory(rng, sc, total);
  const cache = KvCache.create(ctx, { kind: sc.kind, kvHeads: Hkv, headDim: dh, maxContext: total + 2, window: sc.window, maxChunk: sc.maxChunk });
  for (const b of [cache.k, cache.v]) ctx.device.queue.writeBuffer(b, 0, new Uint32Array(b.size / 4).fill(POISON_U32));
  const writer = await KvWriteKernel.create(ctx);
  const attn = await AttentionKernel.create(ctx, { headDim: dh, group: H / Hkv });
  const maxT = Math.max(...sc.steps.map((s) => s.T));
  const row = Hkv * dh;
  const kSrc = upload(ctx, new Float32Array(maxT * row));
  const vSrc = upload(ctx, new Float32Array(maxT * row));
  const qBuf = upload(ctx, new Float32Array(maxT * H * dh));
  const outBuf = upload(ctx, new Float32Array(maxT * H * dh));
  const w = writer.bind({ cache, k: kSrc, v: vSrc });
  const a = attn.bind({ q: qBuf, out: outBuf, cache, heads: H, scale: sc.scale, softcap: sc.softcap, maxSplits: sc.maxSplits });
  const outs: Float32Array[] = [];
  const splits: number[] = [];
  let p0 = 0;
  for (const step of sc.steps) {
    const T = step.T;
    ctx.device.queue.writeBuffer(kSrc, 0, hist.k, p0 * row, T * row);
    ctx.device.queue.writeBuffer(vSrc, 0, hist.v, p0 * row, T * row);
    w.setStep(p0, T);
    if (!step.check) {
      submitDispatches(ctx.device, [w]);
    } else {
      ctx.device.queue.writeBuffer(qBuf, 0, hist.q, p0 * H * dh, T * H * dh);
      ctx.device.queue.writeBuffer(outBuf, 0, new Uint32Array(maxT * H * dh).fill(POISON_U32));
      a.setStep(p0, T, step.splits);
      submitDispatches(ctx.device, [w, a]);
      const got = new Float32Array(await download(ctx, outBuf, T * H * dh * 4));
      const want = attentionRef(hist, sc, p0, T, sc.kind === 'sliding' ? sc.window : 0, sc.scale ?? 1, sc.softcap ?? 0);
      assertClose(got, want, { ...TOL, tag: `${tag} p0=${p0} T=${T} splits=${a.splits} ${JSON.stringify({ ...sc, steps: undefined })}` });
      outs.push(got);
      splits.push(a.splits);
    }
    p0 += T;
  }
  cache.destroy();
  return { outs, splits, hist };
}

const chunks = (T: number, n: number, check = true): Step[] => Array.from({ length: n }, () => ({ T, check }));

test('attention sliding dh=32 H=4/2 window=16: chunked prefill then decode, ring wraps ~3x', async () => {
  const ctx = await testGpu();
  const { rng, tag } = freshRng();
  await runScenario(ctx, rng, tag, {
    kind: 'sliding', H: 4, Hkv: 2, dh: 32, window: 16, maxChunk: 5,
    steps: [...chunks(5, 8), { T: 3, check: true }, ...chunks(1, 5), { T: 4, check: true }, ...chunks(1, 2)],
  });
});

test('attention full dh=32 H=8/2: chunked prefill matches one-shot, then decode', async () => {
  const ctx = await testGpu();
  const { rng, tag } = freshRng();
  const base = { kind: 'full' as const, H: 8, Hkv: 2, dh: 32, window: 0, maxChunk: 13 };
  const one = await runScenario(ctx, rng, tag, { ...base, steps: [{ T: 13, check: true }, ...chunks(1, 3)] });
  const chunked = await runScenario(ctx, rng, tag, { ...base, steps: [{ T: 5, check: true }, { T: 5, check: true }, { T: 3, check: true }, ...chunks(1, 3)] }, one.hist);
  const joined = new Float32Array(13 * 8 * 32);
  joined.set(chunked.outs[0], 0);
  joined.set(chunked.outs[1], 5 * 8 * 32);
  joined.set(chunked.outs[2], 10 * 8 * 32);
  // Same math on the same keys in a different tiling: agreement well inside the reference tolerance.
  assertClose(joined, one.outs[0], { atol: 2e-5, rtol: 2e-5, tag: `${tag} chunked vs one-shot` });
  for (let i = 0; i < 3; i++) assertClose(chunked.outs[3 + i], one.outs[1 + i], { atol: 2e-5, rtol: 2e-5, tag: `${tag} decode ${i}` });
});

test('attention scale and softcap, dh=32 H=4/2', async () => {
  const ctx = await testGpu();
  const { rng, tag } = freshRng();
  await runScenario(ctx, rng, tag, { kind: 'full', H: 4, Hkv: 2, dh: 32, window: 0, maxChunk: 13, scale: 0.37, softcap: 2.5, steps: [{ T: 13, check: true }, ...chunks(1, 2)] });
});

test('attention split-K: long full history, decode and a 5-token chunk, split vs unsplit', async () => {
  const ctx = await testGpu();
  const { rng, tag } = freshRng();
  const base = { kind: 'full' as const, H: 4, Hkv: 2, dh: 32, window: 0, maxChunk: 700 };
  const a = await runScenario(ctx, rng, tag, { ...base, steps: [{ T: 700 }, { T: 1, check: true }, { T: 5, check: true }, { T: 1, check: true, splits: 4 }] });
  assert.ok(a.splits[0] > 1 && a.splits[1] > 1 && a.splits[2] > 1 && a.splits[2] <= 4, `expected split runs, got ${a.splits} ${tag}`);
  const b = await runScenario(ctx, rng, tag, { ...base, steps: [{ T: 700 }, { T: 1, check: true, splits: 1 }, { T: 5, check: true, splits: 1 }, { T: 1, check: true, splits: 1 }] }, a.hist);
  assert.deepEqual(b.splits, [1, 1, 1]);
  for (let i = 0; i < 3; i++) assertClose(a.outs[i], b.outs[i], { atol: 2e-5, rtol: 2e-5, tag: `${tag} split vs unsplit ${i}` });
});

test('attention E2B sliding: H=8/2 dh=256 window=512, 64-token chunks past 2x the window, then 13, then decode', async () => {
  const ctx = await testGpu();
  const { rng, tag } = freshRng();
  await runScenario(ctx, rng, tag, {
    kind: 'sliding', H: 8, Hkv: 2, dh: 256, window: 512, maxChunk: 64,
    steps: [...chunks(64, 17, false), { T: 64, check: true }, { T: 13, check: true }, ...chunks(1, 2)],
  });
});

test('attention E2B full decode at 4K: H=8/2 dh=256, split and unsplit, then a 3-token chunk', async () => {
  const ctx = await testGpu();
  const { rng, tag } = freshRng();
  const r = await runScenario(ctx, rng, tag, {
    kind: 'full', H: 8, Hkv: 2, dh: 256, window: 0, maxChunk: 4097,
    steps: [{ T: 4097 }, { T: 1, check: true }, { T: 1, check: true, splits: 1 }, { T: 3, check: true }],
  });
  assert.ok(r.splits[0] > 1, `4K decode should split keys, got ${r.splits[0]} ${tag}`);
});

// Gemma 4 head dims: full layers 512 per head (E2B: 8 query heads on 1 KV head, group 8), sliding layers 256 (the
// E2B tests above); the tiny fixture's 16 (sliding) and 32 (full).
test('attention Gemma 4 E2B full: H=8/1 dh=512 (group 8), 64-token chunks, then 13, decode split and unsplit', async () => {
  const ctx = await testGpu();
  const { rng, tag } = freshRng();
  const r = await runScenario(ctx, rng, tag, {
    kind: 'full', H: 8, Hkv: 1, dh: 512, window: 0, maxChunk: 64,
    steps: [...chunks(64, 4, false), { T: 64, check: true }, { T: 13, check: true }, { T: 1, check: true }, { T: 1, check: true, splits: 1 }],
  });
  assert.ok(r.splits[2] > 1, `decode over 334 keys should split, got ${r.splits[2]} ${tag}`);
});

test('attention Gemma 4 tiny sliding: dh=16 H=4/2 window=12, 7-token chunks, the ring wraps, then decode', async () => {
  const ctx = await testGpu();
  const { rng, tag } = freshRng();
  await runScenario(ctx, rng, tag, {
    kind: 'sliding', H: 4, Hkv: 2, dh: 16, window: 12, maxChunk: 7,
    steps: [...chunks(7, 6), { T: 5, check: true }, ...chunks(1, 4)],
  });
});

test('attention f16 variant', async (t) => {
  const skip = await f16SkipReason();
  if (skip) return t.skip(skip);
  const ctx = await testGpu();
  const { rng, tag } = freshRng();
  const s = { H: 8, Hkv: 2, dh: 256 };
  const total = 600;
  const hist = makeHistory(rng, s, total);
  const h16 = { q: f16ArrayToF32(f32ArrayToF16(hist.q)), k: f16ArrayToF32(f32ArrayToF16(hist.k)), v: f16ArrayToF32(f32ArrayToF16(hist.v)) };
  const cache = KvCache.create(ctx, { kind: 'sliding', kvHeads: 2, headDim: 256, maxContext: total, window: 512, maxChunk: 600, act: 'f16' });
  const writer = await KvWriteKernel.create(ctx, 'f16');
  const attn = await AttentionKernel.create(ctx, { headDim: 256, group: 4, act: 'f16' });
  const T = 3;
  const p0 = total - T;
  const w = writer.bind({ cache, k: upload(ctx, f32ArrayToF16(hist.k)), v: upload(ctx, f32ArrayToF16(hist.v)) });
  const out = upload(ctx, new Uint16Array(T * 8 * 256));
  const a = attn.bind({ q: upload(ctx, f32ArrayToF16(hist.q.subarray(p0 * 8 * 256))), out, cache, heads: 8 });
  w.setStep(0, total);
  a.setStep(p0, T);
  submitDispatches(ctx.device, [w, a]);
  const got = f16ArrayToF32(new Uint16Array(await download(ctx, out, T * 8 * 256 * 2)));
  // f16 output rounding (2^-11 relative of values <= ~3) on top of the f32 tolerance.
  assertClose(got, attentionRef(h16, s, p0, T, 512, 1, 0), { atol: 2e-3, rtol: 2e-3, tag });
});

test('attention: two layers sharing one split scratch in one pass (a full and a sliding cache)', async () => {
  const ctx = await testGpu();
  const { rng, tag } = freshRng();
  const s = { H: 4, Hkv: 2, dh: 32 };
  const total = 400;
  const hists = [makeHistory(rng, s, total), makeHistory(rng, s, total)];
  const writer = await KvWriteKernel.create(ctx);
  const attn = await AttentionKernel.create(ctx, { headDim: 32, group: 2 });
  const scratch = attn.createScratch(16 * s.H);
  const kinds = [{ kind: 'full' as const, window: 0 }, { kind: 'sliding' as const, window: 150 }];
  const outs = kinds.map(() => upload(ctx, new Uint32Array(s.H * s.dh).fill(POISON_U32)));
  const dispatches = kinds.flatMap(({ kind, window }, i) => {
    const cache = KvCache.create(ctx, { kind, kvHeads: 2, headDim: 32, maxContext: total, window, maxChunk: total });
    const w = writer.bind({ cache, k: upload(ctx, hists[i].k), v: upload(ctx, hists[i].v) });
    w.setStep(0, total);
    const a = attn.bind({ q: upload(ctx, hists[i].q.subarray((total - 1) * s.H * s.dh)), out: outs[i], cache, heads: s.H, scratch });
    a.setStep(total - 1, 1);
    assert.ok(a.splits > 1, tag);
    return [w, a];
  });
  submitDispatches(ctx.device, dispatches);
  for (let i = 0; i < 2; i++) {
    const got = new Float32Array(await download(ctx, outs[i], s.H * s.dh * 4));
    assertClose(got, attentionRef(hists[i], s, total - 1, 1, kinds[i].window, 1, 0), { ...TOL, tag: `${tag} layer ${i}` });
  }
});
