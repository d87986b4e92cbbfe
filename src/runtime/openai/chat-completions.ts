/**
 * The OpenAI chat-completions shape over the native API, as pure functions: request -> native messages and
 * options, native stream -> chunks / a response. Phase 2 wires `createChatCompletion` to the client.
 * Native interface assumed: chat(messages, opts) -> AsyncIterable<{ text, toolCalls? }> & { stats: Promise<...> }.
 */
import { GemmaError } from '../../errors.ts';
import type { ResponseFormat } from '../constrained/grammar-constraint.ts';
import type { ToolCall, ToolChatMessage, ToolChoice, ToolDeclaration } from '../tools/tools.ts';

export interface OpenAIMessage {
  role: 'system' | 'developer' | 'user' | 'assistant' | 'tool';
  content: string | null | { type: string; text?: string }[];
  tool_calls?: { id: string; type: 'function'; function: { name: string; arguments: string } }[];
  tool_call_id?: string;
  name?: string;
}

export interface OpenAIRequest {
  messages: OpenAIMessage[];
  model?: string;
  stream?: boolean;
  tools?: ToolDeclaration[];
  tool_choice?: 'auto' | 'none' | 'required' | { type: 'function'; function: { name: string } };
  response_format?: { type: 'text' } | { type: 'json_object' } | { type: 'json_schema'; json_schema: { name?: string; schema: unknown; strict?: boolean } } | { type: 'grammar'; grammar: string };
  max_tokens?: number;
  max_completion_tokens?: number;
  temperature?: number;
  top_p?: number;
  seed?: number;
  stop?: string | string[];
  stream_options?: { include_usage?: boolean };
}

export interface NativeOptions {
  tools?: ToolDeclaration[];
  toolChoice?: ToolChoice;
  responseFormat?: ResponseFormat;
  maxNewTokens?: number;
  temperature?: number;
  topP?: number;
  seed?: number;
  stop?: string[];
  signal?: AbortSignal;
}

export interface NativeDelta {
  text: string;
  toolCalls?: ToolCall[];
}

export interface NativeStats {
  promptTokens: number;
  newTokens: number;
  finishReason: 'stop' | 'length' | 'abort' | 'tool_calls';
}

export type NativeChat = (messages: ToolChatMessage[], opts: NativeOptions) => AsyncIterable<NativeDelta> & { stats: Promise<NativeStats> };

function textOf(content: OpenAIMessage['content']): string {
  if (content === null || content === undefined) return '';
  if (typeof content === 'string') return content;
  return content.map((p) => {
    if (p.type !== 'text') throw new GemmaError('invalid-argument', `Content part type "${p.type}" is not supported here (text only).`);
    return p.text ?? '';
  }).join('');
}

/** OpenAI request -> native messages and options. */
export function toNative(req: OpenAIRequest, signal?: AbortSignal): { messages: ToolChatMessage[]; options: NativeOptions } {
  if (!Array.isArray(req.messages) || req.messages.length === 0) throw new GemmaError('invalid-argument', 'messages must be a non-empty array.');
  const messages: ToolChatMessage[] = req.messages.map((m): ToolChatMessage => {
    switch (m.role) {
      case 'system':
      case 'developer':
        return { role: 'system', content: textOf(m.content) };
      case 'user':
        return { role: 'user', content: textOf(m.content) };
      case 'assistant':
        return {
          role: 'assistant',
          content: textOf(m.content),
          toolCalls: m.tool_calls?.map((c) => ({ id: c.id, name: c.function.name, arguments: JSON.parse(c.function.arguments || '{}') as Record<string, unknown> })),
        };
      case 'tool':
        return { role: 'tool', content: textOf(m.content), toolCallId: m.tool_call_id, name: m.name };
      default:
        throw new GemmaError('invalid-argument', `Unknown message role ${JSON.stringify((m as { role: unknown }).role)}.`);
    }
  });
  const tc = req.tool_choice;
  const rf = req.response_format;
  const options: NativeOptions = {
    tools: req.tools,
    toolChoice: tc === undefined ? undefined : typeof tc === 'string' ? tc : { name: tc.function.name },
    responseFormat: rf === undefined ? undefined : rf.type === 'json_schema' ? { type: 'json_schema', schema: rf.json_schema.schema } : rf,
    maxNewTokens: req.max_completion_tokens ?? req.max_tokens,
    temperature: req.temperature,
    topP: req.top_p,
    seed: req.seed,
    stop: req.stop === undefined ? undefined : Array.isArray(req.stop) ? req.stop : [req.stop],
    signal,
  };
  for (const k of Object.keys(options) as (keyof NativeOptions)[]) if (options[k] === undefined) delete options[k];
  return { messages, options };
}

export interface ChatCompletionChunk {
  id: string;
  object: 'chat.completion.chunk';
  created: number;
  model: string;
  choices: { index: 0; delta: { role?: 'assistant'; content?: string; tool_calls?: { index: number; id: string; type: 'function'; function: { name: string; arguments: string } }[] }; finish_reason: string | null }[];
  usage?: { prompt_tokens: number; completion_tokens: number; total_tokens: number } | null;
}

export interface ChatCompletion {
  id: string;
  object: 'chat.completion';
  created: number;
  model: string;
  choices: { index: 0; message: { role: 'assistant'; content: string | null; tool_calls?: NonNullable<ChatCompletionChunk['choices'][0]['delta']['tool_calls']> }; finish_reason: string }[];
  usage: { prompt_tokens: number; completion_tokens: number; total_tokens: number };
}

function finishReason(stats: NativeStats, sawCalls: boolean): string {
  if (sawCalls) return 'tool_calls';
  return stats.finishReason === 'abort' ? 'stop' : stats.finishReason;
}

function usage(s: NativeStats) {
  return { prompt_tokens: s.promptTokens, completion_tokens: s.newTokens, total_tokens: s.promptTokens + s.newTokens };
}

/** Native stream -> OpenAI chunks: a role chunk, content / tool_call chunks (indices in call order), a finish chunk, then usage when asked. */
export async function* toChunks(native: AsyncIterable<NativeDelta> & { stats: Promise<NativeStats> }, meta: { id: string; model: string; created: number; includeUsage?: boolean }): AsyncGenerator<ChatCompletionChunk> {
  const base = { id: meta.id, object: 'chat.completion.chunk' as const, created: meta.created, model: meta.model };
  yield { ...base, choices: [{ index: 0, delta: { role: 'assistant', content: '' }, finish_reason: null }] };
  let calls = 0;
  for await (const d of native) {
    if (d.text) yield { ...base, choices: [{ index: 0, delta: { content: d.text }, finish_reason: null }] };
    for (const c of d.toolCalls ?? []) {
      yield { ...base, choices: [{ index: 0, delta: { tool_calls: [{ index: calls++, id: c.id, type: 'function', function: { name: c.name, arguments: JSON.stringify(c.arguments) } }] }, finish_reason: null }] };
    }
  }
  const stats = await native.stats;
  yield { ...base, choices: [{ index: 0, delta: {}, finish_reason: finishReason(stats, calls > 0) }], ...(meta.includeUsage ? { usage: null } : {}) };
  if (meta.includeUsage) yield { ...base, choices: [], usage: usage(stats) } as unknown as ChatCompletionChunk;
}

/** Native stream -> one OpenAI response. */
export async function toCompletion(native: AsyncIterable<NativeDelta> & { stats: Promise<NativeStats> }, meta: { id: string; model: string; created: number }): Promise<ChatCompletion> {
  let text = '';
  const toolCalls: NonNullable<ChatCompletion['choices'][0]['message']['tool_calls']> = [];
  for await (const d of native) {
    text += d.text;
    for (const c of d.toolCalls ?? []) toolCalls.push({ index: toolCalls.length, id: c.id, type: 'function', function: { name: c.name, arguments: JSON.stringify(c.arguments) } });
  }
  const stats = await native.stats;
  const message = { role: 'assistant' as const, content: toolCalls.length && !text ? null : text, ...(toolCalls.length ? { tool_calls: toolCalls } : {}) };
  return { id: meta.id, object: 'chat.completion', created: meta.created, model: meta.model, choices: [{ index: 0, message, finish_reason: finishReason(stats, toolCalls.length > 0) }], usage: usage(stats) };
}

/** `chat.completions.create(req, { signal })` over a native chat function. */
export function createChatCompletion(chat: NativeChat, req: OpenAIRequest, opts: { signal?: AbortSignal; model?: string } = {}): Promise<ChatCompletion> | AsyncGenerator<ChatCompletionChunk> {
  const { messages, options } = toNative(req, opts.signal);
  const meta = { id: `chatcmpl-${Math.random().toString(36).slice(2, 12)}`, model: req.model ?? opts.model ?? 'gemma-3n', created: Math.floor(Date.now() / 1000) };
  const native = chat(messages, options);
  return req.stream ? toChunks(native, { ...meta, includeUsage: req.stream_options?.include_usage }) : toCompletion(native, meta);
}
