/**
 * Text <-> token ids and the chat template, with transformers.js' own tokenizer pieces configured from the
 * checkpoint's tokenizer.json and tokenizer_config.json (never re-implemented here): `@huggingface/tokenizers`
 * (the tokenizer transformers.js 4 wraps in its PreTrainedTokenizer) and `@huggingface/jinja` (the engine its
 * apply_chat_template renders with). We import those two packages rather than `@huggingface/transformers`, whose
 * single bundle also pulls onnxruntime (a 27 MB wasm in every app build) and, on install, onnxruntime-node and
 * sharp (~500 MB). For Gemma's `GemmaTokenizer` transformers.js adds nothing over PreTrainedTokenizer; the glue
 * below does what PreTrainedTokenizer does for the calls we make (test/runtime/tokenizer-parity.test.ts compares
 * the two on the real Gemma tokenizer). Works the same in Node and in a browser worker: the JSON is fetched or
 * read by the host and handed over as objects, so nothing here touches the network or the file system.
 */
import { Tokenizer } from '@huggingface/tokenizers';
import { Template } from '@huggingface/jinja';
import { GemmaError } from '../errors.ts';
import type { ChatMessage } from './protocol.ts';

/** What the engine needs from a tokenizer. */
export interface TextTokenizer {
  /** Token ids of a plain prompt, with the special tokens the tokenizer adds (Gemma: `<bos>`). */
  encode(text: string): number[];
  /** Token ids of a conversation rendered by the chat template, ending in the generation prompt. */
  applyChatTemplate(messages: readonly TemplateMessage[]): number[];
  /**
   * The chat template's text for a conversation (ending in the generation prompt). Content may be a list of parts
   * (`{ type: 'text', text }`, `{ type: 'audio' }`, `{ type: 'image' }`): the template writes each media part's
   * placeholder token, which the media prompt builder then expands (src/runtime/media/prompt-builder.ts).
   */
  renderChatTemplate(messages: readonly TemplateMessage[]): string;
  /** Ids of text that already holds its special tokens (a rendered template): no BOS is added. */
  encodeRendered(text: string): number[];
  /** The token's text as the vocabulary spells it (special tokens included), or undefined for an unknown id. */
  tokenText(id: number): string | undefined;
  /** Text of a token sequence (special tokens skipped). */
  decode(ids: readonly number[]): string;
  /** The UTF-8 bytes one token contributes to the text (empty for special tokens); see detokenizer.ts. */
  tokenBytes(id: number): Uint8Array;
  /** Token ids that end a turn according to the tokenizer (its eos token). */
  readonly stopTokenIds: readonly number[];
}

/** A message as the chat template sees it: text, or parts whose media entries carry only their type. */
export interface TemplateMessage {
  role: ChatMessage['role'];
  content: string | ReadonlyArray<{ type: string; text?: string }>;
}

/** The two JSON files of a Hugging Face tokenizer, parsed. */
export interface TokenizerFiles {
  tokenizerJson: unknown;
  tokenizerConfig: unknown;
}

/** The special-token names a chat template may use (transformers.js' SPECIAL_TOKEN_ATTRIBUTES). */
const SPECIAL_TOKEN_NAMES = ['bos_token', 'eos_token', 'unk_token', 'sep_token', 'pad_token', 'cls_token', 'mask_token'] as const;

/** A special token named in tokenizer_config.json: a string, or an AddedToken object (`{ __type, content }`). */
function configToken(config: Record<string, unknown>, name: string): string | undefined {
  const item = config[name];
  if (!item) return undefined;
  if (typeof item === 'string') return item;
  if (typeof item === 'object' && (item as { __type?: unknown }).__type === 'AddedToken') return String((item as { content: unknown }).content);
  throw new GemmaError('bad-file', `tokenizer_config.json: ${name} is neither a string nor an AddedToken (${JSON.stringify(item)})`);
}

/**
 * The chat template of tokenizer_config.json: a string, or a list of named templates (the one named `default`),
 * or undefined when there is none.
 */
function chatTemplateOf(config: Record<string, unknown>): string | undefined {
  const t = config.chat_template;
  if (t === undefined || t === null) return undefined;
  if (typeof t === 'string') return t;
  if (Array.isArray(t)) {
    const named = t.find((x: { name?: unknown }) => x?.name === 'default') as { template?: unknown } | undefined;
    if (typeof named?.template === 'string') return named.template;
  }
  throw new GemmaError('bad-file', 'tokenizer_config.json: chat_template is neither a string nor a list of named templates with a `default`.');
}

/** Builds a tokenizer from the parsed JSON files (the cleanest offline path in Node and the browser). */
export async function createTokenizer(files: TokenizerFiles): Promise<TextTokenizer> {
  const config = (files.tokenizerConfig ?? {}) as Record<string, unknown>;
  let tokenizer: Tokenizer;
  try {
    tokenizer = new Tokenizer(files.tokenizerJson as object, config);
  } catch (err) {
    throw new GemmaError('bad-file', `tokenizer.json / tokenizer_config.json could not be read by transformers.js' tokenizer: ${(err as Error).message}`, { cause: err });
  }
  const template = chatTemplateOf(config);
  const specialTokens: Record<string, string> = {};
  for (const name of SPECIAL_TOKEN_NAMES) {
    const token = configToken(config, name);
    if (token) specialTokens[name] = token;
  }
  return new HfTokenizer(tokenizer, template, specialTokens);
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

class HfTokenizer implements TextTokenizer {
  readonly stopTokenIds: readonly number[];
  /** SentencePiece byte-fallback pieces `<0xNN>` -> the byte they stand for. */
  private readonly byteTokens = new Map<number, number>();
  private readonly special = new Set<number>();
  private readonly bytesCache = new Map<number, Uint8Array>();
  private compiledTemplate: Template | undefined;

  constructor(
    private readonly tokenizer: Tokenizer,
    private readonly template: string | undefined,
    /** bos_token, eos_token, ... as the template sees them. */
    private readonly specialTokens: Readonly<Record<string, string>>,
  ) {
    const vocab = tokenizer.get_vocab();
    for (let b = 0; b < 256; b++) {
      const id = vocab.get(`<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`);
      if (id !== undefined) this.byteTokens.set(id, b);
    }
    for (const [id, token] of tokenizer.get_added_tokens_decoder()) if (token.special) this.special.add(id);
    const eos = specialTokens.eos_token === undefined ? undefined : tokenizer.token_to_id(specialTokens.eos_token);
    this.stopTokenIds = eos === undefined ? [] : [eos];
  }

  encode(text: string): number[] {
    return this.tokenizer.encode(text).ids;
  }

  applyChatTemplate(messages: readonly TemplateMessage[]): number[] {
    return this.encodeRendered(this.renderChatTemplate(messages));
  }

  renderChatTemplate(messages: readonly TemplateMessage[]): string {
    if (this.template === undefined) {
      throw new GemmaError('invalid-argument', 'This tokenizer has no chat template (tokenizer_config.json lacks `chat_template`): use generate() with a prompt instead of chat().');
    }
    try {
      this.compiledTemplate ??= new Template(this.template);
      return this.compiledTemplate.render({
        messages: messages.map((m) => ({ role: m.role, content: m.content })),
        add_generation_prompt: true,
        tools: null,
        documents: null,
        ...this.specialTokens,
      });
    } catch (err) {
      // The Gemma template raises for roles that do not alternate user/assistant.
      throw new GemmaError('invalid-argument', `The chat template rejected the messages: ${(err as Error).message}`, { cause: err });
    }
  }

  encodeRendered(text: string): number[] {
    // The template writes the special tokens itself (Gemma: `<bos>`).
    return this.tokenizer.encode(text, { add_special_tokens: false }).ids;
  }

  tokenText(id: number): string | undefined {
    return this.tokenizer.id_to_token(id) ?? undefined;
  }

  decode(ids: readonly number[]): string {
    return ids.length === 0 ? '' : this.tokenizer.decode(Array.from(ids), { skip_special_tokens: true });
  }

  tokenBytes(id: number): Uint8Array {
    let bytes = this.bytesCache.get(id);
    if (!bytes) {
      const b = this.byteTokens.get(id);
      if (b !== undefined) bytes = Uint8Array.of(b);
      else if (this.special.has(id)) bytes = new Uint8Array(0);
      else bytes = utf8.encode(this.tokenizer.decode([id], { skip_special_tokens: true }));
      this.bytesCache.set(id, bytes);
    }
    return bytes;
  }
}
