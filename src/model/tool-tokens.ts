/**
 * A family's native tool-calling markers (family-neutral types): the control tokens its chat format brackets tool
 * declarations, the model's tool calls and the tool responses with, as the token STRINGS of the checkpoint's own
 * tokenizer, and their ids resolved through that tokenizer. The function-calling work uses them to declare tools,
 * to parse calls and to stop on a call (`call.open`/`call.close` are ids the sampler emits); no tool logic here.
 */
import { GemmaError } from '../errors.ts';

/** An opening and a closing control token. */
export interface TokenPair<T> {
  open: T;
  close: T;
}

export interface ToolTokens<T = string> {
  /** Brackets a tool declaration (in the system turn). */
  declaration: TokenPair<T>;
  /** Brackets a tool call the model emits. */
  call: TokenPair<T>;
  /** Brackets a tool's result given back to the model. */
  response: TokenPair<T>;
  /** Delimits string values inside the structured blocks. */
  stringDelimiter: T;
}

/**
 * The ids of `tokens` in a tokenizer: `encode(text)` must give the marker as ONE id (a leading BOS, which Gemma
 * tokenizers add, is dropped). A tokenizer that splits a marker (not this family's tokenizer, or an old one) is a
 * GemmaError naming the marker.
 */
export function resolveToolTokens(tokens: ToolTokens<string>, encode: (text: string) => readonly number[], bosTokenId?: number): ToolTokens<number> {
  const id = (text: string): number => {
    let ids = [...encode(text)];
    if (bosTokenId !== undefined && ids[0] === bosTokenId && ids.length > 1) ids = ids.slice(1);
    if (ids.length !== 1) {
      throw new GemmaError('unsupported-config', `The tokenizer encodes the tool-calling marker ${JSON.stringify(text)} as ${ids.length} tokens (${ids.join(', ')}), not as one control token: it is not this model family's tokenizer.`);
    }
    return ids[0];
  };
  const pair = (p: TokenPair<string>): TokenPair<number> => ({ open: id(p.open), close: id(p.close) });
  return { declaration: pair(tokens.declaration), call: pair(tokens.call), response: pair(tokens.response), stringDelimiter: id(tokens.stringDelimiter) };
}
