/**
 * The page's side of audio input: any AudioSource (samples, AudioBuffer, Blob/File, URL, OpenAI base64) to one
 * channel of float samples at the source's own rate, ready to transfer to the worker (which resamples it to 16 kHz
 * with the library's resampler, hashes it and encodes it: src/runtime/media/audio-clips.ts).
 *
 * - WAV is read by our own parser (src/audio/wav.ts): exact samples at the file's rate, in any thread.
 * - Other formats go through Web Audio's decodeAudioData on the main thread (it does not exist in workers). It
 *   always resamples to its context's rate, so the context runs at 48 kHz: Opus (what MediaRecorder writes) is
 *   48 kHz already, and for 44.1 kHz MP3/AAC the browser's 44.1 -> 48 kHz step only adds bandwidth above what the
 *   16 kHz model sees; our resampler then does the 48 -> 16 kHz step with its anti-alias filter.
 * - Channels are averaged (downmixToMono), as Web Audio's "speakers" down-mix does.
 * The returned samples are always a fresh array owned by the library (the caller's arrays are never detached).
 */
import { GemmaError } from '../../errors.ts';
import { downmixToMono } from '../../audio/resample.ts';
import { decodeWav, isWav } from '../../audio/wav.ts';
import type { AudioClip, AudioSource } from '../content.ts';

/** The rate compressed audio is decoded at (see the header). */
export const WEB_AUDIO_DECODE_RATE = 48000;

export interface DecodedClip extends AudioClip {
  /** Seconds of audio. */
  duration: number;
}

const MIME_OF_FORMAT: Record<string, string> = { wav: 'audio/wav', mp3: 'audio/mpeg', ogg: 'audio/ogg', opus: 'audio/ogg', webm: 'audio/webm', m4a: 'audio/mp4', mp4: 'audio/mp4', flac: 'audio/flac', aac: 'audio/aac' };

function invalid(label: string, why: string, cause?: unknown): GemmaError {
  return new GemmaError('invalid-argument', `${label}: ${why}`, { cause });
}

function clip(samples: Float32Array, sampleRate: number): DecodedClip {
  return { samples, sampleRate, duration: samples.length / sampleRate };
}

function checkRate(rate: unknown, label: string): number {
  if (rate === undefined) throw invalid(label, 'raw samples need their sample rate: pass { type: "audio", audio: samples, sampleRate: 48000 } (or an AudioClip { samples, sampleRate }).');
  if (typeof rate !== 'number' || !Number.isInteger(rate) || rate <= 0 || rate > 1_000_000) throw invalid(label, `the sample rate ${String(rate)} is not a positive integer number of Hz.`);
  return rate;
}

/** Decodes `source` to mono samples at its own rate (see the header). */
export async function decodeAudioSource(source: AudioSource, options: { sampleRate?: number; label: string; signal?: AbortSignal }): Promise<DecodedClip> {
  const { label, signal } = options;
  if (source instanceof Float32Array) return clip(source.slice(), checkRate(options.sampleRate, label));
  if (typeof AudioBuffer !== 'undefined' && source instanceof AudioBuffer) {
    const channels = Array.from({ length: source.numberOfChannels }, (_, c) => source.getChannelData(c));
    const mono = downmixToMono(channels);
    return clip(mono === channels[0] ? mono.slice() : mono, source.sampleRate);
  }
  if (typeof Blob !== 'undefined' && source instanceof Blob) return decodeAudioBytes(new Uint8Array(await source.arrayBuffer()), label, source.type);
  if (typeof source === 'string' || source instanceof URL) {
    let response: Response;
    try {
      response = await fetch(source, { signal });
    } catch (err) {
      if (signal?.aborted) throw new GemmaError('aborted', `${label}: fetching the audio was aborted.`);
      throw new GemmaError('network', `${label}: could not fetch ${String(source).slice(0, 120)}: ${(err as Error).message}`, { cause: err });
    }
    if (!response.ok) throw new GemmaError('network', `${label}: fetching ${String(source).slice(0, 120)} failed with HTTP ${response.status}.`);
    return decodeAudioBytes(new Uint8Array(await response.arrayBuffer()), label, response.headers.get('content-type') ?? '');
  }
  if (source && typeof source === 'object' && (source as AudioClip).samples instanceof Float32Array) {
    const c = source as AudioClip;
    return clip(c.samples.slice(), checkRate(c.sampleRate ?? options.sampleRate, label));
  }
  throw invalid(label, `audio must be a Float32Array (with sampleRate), an AudioClip { samples, sampleRate }, an AudioBuffer, a Blob/File or a URL (got ${describe(source)}).`);
}

/** OpenAI's `input_audio`: base64 file bytes in a named format. */
export async function decodeBase64Audio(data: unknown, format: unknown, label: string): Promise<DecodedClip> {
  if (typeof data !== 'string' || data.length === 0) throw invalid(label, 'input_audio.data must be a non-empty base64 string of the audio file.');
  let bytes: Uint8Array;
  try {
    const raw = atob(data.replace(/^data:[^,]*,/, '').replace(/\s+/g, ''));
    bytes = Uint8Array.from(raw, (ch) => ch.charCodeAt(0));
  } catch (err) {
    throw invalid(label, 'input_audio.data is not valid base64.', err);
  }
  return decodeAudioBytes(bytes, label, typeof format === 'string' ? (MIME_OF_FORMAT[format.toLowerCase()] ?? `audio/${format}`) : '');
}

/** File bytes (WAV by our parser, anything else by the browser) to mono samples. */
export async function decodeAudioBytes(bytes: Uint8Array, label: string, mime = ''): Promise<DecodedClip> {
  if (bytes.byteLength === 0) throw invalid(label, 'the audio file is empty (0 bytes).');
  if (isWav(bytes)) {
    try {
      const wav = decodeWav(bytes, label);
      return clip(downmixToMono(wav.channels), wav.sampleRate);
    } catch (err) {
      // A WAV codec our parser does not read (ADPCM, mu-law ...): let the browser try before giving up.
      if (typeof OfflineAudioContext === 'undefined') throw err;
    }
  }
  if (typeof OfflineAudioContext === 'undefined') {
    throw invalid(label, `compressed audio${mime ? ` (${mime})` : ''} is decoded with Web Audio, which exists only on a page's main thread: send WAV bytes or samples from here.`);
  }
  let decoded: AudioBuffer;
  try {
    const ctx = new OfflineAudioContext(1, 1, WEB_AUDIO_DECODE_RATE);
    // decodeAudioData detaches the buffer it gets: hand it a copy.
    decoded = await ctx.decodeAudioData(bytes.slice().buffer);
  } catch (err) {
    throw invalid(label, `the browser could not decode this audio${mime ? ` (${mime})` : ''}: ${(err as Error)?.message || 'unknown format'}. Send WAV, MP3, Ogg/Opus, WebM, M4A or FLAC.`, err);
  }
  const channels = Array.from({ length: decoded.numberOfChannels }, (_, c) => decoded.getChannelData(c));
  const mono = downmixToMono(channels);
  return clip(mono === channels[0] ? mono.slice() : mono, decoded.sampleRate);
}

function describe(x: unknown): string {
  if (x === null) return 'null';
  if (typeof x !== 'object') return typeof x;
  return (x as object).constructor?.name ?? 'an object';
}
