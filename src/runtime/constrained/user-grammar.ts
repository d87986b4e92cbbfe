/**
 * A user's EBNF grammar (responseFormat `grammar`) made exact on the engine we ship: every character class that
 * holds a non-ASCII character (`[а-яё]`, `[^é]`, `[\u4e00-\u9fff]`) is rewritten as the exact byte-wise form of
 * ebnf.ts's cls(), because XGrammar 0.1.27 reads such classes wrongly (see cls). Classes over ASCII only, string
 * literals and comments are left as written. A class this scanner cannot read (an escape it does not know) is
 * also left as written, for the engine to judge.
 */
import { cls } from './ebnf.ts';

/** The grammar with its non-ASCII character classes rewritten exactly. */
export function exactClasses(ebnf: string): string {
  let out = '';
  let i = 0;
  while (i < ebnf.length) {
    const c = ebnf[i];
    if (c === '"') {
      const end = endOfString(ebnf, i);
      out += ebnf.slice(i, end);
      i = end;
    } else if (c === '#') {
      const end = ebnf.indexOf('\n', i);
      const stop = end < 0 ? ebnf.length : end;
      out += ebnf.slice(i, stop);
      i = stop;
    } else if (c === '[') {
      const parsed = readClass(ebnf, i);
      if (!parsed) {
        out += c;
        i++;
        continue;
      }
      const nonAscii = parsed.ranges.some(([, hi]) => hi >= 0x80);
      out += nonAscii ? cls(parsed.ranges, parsed.negated) : ebnf.slice(i, parsed.end);
      i = parsed.end;
    } else {
      out += c;
      i++;
    }
  }
  return out;
}

/** The index just past the string literal opening at `start` (the text's end if it never closes). */
function endOfString(s: string, start: number): number {
  for (let i = start + 1; i < s.length; i++) {
    if (s[i] === '\\') i++;
    else if (s[i] === '"') return i + 1;
  }
  return s.length;
}

const SIMPLE_ESCAPES: Record<string, number> = { n: 0x0a, r: 0x0d, t: 0x09, '\\': 0x5c, ']': 0x5d, '[': 0x5b, '-': 0x2d, '^': 0x5e, '"': 0x22, "'": 0x27 };
const HEX_ESCAPES: Record<string, number> = { x: 2, u: 4, U: 8 };

/** The class opening at `start`: its code point ranges, negation and end; null if it cannot be read. */
function readClass(s: string, start: number): { ranges: [number, number][]; negated: boolean; end: number } | null {
  let i = start + 1;
  const negated = s[i] === '^';
  if (negated) i++;
  const ranges: [number, number][] = [];
  const element = (): number | null => {
    if (i >= s.length) return null;
    if (s[i] !== '\\') {
      const cp = s.codePointAt(i)!;
      i += cp > 0xffff ? 2 : 1;
      return cp;
    }
    const kind = s[i + 1];
    if (kind in SIMPLE_ESCAPES) {
      i += 2;
      return SIMPLE_ESCAPES[kind];
    }
    const digits = HEX_ESCAPES[kind];
    if (!digits) return null;
    const hex = s.slice(i + 2, i + 2 + digits);
    if (!/^[0-9a-fA-F]+$/.test(hex) || hex.length !== digits) return null;
    i += 2 + digits;
    return parseInt(hex, 16);
  };
  while (i < s.length && s[i] !== ']') {
    const lo = element();
    if (lo === null) return null;
    let hi = lo;
    if (s[i] === '-' && s[i + 1] !== ']') {
      i++;
      const h = element();
      if (h === null || h < lo) return null;
      hi = h;
    }
    ranges.push([lo, hi]);
  }
  if (s[i] !== ']' || ranges.length === 0) return null;
  return { ranges, negated, end: i + 1 };
}
