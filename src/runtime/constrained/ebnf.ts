/**
 * A small builder of XGrammar EBNF text (https://www.w3.org/TR/xml/#sec-notation with XGrammar's escapes):
 * named rules, deduplicated by body, and escaped literals and character classes. Every character outside
 * [A-Za-z0-9 ] is written as a \u / \U escape so no text of a schema can break the grammar's syntax.
 */
import { type CodePointRanges, SCALAR_VALUES, complementRanges, intersectRanges, utf8Sequences } from './utf8-ranges.ts';

export class EbnfBuilder {
  private readonly rules = new Map<string, string>();
  private readonly byBody = new Map<string, string>();
  private counter = 0;

  /** A fresh rule name from a hint (letters, digits and _ only). */
  reserve(hint: string): string {
    const base = hint.replace(/[^A-Za-z0-9_]/g, '_').replace(/^[^A-Za-z]/, 'r') || 'r';
    const name = `${base}_${this.counter++}`;
    this.rules.set(name, '');
    return name;
  }

  define(name: string, body: string): string {
    this.rules.set(name, body);
    return name;
  }

  /** A rule with this body (reusing an identical one). */
  rule(hint: string, body: string): string {
    const known = this.byBody.get(body);
    if (known) return known;
    const name = this.define(this.reserve(hint), body);
    this.byBody.set(body, name);
    return name;
  }

  text(root: string): string {
    const lines = [`root ::= ${root}`];
    for (const [name, body] of this.rules) lines.push(`${name} ::= ${body}`);
    return lines.join('\n') + '\n';
  }
}

function esc(cp: number): string {
  if ((cp >= 0x30 && cp <= 0x39) || (cp >= 0x41 && cp <= 0x5a) || (cp >= 0x61 && cp <= 0x7a) || cp === 0x20) return String.fromCodePoint(cp);
  return cp <= 0xffff ? `\\u${cp.toString(16).padStart(4, '0')}` : `\\U${cp.toString(16).padStart(8, '0')}`;
}

/**
 * An EBNF string literal matching `s` exactly ('' gives the empty literal). An escape is never followed by a hex
 * digit inside one literal: XGrammar 0.1.27 reads `"\u0003ca"` as U+03CA (measured), so such a literal is split
 * into a parenthesized sequence of literals.
 */
export function lit(s: string): string {
  const parts: string[] = [];
  let out = '"';
  let escaped = false;
  for (const ch of s) {
    const e = esc(ch.codePointAt(0)!);
    if (escaped && /^[0-9A-Fa-f]/.test(e)) {
      parts.push(out + '"');
      out = '"';
    }
    out += e;
    escaped = e.startsWith('\\');
  }
  parts.push(out + '"');
  return parts.length === 1 ? parts[0] : `(${parts.join(' ')})`;
}

/** Code point ranges [lo, hi] (inclusive). */
export type Ranges = CodePointRanges;

const ASCII: Ranges = [[0, 0x7f]];
const NON_ASCII_SCALARS = complementRanges(ASCII);

/**
 * One character of a set of code points (`negated`: any Unicode scalar value outside them), matched exactly.
 *
 * XGrammar 0.1.27, the engine build we ship, gets classes right on ASCII only (measured:
 * test/runtime/constrained/xgrammar-classes.test.ts): a class of several elements reads each code point as its low
 * byte (`[а-я]` admits the bytes 0x30..0x4F, '0'..'O'), and a negated class admits every non-ASCII byte sequence
 * of UTF-8 shape, overlong and surrogate forms included, whatever it excludes. A single-element class is exact (it
 * becomes a string). So a set is written as its ASCII part, a class of bytes, plus its other characters as the
 * byte-range sequences of their UTF-8 encodings, each range a class of bytes (`[\u0080-\u00bf]` is the bytes
 * 0x80..0xBF there). A set holding every non-ASCII scalar value keeps the short negated form `[^...]` (its ASCII
 * exclusions are exact); the ill-formed encodings it admits are cleared from the mask by the Utf8Guard.
 */
export function cls(ranges: Ranges, negated = false): string {
  const set = negated ? complementRanges(ranges) : intersectRanges(ranges, SCALAR_VALUES);
  const ascii = intersectRanges(set, ASCII);
  const wide = intersectRanges(set, NON_ASCII_SCALARS);
  const allWide = wide.length === NON_ASCII_SCALARS.length && wide.every(([a, b], i) => a === NON_ASCII_SCALARS[i][0] && b === NON_ASCII_SCALARS[i][1]);
  if (allWide) {
    const excluded = complementRanges(ascii, ASCII);
    return excluded.length ? `[^${classBody(excluded)}]` : alt(byteClass(ASCII), `[^${classBody(ASCII)}]`);
  }
  const options = utf8Sequences(wide).map((bytes) => seq(...bytes.map(([a, b]) => byteClass([[a, b]]))));
  if (ascii.length) options.unshift(byteClass(ascii));
  if (options.length === 0) throw new Error('cls: an empty character set');
  return alt(...options);
}

/** A class matching one byte in `bytes` (see cls: several elements, so XGrammar keeps it byte-wise). */
function byteClass(bytes: Ranges): string {
  if (bytes.length === 1 && bytes[0][0] === bytes[0][1]) {
    const b = bytes[0][0];
    return b < 0x80 ? lit(String.fromCharCode(b)) : `[${esc(b)}${esc(b)}]`;
  }
  return `[${classBody(bytes)}]`;
}

function classBody(ranges: Ranges): string {
  return ranges.map(([a, b]) => (a === b ? esc(a) : `${esc(a)}-${esc(b)}`)).join('');
}

/** `parts` in sequence ('""' when empty). */
export function seq(...parts: string[]): string {
  const kept = parts.filter((p) => p !== '' && p !== '""');
  return kept.length === 0 ? '""' : kept.length === 1 ? kept[0] : `(${kept.join(' ')})`;
}

/** Alternatives. */
export function alt(...options: string[]): string {
  const uniq = [...new Set(options)];
  return uniq.length === 1 ? uniq[0] : `(${uniq.join(' | ')})`;
}
