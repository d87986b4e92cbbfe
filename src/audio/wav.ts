/**
 * RIFF/WAVE files to float channels, in plain TypeScript (so a WAV is read exactly, at its own rate, in any thread,
 * with no Web Audio resampling): PCM 8-bit unsigned, 16/24/32-bit signed integer, IEEE float 32/64, plain or
 * WAVE_FORMAT_EXTENSIBLE. Integers map to [-1, 1) by dividing by 2^(bits-1), as Web Audio and libsndfile do.
 * Anything else (compressed WAV codecs, RF64) is reported as not a WAV this reader takes; the page then lets the
 * browser's decoder try.
 */
import { GemmaError } from '../errors.ts';

export interface DecodedAudio {
  /** One Float32Array per channel, all of the same length. */
  channels: Float32Array[];
  sampleRate: number;
}

const PCM = 1;
const FLOAT = 3;
const EXTENSIBLE = 0xfffe;

/** Whether the bytes start like a RIFF/WAVE file. */
export function isWav(bytes: Uint8Array): boolean {
  const tag = (at: number) => String.fromCharCode(...bytes.subarray(at, at + 4));
  return bytes.byteLength >= 12 && tag(0) === 'RIFF' && tag(8) === 'WAVE';
}

/** Decodes a WAV file; GemmaError('invalid-argument') naming `what` for anything malformed or unsupported. */
export function decodeWav(bytes: Uint8Array, what = 'WAV file'): DecodedAudio {
  const bad = (why: string): never => {
    throw new GemmaError('invalid-argument', `${what}: ${why}`);
  };
  if (!isWav(bytes)) bad('not a RIFF/WAVE file');
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const tag = (at: number) => String.fromCharCode(...bytes.subarray(at, at + 4));
  let format: { code: number; channels: number; rate: number; bits: number; align: number } | undefined;
  let data: { offset: number; length: number } | undefined;
  for (let at = 12; at + 8 <= bytes.byteLength; ) {
    const id = tag(at);
    const size = view.getUint32(at + 4, true);
    const body = at + 8;
    if (id === 'fmt ') {
      if (size < 16 || body + size > bytes.byteLength) bad('its fmt chunk is truncated');
      let code = view.getUint16(body, true);
      if (code === EXTENSIBLE && size >= 40) code = view.getUint16(body + 24, true); // the sub-format GUID's first two bytes
      format = { code, channels: view.getUint16(body + 2, true), rate: view.getUint32(body + 4, true), align: view.getUint16(body + 12, true), bits: view.getUint16(body + 14, true) };
    } else if (id === 'data') {
      // A streamed file may say 0 or 0xFFFFFFFF: take what is there.
      data = { offset: body, length: Math.min(size, bytes.byteLength - body) };
      if (format) break;
    }
    at = body + size + (size & 1);
  }
  if (!format) return bad('it has no fmt chunk');
  if (!data) return bad('it has no data chunk');
  const { code, channels, rate, bits, align } = format;
  if (channels < 1) bad('it has no channels');
  if (!(rate > 0)) bad(`its sample rate ${rate} is not positive`);
  const supported = (code === PCM && [8, 16, 24, 32].includes(bits)) || (code === FLOAT && (bits === 32 || bits === 64));
  if (!supported) bad(`its encoding (format ${code}, ${bits} bits) is not PCM 8/16/24/32-bit or float 32/64`);
  const bytesPer = bits / 8;
  const frameBytes = Math.max(align, bytesPer * channels);
  const frames = Math.floor(data.length / frameBytes);
  const out = Array.from({ length: channels }, () => new Float32Array(frames));
  for (let f = 0; f < frames; f++) {
    for (let c = 0; c < channels; c++) {
      const at = data.offset + f * frameBytes + c * bytesPer;
      let v: number;
      if (code === FLOAT) v = bits === 32 ? view.getFloat32(at, true) : view.getFloat64(at, true);
      else if (bits === 8) v = (view.getUint8(at) - 128) / 128;
      else if (bits === 16) v = view.getInt16(at, true) / 32768;
      else if (bits === 24) v = ((view.getUint8(at) | (view.getUint8(at + 1) << 8) | (view.getInt8(at + 2) << 16)) >> 0) / 8388608;
      else v = view.getInt32(at, true) / 2147483648;
      out[c][f] = v;
    }
  }
  return { channels: out, sampleRate: rate };
}

/** A 16-bit PCM or 32-bit float WAV file of the channels (tests, and saving a recording). */
export function encodeWav(channels: readonly Float32Array[], sampleRate: number, bits: 16 | 32 = 16): Uint8Array {
  const n = channels[0]?.length ?? 0;
  const C = channels.length;
  const bytesPer = bits / 8;
  const dataBytes = n * C * bytesPer;
  const out = new Uint8Array(44 + dataBytes);
  const view = new DataView(out.buffer);
  const put = (at: number, s: string) => [...s].forEach((ch, i) => (out[at + i] = ch.charCodeAt(0)));
  put(0, 'RIFF');
  view.setUint32(4, 36 + dataBytes, true);
  put(8, 'WAVE');
  put(12, 'fmt ');
  view.setUint32(16, 16, true);
  view.setUint16(20, bits === 32 ? FLOAT : PCM, true);
  view.setUint16(22, C, true);
  view.setUint32(24, sampleRate, true);
  view.setUint32(28, sampleRate * C * bytesPer, true);
  view.setUint16(32, C * bytesPer, true);
  view.setUint16(34, bits, true);
  put(36, 'data');
  view.setUint32(40, dataBytes, true);
  for (let f = 0; f < n; f++) {
    for (let c = 0; c < C; c++) {
      const at = 44 + (f * C + c) * bytesPer;
      const v = channels[c][f];
      if (bits === 32) view.setFloat32(at, v, true);
      else view.setInt16(at, Math.max(-32768, Math.min(32767, Math.round(v * 32768))), true);
    }
  }
  return out;
}
