import { test } from 'node:test';
import assert from 'node:assert/strict';
import { GeluGateKernel } from '../../src/kernels/gelu_gate.ts';
import { inverseNormalCdf } from '../../src/math/normal.ts';
import { submitDispatches } from '../../src/gpu/pipeline.ts';
import { testGpu, poisonedBuffer, upload, download, f16SkipReason } from '../helpers/gpu.ts';
import { freshRng } from '../helpers/random.ts';
import { assertClose } from '../helpers/compare.ts';
import { f32ArrayToF16, f16ArrayToF32 } from '../../src/io/half.ts';

const gelu = (x: number) => 0.5 * x * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (x + 0.044715 * x ** 3)));

/** float64 reference on a fused [T, 2F] input (gate at 0, up at F). Returns y and each row's cutoff. */
function ref(gu: Float32Array, T: number, F: number, kappa: number | undefined): { y: Float64Array; cutoff: Float64Array } {
  const y = new Float64Array(T * F);
  const cutoff = new Float64Array(T).fill(-Infinity);
  for (let t = 0; t < T; t++) {
    const g = gu.subarray(t * 2 * F, t * 2 * F + F);
    const u = gu.subarray(t * 2 * F + F, (t + 1) * 2 * F);
    if (kappa !== undefined) {
      let s = 0;
      for (let j = 0; j < F; j++) s += g[j];
      const mu = s / F;
      let s2 = 0;
      for (let j = 0; j < F; j++) s2 += (g[j] - mu) ** 2;
      cutoff[t] = mu + kappa * Math.sqrt(s2 / F);
    }
    for (let j = 0; j < F; j++) y[t * F + j] = gelu(kappa !== undefined ? Math.max(0, g[j] - cutoff[t]) : g[j]) * u[j];
  }
  return { y, cutoff };
}

test('inverseNormalCdf matches torch f32 icdf', () => {
  // torch.distributions.Normal(0, 1).icdf(torch.tensor(0.95)) = 1.6448536 (f32 1.64485359191894531).
  assert.equal(inverseNormalCdf(0.95), Math.fround(1.6448536));
  assert.ok(Math.abs(inverseNormalCdf(0.95) - 1.6448536269514722) < 1e-7);
  // f32(0.99) = 0.99000000954 moves the exact quantile by 4.3e-7; torch sees the same f32 input.
  assert.ok(Math.abs(inverseNormalCdf(0.99) - 2.3263478740408408) < 1e-6);
  assert.equal(inverseNormalCdf(0.5), 0);
  assert.equal(inverseNormalCdf(0.05), -inverseNormalCdf(0.95));
  assert.equal(inverseNormalCdf(0), -Infinity);
});

// Gate values are Gaussian with a per-row mean/scale (HF's gate rows are not centred), up values N(0, 1).
// Tolerance: f32 mean/std over F <= 16384 carry ~1e-6 relative error, i.e. the cutoff moves by ~1e-6 * sigma; the
// output moves by at most that times |gelu'| (<= 1.13) times |up| (<~ 5), plus 2-3 f32 roundings of the output
// and our exp-based gelu (a few ulp): atol 2e-5 * sigma-scale + rtol 1e-5.
const cases = [
  { name: 'sparse E2B F=8192 T=13', T: 13, F: 8192, p: 0.95, scale: 3 },
  { name: 'sparse odd F=160 T=3', T: 3, F: 160, p: 0.95, scale: 1 },
  { name: 'dense E2B F=8192 T=3', T: 3, F: 8192, p: 0, scale: 2 },
  { name: 'dense F=80 T=13', T: 13, F: 80, p: 0, scale: 20 },
  { name: 'sparse E4B F=16384 T=1 (decode)', T: 1, F: 16384, p: 0.95, scale: 1 },
];

for (const c of cases) {
  test(`gelu_gate f32 ${c.name}`, async () => {
    const ctx = await testGpu();
    const { rng, tag } = freshRng();
    const { T, F } = c;
    const gu = new Float32Array(T * 2 * F);
    for (let t = 0; t < T; t++) {
      const mean = rng.normal() * c.scale * 0.3, std = c.scale * rng.uniform(0.5, 1.5);
      for (let j = 0; j < F; j++) { gu[t * 2 * F + j] = mean + std * rng.normal(); gu[t * 2 * F + F + j] = rng.normal(); }
    }
    const buf = upload(ctx, gu);
    const y = poisonedBuffer(ctx, T * F * 4);
    const kernel = await GeluGateKernel.create(ctx);
    const d = kernel.bind({ gate: { buffer: buf, rowStride: 2 * F }, up: { buffer: buf, offset: F, rowStride: 2 * F }, y, rows: T, cols: F, sparsity: c.p });
    submitDispatches(ctx.device, [d]);
    const got = new Float32Array(await download(ctx, y, T * F * 4));
    const kappa = c.p > 0 ? inverseNormalCdf(c.p) : undefined;
    const { y: expected, cutoff } = ref(gu, T, F, kappa);
    assertClose(got, expected, { atol: 2e-5 * c.scale, rtol: 1e-5, tag: `${tag} ${c.name}` });
    if (kappa === undefined) return;
    // Exactness of the cut: away from the cutoff (more than 1e-5 sigma), an entry survives on the GPU iff it
    // survives in the reference, and dropped entries are exactly 0.
    let survivors = 0;
    for (let t = 0; t < T; t++) {
      for (let j = 0; j < F; j++) {
        const g = gu[t * 2 * F + j], out = got[t * F + j];
        const margin = 1e-5 * c.scale * 1.5;
        if (g < cutoff[t] - margin) assert.ok(out === 0, `dropped entry (${t}, ${j}) is ${out} ${tag}`);
        if (g > cutoff[t] + margin && gu[t * 2 * F + F + j] !== 0) assert.notEqual(out, 0, `kept entry (${t}, ${j}) is 0 ${tag}`);
        if (out !== 0) survivors++;
      }
    }
    // About 5% survive on Gaussian gates (the cutoff is at the 95th percentile of the fitted normal). With
    // >= 160 entries a row the fraction's sd is <= 1.7%; the big cases are checked tightly.
    const frac = survivors / (T * F);
    const slack = T * F >= 8192 ? 0.006 : 0.04;
    assert.ok(Math.abs(frac - 0.05) < slack, `survivor fraction ${frac} ${tag}`);
  });
}

test('gelu_gate f32: separate gate/up buffers, setRows, extreme values stay finite', async () => {
  const ctx = await testGpu();
  const { rng, tag } = freshRng();
  const T = 5, F = 160;
  const g = rng.normals(T * F, 50);
  g[0] = 1e30; g[1] = -1e30; g[2] = 1e5; g[3] = -1e5; g[4] = 0;
  const u = rng.normals(T * F, 1);
  const y = poisonedBuffer(ctx, T * F * 4);
  const kernel = await GeluGateKernel.create(ctx);
  const d = kernel.bind({ gate: upload(ctx, g), up: upload(ctx, u), y, rows: T, cols: F });
  d.setRows(2);
  submitDispatches(ctx.device, [d]);
  const got = new Float32Array(await download(ctx, y, T * F * 4));
  const expected = Array.from({ length: 2 * F }, (_, i) => (Math.abs(g[i]) > 1e30 ? (g[i] > 0 ? g[i] * u[i] : 0) : gelu(g[i]) * u[i]));
  assertClose(got.subarray(0, 2 * F), expected, { atol: 1e-4, rtol: 1e-5, tag });
  assert.ok(got.subarray(2 * F).every(Number.isNaN), `rows beyond setRows were written ${tag}`);
});

test('gelu_gate f16 variant', async (t) => {
  const skip = await f16SkipReason();
  if (skip) return t.skip(skip);
  const ctx = await testGpu();
  const { rng, tag } = freshRng();
  const T = 3, F = 8192;
  const gu = f32ArrayToF16(rng.normals(T * 2 * F, 2));
  const y = poisonedBuffer(ctx, T * F * 2);
  const buf = upload(ctx, gu);
  const kernel = await GeluGateKernel.create(ctx, 'f16');
  submitDispatches(ctx.device, [kernel.bind({ gate: { buffer: buf, rowStride: 2 * F }, up: { buffer: buf, offset: F, rowStride: 2 * F }, y, rows: T, cols: F, sparsity: 0.95 })]);
  const got = f16ArrayToF32(new Uint16Array(await download(ctx, y, T * F * 2)));
  // f16 output rounding (2^-11 relative) of values up to ~20.
  assertClose(got, ref(f16ArrayToF32(gu), T, F, inverseNormalCdf(0.95)).y, { atol: 2e-2, rtol: 2e-3, tag });
});
