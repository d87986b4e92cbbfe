// client.chat.completions.create() through the real client, comlink boundary and worker host (a MessageChannel
// stands in for the Worker; a scripted fake model with the real Gemma tokenizer and grammar engine): the streamed
// chunks reproduce the native stream's text and tool calls in OpenAI's shapes (role first, content deltas, tool_calls
// with indices, one finish_reason, usage last), the non-streaming response, abort through the signal, and requests
// the model cannot serve rejecting create() before any token.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { expose } from 'comlink';
import { connectGemmaWorker, type GemmaClient } from '../../src/runtime/client.ts';
import { createWorkerApi } from '../../src/runtime/worker-host.ts';
import { installErrorTransfer } from '../../src/runtime/comlink-errors.ts';
import type { ChatCompletion, ChatCompletionChunk } from '../../src/runtime/openai/chat-completions.ts';
import type { ChatMessage, ToolDeclaration } from '../../src/runtime/protocol.ts';
import { GemmaError } from '../../src/errors.ts';
import { loadXGrammarForNode } from '../../src/node/xgrammar.ts';
import { FakeModel, type FakeModelOptions } from './fake-model.ts';
import { gemmaTokenizer } from './gemma-tokenizer.ts';
import { collect } from '../helpers/stream.ts';

loadXGrammarForNode();
installErrorTransfer();

const TOOLS: ToolDeclaration[] = [
  { type: 'function', function: { name: 'get_weather', description: 'Weather of a city', parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] } } },
];
const clients: GemmaClient[] = [];
after(async () => {
  for (const c of clients) await c.dispose();
});

/** A client over the worker host in this thread: the fake model replies with `replyText` to every generation. */
async function client(replyText: string, opts: FakeModelOptions = {}): Promise<GemmaClient> {
  const tokenizer = await gemmaTokenizer();
  const reply = tokenizer.encode(replyText).slice(1);
  const { port1, port2 } = new MessageChannel();
  expose(createWorkerApi(async () => ({ model: new FakeModel({ reply, ...opts }), tokenizer, stopTokenIds: [1, 106], adapterName: 'fake' })), port2);
  const worker = Object.assign(port1, { terminate: () => port1.close() }) as unknown as Worker;
  const c = await connectGemmaWorker(worker, { model: { fake: true } });
  clients.push(c);
  return c;
}

async function chunksOf(stream: AsyncIterable<ChatCompletionChunk>): Promise<ChatCompletionChunk[]> {
  const out: ChatCompletionChunk[] = [];
  for await (const c of stream) out.push(c);
  return out;
}

function assertChunkShapes(chunks: ChatCompletionChunk[], finish: string, usage: boolean): void {
  assert.ok(chunks.length >= 3);
  const id = chunks[0].id;
  for (const c of chunks) {
    assert.equal(c.object, 'chat.completion.chunk');
    assert.equal(c.id, id);
    assert.equal(typeof c.created, 'number');
    assert.equal(typeof c.model, 'string');
  }
  assert.deepEqual(chunks[0].choices, [{ index: 0, delta: { role: 'assistant', content: '' }, finish_reason: null }]);
  const finishing = chunks.filter((c) => c.choices[0]?.finish_reason);
  assert.equal(finishing.length, 1);
  assert.equal(finishing[0].choices[0].finish_reason, finish);
  assert.deepEqual(finishing[0].choices[0].delta, {});
  const last = chunks[chunks.length - 1];
  if (usage) {
    assert.deepEqual(last.choices, []);
    assert.ok(last.usage && last.usage.total_tokens === last.usage.prompt_tokens + last.usage.completion_tokens && last.usage.completion_tokens > 0);
  } else assert.equal(last, finishing[0]);
}

const user: ChatMessage[] = [{ role: 'user', content: 'Hello' }];

test('streaming: the chunks reproduce the native text; shapes and usage as OpenAI sends them', async () => {
  const gemma = await client('Hello there, 🦩 world.');
  const native = await collect(gemma.chat(user, { maxNewTokens: 64 }));
  const stream = await gemma.chat.completions.create({ messages: [{ role: 'user', content: 'Hello' }], stream: true, stream_options: { include_usage: true }, max_tokens: 64 });
  const chunks = await chunksOf(stream);
  assert.equal(chunks.map((c) => c.choices[0]?.delta.content ?? '').join(''), native.text);
  assertChunkShapes(chunks, 'stop', true);
  assert.equal(chunks.at(-1)!.usage!.completion_tokens, native.stats.newTokens);
  assert.equal(chunks.at(-1)!.usage!.prompt_tokens, native.stats.promptTokens);
  const response = (await gemma.chat.completions.create({ messages: [{ role: 'user', content: 'Hello' }], max_tokens: 3 })) as ChatCompletion;
  assert.equal(response.object, 'chat.completion');
  assert.equal(response.choices[0].finish_reason, 'length');
  assert.equal(response.choices[0].message.role, 'assistant');
  assert.ok(native.text.startsWith(response.choices[0].message.content!));
});

test('tool calls: the native toolCalls as delta.tool_calls (index, id, name, JSON arguments), finish_reason tool_calls', async () => {
  const gemma = await client('{"name": "get_weather", "parameters": {"city": "Paris"}}');
  const native = await collect(gemma.chat(user, { tools: TOOLS }));
  const nativeCalls = native.deltas.flatMap((d) => d.toolCalls ?? []);
  assert.equal(native.stats.finishReason, 'tool_calls');
  assert.deepEqual(nativeCalls.map((c) => [c.name, c.arguments]), [['get_weather', { city: 'Paris' }]]);
  const chunks = await chunksOf(await gemma.chat.completions.create({ messages: [{ role: 'user', content: 'Hello' }], tools: TOOLS, stream: true }));
  assertChunkShapes(chunks, 'tool_calls', false);
  const calls = chunks.flatMap((c) => c.choices[0]?.delta.tool_calls ?? []);
  assert.deepEqual(calls.map((c) => [c.index, c.type, c.function.name, JSON.parse(c.function.arguments)]), [[0, 'function', 'get_weather', { city: 'Paris' }]]);
  assert.match(calls[0].id, /^call_/);
  assert.equal(chunks.map((c) => c.choices[0]?.delta.content ?? '').join(''), native.text);
  const response = (await gemma.chat.completions.create({ messages: [{ role: 'user', content: 'Hello' }], tools: TOOLS, tool_choice: 'required' })) as ChatCompletion;
  assert.equal(response.choices[0].finish_reason, 'tool_calls');
  assert.equal(response.choices[0].message.content, null);
  assert.deepEqual(JSON.parse(response.choices[0].message.tool_calls![0].function.arguments), { city: 'Paris' });
  // The result goes back in OpenAI's shape and renders as a tool turn (no error; the reply streams).
  const followUp = await gemma.chat.completions.create({
    messages: [{ role: 'user', content: 'Hello' }, response.choices[0].message, { role: 'tool', tool_call_id: calls[0].id, content: '{"temp": 21}' }],
    tools: TOOLS,
    tool_choice: 'none',
    max_tokens: 2,
  });
  assert.equal((followUp as ChatCompletion).choices[0].finish_reason, 'length');
});

test('abort through the signal ends the stream; the client is usable afterwards', async () => {
  const gemma = await client('one two three four five six seven eight nine ten eleven twelve', { delayMs: 30 });
  const controller = new AbortController();
  const stream = await gemma.chat.completions.create({ messages: [{ role: 'user', content: 'Count' }], stream: true }, { signal: controller.signal });
  const chunks: ChatCompletionChunk[] = [];
  for await (const c of stream) {
    chunks.push(c);
    if (chunks.length === 3) controller.abort();
  }
  const text = chunks.map((c) => c.choices[0]?.delta.content ?? '').join('');
  assert.ok(text.length < 'one two three four five six seven eight nine ten eleven twelve'.length, `stopped early: ${JSON.stringify(text)}`);
  assert.equal(chunks.at(-1)!.choices[0].finish_reason, 'stop');
  // stream.controller stops it too.
  const s2 = await gemma.chat.completions.create({ messages: [{ role: 'user', content: 'Count' }], stream: true });
  let n = 0;
  for await (const _ of s2) if (++n === 2) s2.controller.abort();
  assert.ok(n < 14, `${n} chunks`);
  const again = (await gemma.chat.completions.create({ messages: [{ role: 'user', content: 'Count' }], max_tokens: 2 })) as ChatCompletion;
  assert.equal(again.choices[0].finish_reason, 'length');
});

test('a request the model cannot serve rejects create() before any token', async () => {
  const gemma = await client('{"a": 1}');
  const bad = { type: 'json_schema' as const, json_schema: { name: 'x', schema: { type: 'object', patternProperties: { '^a': {} } } } };
  for (const stream of [true, false]) {
    await assert.rejects(gemma.chat.completions.create({ messages: [{ role: 'user', content: 'x' }], response_format: bad, stream }), (e: unknown) => e instanceof GemmaError && e.code === 'invalid-argument' && /patternProperties/.test(e.message));
  }
  await assert.rejects(gemma.chat.completions.create({ messages: [] }), (e: unknown) => e instanceof GemmaError && e.code === 'invalid-argument');
  const ok = (await gemma.chat.completions.create({ messages: [{ role: 'user', content: 'x' }], response_format: { type: 'json_object' } })) as ChatCompletion;
  assert.deepEqual(JSON.parse(ok.choices[0].message.content!), { a: 1 });
});
