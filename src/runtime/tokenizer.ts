/**
 * Text <-> token ids and the chat template, from transformers.js configured with the checkpoint's own
 * tokenizer.json and tokenizer_config.json (never re-implemented here). Works the same in Node and in a
 * browser worker: the JSON is fetched or read by the host and handed over as objects, so transformers.js
 * never touches the network or the file system.
 */
import { GemmaError } from '../errors.ts';
import type { ChatMessage } from './protocol.ts';

/** What the engine needs from a tokenizer. */
export interface TextTokenizer {
  /** Token ids of a plain prompt, with the special tokens the tokenizer adds (Gemma: `<bos>`). */
  encode(text: string): number[];
  /** Token ids of a conversation rendered by the chat template, ending in the generation prompt. */
  applyChatTemplate(messages: readonly ChatMessage[]): number[];
  /** Text of a token sequence (special tokens skipped). */
  decode(ids: readonly number[]): string;
  /** The UTF-8 bytes one token contributes to the text (empty for special tokens); see detokenizer.ts. */
  tokenBytes(id: number): Uint8Array;
  /** Token ids that end a turn according to the tokenizer (its eos token). */
  readonly stopTokenIds: readonly number[];
}

/** The two JSON files of a Hugging Face tokenizer, parsed. */
export interface TokenizerFiles {
  tokenizerJson: unknown;
  tokenizerConfig: unknown;
}

// The slice of transformers.js' PreTrainedTokenizer we use (its own types are generic-heavy).
interface HfTokenizer {
  encode(text: string, options?: { add_special_tokens?: boolean }): number[];
  decode(ids: number[], options?: { skip_special_tokens?: boolean }): string;
  apply_chat_template(messages: unknown[], options: Record<string, unknown>): unknown;
  get_vocab(): Map<string, number>;
  eos_token_id?: number;
  all_special_ids: number[];
}

/** Builds a tokenizer from the parsed JSON files (the cleanest offline path in Node and the browser). */
export async function createTokenizer(files: TokenizerFiles): Promise<TextTokenizer> {
  const tf = (await import('@huggingface/transformers')) as unknown as Record<string, unknown>;
  const config = files.tokenizerConfig as { tokenizer_class?: string; chat_template?: unknown };
  const className = config.tokenizer_class?.replace(/Fast$/, '');
  const Ctor = ((className && tf[className]) || tf.PreTrainedTokenizer) as new (json: unknown, config: unknown) => HfTokenizer;
  let hf: HfTokenizer;
  try {
    hf = new Ctor(files.tokenizerJson, files.tokenizerConfig);
  } catch (err) {
    throw new GemmaError('bad-file', `tokenizer.json / tokenizer_config.json could not be read by transformers.js: ${(err as Error).message}`, { cause: err });
  }
  return new TransformersTokenizer(hf, config.chat_template !== undefined);
}

/**
 * Builds the tokenizer from a checkpoint's small text files by name (src/io/checkpoint-listing.ts reads them):
 * tokenizer.json, tokenizer_config.json, and chat_template.jinja where newer repos keep the template.
 */
export async function tokenizerFromTexts(texts: ReadonlyMap<string, string>, where: string): Promise<TextTokenizer> {
  const parse = (name: string): Record<string, unknown> => {
    const text = texts.get(name);
    if (text === undefined) throw new GemmaError('bad-file', `${where} has no ${name}; the tokenizer needs tokenizer.json and tokenizer_config.json.`);
    try {
      return JSON.parse(text) as Record<string, unknown>;
    } catch (err) {
      throw new GemmaError('bad-file', `${where}/${name} is not valid JSON: ${(err as Error).message}`, { cause: err });
    }
  };
  const tokenizerJson = parse('tokenizer.json');
  const tokenizerConfig = parse('tokenizer_config.json');
  const template = texts.get('chat_template.jinja');
  if (tokenizerConfig.chat_template === undefined && template !== undefined) tokenizerConfig.chat_template = template;
  return createTokenizer({ tokenizerJson, tokenizerConfig });
}

/** Fetches `tokenizer.json` and `tokenizer_config.json` from a folder URL and builds the tokenizer. */
export async function fetchTokenizer(folderUrl: string, fetchFn: typeof fetch = fetch): Promise<TextTokenizer> {
  const base = folderUrl.endsWith('/') ? folderUrl : folderUrl + '/';
  const get = async (name: string): Promise<unknown> => {
    let response: Response;
    try {
      response = await fetchFn(base + name);
    } catch (err) {
      throw new GemmaError('network', `Could not fetch ${base + name}: ${(err as Error).message}. Check the URL and your connection.`, { cause: err });
    }
    if (!response.ok) {
      throw new GemmaError(
        response.status === 404 ? 'bad-file' : 'network',
        `Fetching ${base + name} failed with HTTP ${response.status}. The model folder needs tokenizer.json and tokenizer_config.json ` +
          `(pass \`tokenizer: <folder URL>\` if they live elsewhere, or \`tokenizer: false\` for token-id prompts only).`,
      );
    }
    try {
      return await response.json();
    } catch (err) {
      throw new GemmaError('bad-file', `${base + name} is not valid JSON: ${(err as Error).message}`, { cause: err });
    }
  };
  const [tokenizerJson, tokenizerConfig] = await Promise.all([get('tokenizer.json'), get('tokenizer_config.json')]);
  return createTokenizer({ tokenizerJson, tokenizerConfig });
}

const utf8 = new TextEncoder();

class TransformersTokenizer implements TextTokenizer {
  readonly stopTokenIds: readonly number[];
  /** SentencePiece byte-fallback pieces `<0xNN>` -> the byte they stand for. */
  private readonly byteTokens = new Map<number, number>();
  private readonly special: Set<number>;
  private readonly bytesCache = new Map<number, Uint8Array>();

  constructor(
    private readonly hf: HfTokenizer,
    private readonly hasTemplate: boolean,
  ) {
    const vocab = hf.get_vocab();
    for (let b = 0; b < 256; b++) {
      const id = vocab.get(`<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`);
      if (id !== undefined) this.byteTokens.set(id, b);
    }
    this.special = new Set(hf.all_special_ids);
    this.stopTokenIds = hf.eos_token_id !== undefined && hf.eos_token_id !== null ? [hf.eos_token_id] : [];
  }

  encode(text: string): number[] {
    return this.hf.encode(text);
  }

  applyChatTemplate(messages: readonly ChatMessage[]): number[] {
    if (!this.hasTemplate) {
      throw new GemmaError('invalid-argument', 'This tokenizer has no chat template (tokenizer_config.json lacks `chat_template`): use generate() with a prompt instead of chat().');
    }
    try {
      const ids = this.hf.apply_chat_template(messages.map((m) => ({ role: m.role, content: m.content })), {
        add_generation_prompt: true,
        tokenize: true,
        return_tensor: false,
        return_dict: false,
      });
      return Array.from(ids as number[]);
    } catch (err) {
      // The Gemma template raises for roles that do not alternate user/assistant.
      throw new GemmaError('invalid-argument', `The chat template rejected the messages: ${(err as Error).message}`, { cause: err });
    }
  }

  decode(ids: readonly number[]): string {
    return this.hf.decode(Array.from(ids), { skip_special_tokens: true });
  }

  tokenBytes(id: number): Uint8Array {
    let bytes = this.bytesCache.get(id);
    if (!bytes) {
      const b = this.byteTokens.get(id);
      if (b !== undefined) bytes = Uint8Array.of(b);
      else if (this.special.has(id)) bytes = new Uint8Array(0);
      else bytes = utf8.encode(this.hf.decode([id], { skip_special_tokens: true }));
      this.bytesCache.set(id, bytes);
    }
    return bytes;
  }
}
