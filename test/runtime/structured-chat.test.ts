// chat() with tools and responseFormat through the engine, over a fake model that honours the sampling mask and
// the real Gemma tokenizer and grammar engine (XGrammar wasm in Node): JSON that validates, a cut reply reported
// incomplete, schemas refused before any token, tool calls yielded as soon as they close with finishReason
// 'tool_calls', 'none', tool turns rendered the documented way, and the mask computed after the forward pass.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import Ajv2020 from 'ajv/dist/2020.js';
import { Engine } from '../../src/runtime/engine.ts';
import { GemmaError } from '../../src/errors.ts';
import type { ChatMessage, ToolDeclaration } from '../../src/runtime/protocol.ts';
import { renderToolConversation } from '../../src/runtime/tools/tools.ts';
import { byteFallbackVocabulary, grammarVocabulary } from '../../src/runtime/constrained/vocabulary.ts';
import { loadXGrammarForNode } from '../../src/node/xgrammar.ts';
import { FakeModel, type FakeModelOptions } from './fake-model.ts';
import { WEATHER_TOOL } from './constrained/schemas.ts';
import { gemmaTokenizer, GEMMA_TOKENIZER_DIR } from './gemma-tokenizer.ts';
import { collect } from '../helpers/stream.ts';
import { onlyCall } from '../helpers/tool-calls.ts';
import { freshRng } from '../helpers/random.ts';
import { readFile } from 'node:fs/promises';

loadXGrammarForNode();
const GEMMA_STOP = [1, 106];
const hi: ChatMessage[] = [{ role: 'user', content: 'Hi' }];

async function makeEngine(opts: FakeModelOptions = {}) {
  const model = new FakeModel(opts);
  const engine = new Engine({ model, tokenizer: await gemmaTokenizer(), stopTokenIds: GEMMA_STOP });
  return { model, engine };
}

const TOOLS: ToolDeclaration[] = [
  WEATHER_TOOL,
  { type: 'function', function: { name: 'add', description: 'Adds two integers', parameters: { type: 'object', properties: { a: { type: 'integer', minimum: -99, maximum: 99 }, b: { type: 'integer', minimum: -99, maximum: 99 } }, required: ['a', 'b'] } } },
];
const SCHEMA = {
  type: 'object',
  properties: { ok: { type: 'boolean' }, n: { type: 'integer', minimum: 0, maximum: 20 }, tag: { enum: ['a', 'b c'] }, s: { type: 'string', maxLength: 4 } },
  required: ['ok', 'n'],
};

const rejects = async (p: Promise<unknown>, code: string, pattern: RegExp) =>
  assert.rejects(p, (err: unknown) => err instanceof GemmaError && err.code === code && pattern.test(err.message));

test('the tokenizer vocabulary and tokenizer.json give the same grammar vocabulary', async () => {
  const tok = await gemmaTokenizer();
  const json = JSON.parse(await readFile(GEMMA_TOKENIZER_DIR + 'tokenizer.json', 'utf8'));
  const opts = { vocabSize: 262400, stopTokenIds: GEMMA_STOP };
  const a = grammarVocabulary(tok.vocabulary!(), opts);
  const b = byteFallbackVocabulary(json, opts);
  assert.equal(a.key, b.key);
  assert.deepEqual(a.pieces, b.pieces);
});

test('json_schema: seeded masked draws always parse and validate; the mask is computed after the forward pass', async () => {
  const { rng, tag } = freshRng();
  const { model, engine } = await makeEngine();
  const validate = new Ajv2020({ strict: true }).compile(SCHEMA);
  let finished = 0;
  for (let i = 0; i < 6; i++) {
    const r = await collect(engine.chat(hi, { responseFormat: { type: 'json_schema', schema: SCHEMA }, seed: rng.int(0, 1e9), maxNewTokens: 80 }));
    assert.ok(model.samples.every((p) => typeof p.mask === 'function'), 'the engine hands the model a mask to compute on demand');
    if (!r.stats.complete) {
      assert.equal(r.stats.finishReason, 'length', tag);
      continue;
    }
    finished++;
    assert.equal(r.stats.finishReason, 'stop', tag);
    const value = JSON.parse(r.text);
    assert.ok(validate(value), `${r.text} ${JSON.stringify(validate.errors)} ${tag}`);
  }
  assert.ok(finished >= 3, `${finished}/6 finished ${tag}`);
  // The same seed reproduces the reply.
  const a = await collect(engine.chat(hi, { responseFormat: { type: 'json_schema', schema: SCHEMA }, seed: 5, maxNewTokens: 80 }));
  const b = await collect(engine.chat(hi, { responseFormat: { type: 'json_schema', schema: SCHEMA }, seed: 5, maxNewTokens: 80 }));
  assert.deepEqual(a.ids, b.ids);
  engine.dispose();
});

test('a reply cut by maxNewTokens ends with length and is reported incomplete', async () => {
  const tok = await gemmaTokenizer();
  const { engine } = await makeEngine({ reply: tok.encode('{"ok": true, "n": 1').slice(1) });
  const r = await collect(engine.chat(hi, { responseFormat: { type: 'json_schema', schema: SCHEMA }, maxNewTokens: 4 }));
  assert.equal(r.stats.finishReason, 'length');
  assert.equal(r.stats.complete, false);
  assert.throws(() => JSON.parse(r.text));
  // A whole reply that ends exactly at the limit is complete (and 'stop').
  const whole = tok.encode('{"ok": true, "n": 1}').slice(1);
  const { engine: e2 } = await makeEngine({ reply: whole });
  const r2 = await collect(e2.chat(hi, { responseFormat: { type: 'json_schema', schema: SCHEMA }, maxNewTokens: whole.length }));
  assert.equal(r2.text, '{"ok": true, "n": 1}');
  assert.equal(r2.stats.complete, true);
  assert.equal(r2.stats.finishReason, 'stop');
});

test('an unsupported schema, a bad tool or a grammar that does not compile fails before any token', async () => {
  const { model, engine } = await makeEngine();
  await rejects(engine.chat(hi, { responseFormat: { type: 'json_schema', schema: { type: 'object', patternProperties: { x: {} } } } }).stats, 'invalid-argument', /patternProperties.*#/);
  await rejects(engine.chat(hi, { tools: [{ type: 'function', function: { name: 'f', parameters: { type: 'string', format: 'email' } } }] }).stats, 'invalid-argument', /"format"/);
  await rejects(engine.chat(hi, { tools: TOOLS, toolChoice: { name: 'nope' } }).stats, 'invalid-argument', /nope/);
  assert.equal(model.feeds.length, 0, 'nothing was prefilled');
  await rejects(engine.chat(hi, { responseFormat: { type: 'grammar', grammar: 'root ::= undefined_rule' } }).stats, 'invalid-argument', /does not compile/);
  assert.equal(model.samples.length, 0, 'no token was sampled');
  // The engine is still usable.
  const r = await collect(engine.chat(hi, { responseFormat: { type: 'grammar', grammar: 'root ::= "yes" | "no"' }, maxNewTokens: 8 }));
  assert.match(r.text, /^(yes|no)$/);
  assert.equal(r.stats.complete, true);
});

test("toolChoice 'required': the call streams as toolCalls (id, name, parsed arguments), finishReason tool_calls", async () => {
  const { rng, tag } = freshRng();
  const ajv = new Ajv2020({ strict: true });
  const validators = Object.fromEntries(TOOLS.map((t) => [t.function.name, ajv.compile(t.function.parameters as object)]));
  const { engine } = await makeEngine();
  let calls = 0;
  for (let i = 0; i < 4; i++) {
    const r = await collect(engine.chat(hi, { tools: TOOLS, toolChoice: 'required', seed: rng.int(0, 1e9), maxNewTokens: 120 }));
    if (!r.stats.complete) continue;
    const call = onlyCall(r, tag);
    assert.ok(validators[call.name](call.arguments), `${JSON.stringify(call)} ${tag}`);
    calls++;
  }
  assert.ok(calls >= 2, `${calls}/4 calls completed ${tag}`);
});

test("toolChoice 'auto': a call is yielded in the delta that closes it; plain text passes through", async () => {
  const tok = await gemmaTokenizer();
  const callText = '{"name": "get_weather", "parameters": {"city": "Paris"}}';
  const reply = tok.encode(callText).slice(1);
  const { engine } = await makeEngine({ reply });
  const r = await collect(engine.chat([{ role: 'user', content: 'Weather in Paris?' }], { tools: TOOLS }));
  const at = r.deltas.findIndex((d) => d.toolCalls?.length);
  assert.equal(at, reply.length - 1, 'yielded with the last token of the call, before the stream ended');
  assert.deepEqual(r.deltas[at].toolCalls!.map((c) => [c.name, c.arguments]), [['get_weather', { city: 'Paris' }]]);
  assert.equal(r.text, '');
  assert.equal(r.stats.finishReason, 'tool_calls');
  assert.equal(r.stats.complete, true);

  const plain = tok.encode('It is sunny {really}.').slice(1);
  const { engine: e2, model: m2 } = await makeEngine({ reply: plain });
  const r2 = await collect(e2.chat([{ role: 'user', content: 'Weather?' }], { tools: TOOLS }));
  assert.equal(r2.text, 'It is sunny {really}.');
  assert.equal(r2.stats.finishReason, 'stop');
  assert.ok(r2.deltas.every((d) => !d.toolCalls));
  assert.ok(m2.masks.every((m) => m === null), 'a text reply is not constrained');
});

test("toolChoice 'none' declares no tools and never yields a call; tool turns render the documented way", async () => {
  const tok = await gemmaTokenizer();
  const callText = '{"name": "get_weather", "parameters": {"city": "Paris"}}';
  const { engine, model } = await makeEngine({ reply: tok.encode(callText).slice(1) });
  const r = await collect(engine.chat(hi, { tools: TOOLS, toolChoice: 'none' }));
  assert.equal(r.text, callText);
  assert.equal(r.stats.finishReason, 'stop');
  assert.ok(r.deltas.every((d) => !d.toolCalls));
  assert.deepEqual(model.cache.slice(0, tok.applyChatTemplate(hi).length), tok.applyChatTemplate(hi), 'no declarations in the prompt');

  // A round trip: the call the model made and the tool's result go back into the conversation.
  const conversation: ChatMessage[] = [
    { role: 'user', content: 'Weather in Paris?' },
    { role: 'assistant', content: '', toolCalls: [{ id: 'call_1', name: 'get_weather', arguments: { city: 'Paris' } }] },
    { role: 'tool', toolCallId: 'call_1', name: 'get_weather', content: '{"temperature": 21, "sky": "clear"}' },
  ];
  const { engine: e2, model: m2 } = await makeEngine({ reply: tok.encode('Sunny.').slice(1) });
  const r2 = await collect(e2.chat(conversation, { tools: TOOLS }));
  const expected = tok.applyChatTemplate(renderToolConversation(conversation, TOOLS, 'auto'));
  assert.deepEqual(m2.cache.slice(0, expected.length), expected);
  assert.equal(r2.stats.promptTokens, expected.length);
  assert.equal(r2.text, 'Sunny.');
  // Without tools, a tool turn still renders as a tool_output block.
  const r3 = await collect((await makeEngine({ reply: [] })).engine.chat(conversation, { maxNewTokens: 1 }));
  assert.equal(r3.stats.promptTokens, tok.applyChatTemplate(renderToolConversation(conversation, [], 'auto')).length);
});

test("toolChoice 'auto' with a JSON responseFormat: the reply is a call or JSON of the format", async () => {
  const tok = await gemmaTokenizer();
  const json = '{"ok": false, "n": 3}';
  const { engine } = await makeEngine({ reply: tok.encode(json).slice(1) });
  const unbounded = { ...SCHEMA, properties: { ...SCHEMA.properties, s: { type: 'string' } } };
  const r = await collect(engine.chat(hi, { tools: TOOLS, responseFormat: { type: 'json_schema', schema: unbounded } }));
  assert.equal(r.text, json);
  assert.equal(r.stats.finishReason, 'stop');
  assert.equal(r.stats.complete, true);
  await rejects(engine.chat(hi, { tools: TOOLS, responseFormat: { type: 'grammar', grammar: 'root ::= "x"' } }).stats, 'invalid-argument', /toolChoice 'auto' with responseFormat 'grammar'/);
  // Length-bounded strings on both sides of the union cannot be told apart by the length check: refused, clearly.
  await rejects(engine.chat(hi, { tools: TOOLS, responseFormat: { type: 'json_schema', schema: SCHEMA } }).stats, 'invalid-argument', /toolChoice 'auto' with this responseFormat.*minLength\/maxLength/);
});
