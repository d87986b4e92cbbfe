// The CPU quantizer (src/model/cpu-quant.ts, used for the host PLE table) against the definition the GPU
// quantizer follows bit for bit (test/helpers/quantize-ref.ts): random rows of several magnitudes, exact ties
// (w / d landing on .5), zero groups, tiny groups (subnormal f16 scales, where q8 codes reach -128), widths that are
// not multiples of 32; and its speed on one E2B PLE row chunk.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { quantizeCpu } from '../../src/model/cpu-quant.ts';
import { quantizeRef } from '../helpers/quantize-ref.ts';
import { freshRng } from '../helpers/random.ts';

for (const format of ['q4', 'q8'] as const) {
  test(`quantizeCpu ${format} equals the reference definition bit for bit`, () => {
    const { rng, tag } = freshRng();
    for (const [rows, cols] of [[7, 96], [5, 45], [3, 7680], [4, 33]]) {
      const w = new Float32Array(rows * cols);
      for (let i = 0; i < w.length; i++) w[i] = rng.normal() * [1e-3, 0.02, 1, 300][i % 4];
      // Exact ties: multiples of half a scale step in one group, and an all-zero group.
      for (let i = 0; i < Math.min(32, cols); i++) w[i] = (i - 16) * 0.5;
      if (cols >= 64) w.fill(0, 32, 64);
      // Tiny groups: their f16 scales are subnormal (q8 codes may reach -128 there).
      for (let r = 1; r < rows; r++) for (let i = 0; i < Math.min(32, cols); i++) w[r * cols + i] = rng.normal() * 1e-4;
      const got = quantizeCpu(format, w, rows, cols);
      const ref = quantizeRef(format, w, rows, cols).packed;
      assert.deepEqual(got.scales, ref.scales, `${tag} ${rows}x${cols} scales`);
      assert.deepEqual(got.data, ref.data, `${tag} ${rows}x${cols} data`);
    }
  });
}

test('quantizeCpu speed on an E2B PLE chunk (informational)', () => {
  const rows = 256, cols = 7680;
  const { rng } = freshRng();
  const w = new Float32Array(rows * cols);
  for (let i = 0; i < w.length; i++) w[i] = rng.normal() * 0.02;
  const t0 = performance.now();
  quantizeCpu('q4', w, rows, cols);
  const ns = ((performance.now() - t0) * 1e6) / w.length;
  console.log(`# quantizeCpu q4: ${ns.toFixed(1)} ns per value (E2B's 2.0 G-value PLE table: ${((ns * 262144 * 7680) / 1e9).toFixed(0)} s on this machine now)`);
});
