import { test } from 'node:test';
import assert from 'node:assert/strict';
import { KvCache, KvWriteKernel } from '../../src/kernels/kv-cache.ts';
import { submitDispatches } from '../../src/gpu/pipeline.ts';
import { testGpu, upload, download, f16SkipReason, POISON_U32 } from '../helpers/gpu.ts';
import { freshRng } from '../helpers/random.ts';
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
