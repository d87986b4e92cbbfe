/**
 * The demo's tools: the two functions of the Gemma function-calling example, a weather lookup (a canned answer:
 * the demo has no weather service) and an arithmetic evaluator, plus the JSON-mode example schema. The evaluator
 * parses + - * / and parentheses over decimal numbers itself; nothing the model writes is ever evaluated as code.
 */
import type { ToolCall, ToolDeclaration } from '../src/index.ts';

export const DEMO_TOOLS: ToolDeclaration[] = [
  {
    type: 'function',
    function: {
      name: 'get_current_weather',
      description: 'Gets the current weather in a given location.',
      parameters: {
        type: 'object',
        properties: {
          location: { type: 'string', description: 'The city, e.g. "London" or "San Francisco, CA"', maxLength: 40 },
          unit: { enum: ['celsius', 'fahrenheit'] },
        },
        required: ['location'],
      },
    },
  },
  {
    type: 'function',
    function: {
      name: 'calculate',
      description: 'Evaluates an arithmetic expression with + - * / and parentheses, e.g. "(3 + 4) * 2".',
      parameters: { type: 'object', properties: { expression: { type: 'string', pattern: '^[0-9+*/(). -]{1,40}$' } }, required: ['expression'] },
    },
  },
];

export const EXAMPLE_SCHEMA = {
  type: 'object',
  properties: {
    city: { type: 'string', maxLength: 30 },
    country: { type: 'string', maxLength: 30 },
    population: { type: 'integer', minimum: 0 },
    landmarks: { type: 'array', items: { type: 'string', maxLength: 40 }, maxItems: 3 },
  },
  required: ['city', 'country'],
};

/** Runs a call the model made; the result is what goes back to it (JSON text). */
export function runTool(call: ToolCall): string {
  try {
    switch (call.name) {
      case 'get_current_weather': {
        const fahrenheit = call.arguments.unit === 'fahrenheit';
        return JSON.stringify({ location: call.arguments.location, temperature: fahrenheit ? 72 : 22, unit: fahrenheit ? 'fahrenheit' : 'celsius', sky: 'sunny', note: 'canned demo answer' });
      }
      case 'calculate':
        return JSON.stringify({ result: evaluate(String(call.arguments.expression)) });
      default:
        return JSON.stringify({ error: `unknown function ${call.name}` });
    }
  } catch (err) {
    return JSON.stringify({ error: (err as Error).message });
  }
}

/** Arithmetic over decimal numbers: expr := term (('+'|'-') term)*, term := factor (('*'|'/') factor)*, factor := number | '(' expr ')' | '-' factor. */
export function evaluate(text: string): number {
  let i = 0;
  const skip = () => {
    while (text[i] === ' ') i++;
  };
  const fail = (what: string): never => {
    throw new Error(`cannot evaluate ${JSON.stringify(text)}: ${what} at ${i}`);
  };
  const factor = (depth: number): number => {
    if (depth > 64) fail('too deeply nested');
    skip();
    if (text[i] === '-') {
      i++;
      return -factor(depth + 1);
    }
    if (text[i] === '(') {
      i++;
      const v = expr(depth + 1);
      skip();
      if (text[i++] !== ')') fail('expected )');
      return v;
    }
    const m = /^\d+(\.\d+)?|^\.\d+/.exec(text.slice(i));
    if (!m) fail('expected a number');
    i += m![0].length;
    return Number(m![0]);
  };
  const term = (depth: number): number => {
    let v = factor(depth);
    for (skip(); text[i] === '*' || text[i] === '/'; skip()) v = text[i++] === '*' ? v * factor(depth) : v / factor(depth);
    return v;
  };
  const expr = (depth: number): number => {
    let v = term(depth);
    for (skip(); text[i] === '+' || text[i] === '-'; skip()) v = text[i++] === '+' ? v + term(depth) : v - term(depth);
    return v;
  };
  const v = expr(0);
  skip();
  if (i < text.length) fail('unexpected character');
  if (!Number.isFinite(v)) fail('the result is not finite');
  return v;
}
