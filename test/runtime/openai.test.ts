import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createChatCompletion, toNative, type ChatCompletionChunk, type NativeChat, type NativeDelta, type NativeStats } from '../../src/runtime/openai/chat-completions.ts';

function fakeNative(deltas: NativeDelta[], stats: NativeStats): NativeChat {
  return (_messages, opts) => {
    const it = (async function* () {
      for (const d of deltas) {
        if (opts.signal?.aborted) return;
        yield d;
      }
    })();
    return Object.assign(it, { stats: Promise.resolve(stats) });
  };
}

test('request mapping: messages, tool calls and results, options', () => {
  const { messages, options } = toNative({
    messages: [
      { role: 'developer', content: 'be brief' },
      { role: 'user', content: [{ type: 'text', text: 'hi' }] },
      { role: 'assistant', content: null, tool_calls: [{ id: 'c1', type: 'function', function: { name: 'f', arguments: '{"a":1}' } }] },
      { role: 'tool', tool_call_id: 'c1', content: '42' },
    ],
    tool_choice: { type: 'function', function: { name: 'f' } },
    response_format: { type: 'json_schema', json_schema: { name: 'x', schema: { type: 'object' } } },
    max_tokens: 7,
    temperature: 0.5,
    top_p: 0.9,
    seed: 3,
    stop: 'END',
  });
  assert.deepEqual(messages, [
    { role: 'system', content: 'be brief' },
    { role: 'user', content: 'hi' },
    { role: 'assistant', content: '', toolCalls: [{ id: 'c1', name: 'f', arguments: { a: 1 } }] },
    { role: 'tool', content: '42', toolCallId: 'c1', name: undefined },
  ]);
  assert.deepEqual(options, { toolChoice: { name: 'f' }, responseFormat: { type: 'json_schema', schema: { type: 'object' } }, maxNewTokens: 7, temperature: 0.5, topP: 0.9, seed: 3, stop: ['END'] });
});

test('streaming reproduces the native text and tool calls in OpenAI chunk shapes, usage last', async () => {
  const calls = [{ id: 'call_a', name: 'get_weather', arguments: { city: 'Paris' } }, { id: 'call_b', name: 'calc', arguments: { e: '1+1' } }];
  const chat = fakeNative([{ text: 'Hel' }, { text: 'lo' }, { text: '', toolCalls: [calls[0]] }, { text: '', toolCalls: [calls[1]] }], { promptTokens: 10, newTokens: 5, finishReason: 'stop' });
  const chunks: ChatCompletionChunk[] = [];
  for await (const c of createChatCompletion(chat, { messages: [{ role: 'user', content: 'x' }], stream: true, stream_options: { include_usage: true } }) as AsyncGenerator<ChatCompletionChunk>) chunks.push(c);
  assert.equal(chunks[0].choices[0].delta.role, 'assistant');
  assert.equal(chunks.map((c) => c.choices[0]?.delta.content ?? '').join(''), 'Hello');
  const tc = chunks.flatMap((c) => c.choices[0]?.delta.tool_calls ?? []);
  assert.deepEqual(tc.map((t) => [t.index, t.id, t.function.name, JSON.parse(t.function.arguments)]), calls.map((c, i) => [i, c.id, c.name, c.arguments]));
  const finish = chunks.filter((c) => c.choices[0]?.finish_reason);
  assert.equal(finish.length, 1);
  assert.equal(finish[0].choices[0].finish_reason, 'tool_calls');
  const last = chunks[chunks.length - 1];
  assert.deepEqual(last.choices, []);
  assert.deepEqual(last.usage, { prompt_tokens: 10, completion_tokens: 5, total_tokens: 15 });
  for (const c of chunks) assert.equal(c.object, 'chat.completion.chunk');
});

test('non-streaming response, and abort through the signal ends the stream', async () => {
  const chat = fakeNative([{ text: 'a' }, { text: 'b' }], { promptTokens: 1, newTokens: 2, finishReason: 'length' });
  const r = await (createChatCompletion(chat, { messages: [{ role: 'user', content: 'x' }] }) as Promise<import('../../src/runtime/openai/chat-completions.ts').ChatCompletion>);
  assert.equal(r.choices[0].message.content, 'ab');
  assert.equal(r.choices[0].finish_reason, 'length');
  const ac = new AbortController();
  ac.abort();
  const chunks: ChatCompletionChunk[] = [];
  for await (const c of createChatCompletion(chat, { messages: [{ role: 'user', content: 'x' }], stream: true }, { signal: ac.signal }) as AsyncGenerator<ChatCompletionChunk>) chunks.push(c);
  assert.equal(chunks.map((c) => c.choices[0]?.delta.content ?? '').join(''), '');
});
