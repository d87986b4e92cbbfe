/**
 * Exact grammars for bounded JSON numbers. XGrammar's own schema converter admits numbers outside the bounds
 * (maximum 120 admitted 121-129, a number maximum admitted 100000.5), so bounded numbers are written here as
 * digit-by-digit ranges over canonical decimal text (no exponent): every string the grammar admits parses to a
 * number inside the bounds, the way a validator compares it (as a double).
 *
 * Why it is exact for doubles: the grammar bounds the exact decimal value of the text by a decimal D that parses
 * to the bound b itself; rounding to double is monotonic, so text <= D implies Number(text) <= Number(D) = b. An
 * exclusive bound b becomes the inclusive bound nextDown(b) (or nextUp), for which the same holds.
 */
import { type EbnfBuilder, alt, lit, seq } from './ebnf.ts';

/** An exact non-negative decimal: integer part and fraction digits (no trailing zeros). */
interface Decimal {
  int: bigint;
  frac: string;
}

/** The exact decimal of the shortest representation of a finite double, as sign + magnitude. */
export function decimalOf(x: number): { neg: boolean; mag: Decimal } {
  let s = String(Math.abs(x));
  let exp = 0;
  const e = s.indexOf('e');
  if (e >= 0) {
    exp = Number(s.slice(e + 1));
    s = s.slice(0, e);
  }
  let [ip, fp = ''] = s.split('.');
  let digits = ip + fp;
  let point = ip.length + exp; // decimal point position within digits
  if (point < 0) {
    digits = '0'.repeat(-point) + digits;
    point = 0;
  }
  if (point > digits.length) digits += '0'.repeat(point - digits.length);
  ip = digits.slice(0, point) || '0';
  fp = digits.slice(point).replace(/0+$/, '');
  return { neg: x < 0 || Object.is(x, -0), mag: { int: BigInt(ip), frac: fp } };
}

/** The neighbouring double towards -Infinity (dir -1) or +Infinity (dir +1). */
export function nextDouble(x: number, dir: 1 | -1): number {
  if (x === 0) return dir * Number.MIN_VALUE;
  const buf = new DataView(new ArrayBuffer(8));
  buf.setFloat64(0, x);
  const bits = buf.getBigUint64(0);
  const away = (x > 0) === (dir > 0);
  buf.setBigUint64(0, away ? bits + 1n : bits - 1n);
  return buf.getFloat64(0);
}

const DIGIT = '[0-9]';

/** Digit strings of the same length as lo and hi with lo <= s <= hi (lexicographic = numeric). */
function sameLengthBetween(lo: string, hi: string): string {
  if (lo.length === 0) return '""';
  if (lo === hi) return lit(lo);
  if (/^0*$/.test(lo) && /^9*$/.test(hi)) return Array(lo.length).fill(DIGIT).join(' ');
  const a = Number(lo[0]);
  const b = Number(hi[0]);
  const rest = lo.length - 1;
  const any = (n: number) => Array(n).fill(DIGIT).join(' ');
  if (a === b) return seq(lit(lo[0]), sameLengthBetween(lo.slice(1), hi.slice(1)));
  const options = [seq(lit(lo[0]), sameLengthBetween(lo.slice(1), '9'.repeat(rest)))];
  if (b - a >= 2) options.push(seq(a + 1 === b - 1 ? lit(String(a + 1)) : `[${a + 1}-${b - 1}]`, any(rest)));
  options.push(seq(lit(hi[0]), sameLengthBetween('0'.repeat(rest), hi.slice(1))));
  return alt(...options);
}

/**
 * Where the schema sets no upper bound the grammar still stops at 16 digits (or one more digit than the lower
 * bound): a validator parses JSON numbers to doubles, and digits without end would overflow to Infinity, which
 * is not a valid number.
 */
export const MAX_FREE_DIGITS = 16;

/** Canonical naturals (no leading zeros) in [lo, hi]; hi undefined = up to MAX_FREE_DIGITS digits. */
export function naturalRange(lo: bigint, hi: bigint | undefined): string {
  if (hi === undefined) hi = lo < 10n ** BigInt(MAX_FREE_DIGITS - 1) ? 10n ** BigInt(MAX_FREE_DIGITS) - 1n : lo * 10n + 9n;
  if (hi < lo) throw new Error('naturalRange: empty');
  const options: string[] = [];
  const loS = lo.toString();
  const maxLen = hi.toString().length;
  for (let len = loS.length; len <= maxLen; len++) {
    const first = len === loS.length ? loS : '1' + '0'.repeat(len - 1);
    const last = len === maxLen ? hi.toString() : '9'.repeat(len);
    options.push(sameLengthBetween(first, last));
  }
  return alt(...options);
}

/** Integers in [lo, hi] (either may be undefined), as canonical JSON integers ("-0" never). */
export function integerRange(lo: bigint | undefined, hi: bigint | undefined): string {
  const options: string[] = [];
  if (hi === undefined || hi >= 0n) options.push(naturalRange(lo !== undefined && lo > 0n ? lo : 0n, hi));
  if (lo === undefined || lo < 0n) {
    const magLo = hi !== undefined && hi < 0n ? -hi : 1n;
    options.push(seq(lit('-'), naturalRange(magLo, lo === undefined ? undefined : -lo)));
  }
  if (options.length === 0) throw new Error('integerRange: empty');
  return alt(...options);
}

function compareDecimal(a: Decimal, b: Decimal): number {
  if (a.int !== b.int) return a.int < b.int ? -1 : 1;
  const n = Math.max(a.frac.length, b.frac.length);
  const fa = a.frac.padEnd(n, '0');
  const fb = b.frac.padEnd(n, '0');
  return fa < fb ? -1 : fa > fb ? 1 : 0;
}

/**
 * Non-empty fraction digit strings d with lo <= 0.d <= hi (lo, hi: digit strings without trailing zeros;
 * undefined = no bound). Rules per (position, tight-low, tight-high), as a digit DP.
 */
function fractionBetween(g: EbnfBuilder, lo: string | undefined, hi: string | undefined): string {
  const L = Math.max(lo?.length ?? 0, hi?.length ?? 0);
  const memo = new Map<string, string>();
  const state = (i: number, tl: boolean, th: boolean, first: boolean): string => {
    if (tl && i >= (lo ?? '').length) tl = false;
    if (!tl && !th) return first ? `${DIGIT}+` : `${DIGIT}*`;
    const key = `${Math.min(i, L)}:${tl}:${th}:${first}`;
    const known = memo.get(key);
    if (known) return known;
    const name = g.reserve('frac');
    memo.set(key, name);
    const loD = tl ? Number(lo![i]) : 0;
    const hiD = th ? (i < hi!.length ? Number(hi![i]) : 0) : 9;
    const options: string[] = [];
    if (!first && !tl) options.push('""');
    for (let d = loD; d <= hiD; d++) {
      const ntl = tl && d === loD;
      const nth = th && d === hiD;
      if (!ntl && !nth && d > loD && d < hiD) continue; // the free middle digits, below
      options.push(seq(lit(String(d)), state(i + 1, ntl, nth, false)));
    }
    if (hiD - loD >= 2) options.push(seq(`[${loD + 1}-${hiD - 1}]`, `${DIGIT}*`));
    g.define(name, alt(...options));
    return name;
  };
  return state(0, lo !== undefined && lo.length > 0, hi !== undefined, true);
}

/** Non-negative decimals (canonical integer part, optional fraction, no exponent) in [lo, hi]. */
function decimalRange(g: EbnfBuilder, lo: Decimal, hi: Decimal | undefined): string {
  const frac = (flo: string | undefined, fhi: string | undefined) => seq(lit('.'), fractionBetween(g, flo, fhi));
  const anyFrac = `(${lit('.')} ${DIGIT}+)?`;
  const options: string[] = [];
  if (hi !== undefined && lo.int === hi.int) {
    const i = lit(lo.int.toString());
    options.push(seq(i, frac(lo.frac, hi.frac)));
    if (lo.frac === '') options.push(i);
    return alt(...options);
  }
  // integer part == lo.int
  const li = lit(lo.int.toString());
  options.push(lo.frac === '' ? seq(li, anyFrac) : seq(li, frac(lo.frac, undefined)));
  // lo.int < integer part < hi.int
  const midHi = hi === undefined ? undefined : hi.int - 1n;
  if (midHi === undefined || lo.int + 1n <= midHi) options.push(seq(naturalRange(lo.int + 1n, midHi), anyFrac));
  if (hi !== undefined) {
    const hiI = lit(hi.int.toString());
    options.push(hiI);
    options.push(seq(hiI, frac(undefined, hi.frac)));
  }
  return alt(...options);
}

export interface NumberBounds {
  minimum?: number;
  maximum?: number;
  exclusiveMinimum?: number;
  exclusiveMaximum?: number;
}

/** The tightest inclusive double bounds of a JSON schema's number keywords (undefined = none). */
function inclusiveBounds(b: NumberBounds, integer: boolean): { lo?: number; hi?: number } {
  let lo = b.minimum;
  let hi = b.maximum;
  if (b.exclusiveMinimum !== undefined) {
    const v = integer ? Math.floor(b.exclusiveMinimum) + 1 : nextDouble(b.exclusiveMinimum, 1);
    lo = lo === undefined ? v : Math.max(lo, v);
  }
  if (b.exclusiveMaximum !== undefined) {
    const v = integer ? Math.ceil(b.exclusiveMaximum) - 1 : nextDouble(b.exclusiveMaximum, -1);
    hi = hi === undefined ? v : Math.min(hi, v);
  }
  return { lo, hi };
}

// At most MAX_FREE_DIGITS integer digits and a two-digit exponent: always a finite double.
const FREE_INT = `(${lit('0')} | [1-9] ${DIGIT}{0,${MAX_FREE_DIGITS - 1}})`;
const UNBOUNDED_INTEGER = `(${lit('-')}? ${FREE_INT})`;
const UNBOUNDED_NUMBER = `(${lit('-')}? ${FREE_INT} (${lit('.')} ${DIGIT}+)? ([eE] [+\\u002d]? ${DIGIT} ${DIGIT}?)?)`;

/** Whether the bounds admit any value (integers: any integer). */
export function boundsSatisfiable(b: NumberBounds, integer: boolean): boolean {
  const { lo, hi } = inclusiveBounds(b, integer);
  if (integer) return lo === undefined || hi === undefined || Math.ceil(lo) <= Math.floor(hi);
  return lo === undefined || hi === undefined || lo <= hi;
}

/** The grammar of a JSON number / integer within the bounds (exact; see the header). */
export function numberGrammar(g: EbnfBuilder, b: NumberBounds, integer: boolean): string {
  const { lo, hi } = inclusiveBounds(b, integer);
  if (lo === undefined && hi === undefined) return integer ? UNBOUNDED_INTEGER : UNBOUNDED_NUMBER;
  if (integer) {
    const toInt = (x: number, up: boolean) => {
      const d = decimalOf(x);
      let v = d.mag.int;
      if (d.neg) v = -v - (d.mag.frac !== '' && !up ? 1n : 0n);
      else if (d.mag.frac !== '' && up) v += 1n;
      return v;
    };
    return integerRange(lo === undefined ? undefined : toInt(lo, true), hi === undefined ? undefined : toInt(hi, false));
  }
  const options: string[] = [];
  const zero: Decimal = { int: 0n, frac: '' };
  const L = lo === undefined ? undefined : decimalOf(lo);
  const H = hi === undefined ? undefined : decimalOf(hi);
  // Non-negative part: [max(lo, 0), hi].
  if (H === undefined || !H.neg || compareDecimal(H.mag, zero) === 0) {
    const from = L === undefined || L.neg ? zero : L.mag;
    options.push(decimalRange(g, from, H === undefined ? undefined : H.neg ? zero : H.mag));
  }
  // Negative part: "-" then magnitudes in [max(0, -hi), -lo].
  if (L === undefined || (L.neg && compareDecimal(L.mag, zero) !== 0)) {
    const from = H !== undefined && H.neg ? H.mag : zero;
    options.push(seq(lit('-'), decimalRange(g, from, L === undefined ? undefined : L.mag)));
  }
  return alt(...options);
}
