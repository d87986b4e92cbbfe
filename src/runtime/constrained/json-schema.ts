/**
 * JSON schema -> a normalized tree (SchemaNode) -> XGrammar EBNF. We write the grammar ourselves instead of using
 * XGrammar's converter because its gaps break the guarantee (inexact numeric bounds, raw TABs and no escapes in
 * bounded strings, patterns whose `.` admits a raw quote, 9-11 s compiles for maxLength): here numbers are exact
 * (number-grammar.ts), patterns are JSON-escaped (regex-grammar.ts), and string lengths are enforced by the
 * constraint on the mask (string-bounds.ts), so the grammar stays small and compiles in well under a second.
 *
 * The output format is fixed: one line, `{"a": 1, "b": [1, 2]}` (Python json.dumps' separators), properties in
 * the schema's order, no properties beyond the declared ones. A schema we cannot guarantee throws a GemmaError
 * ('invalid-argument') naming the construct and where it is, before any token is generated.
 */
import { GemmaError } from '../../errors.ts';
import { EbnfBuilder, alt, cls, lit, seq } from './ebnf.ts';
import { type NumberBounds, boundsSatisfiable, numberGrammar } from './number-grammar.ts';
import { UnsupportedPattern, patternStringGrammar } from './regex-grammar.ts';

export type SchemaNode =
  | { kind: 'any' }
  | { kind: 'object'; props: PropertyNode[]; /** values of a free-form map (only when props is empty); null = no keys */ additional: SchemaNode | null }
  | { kind: 'array'; items: SchemaNode; minItems: number; maxItems?: number }
  | { kind: 'string'; minLength: number; maxLength?: number; pattern?: string }
  | { kind: 'number'; integer: boolean; bounds: NumberBounds }
  | { kind: 'const'; values: unknown[] }
  | { kind: 'boolean' }
  | { kind: 'null' }
  | { kind: 'anyOf'; options: SchemaNode[] }
  | { kind: 'ref'; pointer: string; target?: SchemaNode };

export interface PropertyNode {
  name: string;
  node: SchemaNode;
  required: boolean;
}

const ANNOTATIONS = new Set(['title', 'description', 'default', 'examples', '$schema', '$id', '$comment', 'deprecated', 'readOnly', 'writeOnly', '$defs', 'definitions']);
const BY_TYPE: Record<string, Set<string>> = {
  object: new Set(['properties', 'required', 'additionalProperties']),
  array: new Set(['items', 'minItems', 'maxItems', 'uniqueItems']),
  string: new Set(['minLength', 'maxLength', 'pattern']),
  number: new Set(['minimum', 'maximum', 'exclusiveMinimum', 'exclusiveMaximum']),
  integer: new Set(['minimum', 'maximum', 'exclusiveMinimum', 'exclusiveMaximum']),
  boolean: new Set(),
  null: new Set(),
};
const TYPES = Object.keys(BY_TYPE);
const STRUCTURAL = new Set(['type', 'enum', 'const', 'anyOf', 'oneOf', 'allOf', '$ref']);

export function unsupported(what: string, path: string): GemmaError {
  return new GemmaError('invalid-argument', `Unsupported JSON schema: ${what} at ${path || '#'}. Structured output supports type, properties, required, additionalProperties, items, minItems, maxItems, enum, const, anyOf, oneOf (of disjoint types), minimum/maximum (exclusive too), minLength/maxLength, pattern and local $ref.`);
}

type Json = Record<string, unknown>;

/** Follows the `$ref`s of one schema; refs are resolved lazily so recursive schemas work. */
class SchemaReader {
  private readonly refs = new Map<string, SchemaNode & { kind: 'ref' }>();
  constructor(private readonly root: unknown) {}

  read(schema: unknown, path: string): SchemaNode {
    if (schema === true) return { kind: 'any' };
    if (schema === false) throw unsupported('a `false` schema (nothing validates)', path);
    if (typeof schema !== 'object' || schema === null || Array.isArray(schema)) throw unsupported('a schema that is not an object', path);
    const s = schema as Json;
    const keys = Object.keys(s).filter((k) => !ANNOTATIONS.has(k));
    const allowed = new Set<string>(STRUCTURAL);
    const types = this.types(s, path);
    for (const t of types ?? TYPES) for (const k of BY_TYPE[t]) allowed.add(k);
    for (const k of keys) {
      if (!allowed.has(k)) {
        const known = TYPES.some((t) => BY_TYPE[t].has(k));
        throw unsupported(known ? `the keyword "${k}" with type ${JSON.stringify(s.type)}` : `the keyword "${k}"`, path);
      }
    }
    if (s.$ref !== undefined) {
      if (keys.length > 1) throw unsupported('`$ref` beside other keywords', path);
      return this.ref(s.$ref, path);
    }
    if (s.allOf !== undefined) {
      if (!Array.isArray(s.allOf) || s.allOf.length !== 1 || keys.length > 1) throw unsupported('`allOf` (other than one schema alone)', path);
      return this.read(s.allOf[0], `${path}/allOf/0`);
    }
    for (const key of ['anyOf', 'oneOf'] as const) {
      if (s[key] === undefined) continue;
      if (keys.length > 1) throw unsupported(`\`${key}\` beside other keywords (move them into each option)`, path);
      const list = s[key];
      if (!Array.isArray(list) || list.length === 0) throw unsupported(`an empty or non-array \`${key}\``, path);
      const options = list.map((o, i) => this.read(o, `${path}/${key}/${i}`));
      if (key === 'oneOf' && !pairwiseDisjoint(options)) throw unsupported('`oneOf` whose options may overlap (use anyOf, or options of different types)', path);
      return options.length === 1 ? options[0] : { kind: 'anyOf', options };
    }
    if (s.enum !== undefined || s.const !== undefined) {
      if (s.enum !== undefined && s.const !== undefined) throw unsupported('both `enum` and `const`', path);
      const values = s.const !== undefined ? [s.const] : s.enum;
      if (!Array.isArray(values) || values.length === 0) throw unsupported('an empty or non-array `enum`', path);
      const kept = types ? values.filter((v) => types.some((t) => hasType(v, t))) : values;
      if (kept.length === 0) throw unsupported('an `enum`/`const` none of whose values has the schema\'s type', path);
      return { kind: 'const', values: kept };
    }
    const nodes = (types ?? (s.properties !== undefined ? ['object'] : undefined))?.map((t) => this.typed(t, s, path));
    if (!nodes) return { kind: 'any' };
    return nodes.length === 1 ? nodes[0] : { kind: 'anyOf', options: nodes };
  }

  private types(s: Json, path: string): string[] | undefined {
    if (s.type === undefined) return undefined;
    const list = Array.isArray(s.type) ? s.type : [s.type];
    for (const t of list) if (typeof t !== 'string' || !TYPES.includes(t)) throw unsupported(`the type ${JSON.stringify(t)}`, path);
    if (list.length === 0) throw unsupported('an empty `type` list', path);
    return list as string[];
  }

  private ref(ref: unknown, path: string): SchemaNode {
    if (typeof ref !== 'string' || !(ref === '#' || ref.startsWith('#/'))) throw unsupported(`the $ref ${JSON.stringify(ref)} (only local refs, "#/...", are supported)`, path);
    let node = this.refs.get(ref);
    if (!node) {
      node = { kind: 'ref', pointer: ref };
      this.refs.set(ref, node);
      let target: unknown = this.root;
      for (const raw of ref.split('/').slice(1)) {
        const part = decodeURIComponent(raw).replace(/~1/g, '/').replace(/~0/g, '~');
        target = typeof target === 'object' && target !== null ? (target as Json)[part] : undefined;
        if (target === undefined) throw unsupported(`the $ref ${ref}, which points nowhere`, path);
      }
      node.target = this.read(target, ref);
    }
    return node;
  }

  private typed(t: string, s: Json, path: string): SchemaNode {
    const num = (k: string): number | undefined => {
      const v = s[k];
      if (v === undefined) return undefined;
      if (typeof v !== 'number' || !Number.isFinite(v)) throw unsupported(`a non-numeric \`${k}\` (${JSON.stringify(v)})`, path);
      return v;
    };
    const count = (k: string): number | undefined => {
      const v = num(k);
      if (v !== undefined && !(Number.isInteger(v) && v >= 0)) throw unsupported(`\`${k}\` ${v} (must be a non-negative integer)`, path);
      return v;
    };
    switch (t) {
      case 'null':
        return { kind: 'null' };
      case 'boolean':
        return { kind: 'boolean' };
      case 'number':
      case 'integer': {
        const bounds: NumberBounds = { minimum: num('minimum'), maximum: num('maximum'), exclusiveMinimum: num('exclusiveMinimum'), exclusiveMaximum: num('exclusiveMaximum') };
        if (!boundsSatisfiable(bounds, t === 'integer')) throw unsupported(`bounds no ${t} satisfies`, path);
        return { kind: 'number', integer: t === 'integer', bounds };
      }
      case 'string': {
        const minLength = count('minLength') ?? 0;
        const maxLength = count('maxLength');
        const pattern = s.pattern;
        if (maxLength !== undefined && maxLength < minLength) throw unsupported('maxLength < minLength', path);
        if (pattern !== undefined) {
          if (typeof pattern !== 'string') throw unsupported('a non-string `pattern`', path);
          if (minLength > 0 || maxLength !== undefined) throw unsupported('`pattern` together with minLength/maxLength (put the length into the pattern, e.g. {1,20})', path);
          try {
            patternStringGrammar(pattern);
          } catch (err) {
            if (err instanceof UnsupportedPattern) throw unsupported(`the pattern construct: ${err.message}`, path);
            throw err;
          }
        }
        return { kind: 'string', minLength, maxLength, pattern: pattern as string | undefined };
      }
      case 'array': {
        if (s.uniqueItems === true) throw unsupported('`uniqueItems: true`', path);
        if (Array.isArray(s.items)) throw unsupported('tuple `items` (an array of schemas)', path);
        const minItems = count('minItems') ?? 0;
        const maxItems = count('maxItems');
        if (maxItems !== undefined && maxItems < minItems) throw unsupported('maxItems < minItems', path);
        return { kind: 'array', items: s.items === undefined ? { kind: 'any' } : this.read(s.items, `${path}/items`), minItems, maxItems };
      }
      case 'object': {
        const properties = (s.properties ?? {}) as Json;
        if (typeof properties !== 'object' || Array.isArray(properties)) throw unsupported('`properties` that is not an object', path);
        const required = s.required ?? [];
        if (!Array.isArray(required) || required.some((r) => typeof r !== 'string')) throw unsupported('`required` that is not a list of names', path);
        for (const r of required as string[]) if (!(r in properties)) throw unsupported(`\`required\` naming "${r}", which is not in \`properties\``, path);
        const props = Object.entries(properties).map(([name, sub]) => ({
          name,
          node: this.read(sub, `${path}/properties/${name}`),
          required: (required as string[]).includes(name),
        }));
        const ap = s.additionalProperties;
        const additional = props.length > 0 || ap === false ? null : ap === undefined || ap === true ? ({ kind: 'any' } as SchemaNode) : this.read(ap, `${path}/additionalProperties`);
        return { kind: 'object', props, additional };
      }
    }
    throw unsupported(`the type ${t}`, path);
  }
}

function hasType(v: unknown, t: string): boolean {
  switch (t) {
    case 'null':
      return v === null;
    case 'boolean':
      return typeof v === 'boolean';
    case 'number':
      return typeof v === 'number';
    case 'integer':
      return Number.isInteger(v);
    case 'string':
      return typeof v === 'string';
    case 'array':
      return Array.isArray(v);
    default:
      return typeof v === 'object' && v !== null && !Array.isArray(v);
  }
}

/** Resolves refs and expands anyOf: the concrete alternatives a value may take. */
export function flatten(node: SchemaNode, out: SchemaNode[] = [], seen = new Set<SchemaNode>()): SchemaNode[] {
  if (seen.has(node)) return out;
  seen.add(node);
  if (node.kind === 'ref') return flatten(node.target!, out, seen);
  if (node.kind === 'anyOf') for (const o of node.options) flatten(o, out, seen);
  else out.push(node);
  return out;
}

function jsonTypes(node: SchemaNode): Set<string> {
  const types = new Set<string>();
  for (const n of flatten(node)) {
    if (n.kind === 'any') return new Set(['*']);
    if (n.kind === 'const') for (const v of n.values) types.add(`=${JSON.stringify(v)}`);
    else types.add(n.kind === 'number' ? 'number' : n.kind);
  }
  return types;
}

function pairwiseDisjoint(options: SchemaNode[]): boolean {
  const sets = options.map(jsonTypes);
  const typeOf = (k: string) => (k.startsWith('=') ? jsonTypeName(JSON.parse(k.slice(1))) : k);
  for (let i = 0; i < sets.length; i++) {
    for (let j = i + 1; j < sets.length; j++) {
      for (const a of sets[i]) {
        for (const b of sets[j]) {
          if (a === '*' || b === '*' || a === b) return false;
          if (a.startsWith('=') !== b.startsWith('=') && typeOf(a) === typeOf(b)) return false;
        }
      }
    }
  }
  return true;
}

function jsonTypeName(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  return typeof v === 'object' ? 'object' : typeof v;
}

/** Whether strings with length bounds occur in the node's subtree (those need the mask-side check). */
export function hasBoundedString(node: SchemaNode, seen = new Set<SchemaNode>()): boolean {
  if (seen.has(node)) return false;
  seen.add(node);
  switch (node.kind) {
    case 'string':
      return node.minLength > 0 || node.maxLength !== undefined;
    case 'ref':
      return hasBoundedString(node.target!, seen);
    case 'anyOf':
      return node.options.some((o) => hasBoundedString(o, seen));
    case 'array':
      return hasBoundedString(node.items, seen);
    case 'object':
      return node.props.some((p) => hasBoundedString(p.node, seen)) || (node.additional !== null && hasBoundedString(node.additional, seen));
    default:
      return false;
  }
}

/** The name every option's first property must carry a distinct constant under, or undefined. */
export function discriminator(options: SchemaNode[]): string | undefined {
  const first = options.map((o) => (o.kind === 'object' && o.props[0]?.required ? o.props[0] : undefined));
  if (first.some((p) => !p) || new Set(first.map((p) => p!.name)).size !== 1) return undefined;
  const seen = new Set<string>();
  for (const p of first) {
    const values = flatten(p!.node);
    if (values.some((v) => v.kind !== 'const')) return undefined;
    for (const v of values) {
      for (const x of (v as { values: unknown[] }).values) {
        const k = JSON.stringify(x);
        if (seen.has(k)) return undefined;
        seen.add(k);
      }
    }
  }
  return first[0]!.name;
}

/**
 * The mask-side length check (string-bounds.ts) follows the document by path; where anyOf options could both
 * reach a bounded string it must be able to tell them apart: by type, or by a constant first property.
 */
function checkTrackable(node: SchemaNode, path: string, seen = new Set<SchemaNode>()): void {
  if (seen.has(node)) return;
  seen.add(node);
  switch (node.kind) {
    case 'ref':
      return checkTrackable(node.target!, node.pointer, seen);
    case 'array':
      return checkTrackable(node.items, `${path}/items`, seen);
    case 'object':
      node.props.forEach((p) => checkTrackable(p.node, `${path}/properties/${p.name}`, seen));
      if (node.additional) checkTrackable(node.additional, `${path}/additionalProperties`, seen);
      return;
    case 'anyOf': {
      const options = flatten(node);
      const bounded = options.filter((o) => hasBoundedString(o));
      if (bounded.length > 1) {
        // Told apart by the value's first character: at most one option of each bounded option's kind.
        const rivals = (k: string) => options.filter((o) => o.kind === k || o.kind === 'any').length;
        const byType = bounded.every((o) => rivals(o.kind) === 1);
        const byConstant = options.every((o) => o.kind === 'object') && discriminator(options) !== undefined;
        if (!byType && !byConstant) {
          throw unsupported('minLength/maxLength inside anyOf options that the document cannot tell apart (give object options a constant first property, or use different types)', path);
        }
      }
      options.forEach((o, i) => checkTrackable(o, `${path}/anyOf/${i}`, seen));
      return;
    }
    default:
      return;
  }
}

/** The schema tree of a JSON schema (throws GemmaError on what we cannot guarantee). */
export function readSchema(schema: unknown, path = '#'): SchemaNode {
  return new SchemaReader(schema).read(schema, path);
}

/** Rejects trees whose bounded strings the mask-side check could not follow (call once on the final tree). */
export function checkSchemaTree(node: SchemaNode): void {
  checkTrackable(node, '#');
}

/** Any JSON object (response_format json_object). */
export const ANY_OBJECT: SchemaNode = { kind: 'object', props: [], additional: { kind: 'any' } };

/** Our canonical serialization (the grammar's format) of a constant. */
export function serialize(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(serialize).join(', ')}]`;
  if (typeof v === 'object' && v !== null) return `{${Object.entries(v).map(([k, x]) => `${JSON.stringify(k)}: ${serialize(x)}`).join(', ')}}`;
  return JSON.stringify(v);
}

/**
 * How values are written: JSON here; another syntax (Gemma 4's native tool calls, tools/native-syntax.ts) changes
 * the strings, the keys and the separators and keeps numbers, booleans, null and the nesting.
 */
export interface ValueSyntax {
  /** The rule of any string value (given the builder; called once per grammar). */
  stringRule?(sg: SchemaGrammar): string;
  /** The text before a declared property's value. */
  key(name: string): string;
  /** The rule of a free-form key and what follows it before the value. */
  mapKey?(sg: SchemaGrammar): string;
  /** Between members and items. */
  comma: string;
  /** A constant as this syntax writes it. */
  serialize(v: unknown): string;
}

const JSON_SYNTAX: ValueSyntax = {
  key: (name) => `${JSON.stringify(name)}: `,
  comma: ', ',
  serialize,
};

/** Emits grammar rules for schema nodes into an EbnfBuilder. */
export class SchemaGrammar {
  private readonly memo = new Map<SchemaNode, string>();
  private readonly shared = new Map<string, string>();

  constructor(
    readonly g: EbnfBuilder,
    private readonly syntax: ValueSyntax = JSON_SYNTAX,
  ) {}

  /** A rule made once per grammar under `key`. */
  sharedRule(key: string, make: () => string): string {
    let r = this.shared.get(key);
    if (!r) {
      r = this.g.reserve(key.replace(/:.*/, ''));
      this.shared.set(key, r);
      this.g.define(r, make());
    }
    return r;
  }

  /**
   * A JSON string: unescaped characters, the short escapes, and \u00XX for the other control characters (write
   * anything else raw). Written as one right-recursive rule: XGrammar computes masks for this shape in ~0.05 ms,
   * while a `char*` whose \u alternative excluded only the surrogates took ~250 ms per token. No surrogate escapes
   * means one escape is one code point, which the length check relies on.
   */
  string(): string {
    if (this.syntax.stringRule) return this.syntax.stringRule(this);
    return this.sharedRule('json_string', () => {
      const tail = this.g.reserve('json_string_tail');
      this.g.define(
      tail,
      `${lit('"')} | ${cls([[0x00, 0x1f], [0x22, 0x22], [0x5c, 0x5c]], true)} ${tail} | ${lit('\\')} ${cls([[0x22, 0x22], [0x5c, 0x5c], [0x2f, 0x2f], [0x62, 0x62], [0x66, 0x66], [0x6e, 0x6e], [0x72, 0x72], [0x74, 0x74]])} ${tail} | ${lit('\\u00')} [01] [0-9a-fA-F] ${tail}`,
      );
      return seq(lit('"'), tail);
    });
  }

  any(): string {
    return this.value({ kind: 'any' });
  }

  value(node: SchemaNode): string {
    if (node.kind === 'any') return this.sharedRule('json_value', () => alt(this.objectOf({ kind: 'any' }), this.arrayOf({ kind: 'any' }, 0), this.string(), numberGrammar(this.g, {}, false), lit('true'), lit('false'), lit('null')));
    const known = this.memo.get(node);
    if (known) return known;
    const name = this.g.reserve(node.kind);
    this.memo.set(node, name);
    this.g.define(name, this.body(node));
    return name;
  }

  private body(node: SchemaNode): string {
    switch (node.kind) {
      case 'ref':
        return this.value(node.target!);
      case 'null':
        return lit('null');
      case 'boolean':
        return alt(lit('true'), lit('false'));
      case 'const':
        return alt(...node.values.map((v) => lit(this.syntax.serialize(v))));
      case 'number':
        return numberGrammar(this.g, node.bounds, node.integer);
      case 'string':
        if (node.pattern === undefined) return this.string();
        // Patterns are translated into JSON string literals (regex-grammar.ts); other syntaxes refuse them earlier.
        if (this.syntax !== JSON_SYNTAX) throw unsupported('`pattern` outside JSON output', '#');
        return patternStringGrammar(node.pattern);
      case 'anyOf':
        return alt(...node.options.map((o) => this.value(o)));
      case 'array':
        return this.arrayBody(node.items, node.minItems, node.maxItems);
      case 'object':
        return node.props.length === 0 ? (node.additional ? this.objectOf(node.additional) : lit('{}')) : this.objectBody(node.props);
      case 'any':
        return this.any();
    }
  }

  private objectOf(values: SchemaNode): string {
    const v = this.value(values);
    const member = seq(this.syntax.mapKey ? this.syntax.mapKey(this) : seq(this.string(), lit(': ')), v);
    return this.sharedRule(`map:${v}`, () => seq(lit('{'), `(${member} (${lit(this.syntax.comma)} ${member})*)?`, lit('}')));
  }

  private arrayOf(items: SchemaNode, min: number, max?: number): string {
    return this.g.rule('array', this.arrayBody(items, min, max));
  }

  /** Items separated by the comma, min..max of them; the optional tail is a chain of rules (cheaper to compile than {m,n}). */
  private arrayBody(items: SchemaNode, min: number, max?: number): string {
    const item = this.value(items);
    const sep = seq(lit(this.syntax.comma), item);
    if (max === 0) return lit('[]');
    let tail: string;
    if (max === undefined) tail = `${sep}*`;
    else {
      tail = '""';
      for (let k = max - Math.max(min, 1); k > 0; k--) tail = this.g.rule('items', alt('""', seq(sep, tail)));
    }
    const head = seq(item, ...Array(Math.max(min - 1, 0)).fill(sep), tail);
    const full = seq(lit('['), head, lit(']'));
    return min === 0 ? alt(lit('[]'), full) : full;
  }

  /** Declared properties in order: required ones always, optional ones maybe, the comma between. */
  private objectBody(props: PropertyNode[]): string {
    const member = (p: PropertyNode) => seq(lit(this.syntax.key(p.name)), this.value(p.node));
    // after[i]: the rest from property i when one was written already; first[i]: when none was.
    const after: string[] = [];
    const first: string[] = [];
    after[props.length] = '""';
    first[props.length] = '""';
    for (let i = props.length - 1; i >= 0; i--) {
      const p = props[i];
      const withIt = seq(lit(this.syntax.comma), member(p), after[i + 1]);
      after[i] = this.g.rule('props', p.required ? withIt : alt(withIt, after[i + 1]));
      const startsHere = seq(member(p), after[i + 1]);
      first[i] = this.g.rule('props', p.required ? startsHere : alt(startsHere, first[i + 1]));
    }
    return seq(lit('{'), first[0], lit('}'));
  }
}

/** The EBNF of a schema tree. */
export function schemaEbnf(root: SchemaNode): string {
  const g = new EbnfBuilder();
  const rule = new SchemaGrammar(g).value(root);
  return g.text(rule);
}
