// Our tokenizer (src/runtime/tokenizer.ts: transformers.js' `@huggingface/tokenizers` + `@huggingface/jinja`,
// imported without the rest of transformers.js) against transformers.js' own GemmaTokenizer on the real Gemma
// tokenizer files: the same ids for every text and conversation, the same text for every id sequence, the same
// eos. @huggingface/transformers is a devDependency for this comparison only (the package never imports it).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { GemmaTokenizer } from '@huggingface/transformers';
import { createTokenizer } from '../../src/runtime/tokenizer.ts';
import type { ChatMessage } from '../../src/runtime/protocol.ts';
import { GEMMA_TOKENIZER_DIR } from './gemma-tokenizer.ts';
import { freshRng, type Rng } from '../helpers/random.ts';

const [tokenizerJson, tokenizerConfig] = await Promise.all(
  ['tokenizer.json', 'tokenizer_config.json'].map(async (name) => JSON.parse(await readFile(GEMMA_TOKENIZER_DIR + name, 'utf8')) as object),
);
const ours = await createTokenizer({ tokenizerJson, tokenizerConfig });
const reference = new GemmaTokenizer(tokenizerJson, tokenizerConfig);

/** Pieces random texts are made of: scripts, emoji (with joiners), whitespace runs, special-token markup, bytes. */
const PIECES = [
  'Hello', ' world', 'the', ' ', '  ', '\n', '\n\n', '\t', ' \n ', '你好', '世界', 'こんにちは', 'Здравствуй', 'مرحبا', '🦩', '👩‍👩‍👧', '🇫🇷',
  'é', 'e\u0301', '<start_of_turn>', '<end_of_turn>', '<bos>', '<image_soft_token>', '<0x41>', '123', '3.14159', '```ts\n', '\u0000', '\uFFFD',
  'x'.repeat(40), ' '.repeat(17), '—', "'s", 'Ünïcödé', '<', '>', '</s>', '▁',
];

function randomText(rng: Rng): string {
  let s = '';
  const n = rng.int(0, 12);
  for (let i = 0; i < n; i++) {
    s += rng.next() < 0.8 ? PIECES[rng.int(0, PIECES.length)] : String.fromCodePoint(rng.int(0x20, 0x2fff));
  }
  return s;
}

test('tokenizer parity: encode matches transformers.js on fixed and random texts', () => {
  const { rng, tag } = freshRng();
  const texts = ['', ' ', 'Hello world', ...PIECES, ...Array.from({ length: 300 }, () => randomText(rng))];
  for (const text of texts) {
    assert.deepEqual(ours.encode(text), reference.encode(text), `${JSON.stringify(text)} ${tag}`);
  }
});

test('tokenizer parity: decode (special tokens skipped) matches transformers.js on random id sequences', () => {
  const { rng, tag } = freshRng();
  const vocab = reference.get_vocab().size;
  for (let i = 0; i < 300; i++) {
    // Mostly ordinary ids, some from the special/byte-fallback region at the start of the vocabulary.
    const ids = Array.from({ length: rng.int(1, 16) }, () => (rng.next() < 0.3 ? rng.int(0, 300) : rng.int(0, vocab)));
    assert.equal(ours.decode(ids), reference.decode(ids, { skip_special_tokens: true }), `${JSON.stringify(ids)} ${tag}`);
  }
});

test('tokenizer parity: the chat template renders the same ids; both reject roles that do not alternate', () => {
  const { rng, tag } = freshRng();
  const conversations: ChatMessage<string>[][] = [
    [{ role: 'user', content: 'Hi' }],
    [
      { role: 'system', content: 'You are terse.' },
      { role: 'user', content: 'Translate 你好世界 and explain 🦩 please.' },
    ],
    [
      { role: 'user', content: 'a' },
      { role: 'assistant', content: 'b' },
      { role: 'user', content: '  spaces\n\nand lines  ' },
    ],
  ];
  for (let i = 0; i < 20; i++) {
    const turns = rng.int(1, 4) * 2 - 1;
    const messages: ChatMessage<string>[] = rng.next() < 0.5 ? [{ role: 'system', content: randomText(rng) }] : [];
    for (let t = 0; t < turns; t++) messages.push({ role: t % 2 === 0 ? 'user' : 'assistant', content: randomText(rng) });
    conversations.push(messages);
  }
  const options = { add_generation_prompt: true, tokenize: true, return_tensor: false, return_dict: false };
  for (const messages of conversations) {
    const expected = Array.from(reference.apply_chat_template(messages, options) as unknown as number[]);
    assert.deepEqual(ours.applyChatTemplate(messages), expected, `${JSON.stringify(messages)} ${tag}`);
  }
  const bad: ChatMessage<string>[] = [
    { role: 'user', content: 'a' },
    { role: 'user', content: 'b' },
  ];
  assert.throws(() => reference.apply_chat_template(bad, options));
  assert.throws(() => ours.applyChatTemplate(bad), (e: Error & { code?: string }) => e.code === 'invalid-argument' && /chat template/.test(e.message));
});

test('tokenizer parity: the same stop token (eos) and special tokens', () => {
  assert.deepEqual(ours.stopTokenIds, [reference.eos_token_id]);
  for (const id of reference.all_special_ids) assert.equal(ours.tokenBytes(id).length, 0, `special id ${id}`);
});
