/** Checks shared by the tool-calling tests: a completed reply that is exactly one call. */
import assert from 'node:assert/strict';
import type { ToolCall } from '../../src/runtime/protocol.ts';
import type { collect } from './stream.ts';

/** The one call of a reply that is a call: no text, finishReason 'tool_calls', an id. */
export function onlyCall(r: Awaited<ReturnType<typeof collect>>, tag: string): ToolCall {
  const toolCalls = r.deltas.flatMap((d) => d.toolCalls ?? []);
  assert.equal(toolCalls.length, 1, tag);
  assert.equal(r.text, '', 'a call is not text');
  assert.equal(r.stats.finishReason, 'tool_calls');
  assert.match(toolCalls[0].id, /^call_/);
  return toolCalls[0];
}
