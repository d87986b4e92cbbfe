/**
 * The value syntax of Gemma 4's native tool blocks (docs/gemma4-tool-calls.md): JSON's values with every string
 * between two `<|"|>` delimiter tokens (written raw: no escapes), object keys unquoted, `,` and `:` with no spaces,
 * e.g. `{location:<|"|>London<|"|>,days:3,metric:true}`. Numbers, booleans, null, arrays and nesting are JSON's.
 *
 * The seven markers are written two ways: as their token strings in a rendered prompt (the tokenizer turns each into
 * its control id), and as one ASCII control character each (U+0001..U+0007, vocabulary.ts's ControlSpelling)
 * wherever text must tell a marker token apart from the same characters written with ordinary tokens: in the call
 * grammar and in the reader's buffer.
 *
 * Choices where Google's documents show no rule: keys are written in the object's own order; a key is a run of
 * letters, digits and `_ . $ -` (a schema with other property names is refused, as are string length bounds and
 * patterns, which the JSON path enforces on JSON text only).
 */
import type { ToolTokens } from '../../model/tool-tokens.ts';
import { cls, lit, seq } from '../constrained/ebnf.ts';
import { type SchemaNode, type ValueSyntax, unsupported } from '../constrained/json-schema.ts';
import { controlCodePoint } from '../constrained/vocabulary.ts';

/** The markers as one text spells them (token strings, or the grammar's code points). */
export type Markers = ToolTokens<string>;

/** The markers as the call grammar and the reader spell them: one control character each. */
export const CODE_POINT_MARKERS: Markers = {
  declaration: { open: controlCodePoint(0), close: controlCodePoint(1) },
  call: { open: controlCodePoint(2), close: controlCodePoint(3) },
  response: { open: controlCodePoint(4), close: controlCodePoint(5) },
  stringDelimiter: controlCodePoint(6),
};

/** The seven markers in a fixed order (pairs, then the string delimiter). */
export function markerList<T>(m: ToolTokens<T>): T[] {
  return [m.declaration.open, m.declaration.close, m.call.open, m.call.close, m.response.open, m.response.close, m.stringDelimiter];
}

const FIRST_MARKER = CODE_POINT_MARKERS.declaration.open.codePointAt(0)!;
const LAST_MARKER = CODE_POINT_MARKERS.stringDelimiter.codePointAt(0)!;
/** Any of the marker code points. */
export const MARKER_CODE_POINTS = new RegExp(`[${CODE_POINT_MARKERS.declaration.open}-${CODE_POINT_MARKERS.stringDelimiter}]`, 'gu');

/** Whether one character is a marker code point. */
export function isMarkerCodePoint(ch: string): boolean {
  const c = ch.codePointAt(0)!;
  return c >= FIRST_MARKER && c <= LAST_MARKER;
}

/** A property name the syntax writes bare and reads back unambiguously. */
const KEY = /^[A-Za-z0-9_.$-]+$/;

/** `v` in the native syntax, strings between `quote`s (undefined members are left out, as JSON.stringify does). */
export function nativeValue(v: unknown, quote: string): string {
  if (typeof v === 'string') return quote + v + quote;
  if (typeof v === 'number') return Number.isFinite(v) ? JSON.stringify(v) : 'null';
  if (typeof v === 'boolean' || v === null) return String(v);
  if (Array.isArray(v)) return `[${v.map((x) => (x === undefined || typeof x === 'function' ? 'null' : nativeValue(x, quote))).join(',')}]`;
  if (typeof v === 'object') {
    const members = Object.entries(v as Record<string, unknown>).filter(([, x]) => x !== undefined && typeof x !== 'function');
    return `{${members.map(([k, x]) => `${k}:${nativeValue(x, quote)}`).join(',')}}`;
  }
  return 'null';
}

/** Parses a native value whose strings are between `quote`s (whitespace between tokens is skipped). Throws SyntaxError. */
export function parseNativeValue(text: string, quote: string): unknown {
  let i = 0;
  const fail = (what: string): never => {
    throw new SyntaxError(`${what} at offset ${i} of the native value`);
  };
  const ws = () => {
    while (i < text.length && /\s/.test(text[i])) i++;
  };
  const value = (): unknown => {
    ws();
    if (text.startsWith(quote, i)) {
      const end = text.indexOf(quote, i + quote.length);
      if (end < 0) fail('an unterminated string');
      const s = text.slice(i + quote.length, end);
      i = end + quote.length;
      return s;
    }
    const c = text[i];
    if (c === '{') {
      i++;
      const o: Record<string, unknown> = {};
      ws();
      if (text[i] === '}') return i++, o;
      for (;;) {
        ws();
        const colon = text.indexOf(':', i);
        if (colon < 0) fail('a key without a value');
        const key = text.slice(i, colon).trim();
        if (!KEY.test(key)) fail(`the key ${JSON.stringify(key)}`);
        i = colon + 1;
        Object.defineProperty(o, key, { value: value(), enumerable: true, writable: true, configurable: true });
        ws();
        if (text[i] === ',') i++;
        else if (text[i] === '}') return i++, o;
        else fail('a missing , or }');
      }
    }
    if (c === '[') {
      i++;
      const a: unknown[] = [];
      ws();
      if (text[i] === ']') return i++, a;
      for (;;) {
        a.push(value());
        ws();
        if (text[i] === ',') i++;
        else if (text[i] === ']') return i++, a;
        else fail('a missing , or ]');
      }
    }
    const m = /^(?:true|false|null|-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?)/.exec(text.slice(i));
    if (!m) fail('an unexpected character');
    i += m![0].length;
    return JSON.parse(m![0]);
  };
  const v = value();
  ws();
  if (i !== text.length) fail('text after the value');
  return v;
}

/** The native syntax for the schema grammar (json-schema.ts's SchemaGrammar), markers as code points. */
export const NATIVE_GRAMMAR_SYNTAX: ValueSyntax = {
  stringRule(sg) {
    const q = lit(CODE_POINT_MARKERS.stringDelimiter);
    return sg.sharedRule('native_string', () => {
      // Right-recursive, as the JSON string rule (json-schema.ts): any code point but the markers, then the delimiter.
      const tail = sg.g.reserve('native_string_tail');
      sg.g.define(tail, `${q} | ${cls([[FIRST_MARKER, LAST_MARKER]], true)} ${tail}`);
      return seq(q, tail);
    });
  },
  key: (name) => `${name}:`,
  mapKey: (sg) => sg.sharedRule('native_key', () => seq(cls([[0x41, 0x5a], [0x5f, 0x5f], [0x61, 0x7a]]), `${cls([[0x30, 0x39], [0x41, 0x5a], [0x5f, 0x5f], [0x61, 0x7a]])}*`, lit(':'))),
  comma: ',',
  serialize: (v) => nativeValue(v, CODE_POINT_MARKERS.stringDelimiter),
};

/** Refuses what the native syntax cannot guarantee (see the header), naming the construct and where it is. */
export function checkNativeSchema(node: SchemaNode, path: string, seen = new Set<SchemaNode>()): void {
  if (seen.has(node)) return;
  seen.add(node);
  const why = "in Gemma 4's native tool calls";
  switch (node.kind) {
    case 'string':
      if (node.pattern !== undefined) throw unsupported(`\`pattern\` ${why}`, path);
      if (node.minLength > 0 || node.maxLength !== undefined) throw unsupported(`minLength/maxLength ${why}`, path);
      return;
    case 'ref':
      return checkNativeSchema(node.target!, node.pointer, seen);
    case 'anyOf':
      return node.options.forEach((o, i) => checkNativeSchema(o, `${path}/anyOf/${i}`, seen));
    case 'array':
      return checkNativeSchema(node.items, `${path}/items`, seen);
    case 'object':
      for (const p of node.props) {
        if (!KEY.test(p.name)) throw unsupported(`the property name ${JSON.stringify(p.name)} ${why} (names are written bare: letters, digits, _ . $ -)`, path);
        checkNativeSchema(p.node, `${path}/properties/${p.name}`, seen);
      }
      if (node.additional) checkNativeSchema(node.additional, `${path}/additionalProperties`, seen);
      return;
    default:
      return;
  }
}
