/**
 * Message content: a string, or parts interleaved in any order (text, audio, images, video frames), as the page
 * gives them (`ContentPart`), and as they cross to the worker (`WirePart`: media already decoded to plain typed
 * arrays, transferred, never structured-clone copied). Types only, shared by the page (src/runtime/media/prepare.ts
 * turns parts into wire parts) and the worker (src/runtime/media/prompt-builder.ts lays them out as Hugging Face's
 * Gemma3nProcessor does).
 *
 * Modalities are generic: a wire media part names its modality and carries that modality's payload; the worker
 * hands it to the encoder registered for the modality (src/model/registry.ts MEDIA_ENCODERS). Images (and video
 * frames, one image each) cross as compressed bytes, an ImageBitmap or RGBA pixels, and are decoded in the worker
 * (src/runtime/media/image-decode.ts).
 */

/** The kinds of media a Gemma 3n prompt can carry (one encoder family each). */
export type MediaModality = 'audio' | 'image';

/** Mono (or already downmixed) samples at a known rate: what the recorder helper returns. */
export interface AudioClip {
  samples: Float32Array;
  /** Hz (any integer rate; resampled to 16 kHz with the library's resampler). */
  sampleRate: number;
}

/**
 * Audio as the page may give it:
 * - a `Float32Array` of mono samples (then the part's `sampleRate` is required), or an `AudioClip`;
 * - an `AudioBuffer` (any channels and rate: downmixed and resampled);
 * - a `Blob` / `File` in any format the browser decodes (wav, mp3, ogg/opus, webm, m4a, flac ...);
 * - a URL (http(s), `blob:`, `data:`), fetched by the page.
 */
export type AudioSource = Float32Array | AudioClip | AudioBuffer | Blob | URL | string;

export interface TextPart {
  type: 'text';
  text: string;
}

export interface AudioPart {
  type: 'audio';
  audio: AudioSource;
  /** Required with a bare Float32Array: the rate the samples were recorded at. */
  sampleRate?: number;
  /**
   * Clips longer than 30 s are split into consecutive 30 s segments, each its own span of audio tokens (so a long
   * voice note is heard whole). `true` keeps only the first 30 s, as Hugging Face's processor does.
   */
  truncate?: boolean;
}

/** OpenAI's audio input part: base64 audio file bytes. */
export interface InputAudioPart {
  type: 'input_audio';
  input_audio: { data: string; format: 'wav' | 'mp3' | string };
  truncate?: boolean;
}

/**
 * Precomputed Gemma 3n log-mel features [frames, 128] (row-major) with an optional frame mask (1 = valid; a run of
 * valid frames then padding), for callers with their own front end and for checks against Hugging Face's features.
 */
export interface AudioFeaturesPart {
  type: 'audio_features';
  features: Float32Array;
  mask?: Uint8Array;
}

/**
 * Image sources: a `Blob` / `File` (PNG, JPEG, WebP, GIF, BMP, AVIF: what the browser decodes), an `ImageBitmap`,
 * `ImageData`, an `<img>` (loaded), a canvas or OffscreenCanvas, a `VideoFrame`, or a URL (http(s), `blob:`,
 * `data:`, fetched by the page). The worker decodes and resizes them exactly as Hugging Face's processor does.
 */
export type ImageSource = Blob | ImageBitmap | ImageData | HTMLImageElement | HTMLCanvasElement | OffscreenCanvas | VideoFrame | URL | string;

export interface ImagePart {
  type: 'image';
  image: ImageSource;
}

/** OpenAI's image part. */
export interface ImageUrlPart {
  type: 'image_url';
  image_url: { url: string };
}

/**
 * A short video as a series of frames, each one image span (256 tokens + its begin/end tokens): sample them with
 * `sampleVideoFrames()` (src/runtime/media/video-frames.ts), which says how many tokens they take.
 */
export interface VideoPart {
  type: 'video';
  frames: readonly ImageSource[];
}

export type ContentPart = TextPart | AudioPart | InputAudioPart | AudioFeaturesPart | ImagePart | ImageUrlPart | VideoPart;

/** A message's content: plain text, or parts in order. */
export type MessageContent = string | readonly ContentPart[];

// ------------------------------------------------------------------------------------------ the worker's side

/** Audio after the page's decoding: one channel of float samples at `sampleRate`. */
export type AudioPayload =
  | { kind: 'samples'; samples: Float32Array; sampleRate: number; truncate: boolean }
  | { kind: 'features'; features: Float32Array; mask?: Uint8Array };

/**
 * An image as it crosses to the worker: compressed file bytes (decoded there with createImageBitmap), an ImageBitmap
 * (transferred), or 8-bit pixels (RGBA from ImageData; RGB or grey from Node callers), row-major.
 */
export type ImagePayload =
  | { kind: 'encoded'; bytes: Uint8Array; mime: string }
  | { kind: 'bitmap'; bitmap: ImageBitmap }
  | { kind: 'pixels'; data: Uint8Array | Uint8ClampedArray; width: number; height: number; channels: 1 | 3 | 4 };

/** The payload each modality's wire part carries. */
export interface MediaPayloads {
  audio: AudioPayload;
  image: ImagePayload;
}

export type WireMediaPart = {
  [M in MediaModality]: {
    type: 'media';
    modality: M;
    payload: MediaPayloads[M];
    /** Where the part came from, for error messages ('message 2, part 1 (audio)'). */
    label: string;
  };
}[MediaModality];

export type WirePart = TextPart | WireMediaPart;

/** A chat message as it crosses to the worker. */
export interface WireMessage {
  role: 'system' | 'user' | 'assistant';
  content: string | WirePart[];
}

/** A raw prompt as it crosses to the worker: token ids as they are, text, media spans. */
export type WirePromptItem = number | WirePart;
