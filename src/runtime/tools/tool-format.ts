/**
 * How a model family writes function calls: how tools and tool turns go into the prompt, the grammar of a call,
 * and how calls are read back from the reply. Gemma 3n has no tool tokens, so its format is the JSON one of
 * Google's function-calling guide (tools.ts). A family with native tool-call tokens declares their strings
 * (ModelFamily.toolTokens, handed over by the loaded model); a format of NATIVE_TOOL_FORMATS binds to the loaded
 * tokenizer when its vocabulary holds them (Gemma 4: native-format.ts). Every other model gets the JSON format.
 */
import type { ToolTokens } from '../../model/tool-tokens.ts';
import type { ToolChoice, ToolDeclaration } from '../protocol.ts';
import type { TokenizerVocabulary } from '../tokenizer.ts';
import type { TokenConstraint } from '../token-constraint.ts';
import type { ConstraintCompiler, GrammarSpec } from '../constrained/grammar-constraint.ts';
import { AutoCallConstraint } from './auto-call-constraint.ts';
import { ToolCallParser, type ParsedDelta } from './call-parser.ts';
import { GEMMA_NATIVE_TOOLS } from './native-format.ts';
import { type RenderedMessage, type ToolChatMessage, renderToolConversation, requiredCallSpec } from './tools.ts';

/** Reads calls out of the streamed reply (see call-parser.ts for the JSON format's). */
export interface CallReader {
  /** One delta of the reply: its text and the ids it came from (native formats recognize their markers by id). */
  push(text: string, tokenIds?: readonly number[]): ParsedDelta;
  /** `text`: held-back text that turned out to be plain; `complete`: false when a call was cut off (dropped). */
  finish(): { text: string; complete: boolean };
}

export interface ToolFormat {
  readonly name: string;
  /**
   * Control tokens the call grammar writes, by id, with the spelling the grammar vocabulary gives them
   * (constrained/vocabulary.ts ControlSpelling); absent when calls are plain text (the JSON format).
   */
  readonly grammarTokens?: ReadonlyMap<number, string>;
  /** Tool declarations, calls and results as plain turns for the chat template. */
  render(messages: readonly ToolChatMessage[], tools: readonly ToolDeclaration[], choice: ToolChoice): RenderedMessage[];
  /** The grammar of exactly one call ('required' or a named tool); computed before any token (throws on bad schemas). */
  requiredCall(tools: readonly ToolDeclaration[], choice: ToolChoice): GrammarSpec;
  /** 'auto': free text until the reply starts a call, then the rest of the call constrained. */
  autoCall(compiler: ConstraintCompiler, tools: readonly ToolDeclaration[]): Promise<TokenConstraint>;
  reader(tools: readonly ToolDeclaration[], choice: ToolChoice): CallReader;
}

/** Gemma 3n: the JSON calls of Google's function-calling guide, declared in the system turn (tools.ts). */
export const JSON_TOOL_FORMAT: ToolFormat = {
  name: 'gemma-json',
  render: renderToolConversation,
  requiredCall: requiredCallSpec,
  autoCall: (compiler, tools) => AutoCallConstraint.create(compiler, tools),
  reader: (tools, choice) => new ToolCallParser(tools, choice),
};

/** A family's native format, bound to a loaded model's tokenizer when its vocabulary holds the family's markers. */
export interface NativeToolFormat {
  readonly name: string;
  bind(vocabulary: TokenizerVocabulary, tokens: ToolTokens<string>): ToolFormat | undefined;
}

/** Formats of families with native tool tokens, tried in order before the JSON format. */
export const NATIVE_TOOL_FORMATS: NativeToolFormat[] = [GEMMA_NATIVE_TOOLS];

/**
 * The tool format of a loaded model: native when its family has tool tokens (`toolTokens`) and its tokenizer holds
 * them, else the JSON format.
 */
export function toolFormatFor(vocabulary: TokenizerVocabulary | undefined, toolTokens?: ToolTokens<string>): ToolFormat {
  if (!vocabulary || !toolTokens) return JSON_TOOL_FORMAT;
  for (const f of NATIVE_TOOL_FORMATS) {
    const bound = f.bind(vocabulary, toolTokens);
    if (bound) return bound;
  }
  return JSON_TOOL_FORMAT;
}
