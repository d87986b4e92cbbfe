/**
 * chat() with tools or a response format, before the engine runs it: the conversation rendered into plain turns
 * (tool declarations, calls and results the model family's way, tools/tool-format.ts), the constraint (compiled
 * while the prompt prefills: the engine awaits it after prefill), and the output filter that turns a call's text
 * into `toolCalls` and ends a reply of calls with finishReason 'tool_calls'.
 *
 * Everything that can be refused is checked here, synchronously, before any token: the options' shapes, tool
 * names, and every JSON schema (an unsupported keyword throws a GemmaError naming it and where it is). Grammars
 * only fail to compile asynchronously, within one prefill chunk. The engine loads this module on first use, so an
 * app that never constrains does not load it.
 */
import { GemmaError } from '../../errors.ts';
import type { GenerationExtras, OutputFilter } from '../engine.ts';
import type { ChatExtensions, Delta, GenerationStats, ResponseFormat, ToolChoice, ToolDeclaration } from '../protocol.ts';
import type { TextTokenizer } from '../tokenizer.ts';
import type { ToolTokens } from '../../model/tool-tokens.ts';
import type { TokenConstraint } from '../token-constraint.ts';
import { type GrammarSpec, responseFormatSpec, schemaSpec } from '../constrained/grammar-constraint.ts';
import { type CallReader, JSON_TOOL_FORMAT, toolFormatFor } from '../tools/tool-format.ts';
import { type RenderedMessage, type ToolChatMessage, callSchema } from '../tools/tools.ts';
import { compilerFor } from './compiler-cache.ts';

export interface StructuredPlan {
  /** Plain system/user/assistant turns for the chat template (media parts where they were). */
  messages: RenderedMessage[];
  extras: GenerationExtras;
}

/** What the plan needs to know of the loaded model: its logits' size, the ids that end a reply, its family's tool tokens. */
export interface ModelVocabulary {
  vocabSize: number;
  stopTokenIds: readonly number[];
  /** The family's native tool-call markers (Gemma 4), absent when it has none. */
  toolTokens?: ToolTokens<string>;
}

export function planStructuredChat(tokenizer: TextTokenizer, messages: readonly ToolChatMessage[], ext: ChatExtensions, model: ModelVocabulary): StructuredPlan {
  if (!Array.isArray(messages) || messages.length === 0) throw new GemmaError('invalid-argument', 'chat() needs at least one message.');
  const tools = readTools(ext.tools);
  const choice = readChoice(ext.toolChoice);
  const format = readFormat(ext.responseFormat);
  const toolFormat = toolFormatFor(tokenizer.vocabulary?.(), model.toolTokens);
  const calling = tools.length > 0 && choice !== 'none';
  const rendered = toolFormat.render(messages, tools, choice);

  // The grammar (schemas are read now: an unsupported one is refused before any token).
  let spec: GrammarSpec | null = null;
  let auto = false;
  if (calling && choice !== 'auto') spec = toolFormat.requiredCall(tools, choice);
  else if (calling) {
    const formatSpec = format ? responseFormatSpec(format) : null;
    if (!formatSpec) {
      toolFormat.requiredCall(tools, 'required'); // reads every tool's schema now: a bad one fails before any token
      auto = true;
    }
    else if (formatSpec.schema && toolFormat === JSON_TOOL_FORMAT) {
      // Either a call or a reply in the response format: both are JSON, one grammar.
      try {
        spec = schemaSpec({ kind: 'anyOf', options: [callSchema(tools, 'auto'), formatSpec.schema] });
      } catch (err) {
        if (!(err instanceof GemmaError)) throw err;
        throw new GemmaError(
          'invalid-argument',
          `toolChoice 'auto' with this responseFormat: the reply may be a call or JSON of the format, and ${err.message.replace(/^Unsupported JSON schema: /, 'that union is unsupported: ')} ` +
            "Drop minLength/maxLength from the format's or the tools' schemas, or use toolChoice 'required' or 'none'.",
          { cause: err },
        );
      }
    } else if (toolFormat !== JSON_TOOL_FORMAT) {
      throw new GemmaError('invalid-argument', `toolChoice 'auto' with a responseFormat is not supported with this model's native tool calls: use toolChoice 'required' or 'none', or no responseFormat.`);
    } else {
      throw new GemmaError('invalid-argument', `toolChoice 'auto' with responseFormat '${format!.type}' is not supported: use a JSON responseFormat, toolChoice 'required' or 'none', or no responseFormat.`);
    }
  } else if (format) spec = responseFormatSpec(format);

  let constraint: Promise<TokenConstraint> | undefined;
  if (spec || auto) {
    // A call grammar may write the format's control tokens; a response format alone never does.
    const compiler = compilerFor(tokenizer, model.vocabSize, model.stopTokenIds, calling ? toolFormat.grammarTokens : undefined);
    const grammar = spec;
    constraint = grammar ? compiler.then((c) => c.constraint(grammar)) : compiler.then((c) => toolFormat.autoCall(c, tools));
  }
  return {
    messages: rendered,
    extras: { constraint, output: calling ? new ToolCallOutput(toolFormat.reader(tools, choice)) : undefined },
  };
}

/** Turns the text of calls into `toolCalls` as each closes; a reply of calls ends with finishReason 'tool_calls'. */
class ToolCallOutput implements OutputFilter {
  private calls = 0;
  constructor(private readonly reader: CallReader) {}

  delta(d: Delta): Delta {
    const r = this.reader.push(d.text, d.tokenIds);
    this.calls += r.toolCalls.length;
    return r.toolCalls.length > 0 ? { ...d, text: r.text, toolCalls: r.toolCalls } : { ...d, text: r.text };
  }

  end(stats: GenerationStats): Delta | undefined {
    const rest = this.reader.finish();
    if (!rest.complete) stats.complete = false;
    if (this.calls > 0 && stats.finishReason === 'stop') stats.finishReason = 'tool_calls';
    return rest.text ? { text: rest.text, tokenIds: [] } : undefined;
  }
}

function readTools(tools: unknown): ToolDeclaration[] {
  if (tools === undefined) return [];
  if (!Array.isArray(tools)) throw new GemmaError('invalid-argument', 'tools must be an array of { type: \'function\', function: { name, description?, parameters? } }.');
  return tools as ToolDeclaration[];
}

function readChoice(choice: unknown): ToolChoice {
  if (choice === undefined) return 'auto';
  if (choice === 'auto' || choice === 'none' || choice === 'required') return choice;
  if (typeof choice === 'object' && choice !== null && typeof (choice as { name?: unknown }).name === 'string') return { name: (choice as { name: string }).name };
  throw new GemmaError('invalid-argument', `toolChoice must be 'auto', 'none', 'required' or { name } (got ${JSON.stringify(choice)}).`);
}

function readFormat(format: unknown): ResponseFormat | null {
  if (format === undefined || (format as { type?: unknown })?.type === 'text') return null;
  if (typeof format !== 'object' || format === null) throw new GemmaError('invalid-argument', `responseFormat must be { type: 'json_object' | 'json_schema' | 'grammar' | 'text', ... } (got ${JSON.stringify(format)}).`);
  return format as ResponseFormat;
}
