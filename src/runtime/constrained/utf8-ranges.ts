/**
 * Unicode scalar value ranges as UTF-8 byte-range sequences: [U+0800, U+FFFF] minus the surrogates becomes
 * `E0 [A0-BF] [80-BF] | [E1-EC] [80-BF] [80-BF] | ED [80-9F] [80-BF] | [EE-EF] [80-BF] [80-BF]`. Every byte string
 * a sequence matches is the well-formed (shortest, non-surrogate) encoding of a code point in the range, and every
 * such encoding matches exactly one sequence. The grammar builder writes character classes this way because the
 * grammar engine we ship matches non-ASCII classes wrongly (see ebnf.ts).
 */

/** Inclusive code point ranges. */
export type CodePointRanges = readonly (readonly [number, number])[];

/** One byte range per byte of the encoding, inclusive. */
export type ByteRangeSequence = [number, number][];

export const MAX_CODE_POINT = 0x10ffff;
/** Every Unicode scalar value: the code points minus the surrogates U+D800..U+DFFF. */
export const SCALAR_VALUES: CodePointRanges = [[0, 0xd7ff], [0xe000, MAX_CODE_POINT]];
/** The last code point of each encoded length (1..4 bytes). */
const LENGTH_ENDS = [0x7f, 0x7ff, 0xffff, MAX_CODE_POINT];

/** Sorted, merged, clipped to [0, MAX_CODE_POINT]. */
export function normalizeRanges(ranges: CodePointRanges): [number, number][] {
  const sorted = ranges
    .map(([a, b]): [number, number] => [Math.max(a, 0), Math.min(b, MAX_CODE_POINT)])
    .filter(([a, b]) => a <= b)
    .sort((x, y) => x[0] - y[0]);
  const out: [number, number][] = [];
  for (const r of sorted) {
    const last = out[out.length - 1];
    if (last && r[0] <= last[1] + 1) last[1] = Math.max(last[1], r[1]);
    else out.push([r[0], r[1]]);
  }
  return out;
}

/** The code points of `within` that are in no range of `ranges`. */
export function complementRanges(ranges: CodePointRanges, within: CodePointRanges = SCALAR_VALUES): [number, number][] {
  return intersectRanges(gaps(normalizeRanges(ranges)), within);
}

export function intersectRanges(a: CodePointRanges, b: CodePointRanges): [number, number][] {
  const out: [number, number][] = [];
  for (const [x, y] of normalizeRanges(a)) for (const [u, v] of normalizeRanges(b)) if (Math.max(x, u) <= Math.min(y, v)) out.push([Math.max(x, u), Math.min(y, v)]);
  return normalizeRanges(out);
}

function gaps(sorted: [number, number][]): [number, number][] {
  const out: [number, number][] = [];
  let next = 0;
  for (const [a, b] of sorted) {
    if (a > next) out.push([next, a - 1]);
    next = b + 1;
  }
  if (next <= MAX_CODE_POINT) out.push([next, MAX_CODE_POINT]);
  return out;
}

/** The byte-range sequences encoding exactly the scalar values of `ranges` (surrogates are dropped). */
export function utf8Sequences(ranges: CodePointRanges): ByteRangeSequence[] {
  const out: ByteRangeSequence[] = [];
  for (const [lo, hi] of intersectRanges(ranges, SCALAR_VALUES)) {
    // Split at the encoded-length boundaries, then each piece into ranges whose bytes vary independently.
    let start = lo;
    for (const end of LENGTH_ENDS) {
      if (start > hi) break;
      if (start > end) continue;
      split(start, Math.min(hi, end), out);
      start = end + 1;
    }
  }
  return out;
}

/**
 * [lo, hi] of one encoded length, split until, for each continuation position, the range covers either one value
 * of the bytes before it or all 64 values after it, so each byte position is an independent range.
 */
function split(lo: number, hi: number, out: ByteRangeSequence[]): void {
  const length = LENGTH_ENDS.findIndex((end) => hi <= end) + 1;
  for (let i = 1; i < length; i++) {
    const low = (1 << (6 * i)) - 1; // the bits of the last i continuation bytes
    if ((lo & ~low) === (hi & ~low)) continue;
    if ((lo & low) !== 0) {
      split(lo, lo | low, out);
      split((lo | low) + 1, hi, out);
      return;
    }
    if ((hi & low) !== low) {
      split(lo, (hi & ~low) - 1, out);
      split(hi & ~low, hi, out);
      return;
    }
  }
  const a = encode(lo);
  const b = encode(hi);
  out.push(a.map((x, i): [number, number] => [x, b[i]]));
}

/** The UTF-8 bytes of a scalar value. */
export function encode(cp: number): number[] {
  if (cp < 0x80) return [cp];
  if (cp < 0x800) return [0xc0 | (cp >> 6), 0x80 | (cp & 0x3f)];
  if (cp < 0x10000) return [0xe0 | (cp >> 12), 0x80 | ((cp >> 6) & 0x3f), 0x80 | (cp & 0x3f)];
  return [0xf0 | (cp >> 18), 0x80 | ((cp >> 12) & 0x3f), 0x80 | ((cp >> 6) & 0x3f), 0x80 | (cp & 0x3f)];
}
