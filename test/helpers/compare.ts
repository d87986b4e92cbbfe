import assert from 'node:assert/strict';

export interface CloseOptions {
  /** Absolute tolerance. */
  atol: number;
  /** Relative tolerance (of |expected|). */
  rtol?: number;
  /** Appended to the failure message (the seed, the shape). */
  tag?: string;
}

/**
 * Asserts |actual - expected| <= atol + rtol * |expected| elementwise. NaN or infinity in `actual` always
 * fails (poisoned outputs are NaN, so an unwritten element fails too). Returns the max abs error.
 */
export function assertClose(actual: ArrayLike<number>, expected: ArrayLike<number>, opts: CloseOptions): number {
  assert.equal(actual.length, expected.length, `length mismatch ${opts.tag ?? ''}`);
  const rtol = opts.rtol ?? 0;
  let maxErr = 0;
  let worst = -1;
  for (let i = 0; i < expected.length; i++) {
    const a = actual[i];
    const e = expected[i];
    if (!Number.isFinite(a)) assert.fail(`element ${i} is ${a} (expected ${e}) ${opts.tag ?? ''}`);
    const err = Math.abs(a - e);
    if (err > opts.atol + rtol * Math.abs(e) && (worst < 0 || err > maxErr)) worst = i;
    if (err > maxErr) maxErr = err;
  }
  if (worst >= 0) {
    assert.fail(`element ${worst}: got ${actual[worst]}, expected ${expected[worst]} (max abs err ${maxErr}, atol ${opts.atol}, rtol ${rtol}) ${opts.tag ?? ''}`);
  }
  return maxErr;
}

/** Elements of two f32 arrays whose bit patterns differ (0: bit-identical, NaN payloads and signed zeros included). */
export function countBitMismatches(a: Float32Array, b: Float32Array): number {
  assert.equal(a.length, b.length, 'length mismatch');
  const ua = new Uint32Array(a.buffer, a.byteOffset, a.length), ub = new Uint32Array(b.buffer, b.byteOffset, b.length);
  let n = 0;
  for (let i = 0; i < a.length; i++) if (ua[i] !== ub[i]) n++;
  return n;
}
