/**
 * Gemma 4's native control tokens, as its tokenizer spells them (ai.google.dev "Gemma 4 prompt formatting"; llama.cpp's
 * converter keeps the same strings visible for its chat parser). Gemma 4 replaced Gemma 3's `<start_of_turn>` /
 * `<end_of_turn>` with `<|turn>` / `<turn|>` (the chat template in the checkpoint's tokenizer files renders them) and
 * added trained tool-calling tokens: `<|tool>declaration:NAME{…}<tool|>` in the system turn,
 * `<|tool_call>call:NAME{…}<tool_call|>` from the model, `<|tool_response>response:NAME{…}<tool_response|>` back, with
 * `<|"|>` around every string value. The ids come from the checkpoint's tokenizer (resolveToolTokens).
 */
import type { ToolTokens } from '../tool-tokens.ts';

export const GEMMA4_TOOL_TOKENS: ToolTokens<string> = {
  declaration: { open: '<|tool>', close: '<tool|>' },
  call: { open: '<|tool_call>', close: '<tool_call|>' },
  response: { open: '<|tool_response>', close: '<tool_response|>' },
  stringDelimiter: '<|"|>',
};
