/**
 * Content hashes of media spans: what prefix reuse compares (src/runtime/prompt.ts keys), so two different clips at
 * the same position never share a KV cache. SHA-256 (Web Crypto, in workers and Node alike) over a description of
 * the preprocessing (its version and settings) and the exact input bytes; 128 bits of it are kept.
 */
import { GemmaError } from '../../errors.ts';

/** Bumped whenever a modality's preprocessing changes what the same input encodes to. */
export const MEDIA_PREPROCESSING_VERSION = {
  /** Downmix, windowed-sinc resampler to 16 kHz, 30 s segments, Gemma 3n log-mel (src/audio/). */
  audio: 'audio/1',
  /** Decoded 8-bit pixels as hashed (RGBA/RGB/grey); the resize and rescale are the vision family's preprocessingId. */
  image: 'image/1',
} as const;

/** Hex SHA-256 (first 128 bits) of the header string followed by the byte views. */
export async function contentHash(header: string, ...data: ArrayBufferView[]): Promise<string> {
  const subtle = globalThis.crypto?.subtle;
  if (!subtle) throw new GemmaError('internal', 'Web Crypto (crypto.subtle) is not available here: media content cannot be hashed.');
  const head = new TextEncoder().encode(header + '\0');
  let total = head.byteLength;
  for (const d of data) total += d.byteLength;
  const all = new Uint8Array(total);
  all.set(head, 0);
  let at = head.byteLength;
  for (const d of data) {
    all.set(new Uint8Array(d.buffer, d.byteOffset, d.byteLength), at);
    at += d.byteLength;
  }
  const digest = new Uint8Array(await subtle.digest('SHA-256', all));
  return Array.from(digest.subarray(0, 16), (b) => b.toString(16).padStart(2, '0')).join('');
}
