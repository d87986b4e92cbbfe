import { test } from 'node:test';
import assert from 'node:assert/strict';
import { KvCache, KvWriteKernel } from '../../src/kernels/kv-cache.ts';
import { submitDispatches } from '../../src/gpu/pipeline.ts';
import { testGpu, upload, download, f16SkipReason, POISON_U32 } from '../helpers/gpu.ts';
import { freshRng } from '../helpers/random.ts';
import { assertClose } from '../helpers/compare.ts';
import { f32ArrayToF16 } from '../../src/io/half.ts';
import type { GpuContext } from '../../src/gpu/device.ts';

function poison(ctx: GpuContext, cache: KvCache): void {
  for (const b of [cache.k, cache.v]) ctx.device.queue.writeBuffer(b, 0, new Uint32Array(b.size / 4).fill(POISON_U32));
}

test('kv-cache capacity rule', () => {
  assert.equal(KvCache.capacityFor({ kind: 'full', kvHeads: 2, headDim: 256, maxContext: 4096 }), 4096);
  assert.equal(KvCache.capacityFor({ kind: 'sliding', kvHeads: 2, headDim: 256, maxContext: 4096, window: 512 }), 512);
  assert.equal(KvCache.capacityFor({ kind: 'sliding', kvHeads: 2, headDim: 256, maxContext: 4096, window: 512, maxChunk: 128 }), 639);
  assert.equal(KvCache.capacityFor({ kind: 'sliding', kvHeads: 2, headDim: 256, maxContext: 300, window: 512, maxChunk: 128 }), 300);
});

// Writes a random history chunk by chunk (with strided sources, as from a fused QKV buffer) and checks every
// slot bit-exactly: a copy must be exact, slots never written must still hold the poison.
const cases = [
  { kind: 'sliding' as const, kvHeads: 2, headDim: 32, window: 16, maxChunk: 5, chunks: [5, 5, 3, 1, 1, 5, 4, 5, 1, 5, 5, 2] },
  { kind: 'sliding' as const, kvHeads: 2, headDim: 256, window: 512, maxChunk: 64, chunks: [64, 64, 64, 64, 64, 64, 64, 64, 64, 13, 1, 1] },
  { kind: 'full' as const, kvHeads: 3, headDim: 12, window: 0, maxChunk: 7, chunks: [7, 1, 1, 6] },
];

for (const c of cases) {
  test(`kv-cache write ${c.kind} Hkv=${c.kvHeads} dh=${c.headDim} window=${c.window} chunks=${c.chunks.length}`, async () => {
    const ctx = await testGpu();
    const { rng, tag } = freshRng();
    const total = c.chunks.reduce((a, b) => a + b, 0);
    const cache = KvCache.create(ctx, { kind: c.kind, kvHeads: c.kvHeads, headDim: c.headDim, maxContext: total + 3, window: c.window, maxChunk: c.maxChunk });
    poison(ctx, cache);
    const kernel = await KvWriteKernel.create(ctx);
    const row = c.kvHeads * c.headDim;
    const stride = row + 3; // not dense: sources are rows of a wider buffer
    const maxT = Math.max(...c.chunks);
    const kSrc = upload(ctx, new Float32Array(maxT * stride + 5));
    const vSrc = upload(ctx, new Float32Array(maxT * stride + 5));
    const d = kernel.bind({ cache, k: kSrc, v: vSrc, kOffset: 2, kStride: stride, vOffset: 5, vStride: stride });
    const histK = new Float32Array(total * row);
    const histV = new Float32Array(total * row);
    let p0 = 0;
    for (const T of c.chunks) {
      const ks = new Float32Array(maxT * stride + 5);
      const vs = new Float32Array(maxT * stride + 5);
      for (let t = 0; t < T; t++) {
        for (let e = 0; e < row; e++) {
          histK[(p0 + t) * row + e] = ks[2 + t * stride + e] = rng.normal();
          histV[(p0 + t) * row + e] = vs[5 + t * stride + e] = rng.normal();
        }
      }
      ctx.device.queue.writeBuffer(kSrc, 0, ks);
      ctx.device.queue.writeBuffer(vSrc, 0, vs);
      d.setStep(p0, T);
      submitDispatches(ctx.device, [d]);
      p0 += T;
    }
    const gotK = new Uint32Array(await download(ctx, cache.k, cache.capacity * row * 4));
    const gotV = new Uint32Array(await download(ctx, cache.v, cache.capacity * row * 4));
    const hk = new Uint32Array(histK.buffer);
    const hv = new Uint32Array(histV.buffer);
    for (let slot = 0; slot < cache.capacity; slot++) {
      // The newest position that maps to this slot, if any.
      let pos = slot + Math.floor((total - 1 - slot) / cache.capacity) * cache.capacity;
      if (slot > total - 1) pos = -1;
      for (let e = 0; e < row; e++) {
        const wantK = pos < 0 ? POISON_U32 : hk[pos * row + e];
        const wantV = pos < 0 ? POISON_U32 : hv[pos * row + e];
        if (gotK[slot * row + e] !== wantK || gotV[slot * row + e] !== wantV) {
          assert.fail(`slot ${slot} (position ${pos}) element ${e}: k ${gotK[slot * row + e]} v ${gotV[slot * row + e]}, want ${wantK} ${wantV} ${tag}`);
        }
      }
    }
  });
}

/** float64: per-head RMSNorm (times w when given) then RoPE (when theta is given) of one [heads, dh] row. */
function headRef(x: ArrayLike<number>, heads: number, dh: number, w: Float32Array | undefined, rope: { theta: number; pos: number; rotated: number } | undefined): Float64Array {
  const y = new Float64Array(heads * dh);
  const half = dh / 2;
  const f = Math.fround;
  for (let h = 0; h < heads; h++) {
    let ss = 0;
    for (let i = 0; i < dh; i++) ss += x[h * dh + i] ** 2;
    const inv = 1 / Math.sqrt(ss / dh + 1e-6);
    const n = Array.from({ length: dh }, (_, i) => x[h * dh + i] * inv * (w ? w[i] : 1));
    for (let i = 0; i < half; i++) {
      let [a, b] = [n[i], n[i + half]];
      if (rope && i < rope.rotated) {
        const phi = f(rope.pos * f(1 / f(Math.pow(rope.theta, f((2 * i) / dh)))));
        [a, b] = [a * Math.cos(phi) - b * Math.sin(phi), b * Math.cos(phi) + a * Math.sin(phi)];
      }
      y[h * dh + i] = a;
      y[h * dh + i + half] = b;
    }
  }
  return y;
}

// The decoder's K/V path in one dispatch: k_norm + RoPE of the keys, RMS0 of the values, written into the ring (it
// wraps here) from strided sources; slots never written keep the poison. E2B's sliding K (dh 256), and Gemma 4's
// partial RoPE on an odd head dim.
const fusedCases = [
  { kind: 'sliding' as const, kvHeads: 2, headDim: 256, window: 8, maxChunk: 4, chunks: [4, 4, 1, 3, 1], theta: 10_000, rotated: 128 },
  { kind: 'full' as const, kvHeads: 3, headDim: 40, window: 0, maxChunk: 7, chunks: [7, 1, 5], theta: 1_000_000, rotated: 5 },
];

for (const c of fusedCases) {
  test(`kv-cache write with k_norm + RoPE and v_norm: ${c.kind} Hkv=${c.kvHeads} dh=${c.headDim}`, async () => {
    const ctx = await testGpu();
    const { rng, tag } = freshRng();
    const total = c.chunks.reduce((a, b) => a + b, 0);
    const cache = KvCache.create(ctx, { kind: c.kind, kvHeads: c.kvHeads, headDim: c.headDim, maxContext: total + 9, window: c.window, maxChunk: c.maxChunk });
    poison(ctx, cache);
    const kernel = await KvWriteKernel.create(ctx);
    const row = c.kvHeads * c.headDim;
    const stride = row + 3;
    const maxT = Math.max(...c.chunks);
    const kSrc = upload(ctx, new Float32Array(maxT * stride + 5));
    const vSrc = upload(ctx, new Float32Array(maxT * stride + 5));
    const wk = rng.normals(c.headDim, 1);
    const d = kernel.bind({ cache, k: kSrc, v: vSrc, kOffset: 2, kStride: stride, vOffset: 5, vStride: stride, kNorm: upload(ctx, wk), vNorm: true, eps: 1e-6, rope: { theta: c.theta, rotatedAngles: c.rotated } });
    const wantK = new Map<number, Float64Array>(), wantV = new Map<number, Float64Array>();
    let p0 = 0;
    for (const T of c.chunks) {
      const ks = rng.normals(maxT * stride + 5, 30);
      const vs = rng.normals(maxT * stride + 5, 30);
      for (let t = 0; t < T; t++) {
        const slot = (p0 + t) % cache.capacity;
        wantK.set(slot, headRef(ks.subarray(2 + t * stride, 2 + t * stride + row), c.kvHeads, c.headDim, wk, { theta: c.theta, pos: p0 + t, rotated: c.rotated }));
        wantV.set(slot, headRef(vs.subarray(5 + t * stride, 5 + t * stride + row), c.kvHeads, c.headDim, undefined, undefined));
      }
      ctx.device.queue.writeBuffer(kSrc, 0, ks);
      ctx.device.queue.writeBuffer(vSrc, 0, vs);
      d.setStep(p0, T);
      submitDispatches(ctx.device, [d]);
      p0 += T;
    }
    const gotK = new Float32Array(await download(ctx, cache.k, cache.capacity * row * 4));
    const gotV = new Float32Array(await download(ctx, cache.v, cache.capacity * row * 4));
    const gotBits = new Uint32Array(gotK.buffer);
    for (let slot = 0; slot < cache.capacity; slot++) {
      const k = wantK.get(slot), v = wantV.get(slot);
      if (!k || !v) {
        assert.equal(gotBits[slot * row], POISON_U32, `${tag}: slot ${slot} was never written but changed`);
        continue;
      }
      // Normed values |x̂·w| <~ 4: the norm's f32 error (~1e-6 relative) and the rotation's (rope's 1e-7 angles).
      assertClose(gotK.subarray(slot * row, (slot + 1) * row), k, { atol: 1e-5, rtol: 5e-6, tag: `${tag} k slot ${slot}` });
      assertClose(gotV.subarray(slot * row, (slot + 1) * row), v, { atol: 1e-5, rtol: 5e-6, tag: `${tag} v slot ${slot}` });
    }
  });
}

test('kv-cache rejects steps the ring cannot hold', async () => {
  const ctx = await testGpu();
  const cache = KvCache.create(ctx, { kind: 'sliding', kvHeads: 1, headDim: 4, maxContext: 100, window: 8, maxChunk: 4 });
  assert.equal(cache.capacity, 11);
  assert.doesNotThrow(() => cache.checkStep(40, 4));
  assert.throws(() => cache.checkStep(40, 5), /ring slots/);
  assert.throws(() => cache.checkStep(98, 4), /context/);
  cache.destroy();
});

test('kv-cache write f16 variant', async (t) => {
  const skip = await f16SkipReason();
  if (skip) return t.skip(skip);
  const ctx = await testGpu();
  const { rng, tag } = freshRng();
  const cache = KvCache.create(ctx, { kind: 'sliding', kvHeads: 2, headDim: 8, maxContext: 64, window: 4, maxChunk: 3, act: 'f16' });
  const kernel = await KvWriteKernel.create(ctx, 'f16');
  const row = 16;
  const ks = f32ArrayToF16(rng.normals(3 * row));
  const vs = f32ArrayToF16(rng.normals(3 * row));
  const d = kernel.bind({ cache, k: upload(ctx, ks), v: upload(ctx, vs) });
  d.setStep(5, 3); // positions 5, 6, 7 -> slots 5, 0, 1 of 6
  submitDispatches(ctx.device, [d]);
  const got = new Uint16Array(await download(ctx, cache.k, cache.capacity * row * 2));
  for (const [t, slot] of [[0, 5], [1, 0], [2, 1]]) {
    assert.deepEqual(Array.from(got.subarray(slot * row, slot * row + row)), Array.from(ks.subarray(t * row, t * row + row)), tag);
  }
});
