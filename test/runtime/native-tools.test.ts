// Gemma 4's native tool calls (src/runtime/tools/native-format.ts) with a Gemma-4-like tokenizer (the real Gemma 3
// tokenizer plus the seven markers as added special tokens: gemma4-tokenizer.ts), the grammar engine (XGrammar wasm
// in Node) and the fake model: detection by tokenizer, a round trip rendered as exact token ids, the streaming
// reader fed character by character, 'required' / a named tool / 'auto' under random logits producing calls that
// parse and validate (ajv), 'none', schemas refused before any token, and the OpenAI facade over the worker host.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import Ajv2020 from 'ajv/dist/2020.js';
import { Engine } from '../../src/runtime/engine.ts';
import { GemmaError } from '../../src/errors.ts';
import type { ChatMessage, ToolCall, ToolChoice, ToolDeclaration } from '../../src/runtime/protocol.ts';
import type { TextTokenizer } from '../../src/runtime/tokenizer.ts';
import type { TokenConstraint } from '../../src/runtime/token-constraint.ts';
import { IncrementalDetokenizer } from '../../src/runtime/detokenizer.ts';
import { ConstraintCompiler } from '../../src/runtime/constrained/grammar-constraint.ts';
import { type GrammarVocabulary, grammarVocabulary } from '../../src/runtime/constrained/vocabulary.ts';
import { JSON_TOOL_FORMAT, type ToolFormat, toolFormatFor } from '../../src/runtime/tools/tool-format.ts';
import { loadXGrammarForNode } from '../../src/node/xgrammar.ts';
import { lit } from '../../src/runtime/constrained/ebnf.ts';
import { CODE_POINT_MARKERS } from '../../src/runtime/tools/native-syntax.ts';
import { expose } from 'comlink';
import { connectGemmaWorker, type GemmaClient } from '../../src/runtime/client.ts';
import { createWorkerApi } from '../../src/runtime/worker-host.ts';
import { installErrorTransfer } from '../../src/runtime/comlink-errors.ts';
import type { ChatCompletion, ChatCompletionChunk } from '../../src/runtime/openai/chat-completions.ts';
import { FakeModel, type FakeModelOptions } from './fake-model.ts';
import { gemmaTokenizer } from './gemma-tokenizer.ts';
import { GEMMA4_MARKER_BASE, GEMMA4_TOOL_TOKENS, gemma4LikeTokenizer } from './gemma4-tokenizer.ts';
import { pickUniform } from './constrained/random-driver.ts';
import { collect } from '../helpers/stream.ts';
import { onlyCall } from '../helpers/tool-calls.ts';
import { type Rng, freshRng } from '../helpers/random.ts';

loadXGrammarForNode();
installErrorTransfer();
const clients: GemmaClient[] = [];
after(async () => {
  for (const c of clients) await c.dispose();
});
const STOP = [1, 106];
const LOGITS = 262400;
const [DECL_OPEN, DECL_CLOSE, CALL_OPEN, CALL_CLOSE, RESP_OPEN, RESP_CLOSE, Q] = Array.from({ length: 7 }, (_, i) => GEMMA4_MARKER_BASE + i);
const MARKERS = [DECL_OPEN, DECL_CLOSE, CALL_OPEN, CALL_CLOSE, RESP_OPEN, RESP_CLOSE, Q];

const WEATHER: ToolDeclaration = {
  type: 'function',
  function: {
    name: 'get_weather',
    description: 'Current weather',
    parameters: { type: 'object', properties: { city: { type: 'string', description: 'City' }, days: { type: 'integer', minimum: 1, maximum: 7 } }, required: ['city'] },
  },
};
const ADD: ToolDeclaration = {
  type: 'function',
  function: { name: 'add', parameters: { type: 'object', properties: { a: { type: 'integer', minimum: -99, maximum: 99 }, b: { type: 'integer', minimum: -99, maximum: 99 } }, required: ['a', 'b'] } },
};
const ORDER: ToolDeclaration = {
  type: 'function',
  function: {
    name: 'order',
    description: 'Places an order',
    parameters: {
      type: 'object',
      properties: {
        items: {
          type: 'array',
          minItems: 1,
          maxItems: 3,
          items: { type: 'object', properties: { name: { type: 'string' }, qty: { type: 'integer', minimum: 1, maximum: 9 } }, required: ['name'] },
        },
        note: { anyOf: [{ type: 'string' }, { type: 'null' }] },
        express: { type: 'boolean' },
        ratio: { type: 'number', minimum: 0, maximum: 1 },
        size: { enum: ['S', 'M L', 3, 'celsius'] },
      },
      required: ['items', 'size'],
    },
  },
};
const TOOLS = [WEATHER, ADD, ORDER];

async function nativeFormat(): Promise<ToolFormat> {
  const format = toolFormatFor((await gemma4LikeTokenizer()).vocabulary!(), GEMMA4_TOOL_TOKENS);
  assert.equal(format.name, 'gemma-native');
  return format;
}

async function makeEngine(opts: FakeModelOptions = {}) {
  const model = new FakeModel(opts);
  const engine = new Engine({ model, tokenizer: await gemma4LikeTokenizer(), stopTokenIds: STOP, toolTokens: GEMMA4_TOOL_TOKENS });
  return { model, engine };
}

const validators = (() => {
  const ajv = new Ajv2020({ strict: false });
  return Object.fromEntries(TOOLS.map((t) => [t.function.name, ajv.compile(t.function.parameters as object)]));
})();

function assertValidCall(call: ToolCall, allowed: readonly string[], tag: string): void {
  assert.ok(allowed.includes(call.name), `${call.name} ${tag}`);
  const validate = validators[call.name];
  assert.ok(validate(call.arguments), `${JSON.stringify(call)} ${JSON.stringify(validate.errors)} ${tag}`);
}

/** Reads a reply of ids as the engine streams it: one delta per token, its text and its id. */
function readIds(format: ToolFormat, tok: TextTokenizer, ids: readonly number[], tools: readonly ToolDeclaration[], choice: ToolChoice) {
  const reader = format.reader(tools, choice);
  const detok = new IncrementalDetokenizer(tok);
  let text = '';
  const calls: ToolCall[] = [];
  for (const id of ids) {
    const r = reader.push(detok.push(id), [id]);
    text += r.text;
    calls.push(...r.toolCalls);
  }
  const end = reader.finish();
  return { text: text + end.text, calls, complete: end.complete };
}

test('detection: a tokenizer with the family\'s markers gets the native format; Gemma 3\'s, or no markers, the JSON one', async () => {
  const g4 = (await gemma4LikeTokenizer()).vocabulary!();
  const g3 = (await gemmaTokenizer()).vocabulary!();
  assert.equal(toolFormatFor(g4, GEMMA4_TOOL_TOKENS).name, 'gemma-native');
  assert.equal(toolFormatFor(g3, GEMMA4_TOOL_TOKENS), JSON_TOOL_FORMAT, 'the markers are not in Gemma 3\'s vocabulary');
  assert.equal(toolFormatFor(g4, undefined), JSON_TOOL_FORMAT, 'a family without tool tokens (Gemma 3n)');
  // The grammar spells each marker as one code point only its own id can write.
  const format = await nativeFormat();
  assert.deepEqual([...format.grammarTokens!.keys()], MARKERS);
  const vocab = grammarVocabulary(g4, { vocabSize: LOGITS, stopTokenIds: STOP, controls: format.grammarTokens });
  const spellers = new Map<string, number[]>();
  for (let id = 0; id < vocab.pieces.length; id++) {
    for (const ch of new TextDecoder().decode(vocab.tokenBytes(id))) {
      if (ch.codePointAt(0)! >= 1 && ch.codePointAt(0)! <= 8) spellers.set(ch, [...(spellers.get(ch) ?? []), id]);
    }
  }
  assert.deepEqual([...spellers.values()], MARKERS.map((id) => [id]));
  assert.ok(!vocab.pieces.includes('<0x01>') && (await gemmaTokenizer()).vocabulary!().pieces.includes('<0x01>'), 'the byte pieces that could write one are blanked');
  assert.notEqual(vocab.key, grammarVocabulary(g4, { vocabSize: LOGITS, stopTokenIds: STOP }).key);
  // A marker then text starting with hex letters: XGrammar reads "\u0003ca" as U+03CA, so lit() splits the literal.
  const compiler = await ConstraintCompiler.create(vocab);
  const c = await compiler.constraint({ ebnf: `root ::= ${lit(CODE_POINT_MARKERS.call.open + 'call')}` });
  const first: number[] = [];
  const mask = c.nextMask();
  for (let id = 0; id < LOGITS; id++) if ((mask[id >>> 5] >>> (id & 31)) & 1) first.push(id);
  assert.deepEqual(first, [CALL_OPEN]);
  c.dispose();
});

test('a round trip renders as exact token ids: declaration, call, response', async () => {
  const tok = await gemma4LikeTokenizer();
  const format = await nativeFormat();
  const conversation: ChatMessage[] = [
    { role: 'system', content: 'Be brief.' },
    { role: 'user', content: 'Weather in Paris?' },
    { role: 'assistant', content: '', toolCalls: [{ id: 'call_1', name: 'get_weather', arguments: { city: 'Paris', days: 2 } }] },
    { role: 'tool', toolCallId: 'call_1', content: '{"temp": 15.5, "sky": "sunny", "ok": true, "rain": null, "hours": [1, 2], "wind": {"kmh": 3}}' },
  ];
  const T = (s: string) => tok.encodeRendered(s);
  const expected = [
    ...T('<bos><start_of_turn>user\nBe brief.'),
    DECL_OPEN, ...T('declaration:get_weather{description:'), Q, ...T('Current weather'), Q,
    ...T(',parameters:{type:'), Q, ...T('object'), Q, ...T(',properties:{city:{type:'), Q, ...T('string'), Q, ...T(',description:'), Q, ...T('City'), Q,
    ...T('},days:{type:'), Q, ...T('integer'), Q, ...T(',minimum:1,maximum:7}},required:['), Q, ...T('city'), Q, ...T(']}}'), DECL_CLOSE,
    ...T('\n\nWeather in Paris?<end_of_turn>\n<start_of_turn>model\n'),
    CALL_OPEN, ...T('call:get_weather{city:'), Q, ...T('Paris'), Q, ...T(',days:2}'), CALL_CLOSE,
    RESP_OPEN, ...T('response:get_weather{temp:15.5,sky:'), Q, ...T('sunny'), Q, ...T(',ok:true,rain:null,hours:[1,2],wind:{kmh:3}}'), RESP_CLOSE,
    ...T('<end_of_turn>\n<start_of_turn>model\n'),
  ];
  assert.deepEqual(tok.applyChatTemplate(format.render(conversation, [WEATHER], 'auto')), expected);
  // The engine feeds exactly that prompt.
  const { engine, model } = await makeEngine({ reply: T('Sunny.') });
  const r = await collect(engine.chat(conversation, { tools: [WEATHER] }));
  assert.deepEqual(model.cache.slice(0, expected.length), expected);
  assert.equal(r.stats.promptTokens, expected.length);
  assert.equal(r.text, 'Sunny.');
  // A result that is not a JSON object, answered by position (no id), and 'none' declares nothing.
  const plain = format.render([{ role: 'user', content: 'x' }, { role: 'assistant', content: 'On it.', toolCalls: [{ id: 'a', name: 'add', arguments: { a: 1, b: 2 } }] }, { role: 'tool', content: 'three' }], [ADD], 'none');
  assert.deepEqual(plain, [
    { role: 'user', content: 'x' },
    { role: 'assistant', content: 'On it.<|tool_call>call:add{a:1,b:2}<tool_call|><|tool_response>response:add{value:<|"|>three<|"|>}<tool_response|>' },
  ]);
  assert.deepEqual(format.render([{ role: 'tool', name: 'add', content: '{"sum": 3}' }], [ADD], 'none'), [{ role: 'assistant', content: '<|tool_response>response:add{sum:3}<tool_response|>' }]);
  assert.throws(() => format.render([{ role: 'tool', content: '1' }], [ADD], 'auto'), (e: unknown) => e instanceof GemmaError && /answers no call/.test(e.message));
});

test('the reader: text passes through, a call is yielded when <tool_call|> arrives (fed character by character)', async () => {
  const tok = await gemma4LikeTokenizer();
  const format = await nativeFormat();
  const reply = 'Sure. <|tool_call>call:order{items:[{name:<|"|>tea, "green" {x:1}<|"|>,qty:2}],note:null,express:false,ratio:0.25,size:<|"|>M L<|"|>}<tool_call|> Done.';
  const ids = tok.encodeRendered(reply);
  assert.equal(ids.filter((id) => id === Q).length, 4);
  // Character by character: every token's text one character per push, then its id.
  const reader = format.reader(TOOLS, 'auto');
  const detok = new IncrementalDetokenizer(tok);
  let text = '';
  const seen: { at: number; call: ToolCall }[] = [];
  ids.forEach((id, at) => {
    const chars = [...detok.push(id)];
    for (const ch of chars) text += reader.push(ch).text;
    if (chars.length === 0) {
      const r = reader.push('', [id]);
      text += r.text;
      for (const call of r.toolCalls) seen.push({ at, call });
    }
  });
  assert.deepEqual(reader.finish(), { text: '', complete: true });
  assert.equal(text, 'Sure.  Done.');
  assert.equal(seen.length, 1);
  assert.equal(seen[0].at, ids.indexOf(CALL_CLOSE), 'yielded with <tool_call|>, not before');
  assert.equal(seen[0].call.name, 'order');
  assert.deepEqual(seen[0].call.arguments, { items: [{ name: 'tea, "green" {x:1}', qty: 2 }], note: null, express: false, ratio: 0.25, size: 'M L' });

  // The marker strings written with ordinary tokens are text, not markers.
  const literal = [...tok.encodeRendered('a'), ...tok.encode('<').slice(1), ...tok.encode('|tool_call>').slice(1)];
  assert.equal(readIds(format, tok, literal, TOOLS, 'auto').text, 'a<|tool_call>');
  // A tokenizer that does not mark the markers special spells them in the text: the id still decides.
  const spelled = format.reader(TOOLS, 'auto');
  const parts: [string, number][] = [['<|tool_call>', CALL_OPEN], ['call:add{a:1,b:-2}', 0], ['<tool_call|>', CALL_CLOSE]];
  const got = parts.map(([t, id]) => spelled.push(t, id ? [id] : []));
  assert.deepEqual(got.flatMap((d) => d.toolCalls).map((c) => [c.name, c.arguments]), [['add', { a: 1, b: -2 }]]);
  assert.equal(got.map((d) => d.text).join(''), '');
  // An undeclared name or a broken call is given back as text; a call cut off is dropped, incomplete.
  assert.equal(readIds(format, tok, tok.encodeRendered('<|tool_call>call:rm{path:<|"|>/<|"|>}<tool_call|>'), TOOLS, 'auto').text, '<|tool_call>call:rm{path:<|"|>/<|"|>}<tool_call|>');
  assert.equal(readIds(format, tok, tok.encodeRendered('<|tool_call>call:add{a:1,}<tool_call|>'), TOOLS, 'auto').calls.length, 0);
  const cut = readIds(format, tok, tok.encodeRendered('Hm <|tool_call>call:add{a:1'), TOOLS, 'auto');
  assert.deepEqual([cut.text, cut.calls.length, cut.complete], ['Hm ', 0, false]);
  // 'none': never a call; control tokens are not text.
  const none = readIds(format, tok, tok.encodeRendered('x<|tool_call>call:add{a:1,b:2}<tool_call|>'), TOOLS, 'none');
  assert.deepEqual([none.text, none.calls.length], ['xcall:add{a:1,b:2}', 0]);
});

/**
 * Draws among the allowed ids (gibberish on purpose): a quarter of the steps among the allowed markers (so strings
 * end), a quarter among the short pieces and closers, the rest among all allowed ids.
 */
function randomSampler(vocab: GrammarVocabulary, rng: Rng): (mask: Uint32Array) => number {
  const words = Math.ceil(vocab.vocabSize / 32);
  const markers = new Uint32Array(words);
  const structural = new Uint32Array(words);
  for (const id of MARKERS) markers[id >>> 5] |= 1 << (id & 31);
  for (let id = 0; id < vocab.pieces.length; id++) {
    const b = vocab.tokenBytes(id);
    if (b.length > 0 && (b.length <= 2 || b.includes(0x7d) || b.includes(0x5d))) structural[id >>> 5] |= 1 << (id & 31);
  }
  return (mask) => {
    const tier = rng.int(0, 4);
    const id = tier === 0 ? pickUniform(mask, rng, markers) : tier === 1 ? pickUniform(mask, rng, structural) : -1;
    return id >= 0 ? id : pickUniform(mask, rng);
  };
}

/** The engine's loop over a constraint (null mask = free: `free` picks), until a stop id or the budget. */
async function drive(c: TokenConstraint, pick: (mask: Uint32Array | null) => number, maxNewTokens: number): Promise<{ ids: number[]; complete: boolean }> {
  const ids: number[] = [];
  while (ids.length < maxNewTokens) {
    await c.prepare?.();
    if (c.isComplete()) return { ids, complete: true };
    const id = pick(c.nextMask());
    c.accept(id);
    if (STOP.includes(id)) return { ids, complete: true };
    ids.push(id);
  }
  await c.prepare?.();
  return { ids, complete: c.isComplete() };
}

test("'required', a named tool and 'auto' under random logits: 50 calls each that parse and validate", async () => {
  const { rng, tag } = freshRng();
  const tok = await gemma4LikeTokenizer();
  const format = await nativeFormat();
  const vocab = grammarVocabulary(tok.vocabulary!(), { vocabSize: LOGITS, stopTokenIds: STOP, controls: format.grammarTokens });
  const compiler = await ConstraintCompiler.create(vocab);
  const sample = randomSampler(vocab, rng);
  const textIds = tok.encodeRendered('Let me look that up for you, one moment please.');
  const cases: { choice: ToolChoice; names: string[] }[] = [
    { choice: 'required', names: TOOLS.map((t) => t.function.name) },
    { choice: { name: 'order' }, names: ['order'] },
    { choice: 'auto', names: TOOLS.map((t) => t.function.name) },
  ];
  for (const { choice, names } of cases) {
    let complete = 0;
    for (let i = 0; i < 50; i++) {
      const c = choice === 'auto' ? await format.autoCall(compiler, TOOLS) : await compiler.constraint(format.requiredCall(TOOLS, choice));
      // 'auto': some free text first (unconstrained), then the model opens a call.
      const lead = choice === 'auto' ? textIds.slice(0, rng.int(0, 8)) : [];
      let k = 0;
      const r = await drive(c, (mask) => {
        if (mask === null) return k < lead.length ? lead[k++] : CALL_OPEN;
        return sample(mask);
      }, 400);
      c.dispose?.();
      const read = readIds(format, tok, r.ids, TOOLS, choice);
      if (!r.complete) {
        assert.equal(read.complete, false, `a cut call is reported incomplete ${JSON.stringify(choice)} ${r.ids.length} ${JSON.stringify(tok.decode(r.ids).slice(-200))} ${r.ids.slice(0, 3)} ${r.ids.map((id, i) => (MARKERS.includes(id) ? `${i}:${id}` : "")).filter(Boolean)} ${tag}`);
        assert.equal(read.calls.length, 0);
        continue;
      }
      complete++;
      assert.equal(read.complete, true, tag);
      assert.equal(read.calls.length, 1, `${JSON.stringify(tok.decode(r.ids))} ${tag}`);
      assertValidCall(read.calls[0], names, tag);
      assert.equal(read.text, tok.decode(lead), `only the free text is text ${tag}`);
      const close = r.ids.indexOf(CALL_CLOSE);
      assert.ok(close === r.ids.length - 1, `the reply ends with the call ${tag}`);
      assert.equal(r.ids.filter((id) => id === CALL_OPEN).length, 1, 'one call, opened once');
    }
    assert.ok(complete >= 40, `${JSON.stringify(choice)}: ${complete}/50 calls completed within 400 tokens ${tag}`);
  }
});

test("through the engine: 'required' streams a validated native call with finishReason tool_calls; 'auto' text then a call; 'none' never calls", async () => {
  const { rng, tag } = freshRng();
  const tok = await gemma4LikeTokenizer();
  const { engine, model } = await makeEngine();
  const hi: ChatMessage[] = [{ role: 'user', content: 'Add two numbers.' }];
  let calls = 0;
  for (let i = 0; i < 3; i++) {
    const r = await collect(engine.chat(hi, { tools: [ADD, WEATHER], toolChoice: { name: 'add' }, seed: rng.int(0, 1e9), maxNewTokens: 40 }));
    assert.ok(model.masks.at(-1) !== null, 'constrained');
    if (!r.stats.complete) continue;
    assertValidCall(onlyCall(r, tag), ['add'], tag);
    calls++;
  }
  assert.ok(calls >= 2, `${calls}/3 calls completed ${tag}`);
  const prompt = model.cache.slice(0, tok.applyChatTemplate(hi).length + 40);
  assert.ok(prompt.includes(DECL_OPEN), 'declared with the native marker');

  const reply = tok.encodeRendered('Checking. <|tool_call>call:get_weather{city:<|"|>Paris<|"|>,days:3}<tool_call|>');
  const { engine: e2 } = await makeEngine({ reply });
  const r2 = await collect(e2.chat([{ role: 'user', content: 'Weather in Paris?' }], { tools: TOOLS }));
  const at = r2.deltas.findIndex((d) => d.toolCalls?.length);
  assert.equal(at, reply.length - 1, 'yielded with the <tool_call|> token');
  assert.deepEqual(r2.deltas[at].toolCalls!.map((c) => [c.name, c.arguments]), [['get_weather', { city: 'Paris', days: 3 }]]);
  assert.equal(r2.text, 'Checking. ');
  assert.equal(r2.stats.finishReason, 'tool_calls');
  assert.equal(r2.stats.complete, true);

  const { engine: e3, model: m3 } = await makeEngine({ reply });
  const r3 = await collect(e3.chat(hi, { tools: TOOLS, toolChoice: 'none' }));
  assert.ok(r3.deltas.every((d) => !d.toolCalls));
  assert.equal(r3.stats.finishReason, 'stop');
  assert.ok(!m3.cache.includes(DECL_OPEN), 'nothing declared');
  assert.ok(m3.masks.every((m) => m === null), 'not constrained');
});

test('schemas the native syntax cannot guarantee are refused before any token, naming the construct', async () => {
  const { engine, model } = await makeEngine();
  const hi: ChatMessage[] = [{ role: 'user', content: 'Hi' }];
  const tool = (parameters: unknown): ToolDeclaration => ({ type: 'function', function: { name: 'f', parameters: parameters as Record<string, unknown> } });
  const refuse = (parameters: unknown, pattern: RegExp, choice: ToolChoice = 'required') =>
    assert.rejects(engine.chat(hi, { tools: [tool(parameters)], toolChoice: choice }).stats, (e: unknown) => e instanceof GemmaError && e.code === 'invalid-argument' && pattern.test(e.message));
  await refuse({ type: 'object', properties: { s: { type: 'string', maxLength: 4 } } }, /minLength\/maxLength in Gemma 4's native tool calls at #\/tools\/f\/parameters\/properties\/s/);
  await refuse({ type: 'object', properties: { s: { type: 'string', pattern: '^a+$' } } }, /`pattern` in Gemma 4's native tool calls/, 'auto');
  await refuse({ type: 'object', properties: { 'a b': { type: 'string' } } }, /property name "a b"/);
  await refuse({ type: 'string' }, /must be an object schema/);
  await refuse({ type: 'object', properties: { x: { type: 'string', format: 'date' } } }, /the keyword "format"/);
  await assert.rejects(
    engine.chat(hi, { tools: [ADD], responseFormat: { type: 'json_object' } }).stats,
    (e: unknown) => e instanceof GemmaError && /native tool calls: use toolChoice 'required' or 'none'/.test(e.message),
  );
  assert.equal(model.feeds.length, 0, 'nothing was prefilled');
  assert.equal(model.samples.length, 0, 'no token was sampled');
});

test('the OpenAI facade over the worker host: native calls arrive as tool_calls; the result goes back natively', async () => {
  const tok = await gemma4LikeTokenizer();
  const reply = tok.encodeRendered('<|tool_call>call:get_weather{city:<|"|>Paris<|"|>}<tool_call|>');
  const models: FakeModel[] = [];
  const { port1, port2 } = new MessageChannel();
  // The loader hands over the family's tool tokens as loadModel does (LoadedModel.toolTokens).
  expose(createWorkerApi(async () => {
    models.push(new FakeModel({ reply }));
    return { model: models[0], tokenizer: tok, stopTokenIds: STOP, adapterName: 'fake', toolTokens: GEMMA4_TOOL_TOKENS };
  }), port2);
  const gemma: GemmaClient = await connectGemmaWorker(Object.assign(port1, { terminate: () => port1.close() }) as unknown as Worker, { model: { fake: true } });
  clients.push(gemma);
  const chunks: ChatCompletionChunk[] = [];
  for await (const c of await gemma.chat.completions.create({ messages: [{ role: 'user', content: 'Weather in Paris?' }], tools: [WEATHER], stream: true })) chunks.push(c);
  const calls = chunks.flatMap((c) => c.choices[0]?.delta.tool_calls ?? []);
  assert.deepEqual(calls.map((c) => [c.index, c.function.name, JSON.parse(c.function.arguments)]), [[0, 'get_weather', { city: 'Paris' }]]);
  assert.equal(chunks.filter((c) => c.choices[0]?.finish_reason).at(-1)!.choices[0].finish_reason, 'tool_calls');
  assert.equal(chunks.map((c) => c.choices[0]?.delta.content ?? '').join(''), '');
  assert.ok(models[0].cache.includes(DECL_OPEN), 'declared natively');
  const followUp = (await gemma.chat.completions.create({
    messages: [
      { role: 'user', content: 'Weather in Paris?' },
      { role: 'assistant', content: null, tool_calls: [{ id: calls[0].id, type: 'function', function: { name: 'get_weather', arguments: calls[0].function.arguments } }] },
      { role: 'tool', tool_call_id: calls[0].id, content: '{"temp": 21}' },
    ],
    tools: [WEATHER],
    tool_choice: 'none',
    max_tokens: 1,
  })) as ChatCompletion;
  assert.equal(followUp.choices[0].finish_reason, 'length');
  const prompt = models[0].cache;
  const respAt = prompt.lastIndexOf(RESP_OPEN);
  assert.ok(respAt > prompt.lastIndexOf(CALL_CLOSE) && prompt.lastIndexOf(CALL_CLOSE) > 0, 'the result follows the call');
  assert.equal(tok.decode(prompt.slice(respAt + 1, prompt.lastIndexOf(RESP_CLOSE))), 'response:get_weather{temp:21}');
});
