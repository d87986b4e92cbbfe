import { test } from 'node:test';
import assert from 'node:assert/strict';
import Ajv2020 from 'ajv/dist/2020.js';
import { freshRng } from '../helpers/random.ts';
import { gemmaTokenizer } from './gemma-tokenizer.ts';
import { RandomTokenModel, gemmaConstraintCompiler, gemmaGrammarVocabulary, generate, pickUniform } from './constrained/random-driver.ts';
import { type ToolDeclaration, renderToolConversation, requiredCallSpec, TOOL_INSTRUCTIONS } from '../../src/runtime/tools/tools.ts';
import { ToolCallParser } from '../../src/runtime/tools/call-parser.ts';
import { AutoCallConstraint } from '../../src/runtime/tools/auto-call-constraint.ts';

const TOOLS: ToolDeclaration[] = [
  {
    type: 'function',
    function: {
      name: 'get_weather',
      description: 'Current weather of a city',
      parameters: { type: 'object', properties: { city: { type: 'string', minLength: 1, maxLength: 20 }, unit: { enum: ['celsius', 'fahrenheit'] }, days: { type: 'integer', minimum: 1, maximum: 7 } }, required: ['city'] },
    },
  },
  {
    type: 'function',
    function: { name: 'calculate', description: 'Evaluates arithmetic', parameters: { type: 'object', properties: { expression: { type: 'string', pattern: '^[0-9+*/() -]{1,30}$' }, precision: { type: 'number', minimum: 0, maximum: 10 } }, required: ['expression'] } },
  },
];

test('a tool-result round trip renders exactly as documented (token ids)', async () => {
  const tok = await gemmaTokenizer();
  const messages = renderToolConversation(
    [
      { role: 'user', content: 'Weather in Paris?' },
      { role: 'assistant', content: '', toolCalls: [{ id: 'call_1', name: 'get_weather', arguments: { city: 'Paris' } }] },
      { role: 'tool', toolCallId: 'call_1', content: '{"temp": 21}' },
    ],
    TOOLS,
    'auto',
  );
  const declarations = JSON.stringify(TOOLS.map((t) => ({ name: t.function.name, description: t.function.description, parameters: t.function.parameters })), null, 2);
  const expected =
    '<start_of_turn>user\n' + TOOL_INSTRUCTIONS + declarations + '\n\nWeather in Paris?<end_of_turn>\n' +
    '<start_of_turn>model\n{"name": "get_weather", "parameters": {"city": "Paris"}}<end_of_turn>\n' +
    '<start_of_turn>user\n```tool_output\n{"temp": 21}\n```<end_of_turn>\n<start_of_turn>model\n';
  assert.deepEqual(tok.applyChatTemplate(messages), tok.encode(expected));
});

test("toolChoice 'none' declares nothing and never yields a call", () => {
  const rendered = renderToolConversation([{ role: 'user', content: 'hi' }], TOOLS, 'none');
  assert.deepEqual(rendered, [{ role: 'user', content: 'hi' }]);
  const parser = new ToolCallParser(TOOLS, 'none');
  const out = parser.push('{"name": "get_weather", "parameters": {"city": "Paris"}}');
  assert.deepEqual(out.toolCalls, []);
  assert.equal(out.text, '{"name": "get_weather", "parameters": {"city": "Paris"}}');
});

test('the parser yields a call as soon as its object closes, streamed character by character', () => {
  const parser = new ToolCallParser(TOOLS, 'auto', () => 'id0');
  const text = '  {"name": "calculate", "parameters": {"expression": "1 + {2}\\"", "precision": 2}}';
  for (let i = 0; i < text.length; i++) {
    const d = parser.push(text[i]);
    assert.equal(d.text, '');
    if (i < text.length - 1) assert.equal(d.toolCalls.length, 0, `early call at ${i}`);
    else assert.deepEqual(d.toolCalls, [{ id: 'id0', name: 'calculate', arguments: { expression: '1 + {2}"', precision: 2 } }]);
  }
  assert.deepEqual(parser.finish(), { text: '', complete: true });
  const plain = new ToolCallParser(TOOLS);
  assert.equal(plain.push('Hello {x}').text, 'Hello {x}');
  const cut = new ToolCallParser(TOOLS);
  cut.push('{"name": "get_weather", "parameters": {"ci');
  assert.deepEqual(cut.finish(), { text: '', complete: false });
  const unknown = new ToolCallParser(TOOLS);
  assert.deepEqual(unknown.push('{"name": "nope", "parameters": {}} ok'), { text: '{"name": "nope", "parameters": {}} ok', toolCalls: [] });
});

for (const choice of ['required', { name: 'calculate' }] as const) {
  test(`toolChoice ${JSON.stringify(choice)}: 50 random-logit calls parse, name a tool and validate`, async () => {
    const { rng, tag } = freshRng();
    const [compiler, vocab] = await Promise.all([gemmaConstraintCompiler(), gemmaGrammarVocabulary()]);
    const spec = requiredCallSpec(TOOLS, choice);
    const model = new RandomTokenModel(vocab);
    const ajv = new Ajv2020({ strict: true });
    const validators = Object.fromEntries(TOOLS.map((t) => [t.function.name, ajv.compile(t.function.parameters as object)]));
    let finished = 0;
    for (let i = 0; i < 50; i++) {
      const c = await compiler.constraint(spec);
      const g = await generate(c, (m) => model.sample(m, rng), vocab, 120);
      c.dispose();
      if (!g.complete) continue;
      finished++;
      const parser = new ToolCallParser(TOOLS);
      const calls = parser.push(g.text).toolCalls;
      assert.equal(calls.length, 1, `${g.text} ${tag}`);
      if (typeof choice === 'object') assert.equal(calls[0].name, choice.name);
      assert.ok(validators[calls[0].name](calls[0].arguments), `${g.text} ${JSON.stringify(validators[calls[0].name].errors)} ${tag}`);
    }
    assert.ok(finished >= 25, `${finished}/50 finished ${tag}`);
  });
}

test("toolChoice 'auto': a reply starting with '{' is constrained into a valid call; other replies stay free", async () => {
  const { rng, tag } = freshRng();
  const [compiler, vocab] = await Promise.all([gemmaConstraintCompiler(), gemmaGrammarVocabulary()]);
  const model = new RandomTokenModel(vocab);
  const open = vocab.pieces.indexOf('{');
  const space = vocab.pieces.indexOf('▁');
  const ajv = new Ajv2020({ strict: true });
  let finished = 0;
  for (let i = 0; i < 20; i++) {
    const c = await AutoCallConstraint.create(compiler, TOOLS);
    assert.equal(c.nextMask(), null);
    c.accept(space);
    assert.equal(c.nextMask(), null);
    c.accept(open);
    assert.ok(c.inCall);
    const g = await generate(c, (m) => model.sample(m, rng), vocab, 120);
    if (!g.complete) continue;
    finished++;
    const calls = new ToolCallParser(TOOLS).push(' {' + g.text).toolCalls;
    assert.equal(calls.length, 1, `${g.text} ${tag}`);
    const schema = TOOLS.find((t) => t.function.name === calls[0].name)!.function.parameters as object;
    assert.ok(ajv.validate(schema, calls[0].arguments), `${g.text} ${tag}`);
  }
  assert.ok(finished >= 10, `${finished}/20 ${tag}`);
  const text = await AutoCallConstraint.create(compiler, TOOLS);
  text.accept(vocab.pieces.indexOf('Hello'));
  assert.equal(text.nextMask(), null);
  assert.equal(text.isComplete(), false);
  void pickUniform;
});
