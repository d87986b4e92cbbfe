/**
 * Gemma 4's native function calling (docs/gemma4-tool-calls.md: Google's "Gemma 4 prompt formatting"): the model
 * was trained on control tokens for it, so tools are declared and calls parsed with them instead of prompting.
 *
 *   system turn:   <|tool>declaration:NAME{description:<|"|>…<|"|>,parameters:{…the JSON schema…}}<tool|>
 *   model turn:    <|tool_call>call:NAME{key:value,…}<tool_call|>
 *   results:       <|tool_response>response:NAME{key:value,…}<tool_response|>
 *
 * values in the native syntax (native-syntax.ts). The marker strings are the family's (`toolTokens`, handed over by
 * the loaded model: runtime never imports a family); the format binds to a tokenizer whose vocabulary holds each of
 * them as one added token. Choices where the documents show no rule (the simplest consistent ones): declarations
 * follow the system instruction directly, one block per tool, `description` and `parameters` left out when the
 * tool has none; an assistant turn is its text then its calls; tool results follow the calls in the same model
 * turn (llama.cpp ends generation on `<|tool_response>`: the model writes it after its calls), one block each,
 * named after the call they answer; a result that is not a JSON object is given as `{value:…}`.
 *
 * Calls are read from the token stream: a marker is recognized by its id, never by its characters; text outside
 * calls passes through; each call is yielded when its `<tool_call|>` arrives; a call that does not parse or names
 * no declared tool is given back as text; a call cut off is dropped (complete: false). Under 'required' / a named
 * tool the reply is exactly one call; under 'auto' it is free until the model emits `<|tool_call>`, then the rest
 * of the call is constrained (and the reply ends after it). The grammar spells the markers as code points only
 * their own ids can write (vocabulary.ts ControlSpelling), so `<|"|>` and `<|tool_call>` are the single control
 * tokens the model was trained to emit.
 */
import { GemmaError } from '../../errors.ts';
import type { ToolTokens } from '../../model/tool-tokens.ts';
import type { ToolCall, ToolChoice, ToolDeclaration } from '../protocol.ts';
import type { TokenizerVocabulary } from '../tokenizer.ts';
import type { TokenConstraint } from '../token-constraint.ts';
import { EbnfBuilder, alt, lit, seq } from '../constrained/ebnf.ts';
import type { ConstraintCompiler, GrammarConstraint, GrammarSpec } from '../constrained/grammar-constraint.ts';
import { SchemaGrammar, flatten, readSchema } from '../constrained/json-schema.ts';
import type { ParsedDelta } from './call-parser.ts';
import { newCallId } from './call-parser.ts';
import type { CallReader, NativeToolFormat, ToolFormat } from './tool-format.ts';
import { type RenderedMessage, type ToolChatMessage, joinContent, validateToolMessages, validateTools } from './tools.ts';
import { CODE_POINT_MARKERS, MARKER_CODE_POINTS, isMarkerCodePoint, type Markers, NATIVE_GRAMMAR_SYNTAX, checkNativeSchema, markerList, nativeValue, parseNativeValue } from './native-syntax.ts';

/** Gemma 4's native tool calls, for a tokenizer that has the family's markers as added tokens. */
export const GEMMA_NATIVE_TOOLS: NativeToolFormat = {
  name: 'gemma-native',
  bind(vocabulary: TokenizerVocabulary, tokens: ToolTokens<string>): ToolFormat | undefined {
    const byContent = new Map(vocabulary.addedTokens.map((t) => [t.content, t.id]));
    const ids = markerList(tokens).map((m) => byContent.get(m));
    if (ids.some((id) => id === undefined)) return undefined;
    return new GemmaNativeFormat(tokens, ids as number[]);
  },
};

export class GemmaNativeFormat implements ToolFormat {
  readonly name = 'gemma-native';
  readonly grammarTokens: ReadonlyMap<number, string>;
  /** Marker id -> its code point (the reader's spelling). */
  private readonly codePointOf = new Map<number, string>();
  private readonly callOpenId: number;

  constructor(
    private readonly tokens: Markers,
    ids: readonly number[],
  ) {
    const points = markerList(CODE_POINT_MARKERS);
    ids.forEach((id, k) => this.codePointOf.set(id, points[k]));
    this.grammarTokens = this.codePointOf;
    this.callOpenId = ids[2];
  }

  render(messages: readonly ToolChatMessage[], tools: readonly ToolDeclaration[], choice: ToolChoice = 'auto'): RenderedMessage[] {
    validateTools(tools, choice);
    validateToolMessages(messages);
    const t = this.tokens;
    const q = t.stringDelimiter;
    const out: RenderedMessage[] = [];
    const names = new Map<string, string>();
    let lastCalls: ToolCall[] = [];
    let answered = 0;
    for (const [i, m] of messages.entries()) {
      switch (m.role) {
        case 'system':
        case 'user':
          out.push({ role: m.role, content: m.content } as RenderedMessage);
          break;
        case 'assistant': {
          lastCalls = m.toolCalls ?? [];
          answered = 0;
          for (const c of lastCalls) if (typeof c.id === 'string') names.set(c.id, c.name);
          const calls = lastCalls.map((c) => `${t.call.open}call:${c.name}${nativeValue(c.arguments, q)}${t.call.close}`).join('');
          out.push({ role: 'assistant', content: calls === '' ? m.content : joinContent(m.content, calls, '') } as RenderedMessage);
          break;
        }
        case 'tool': {
          const name = m.name ?? (m.toolCallId !== undefined ? names.get(m.toolCallId) : undefined) ?? lastCalls[answered]?.name;
          if (typeof name !== 'string') {
            throw new GemmaError('invalid-argument', `Message ${i + 1} (role 'tool') answers no call: give it the function's \`name\`, or a \`toolCallId\` of a call in an earlier assistant message.`);
          }
          answered++;
          const block = `${t.response.open}response:${name}${responseBody(m.content as string, q)}${t.response.close}`;
          const last = out[out.length - 1];
          if (last?.role === 'assistant') last.content = joinContent(last.content, block, '');
          else out.push({ role: 'assistant', content: block });
          break;
        }
      }
    }
    if (tools.length > 0 && choice !== 'none') {
      const block = tools.map((tool) => `${t.declaration.open}declaration:${tool.function.name}${nativeValue({ description: tool.function.description, parameters: tool.function.parameters }, q)}${t.declaration.close}`).join('');
      if (out[0]?.role === 'system') out[0] = { role: 'system', content: joinContent(out[0].content, block, '') } as RenderedMessage;
      else out.unshift({ role: 'system', content: block });
    }
    return out;
  }

  requiredCall(tools: readonly ToolDeclaration[], choice: ToolChoice): GrammarSpec {
    validateTools(tools, choice);
    const chosen = typeof choice === 'object' ? tools.filter((t) => t.function.name === choice.name) : tools;
    const g = new EbnfBuilder();
    const sg = new SchemaGrammar(g, NATIVE_GRAMMAR_SYNTAX);
    const m = CODE_POINT_MARKERS;
    const calls = chosen.map((t) => {
      const path = `#/tools/${t.function.name}/parameters`;
      const node = readSchema(t.function.parameters ?? { type: 'object' }, path);
      if (flatten(node).some((n) => n.kind !== 'object')) {
        throw new GemmaError('invalid-argument', `Unsupported JSON schema: the parameters of a tool must be an object schema ({ type: 'object', properties: … }) at ${path}.`);
      }
      checkNativeSchema(node, path);
      return seq(lit(m.call.open), lit(`call:${t.function.name}`), sg.value(node), lit(m.call.close));
    });
    return { ebnf: g.text(alt(...calls)) };
  }

  async autoCall(compiler: ConstraintCompiler, tools: readonly ToolDeclaration[]): Promise<TokenConstraint> {
    return new NativeAutoCall(await compiler.constraint(this.requiredCall(tools, 'auto')), this.callOpenId);
  }

  reader(tools: readonly ToolDeclaration[], choice: ToolChoice): CallReader {
    return new NativeCallReader(this.codePointOf, this.tokens, new Set(tools.map((t) => t.function.name)), choice === 'none' || tools.length === 0);
  }
}

/** A tool's result as a native object: a JSON object as itself, anything else as `{value:…}`. */
function responseBody(content: string, quote: string): string {
  let v: unknown;
  try {
    v = JSON.parse(content);
  } catch {
    return nativeValue({ value: content }, quote);
  }
  return nativeValue(typeof v === 'object' && v !== null && !Array.isArray(v) ? v : { value: v }, quote);
}

/** 'auto': unconstrained until the model emits `<|tool_call>`; from there the call grammar, then the end. */
class NativeAutoCall implements TokenConstraint {
  private started = false;

  constructor(
    private readonly inner: GrammarConstraint,
    private readonly callOpenId: number,
  ) {}

  nextMask(): Uint32Array | null {
    return this.started ? this.inner.nextMask() : null;
  }

  async prepare(): Promise<void> {
    if (this.started) await this.inner.prepare();
  }

  accept(id: number): void {
    if (this.started) return this.inner.accept(id);
    if (id !== this.callOpenId) return;
    this.inner.accept(id);
    this.started = true;
  }

  isComplete(): boolean {
    return this.started && this.inner.isComplete();
  }

  dispose(): void {
    this.inner.dispose();
  }
}

/** Reads native calls out of the streamed reply, by token id (see the header). */
class NativeCallReader implements CallReader {
  private inCall = false;
  private buffer = '';
  private readonly cp = CODE_POINT_MARKERS;

  constructor(
    private readonly codePointOf: ReadonlyMap<number, string>,
    private readonly tokens: Markers,
    private readonly names: ReadonlySet<string>,
    private readonly off: boolean,
  ) {}

  push(text: string, tokenIds: readonly number[] = []): ParsedDelta {
    // The marker code points are ours: in the model's text they are plain characters, never markers.
    let s = text.replace(MARKER_CODE_POINTS, '\uFFFD');
    const marker = tokenIds.length === 1 ? this.codePointOf.get(tokenIds[0]) : undefined;
    if (marker) {
      // A tokenizer that does not mark the token special spells it in the text: the id says what it is.
      const spelled = this.spell(marker);
      if (s.endsWith(spelled)) s = s.slice(0, -spelled.length);
      s += marker;
    }
    let out = '';
    const toolCalls: ToolCall[] = [];
    for (const ch of s) {
      if (this.inCall) {
        if (ch !== this.cp.call.close) {
          this.buffer += ch;
          continue;
        }
        this.inCall = false;
        const call = this.toCall(this.buffer);
        if (call) toolCalls.push(call);
        else out += this.spell(this.cp.call.open + this.buffer + this.cp.call.close);
      } else if (ch === this.cp.call.open && !this.off) {
        this.inCall = true;
        this.buffer = '';
      } else if (!isMarkerCodePoint(ch)) out += ch;
    }
    return { text: out, toolCalls };
  }

  finish(): { text: string; complete: boolean } {
    const complete = !this.inCall;
    this.inCall = false;
    this.buffer = '';
    return { text: '', complete };
  }

  private toCall(body: string): ToolCall | undefined {
    const m = /^call:([^{]+)(\{[\s\S]*\})$/.exec(body.trim());
    if (!m || !this.names.has(m[1].trim())) return undefined;
    let args: unknown;
    try {
      args = parseNativeValue(m[2], this.cp.stringDelimiter);
    } catch {
      return undefined;
    }
    return { id: newCallId(), name: m[1].trim(), arguments: args as Record<string, unknown> };
  }

  /** Text with the marker code points written as the marker strings. */
  private spell(s: string): string {
    const points = markerList(this.cp);
    const strings = markerList(this.tokens);
    return s.replace(MARKER_CODE_POINTS, (c) => strings[points.indexOf(c)]);
  }
}
