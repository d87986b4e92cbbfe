/**
 * How a model family writes function calls: how tools and tool turns go into the prompt, the grammar of a call,
 * and how calls are read back from the reply. Gemma 3n has no tool tokens, so its format is the JSON one of
 * Google's function-calling guide (tools.ts). A family whose tokenizer has native tool-call tokens (Gemma 4 has
 * them) adds its format to NATIVE_TOOL_FORMATS: `detect` says, from the tokenizer's vocabulary, whether the
 * loaded model is one of its own; every other model gets the JSON format.
 */
import type { ToolChoice, ToolDeclaration } from '../protocol.ts';
import type { TokenizerVocabulary } from '../tokenizer.ts';
import type { TokenConstraint } from '../token-constraint.ts';
import type { ConstraintCompiler, GrammarSpec } from '../constrained/grammar-constraint.ts';
import { AutoCallConstraint } from './auto-call-constraint.ts';
import { ToolCallParser, type ParsedDelta } from './call-parser.ts';
import { type RenderedMessage, type ToolChatMessage, renderToolConversation, requiredCallSpec } from './tools.ts';

/** Reads calls out of the streamed reply (see call-parser.ts for the JSON format's). */
export interface CallReader {
  push(text: string): ParsedDelta;
  /** `text`: held-back text that turned out to be plain; `complete`: false when a call was cut off (dropped). */
  finish(): { text: string; complete: boolean };
}

export interface ToolFormat {
  readonly name: string;
  /** Whether this format's tool tokens are in the vocabulary (the loaded model was trained on it). */
  detect(vocabulary: TokenizerVocabulary): boolean;
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
  detect: () => true,
  render: renderToolConversation,
  requiredCall: requiredCallSpec,
  autoCall: (compiler, tools) => AutoCallConstraint.create(compiler, tools),
  reader: (tools, choice) => new ToolCallParser(tools, choice),
};

/** Formats of families with native tool tokens, tried in order before the JSON format. */
export const NATIVE_TOOL_FORMATS: ToolFormat[] = [];

/** The tool format of a loaded model, from its tokenizer's vocabulary (the JSON format when it cannot say). */
export function toolFormatFor(vocabulary: TokenizerVocabulary | undefined): ToolFormat {
  return (vocabulary && NATIVE_TOOL_FORMATS.find((f) => f.detect(vocabulary))) || JSON_TOOL_FORMAT;
}
