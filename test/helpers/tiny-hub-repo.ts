/**
 * Hub emulator repos of the tiny fixtures: `test-org/gemma3n-tiny` (the gemma3n-tiny-a safetensors checkpoint plus
 * a tokenizer.json / tokenizer_config.json made from the 512-piece vocabulary its GGUF conversions carry, and a
 * chat_template.jinja) and `test-org/gemma3n-tiny-GGUF` (the llama.cpp conversions), each at one commit.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { memorySource } from '../../src/io/byte-source.ts';
import { readGgufHeader } from '../../src/io/gguf.ts';
import { ggufTokenizerFiles } from '../../src/io/gguf-tokenizer.ts';
import { fixtureDir } from './fixtures.ts';
import type { HubEmulator, HubFile } from './hub-emulator.ts';

export const TINY_REPO = 'test-org/gemma3n-tiny';
export const TINY_GGUF_REPO = 'test-org/gemma3n-tiny-GGUF';
export const TINY_COMMIT = '3a1b2c3d4e5f60718293a4b5c6d7e8f901234567';
export const TINY_GGUF_COMMIT = '9f8e7d6c5b4a39281706f5e4d3c2b1a098765432';
/** A Gemma-style template that differs from tokenizer_config.json's, so tests can tell which one was used. */
export const TINY_TEMPLATE = "{{ bos_token }}{% for m in messages %}<start_of_turn>{{ 'model' if m['role'] == 'assistant' else m['role'] }}\n{{ m['content'] | trim }}<end_of_turn>\n{% endfor %}{% if add_generation_prompt %}<start_of_turn>model\n{% endif %}";

const enc = (s: string) => new TextEncoder().encode(s);

/** tokenizer.json / tokenizer_config.json of the tiny vocabulary (from the Q4_0 fixture's tokenizer.ggml.*). */
export async function tinyTokenizerTexts(): Promise<Map<string, string>> {
  const bytes = new Uint8Array(readFileSync(join(fixtureDir('gguf-gemma3n-tiny-a'), 'gemma3n-tiny-a-Q4_0.gguf')));
  return ggufTokenizerFiles(await readGgufHeader(memorySource('tiny.gguf', bytes))).texts;
}

export async function addTinyRepos(hub: HubEmulator, options: { gatedToken?: string } = {}): Promise<void> {
  const dir = fixtureDir('gemma3n-tiny-a');
  const texts = await tinyTokenizerTexts();
  const config = JSON.parse(texts.get('tokenizer_config.json')!) as Record<string, unknown>;
  config.chat_template = '{{ raise_exception("the tokenizer_config.json template must not be used: chat_template.jinja wins") }}';
  hub.repos.set(TINY_REPO, {
    refs: { main: TINY_COMMIT },
    gatedToken: options.gatedToken,
    files: new Map<string, HubFile>([
      ['config.json', join(dir, 'config.json')],
      ['model.safetensors', join(dir, 'model.safetensors')],
      ['tokenizer.json', enc(texts.get('tokenizer.json')!)],
      ['tokenizer_config.json', enc(JSON.stringify(config))],
      ['chat_template.jinja', enc(TINY_TEMPLATE)],
      ['README.md', enc('# tiny\n')],
    ]),
  });
  const gguf = fixtureDir('gguf-gemma3n-tiny-a');
  hub.repos.set(TINY_GGUF_REPO, {
    refs: { main: TINY_GGUF_COMMIT },
    gatedToken: options.gatedToken,
    files: new Map<string, HubFile>(['Q4_0', 'Q8_0', 'Q4_K_M', 'BF16'].map((q) => [`gemma3n-tiny-a-${q}.gguf`, join(gguf, `gemma3n-tiny-a-${q}.gguf`)])),
  });
}
