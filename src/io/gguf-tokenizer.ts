/**
 * A GGUF file's own tokenizer (`tokenizer.ggml.*` metadata and `tokenizer.chat_template`) as the Hugging Face files
 * the tokenizer module reads (`tokenizer.json`, `tokenizer_config.json`), so a single .gguf is enough to chat.
 *
 * Supported: `tokenizer.ggml.model = "llama"`, llama.cpp's SentencePiece-BPE tokenizer (Gemma, Llama 2, Mistral):
 * tokens, scores and token types, no merges. It becomes a BPE tokenizer.json with byte fallback whose merges are
 * derived from the scores exactly as transformers' SentencePiece converter derives them (every split of a piece into
 * two pieces of the vocabulary, ordered by the piece's score, then the longer left and right parts, then vocabulary
 * order), the conversion that produced Gemma's published tokenizer.json: applying merges in that order is
 * SentencePiece's "merge the highest-scoring pair first". Control and unknown tokens become special added tokens,
 * user-defined ones plain added tokens (matched whole before the merges, as llama.cpp does); spaces become "▁"
 * (after a prepended one when `add_space_prefix`); `<bos>` / `<eos>` are added per `add_bos_token` / `add_eos_token`.
 * Other tokenizer models (gpt2, bert, t5, …) fail with a message saying to pass a tokenizer.
 */
import { GemmaError } from '../errors.ts';
import type { GgufFile, GgufValue } from './gguf.ts';

/** llama.cpp's token types (llama_token_type / gguf-py TokenType). */
const TOKEN_TYPE = { NORMAL: 1, UNKNOWN: 2, CONTROL: 3, USER_DEFINED: 4, UNUSED: 5, BYTE: 6 } as const;

export interface GgufTokenizerFiles {
  /** tokenizer.json, tokenizer_config.json and (when the file has one) chat_template.jinja, as texts. */
  texts: Map<string, string>;
  /** Vocabulary size (for messages and checks against the embedding). */
  vocabSize: number;
}

/** Whether the file carries a tokenizer at all. */
export function hasGgufTokenizer(gguf: GgufFile): boolean {
  return gguf.metadata.has('tokenizer.ggml.model') && gguf.metadata.has('tokenizer.ggml.tokens');
}

/** The tokenizer files of a GGUF (see the header); throws a clear GemmaError when the file has no usable tokenizer. */
export function ggufTokenizerFiles(gguf: GgufFile): GgufTokenizerFiles {
  const md = gguf.metadata;
  const where = gguf.source.name;
  const fail = (why: string) =>
    new GemmaError(
      'bad-file',
      `${where}: ${why} Pass \`tokenizer: '<folder URL or Hugging Face repo with tokenizer.json>'\` (e.g. the original model's repo), or \`tokenizer: false\` to prompt with token ids only.`,
    );
  const model = md.get('tokenizer.ggml.model');
  if (model === undefined || !md.has('tokenizer.ggml.tokens')) throw fail('the GGUF file carries no tokenizer (no tokenizer.ggml.model / tokenizer.ggml.tokens).');
  if (model !== 'llama') throw fail(`its tokenizer is of type "${String(model)}", which cannot be rebuilt from the file (only SentencePiece "llama" tokenizers, as Gemma's, can).`);

  const tokens = stringArray(md.get('tokenizer.ggml.tokens'));
  if (!tokens || tokens.length === 0) throw fail('tokenizer.ggml.tokens is not a list of strings.');
  const n = tokens.length;
  const scores = numberArray(md.get('tokenizer.ggml.scores'));
  const types = numberArray(md.get('tokenizer.ggml.token_type'));
  if (!scores || scores.length !== n) throw fail(`tokenizer.ggml.scores is missing or does not have ${n} entries (one per token).`);
  if (types && types.length !== n) throw fail(`tokenizer.ggml.token_type has ${types.length} entries for ${n} tokens.`);
  const typeOf = (id: number) => types?.[id] ?? TOKEN_TYPE.NORMAL;

  const id = (key: string): number | undefined => {
    const v = md.get(key);
    return typeof v === 'number' && Number.isInteger(v) && v >= 0 && v < n ? v : undefined;
  };
  const flag = (key: string, fallback: boolean): boolean => {
    const v = md.get(key);
    return typeof v === 'boolean' ? v : fallback;
  };
  const bos = id('tokenizer.ggml.bos_token_id');
  const eos = id('tokenizer.ggml.eos_token_id');
  const unk = id('tokenizer.ggml.unknown_token_id') ?? tokens.findIndex((_, i) => typeOf(i) === TOKEN_TYPE.UNKNOWN);
  const pad = id('tokenizer.ggml.padding_token_id');
  const addBos = flag('tokenizer.ggml.add_bos_token', true);
  const addEos = flag('tokenizer.ggml.add_eos_token', false);
  const addSpacePrefix = flag('tokenizer.ggml.add_space_prefix', false);
  if (addBos && bos === undefined) throw fail('add_bos_token is set but tokenizer.ggml.bos_token_id is missing or out of range.');

  // The vocabulary (the first id wins for a string that appears twice, as in tokenizer.json's map).
  const vocab = new Map<string, number>();
  tokens.forEach((t, i) => {
    if (!vocab.has(t)) vocab.set(t, i);
  });
  const added: { id: number; content: string; special: boolean }[] = [];
  tokens.forEach((t, i) => {
    const type = typeOf(i);
    if (type === TOKEN_TYPE.CONTROL || type === TOKEN_TYPE.UNKNOWN || i === unk) added.push({ id: i, content: t, special: true });
    else if (type === TOKEN_TYPE.USER_DEFINED || type === TOKEN_TYPE.UNUSED) added.push({ id: i, content: t, special: false });
  });

  const tokenizerJson = {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: added.map((a) => ({ id: a.id, content: a.content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: a.special })),
    normalizer: addSpacePrefix
      ? { type: 'Sequence', normalizers: [{ type: 'Prepend', prepend: '▁' }, { type: 'Replace', pattern: { String: ' ' }, content: '▁' }] }
      : { type: 'Replace', pattern: { String: ' ' }, content: '▁' },
    pre_tokenizer: null,
    post_processor: postProcessor(tokens, addBos ? bos : undefined, addEos ? eos : undefined),
    decoder: {
      type: 'Sequence',
      decoders: [
        { type: 'Replace', pattern: { String: '▁' }, content: ' ' },
        { type: 'ByteFallback' },
        { type: 'Fuse' },
        ...(addSpacePrefix ? [{ type: 'Strip', content: ' ', start: 1, stop: 0 }] : []),
      ],
    },
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: unk >= 0 ? tokens[unk] : null,
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: true,
      byte_fallback: true,
      ignore_merges: false,
      vocab: Object.fromEntries(vocab),
      merges: mergesFromScores(tokens, scores, vocab),
    },
  };
  const template = md.get('tokenizer.chat_template');
  const name = (i: number | undefined) => (i === undefined || i < 0 ? undefined : tokens[i]);
  const tokenizerConfig: Record<string, unknown> = {
    add_bos_token: addBos,
    add_eos_token: addEos,
    bos_token: name(bos),
    eos_token: name(eos),
    unk_token: name(unk),
    pad_token: name(pad),
    clean_up_tokenization_spaces: false,
    spaces_between_special_tokens: false,
    model_max_length: 1_000_000,
    tokenizer_class: isGemma(md.get('general.architecture')) ? 'GemmaTokenizer' : 'PreTrainedTokenizer',
  };
  if (typeof template === 'string') tokenizerConfig.chat_template = template;
  const texts = new Map<string, string>([
    ['tokenizer.json', JSON.stringify(tokenizerJson)],
    ['tokenizer_config.json', JSON.stringify(tokenizerConfig)],
  ]);
  return { texts, vocabSize: n };
}

function isGemma(arch: GgufValue | undefined): boolean {
  return typeof arch === 'string' && /^gemma/.test(arch);
}

/** BOS (and EOS) around every sequence, as Gemma's tokenizer.json does. */
function postProcessor(tokens: string[], bos: number | undefined, eos: number | undefined): unknown {
  const special = (id: number | undefined, typeId: number) => (id === undefined ? [] : [{ SpecialToken: { id: tokens[id], type_id: typeId } }]);
  const specials: Record<string, unknown> = {};
  for (const id of [bos, eos]) if (id !== undefined) specials[tokens[id]] = { id: tokens[id], ids: [id], tokens: [tokens[id]] };
  return {
    type: 'TemplateProcessing',
    single: [...special(bos, 0), { Sequence: { id: 'A', type_id: 0 } }, ...special(eos, 0)],
    pair: [...special(bos, 0), { Sequence: { id: 'A', type_id: 0 } }, ...special(eos, 0), ...special(bos, 1), { Sequence: { id: 'B', type_id: 1 } }, ...special(eos, 1)],
    special_tokens: specials,
  };
}

/**
 * BPE merges from SentencePiece scores, as transformers' `generate_merges` (convert_slow_tokenizer.py) makes them:
 * for every piece in vocabulary order, each split into two pieces of the vocabulary (ordered by their ids), then all
 * of them stably sorted by (score of the piece, length of the left part, length of the right part), descending.
 */
export function mergesFromScores(tokens: readonly string[], scores: readonly number[], vocab: ReadonlyMap<string, number>): [string, string][] {
  // Parallel arrays (half a million merges for Gemma): ids of the two parts, the piece's score, the parts' lengths in
  // code points (Python's len), then one stable sort of indices.
  const left: number[] = [], right: number[] = [], score: number[] = [], leftLen: number[] = [], rightLen: number[] = [];
  const local: [number, number, number][] = [];
  tokens.forEach((piece, id) => {
    if (piece.length < 2 || vocab.get(piece) !== id) return; // a duplicate string: its first id's entry did it
    const points = codePoints(piece);
    if (points < 2) return;
    local.length = 0;
    let cp = 0;
    for (let k = 1; k < piece.length; k++) {
      const c = piece.charCodeAt(k);
      if (c >= 0xdc00 && c <= 0xdfff) continue; // never split a surrogate pair (Python slices code points)
      cp++;
      const l = vocab.get(piece.slice(0, k)), r = vocab.get(piece.slice(k));
      if (l !== undefined && r !== undefined) local.push([l, r, cp]);
    }
    local.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
    for (const [l, r, n] of local) {
      left.push(l);
      right.push(r);
      score.push(scores[id]);
      leftLen.push(n);
      rightLen.push(points - n);
    }
  });
  const order = Array.from({ length: left.length }, (_, i) => i);
  order.sort((a, b) => score[b] - score[a] || leftLen[b] - leftLen[a] || rightLen[b] - rightLen[a] || a - b);
  return order.map((i) => [tokens[left[i]], tokens[right[i]]]);
}

function codePoints(s: string): number {
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0xdc00 || c > 0xdfff) n++;
  }
  return n;
}

function stringArray(v: GgufValue | undefined): string[] | undefined {
  return Array.isArray(v) && v.every((x) => typeof x === 'string') ? (v as string[]) : undefined;
}

function numberArray(v: GgufValue | undefined): number[] | undefined {
  return Array.isArray(v) && v.every((x) => typeof x === 'number') ? (v as number[]) : undefined;
}
