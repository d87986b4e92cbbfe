import type { ToolDeclaration } from '../../../src/runtime/protocol.ts';

/** The JSON schemas the constrained-decoding tests and bench/constrained.ts run (covering the supported keywords). */
export const TEST_SCHEMAS: Record<string, unknown> = {
  nestedOptional: {
    type: 'object',
    properties: {
      name: { type: 'string', minLength: 1, maxLength: 12 },
      age: { type: 'integer', minimum: 0, maximum: 120 },
      address: {
        type: 'object',
        properties: { city: { type: 'string', pattern: '^[A-Z][a-z]{1,10}$' }, zip: { type: 'string', pattern: '^\\d{5}$' }, note: { type: 'string' } },
        required: ['city'],
      },
      tags: { type: 'array', items: { enum: ['a', 'b', 'c d'] }, minItems: 1, maxItems: 3 },
    },
    required: ['name', 'age'],
  },
  numbers: {
    type: 'object',
    properties: {
      x: { type: 'number', minimum: -2.5, maximum: 3.75 },
      y: { type: 'number', exclusiveMinimum: 0, exclusiveMaximum: 1 },
      z: { type: 'integer', exclusiveMinimum: -10, maximum: 1000 },
      big: { type: 'integer', minimum: 100000 },
      neg: { type: 'number', maximum: -0.001 },
      free: { type: 'number' },
    },
    required: ['x', 'y', 'z', 'big', 'neg', 'free'],
  },
  arrays: {
    type: 'object',
    properties: {
      items: {
        type: 'array',
        items: { type: 'object', properties: { id: { type: 'integer', minimum: 1, maximum: 99 }, label: { type: 'string', maxLength: 5 } }, required: ['id', 'label'] },
        minItems: 2,
        maxItems: 4,
      },
      matrix: { type: 'array', items: { type: 'array', items: { type: 'number' }, maxItems: 3 }, maxItems: 2 },
    },
    required: ['items', 'matrix'],
  },
  enumsAnyOf: {
    type: 'object',
    properties: {
      kind: { const: 'point' },
      value: { anyOf: [{ type: 'integer', minimum: 0, maximum: 9 }, { type: 'string', minLength: 2, maxLength: 3 }, { type: 'null' }] },
      color: { enum: ['red', 'green', 'blue sky', 42, true, null] },
      maybe: { type: ['string', 'null'], maxLength: 4 },
    },
    required: ['kind', 'value', 'color', 'maybe'],
  },
  discriminated: {
    type: 'object',
    properties: {
      shape: {
        anyOf: [
          { type: 'object', properties: { type: { const: 'circle' }, r: { type: 'number', minimum: 0, maximum: 10 } }, required: ['type', 'r'] },
          { type: 'object', properties: { type: { const: 'rect' }, w: { type: 'integer' }, label: { type: 'string', minLength: 2, maxLength: 4 } }, required: ['type', 'w', 'label'] },
        ],
      },
    },
    required: ['shape'],
  },
  patterns: {
    type: 'object',
    properties: {
      email: { type: 'string', pattern: '^[a-z]{1,8}@[a-z]{1,8}\\.(com|org)$' },
      code: { type: 'string', pattern: '^[A-F0-9]{4}-\\d+$' },
      quoted: { type: 'string', pattern: '^"[^"]*"$' },
      path: { type: 'string', pattern: '^[a-z]+(\\\\[a-z]+)*$' },
      any: { type: 'string', pattern: '^.{0,6}$' },
    },
    required: ['email', 'code', 'quoted', 'path', 'any'],
  },
  unicodePatterns: {
    type: 'object',
    properties: {
      cyrillic: { type: 'string', pattern: '^[а-яё]{1,4}$' },
      notAccented: { type: 'string', pattern: '^[^éè]{0,3}$' },
      spaced: { type: 'string', pattern: '^a\\sb\\S$' },
      emoji: { type: 'string', pattern: '^[😀-🙏]?$' },
    },
    required: ['cyrillic', 'notAccented', 'spaced', 'emoji'],
  },
  recursive: {
    $defs: { node: { type: 'object', properties: { v: { type: 'integer', minimum: -5, maximum: 5 }, kids: { type: 'array', items: { $ref: '#/$defs/node' }, maxItems: 2 } }, required: ['v'] } },
    $ref: '#/$defs/node',
  },
  minLengthOnly: { type: 'array', items: { type: 'string', minLength: 3 }, minItems: 1, maxItems: 3 },
};

/** The weather tool the engine's tool tests declare (a bounded string and an enum in its arguments). */
export const WEATHER_TOOL: ToolDeclaration = {
  type: 'function',
  function: {
    name: 'get_weather',
    description: 'Current weather of a city',
    parameters: { type: 'object', properties: { city: { type: 'string', minLength: 1, maxLength: 12 }, unit: { enum: ['celsius', 'fahrenheit'] } }, required: ['city'] },
  },
};
