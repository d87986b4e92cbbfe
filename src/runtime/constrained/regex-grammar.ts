/**
 * JSON-schema `pattern` -> the grammar of a JSON string literal whose value matches it. XGrammar's converter puts
 * the regex's characters into the JSON text raw (a `.` admits a raw `"` or `\`, breaking the JSON), so patterns
 * are translated here: each regex character set becomes the JSON encodings of its characters (a `"` in the set
 * is written `\"`, a newline `\n`, ...), and sets the regex leaves open (`.`, `[^...]`, `\D`, `\W`, `\S`) exclude
 * the characters JSON would need to escape: fewer strings, all of them matching.
 *
 * A validator tests a pattern unanchored (ECMAScript, `u` flag); the grammar generates whole matches of the
 * pattern, a subset of the strings that contain a match. Supported: literals and escapes, `.`, classes with
 * ranges and negation, \d \w \s (and negations), groups, alternation, `* + ? {n} {n,} {n,m}` (lazy forms too),
 * `^` / `$` at the ends of top-level alternatives. Anything else (backreferences, lookaround, \b, flags) is
 * rejected with an UnsupportedSchema error naming it.
 */
import { type Ranges, alt, cls, lit, seq } from './ebnf.ts';
import { MAX_CODE_POINT, complementRanges, intersectRanges, normalizeRanges } from './utf8-ranges.ts';

export class UnsupportedPattern extends Error {}

type CharSet = { ranges: [number, number][]; negated: boolean };
type Node =
  | { t: 'set'; set: CharSet }
  | { t: 'seq'; items: Node[] }
  | { t: 'alt'; options: Node[] }
  | { t: 'rep'; node: Node; min: number; max: number | undefined };

const DIGITS: [number, number][] = [[0x30, 0x39]];
const WORD: [number, number][] = [[0x30, 0x39], [0x41, 0x5a], [0x5f, 0x5f], [0x61, 0x7a]];
// ECMAScript \s: WhiteSpace and LineTerminator code points.
const SPACE: [number, number][] = [[0x09, 0x0d], [0x20, 0x20], [0xa0, 0xa0], [0x1680, 0x1680], [0x2000, 0x200a], [0x2028, 0x2029], [0x202f, 0x202f], [0x205f, 0x205f], [0x3000, 0x3000], [0xfeff, 0xfeff]];
const LINE_TERMINATORS: [number, number][] = [[0x0a, 0x0a], [0x0d, 0x0d], [0x2028, 0x2029]];
/** Characters JSON must escape inside a string. */
const JSON_SPECIAL: [number, number][] = [[0x00, 0x1f], [0x22, 0x22], [0x5c, 0x5c]];

class Parser {
  i = 0;
  constructor(readonly src: string) {}

  fail(what: string): never {
    throw new UnsupportedPattern(`${what} (at offset ${this.i} of /${this.src}/)`);
  }
  peek(): string | undefined {
    return this.src[this.i];
  }
  eat(c: string): boolean {
    if (this.src[this.i] === c) {
      this.i++;
      return true;
    }
    return false;
  }

  top(): Node {
    const options: Node[] = [];
    do {
      this.eat('^');
      const s = this.sequence(true);
      options.push(s);
    } while (this.eat('|'));
    if (this.i < this.src.length) this.fail(`unexpected '${this.peek()}'`);
    return options.length === 1 ? options[0] : { t: 'alt', options };
  }

  alternation(): Node {
    const options: Node[] = [this.sequence(false)];
    while (this.eat('|')) options.push(this.sequence(false));
    return options.length === 1 ? options[0] : { t: 'alt', options };
  }

  sequence(top: boolean): Node {
    const items: Node[] = [];
    for (;;) {
      const c = this.peek();
      if (c === undefined || c === '|' || c === ')') break;
      if (c === '$') {
        this.i++;
        const next = this.peek();
        if (top && (next === undefined || next === '|')) break;
        this.fail("'$' before the end of the pattern is not supported");
      }
      if (c === '^') this.fail("'^' after the start of the pattern is not supported");
      items.push(this.quantified(this.atom()));
    }
    return items.length === 1 ? items[0] : { t: 'seq', items };
  }

  quantified(node: Node): Node {
    let min: number;
    let max: number | undefined;
    const c = this.peek();
    if (c === '*') [min, max] = [0, undefined];
    else if (c === '+') [min, max] = [1, undefined];
    else if (c === '?') [min, max] = [0, 1];
    else if (c === '{') {
      const m = /^\{(\d+)(,(\d*))?\}/.exec(this.src.slice(this.i));
      if (!m) return node; // a literal '{' (ECMAScript without u would allow it; with u it is an error)
      min = Number(m[1]);
      max = m[2] === undefined ? min : m[3] === '' ? undefined : Number(m[3]);
      if (max !== undefined && max < min) this.fail('a {n,m} quantifier with m < n');
      this.i += m[0].length - 1;
    } else return node;
    this.i++;
    this.eat('?'); // lazy: the same strings
    if (this.peek() && '*+?'.includes(this.peek()!)) this.fail('a quantifier after a quantifier');
    return this.quantified({ t: 'rep', node, min, max });
  }

  atom(): Node {
    const c = this.src.codePointAt(this.i)!;
    const ch = String.fromCodePoint(c);
    this.i += ch.length;
    if (ch === '(') {
      if (this.eat('?')) {
        if (this.eat(':')) {
          /* non-capturing */
        } else if (this.peek() === '<' && /^<[A-Za-z_$][\w$]*>/.test(this.src.slice(this.i))) {
          this.i = this.src.indexOf('>', this.i) + 1;
        } else this.fail('lookaround and group flags are not supported');
      }
      const inner = this.alternation();
      if (!this.eat(')')) this.fail("missing ')'");
      return inner;
    }
    if (ch === '[') return { t: 'set', set: this.charClass() };
    if (ch === '.') return { t: 'set', set: { ranges: LINE_TERMINATORS, negated: true } };
    if (ch === '\\') return { t: 'set', set: this.escape(false) };
    if (ch === ')' || ch === '*' || ch === '+' || ch === '?') this.fail(`unexpected '${ch}'`);
    return { t: 'set', set: { ranges: [[c, c]], negated: false } };
  }

  /** After a backslash. */
  escape(inClass: boolean): CharSet {
    const c = this.src[this.i++];
    const one = (cp: number): CharSet => ({ ranges: [[cp, cp]], negated: false });
    switch (c) {
      case undefined:
        this.fail('a trailing backslash');
      case 'd':
        return { ranges: DIGITS, negated: false };
      case 'w':
        return { ranges: WORD, negated: false };
      case 's':
        return { ranges: SPACE, negated: false };
      case 'D':
      case 'W':
      case 'S':
        if (inClass) this.fail(`\\${c} inside a class`);
        return { ranges: c === 'D' ? DIGITS : c === 'W' ? WORD : SPACE, negated: true };
      case 't':
        return one(9);
      case 'n':
        return one(10);
      case 'v':
        return one(11);
      case 'f':
        return one(12);
      case 'r':
        return one(13);
      case '0':
        if (/\d/.test(this.peek() ?? '')) this.fail('octal escapes');
        return one(0);
      case 'x': {
        const m = /^[0-9A-Fa-f]{2}/.exec(this.src.slice(this.i));
        if (!m) this.fail('a bad \\x escape');
        this.i += 2;
        return one(parseInt(m[0], 16));
      }
      case 'u': {
        const braced = /^\{([0-9A-Fa-f]{1,6})\}/.exec(this.src.slice(this.i));
        const plain = /^[0-9A-Fa-f]{4}/.exec(this.src.slice(this.i));
        if (braced) {
          this.i += braced[0].length;
          return one(parseInt(braced[1], 16));
        }
        if (!plain) this.fail('a bad \\u escape');
        this.i += 4;
        return one(parseInt(plain[0], 16));
      }
      case 'b':
        if (inClass) return one(8);
        this.fail('\\b (word boundary) is not supported');
      default:
        if (/[1-9]/.test(c)) this.fail('backreferences are not supported');
        if (/[A-Za-z]/.test(c)) this.fail(`the escape \\${c} is not supported`);
        return one(c.codePointAt(0)!);
    }
  }

  charClass(): CharSet {
    const negated = this.eat('^');
    const ranges: [number, number][] = [];
    let first = true;
    for (;;) {
      if (this.i >= this.src.length) this.fail("missing ']'");
      if (this.peek() === ']' && !first) {
        this.i++;
        break;
      }
      first = false;
      const a = this.classAtom();
      if (a.negated || a.ranges.length !== 1 || a.ranges[0][0] !== a.ranges[0][1] || this.peek() !== '-' || this.src[this.i + 1] === ']') {
        ranges.push(...a.ranges);
        continue;
      }
      this.i++; // '-'
      const b = this.classAtom();
      if (b.ranges.length !== 1 || b.ranges[0][0] !== b.ranges[0][1]) this.fail('a class range ending in a class escape');
      if (b.ranges[0][0] < a.ranges[0][0]) this.fail('a class range out of order');
      ranges.push([a.ranges[0][0], b.ranges[0][0]]);
    }
    return { ranges, negated };
  }

  classAtom(): CharSet {
    if (this.eat('\\')) return this.escape(true);
    const c = this.src.codePointAt(this.i)!;
    this.i += String.fromCodePoint(c).length;
    return { ranges: [[c, c]], negated: false };
  }
}

/** The JSON-string-content grammar of one character of the set. */
function setGrammar(set: CharSet): string {
  if (set.negated) return cls(normalizeRanges([...set.ranges, ...JSON_SPECIAL]), true);
  const plain = intersectRanges(set.ranges, complementRanges(JSON_SPECIAL, [[0, MAX_CODE_POINT]]));
  const options: string[] = [];
  if (plain.length) options.push(cls(plain));
  for (const [a, b] of normalizeRanges(set.ranges)) {
    for (let cp = Math.max(a, 0); cp <= Math.min(b, 0x5c); cp++) {
      if (cp < 0x20 || cp === 0x22 || cp === 0x5c) options.push(lit(JSON.stringify(String.fromCharCode(cp)).slice(1, -1)));
    }
  }
  if (options.length === 0) throw new UnsupportedPattern('an empty character class');
  return alt(...options);
}

function toGrammar(n: Node): string {
  switch (n.t) {
    case 'set':
      return setGrammar(n.set);
    case 'seq':
      return seq(...n.items.map(toGrammar));
    case 'alt':
      return alt(...n.options.map(toGrammar));
    case 'rep': {
      const inner = toGrammar(n.node);
      const g = inner.startsWith('(') || inner.startsWith('[') || inner.startsWith('"') ? inner : `(${inner})`;
      if (n.min === 0 && n.max === undefined) return `${g}*`;
      if (n.min === 1 && n.max === undefined) return `${g}+`;
      if (n.min === 0 && n.max === 1) return `${g}?`;
      if (n.max === 0) return '""';
      return n.max === undefined ? `${g}{${n.min},}` : n.min === n.max ? `${g}{${n.min}}` : `${g}{${n.min},${n.max}}`;
    }
  }
}

/** The grammar of a JSON string literal (quotes included) whose value matches `pattern`. */
export function patternStringGrammar(pattern: string): string {
  const node = new Parser(pattern).top();
  return seq(lit('"'), toGrammar(node), lit('"'));
}
