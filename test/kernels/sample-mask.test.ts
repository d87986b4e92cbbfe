import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SampleKernel } from '../../src/kernels/sample.ts';
import { submitDispatches } from '../../src/gpu/pipeline.ts';
import { testGpu, upload, download, poisonedBuffer } from '../helpers/gpu.ts';
import { freshRng, type Rng } from '../helpers/random.ts';

const GEMMA_VOCAB = 262400;
const GEMMA_VALID = 262144;

function randomMask(rng: Rng, vocab: number, density: number, ensure: number[] = []): Uint32Array {
  const m = new Uint32Array(Math.ceil(vocab / 32));
  const n = Math.max(1, Math.round(vocab * density));
  for (let k = 0; k < n; k++) {
    const id = rng.int(0, vocab);
    m[id >>> 5] |= 1 << (id & 31);
  }
  for (const id of ensure) m[id >>> 5] |= 1 << (id & 31);
  return m;
}

const allows = (m: Uint32Array, id: number) => ((m[id >>> 5] >>> (id & 31)) & 1) === 1;

// Property test: over random masks (dense, sparse, a single id) and sampling settings, every row's draw is an
// allowed id below maxTokenId; greedy is the argmax within the allowed set; masked-out ids with huge logits are
// never chosen, even at temperature 50; a seed reproduces; the unmasked path of the same binding still works.
test('sample with a vocabulary mask: draws stay in the allowed set (random masks and settings, Gemma vocab)', async () => {
  const ctx = await testGpu();
  const { rng, tag } = freshRng();
  const kernel = await SampleKernel.create(ctx);
  const V = GEMMA_VOCAB;
  const B = 4;
  const logits = rng.normals(B * V, 2);
  const logitsBuf = upload(ctx, logits);
  const maskBuf = ctx.device.createBuffer({ size: Math.ceil(V / 32) * 4, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST });
  const out = poisonedBuffer(ctx, B * 4);
  const d = kernel.bind({ logits: logitsBuf, out, batch: B, vocab: V, maxTokenId: GEMMA_VALID, mask: maskBuf });
  const settings = [{ temperature: 0 }, { temperature: 1, topK: 64, topP: 0.95 }, { temperature: 50, topK: 0, topP: 1 }, { temperature: 0.7, topK: 1 }, { temperature: 2, topK: 300, topP: 0.5 }];
  const densities = [0.5, 1e-3, 3e-5, 0];
  for (let trial = 0; trial < 12; trial++) {
    const s = settings[trial % settings.length];
    const density = densities[trial % densities.length];
    const single = density === 0 ? rng.int(0, GEMMA_VALID) : undefined;
    const mask = density === 0 ? randomMask(rng, 0, 0, [single!]).slice() : randomMask(rng, GEMMA_VALID, density);
    const full = new Uint32Array(Math.ceil(V / 32));
    full.set(mask.subarray(0, full.length));
    if (single !== undefined) full[single >>> 5] |= 1 << (single & 31);
    // Masked-out ids get the largest logits: a sampler ignoring the mask would pick them.
    const rowLogits = logits.slice();
    for (let b = 0; b < B; b++) for (let k = 0; k < 50; k++) {
      const id = rng.int(0, GEMMA_VALID);
      if (!allows(full, id)) rowLogits[b * V + id] = 80;
    }
    ctx.device.queue.writeBuffer(logitsBuf, 0, rowLogits);
    ctx.device.queue.writeBuffer(maskBuf, 0, full);
    d.setSampling(s);
    d.setSeed(rng.int(0, 1e9));
    d.setStep(trial);
    d.setMasked(true);
    submitDispatches(ctx.device, [d]);
    const got = new Uint32Array(await download(ctx, out, B * 4));
    for (let b = 0; b < B; b++) {
      const id = got[b];
      assert.ok(id < GEMMA_VALID && allows(full, id), `trial ${trial} row ${b}: drew ${id}, not allowed (${JSON.stringify(s)}, density ${density}) ${tag}`);
      if (single !== undefined) assert.equal(id, single, tag);
      if ((s.temperature ?? 1) <= 0 || s.topK === 1) {
        let best = -1;
        for (let i = 0; i < GEMMA_VALID; i++) if (allows(full, i) && (best < 0 || rowLogits[b * V + i] > rowLogits[b * V + best])) best = i;
        assert.equal(id, best, `greedy within the mask, row ${b} ${tag}`);
      }
    }
    // The same seed and step reproduce the draws.
    submitDispatches(ctx.device, [d]);
    assert.deepEqual(new Uint32Array(await download(ctx, out, B * 4)), got, `not reproducible ${tag}`);
  }
  // Unmasked again: greedy is the plain argmax below maxTokenId.
  ctx.device.queue.writeBuffer(logitsBuf, 0, logits);
  d.setMasked(false);
  d.setSampling({ temperature: 0 });
  submitDispatches(ctx.device, [d]);
  const plain = new Uint32Array(await download(ctx, out, B * 4));
  for (let b = 0; b < B; b++) {
    let best = 0;
    for (let i = 1; i < GEMMA_VALID; i++) if (logits[b * V + i] > logits[b * V + best]) best = i;
    assert.equal(plain[b], best, tag);
  }
});
