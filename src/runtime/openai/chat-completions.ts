/**
 * The OpenAI chat-completions shape over the native API: request -> native messages and options, native stream ->
 * chunks / a response, as pure functions, and `ChatCompletions` (`client.chat.completions`), whose `create()` is
 * what code written for OpenAI's SDK calls. Native interface: chat(messages, opts) -> AsyncIterable<{ text,
 * toolCalls? }> & { stats: Promise<...>, abort() } (GemmaClient.chat, Engine.chat).
 */
import { GemmaError } from '../../errors.ts';
import type { ResponseFormat } from '../constrained/grammar-constraint.ts';
import type { ChatMessage, ToolCall, ToolChoice, ToolDeclaration } from '../protocol.ts';
import type { ContentPart } from '../content.ts';

export interface OpenAIMessage {
  role: 'system' | 'developer' | 'user' | 'assistant' | 'tool';
  /** Text, or parts: `text`, and in user turns `input_audio` ({ data: base64, format }) and `image_url` as OpenAI has them. */
  content: string | null | OpenAIContentPart[];
  tool_calls?: { id: string; type: 'function'; function: { name: string; arguments: string } }[];
  tool_call_id?: string;
  name?: string;
}

export type OpenAIContentPart =
  | { type: 'text'; text: string }
  | { type: 'input_audio'; input_audio: { data: string; format: string } }
  | { type: 'image_url'; image_url: { url: string } }
  | { type: string; [key: string]: unknown };

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

export type NativeStream = AsyncIterable<NativeDelta> & { stats: Promise<NativeStats>; abort?(): void };
export type NativeChat = (messages: ChatMessage[], opts: NativeOptions) => NativeStream;

function textOf(content: OpenAIMessage['content'], role: string): string {
  if (content === null || content === undefined) return '';
  if (typeof content === 'string') return content;
  return content.map((p) => {
    if (p.type !== 'text') throw new GemmaError('invalid-argument', `Content part type "${p.type}" is not supported in ${role} messages (text only; audio goes in user messages).`);
    return (p as { text?: string }).text ?? '';
  }).join('');
}

/** A user turn's content: text as a string; with media, OpenAI's parts as the native ones of the same shape. */
function userContent(content: OpenAIMessage['content']): ChatMessage['content'] {
  if (!Array.isArray(content) || content.every((p) => p?.type === 'text')) return textOf(content, 'user');
  return content.map((p): ContentPart => {
    if (p.type === 'text') return { type: 'text', text: (p as { text: string }).text };
    if (p.type === 'input_audio') return { type: 'input_audio', input_audio: (p as { input_audio: { data: string; format: string } }).input_audio };
    if (p.type === 'image_url') return { type: 'image_url', image_url: (p as { image_url: { url: string } }).image_url };
    throw new GemmaError('invalid-argument', `Content part type "${p.type}" is not supported (text, input_audio, image_url).`);
  });
}

function parseArguments(json: string, name: string): Record<string, unknown> {
  let v: unknown;
  try {
    v = JSON.parse(json || '{}');
  } catch (err) {
    throw new GemmaError('invalid-argument', `The arguments of the ${name} call in messages are not JSON: ${(err as Error).message}`);
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new GemmaError('invalid-argument', `The arguments of the ${name} call in messages must be a JSON object.`);
  return v as Record<string, unknown>;
}

/** OpenAI request -> native messages and options. */
export function toNative(req: OpenAIRequest, signal?: AbortSignal): { messages: ChatMessage[]; options: NativeOptions } {
  if (!Array.isArray(req.messages) || req.messages.length === 0) throw new GemmaError('invalid-argument', 'messages must be a non-empty array.');
  const messages: ChatMessage[] = req.messages.map((m): ChatMessage => {
    switch (m.role) {
      case 'system':
      case 'developer':
        return { role: 'system', content: textOf(m.content, m.role) };
      case 'user':
        return { role: 'user', content: userContent(m.content) };
      case 'assistant':
        return {
          role: 'assistant',
          content: textOf(m.content, m.role),
          toolCalls: m.tool_calls?.map((c) => ({ id: c.id, name: c.function.name, arguments: parseArguments(c.function.arguments, c.function.name) })),
        };
      case 'tool':
        return { role: 'tool', content: textOf(m.content, m.role), toolCallId: m.tool_call_id, name: m.name };
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

/** A streamed completion, as OpenAI's SDK returns it: async-iterable chunks, and `controller.abort()` to stop. */
export interface ChatCompletionStream extends AsyncIterable<ChatCompletionChunk> {
  controller: AbortController;
}

export type ChatCompletionRequest = OpenAIRequest;
type Streaming = OpenAIRequest & { stream: true };
type NonStreaming = OpenAIRequest & { stream?: false | null };

/**
 * `client.chat.completions`: `create(request, { signal })` resolves to a ChatCompletion, or with `stream: true` to
 * a ChatCompletionStream once the first token is out. A request the model cannot serve (an unsupported schema, a
 * bad tool, a message it cannot take) rejects the promise, before any token.
 */
export class ChatCompletions {
  constructor(
    private readonly chat: NativeChat,
    private readonly model = 'gemma-3n',
  ) {}

  create(request: Streaming, options?: { signal?: AbortSignal }): Promise<ChatCompletionStream>;
  create(request: NonStreaming, options?: { signal?: AbortSignal }): Promise<ChatCompletion>;
  create(request: OpenAIRequest, options?: { signal?: AbortSignal }): Promise<ChatCompletion | ChatCompletionStream>;
  async create(request: OpenAIRequest, options: { signal?: AbortSignal } = {}): Promise<ChatCompletion | ChatCompletionStream> {
    const controller = new AbortController();
    const signal = options.signal ? anySignal(options.signal, controller.signal) : controller.signal;
    const { messages, options: nativeOptions } = toNative(request, signal);
    const native = this.chat(messages, nativeOptions);
    const meta = { id: `chatcmpl-${Math.random().toString(36).slice(2, 12)}`, model: request.model ?? this.model, created: Math.floor(Date.now() / 1000) };
    if (!request.stream) return toCompletion(native, meta);
    // Wait for the first delta (or the end): an error before any token rejects create() itself, as an HTTP error does.
    const iterator = native[Symbol.asyncIterator]();
    const first = await iterator.next();
    const replayed: NativeStream = Object.assign(
      (async function* () {
        if (first.done) return;
        yield first.value;
        for (let r = await iterator.next(); !r.done; r = await iterator.next()) yield r.value;
      })(),
      { stats: native.stats },
    );
    const chunks = toChunks(replayed, { ...meta, includeUsage: request.stream_options?.include_usage });
    return { [Symbol.asyncIterator]: () => chunks, controller };
  }
}

/** Aborted when either is. */
function anySignal(a: AbortSignal, b: AbortSignal): AbortSignal {
  const c = new AbortController();
  const abort = () => c.abort();
  if (a.aborted || b.aborted) abort();
  a.addEventListener('abort', abort, { once: true });
  b.addEventListener('abort', abort, { once: true });
  return c.signal;
}
