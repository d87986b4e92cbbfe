/**
 * Incremental detokenizer: token ids in, text out, never half a character. Each token contributes bytes
 * (a SentencePiece byte-fallback piece like `<0xE2>` one byte, any other piece its UTF-8 text); a streaming
 * TextDecoder holds back an incomplete UTF-8 sequence until the bytes that complete it arrive, so an emoji or
 * a CJK character split across tokens comes out whole, once. Bytes that can never form a character become
 * U+FFFD, as in the tokenizer's own full decode. O(1) per token.
 *
 * This relies on the tokenizer's decoder being context-free per token (Gemma's is: replace `▁` by a space,
 * byte fallback, fuse), which `tokenBytes` documents.
 */
import type { TextTokenizer } from './tokenizer.ts';

export class IncrementalDetokenizer {
  private readonly decoder = new TextDecoder('utf-8', { fatal: false, ignoreBOM: true });

  constructor(private readonly tokenizer: Pick<TextTokenizer, 'tokenBytes'>) {}

  /** The complete characters that `id` finishes (often '' inside a multi-byte character). */
  push(id: number): string {
    return this.decoder.decode(this.tokenizer.tokenBytes(id), { stream: true });
  }

  /** Whatever is still held back (an incomplete sequence at the very end becomes U+FFFD). */
  flush(): string {
    return this.decoder.decode();
  }
}
