/**
 * An audio part (as the page sent it: samples at their own rate, or precomputed log-mel features) to the clips the
 * prompt holds, each one span of audio tokens. Hugging Face's processor truncates a clip to 30 s; here a longer clip
 * becomes consecutive 30 s clips, each its own span, so a 2-minute voice note is heard whole (unless the caller asks
 * for truncation). Everything a clip's layout needs (how many clips, soft tokens per clip, its content hash) is
 * known without resampling or encoding; the work itself (resample once per part, log-mel, the tower) happens in
 * `embed()`, only for positions the KV cache does not already hold.
 *
 * Lengths: the resampler gives ceil(n * 16000 / rate) samples (src/audio/resample.ts); a clip of L samples has
 * featureFrames(L) frames (HF's count) and the tower makes tokensForFrames(frames) soft tokens (188 for 30 s). A
 * clip shorter than one feature frame (513 samples, 32 ms) is zero-padded to one frame when it is the whole part
 * (silence and very short clips are valid audio) and dropped when it is the tail of a longer part.
 */
import { GemmaError } from '../../errors.ts';
import { GEMMA_SAMPLE_RATE, resample, resampledLength } from '../../audio/resample.ts';
import { featureFrames, gemma3nLogMel, GEMMA3N_AUDIO_FEATURES } from '../../audio/log-mel.ts';
import { MEDIA_ENCODERS } from '../../model/registry.ts';
import type { AudioPayload } from '../content.ts';
import type { MediaSegment } from '../prompt.ts';
import { contentHash, MEDIA_PREPROCESSING_VERSION } from './content-hash.ts';

type AudioFamily = typeof MEDIA_ENCODERS.audio;
export type AudioTower = ReturnType<AudioFamily['towerConfig']>;
export type AudioEncoderHandle = Awaited<ReturnType<AudioFamily['load']>>;

/** Samples per clip: HF's truncation length (30 s at 16 kHz). */
export const CLIP_SAMPLES = GEMMA3N_AUDIO_FEATURES.maxSamples;
/** The shortest clip the feature extractor frames (one 513-sample frame). */
const MIN_CLIP_SAMPLES = GEMMA3N_AUDIO_FEATURES.frameLength + 1;

export interface AudioClipContext {
  tower: AudioTower;
  /** Positions per clip in the prompt (audio_soft_tokens_per_image). */
  span: number;
  /** The loaded encoder (loads it on first use). */
  encoder(signal?: AbortSignal): Promise<AudioEncoderHandle>;
}

/** One clip's span: a MediaSegment whose first `softLength` positions take the encoder's rows. */
export interface AudioClipSegment extends MediaSegment {
  /** Seconds of audio in this clip. */
  seconds: number;
  /** ms the last embed() spent in the feature extractor and the tower (not loading it). */
  encodeMs?: number;
}

function fail(label: string, what: string): never {
  throw new GemmaError('invalid-argument', `${label}: ${what}`);
}

const secondsText = (s: number) => (s >= 60 ? `${Math.floor(s / 60)}:${(s % 60).toFixed(1).padStart(4, '0')}` : `${s.toFixed(s < 10 ? 2 : 1)} s`);

/**
 * The clips of one audio part, in order, with their span ids laid out: `placeholderId` for the soft tokens, then
 * `padId` (HF's padding embedding) to the end of the span.
 */
export async function audioClips(payload: AudioPayload, label: string, ctx: AudioClipContext, ids: { placeholderId: number; padId?: number }): Promise<AudioClipSegment[]> {
  const family = MEDIA_ENCODERS.audio;
  const spanIds = (soft: number) => {
    if (soft > ctx.span) throw new GemmaError('internal', `${label}: ${soft} soft tokens exceed the span of ${ctx.span}`);
    if (soft < ctx.span && ids.padId === undefined) throw new GemmaError('unsupported-config', `${label}: the clip fills ${soft} of ${ctx.span} positions and the config names no padding token`);
    return Array.from({ length: ctx.span }, (_, i) => (i < soft ? ids.placeholderId : ids.padId!));
  };
  const width = ctx.tower.textHiddenSize;

  if (payload.kind === 'features') {
    const bins = ctx.tower.inputFeatSize;
    const { features, mask } = payload;
    if (!(features instanceof Float32Array) || features.length === 0 || features.length % bins !== 0) {
      fail(label, `audio features must be a non-empty Float32Array of [frames, ${bins}] log-mel values (got ${features?.length ?? typeof features} values)`);
    }
    const frames = features.length / bins;
    if (mask !== undefined && (!(mask instanceof Uint8Array) || mask.length !== frames)) fail(label, `the feature mask must be a Uint8Array of ${frames} entries (one per frame)`);
    const valid = family.validTokens(ctx.tower, frames, mask);
    const count = valid.length;
    let soft = 0;
    while (soft < count && valid[soft]) soft++;
    if (valid.subarray(soft).some((v) => v)) fail(label, 'the feature mask must be a run of valid frames followed by padding (as a batch pads a clip)');
    if (count > ctx.span) fail(label, `${frames} feature frames make ${count} audio tokens, more than the ${ctx.span} one clip holds (30 s = ${featureFrames(CLIP_SAMPLES)} frames); split the features into 30 s clips`);
    const hash = await contentHash(`${MEDIA_PREPROCESSING_VERSION.audio}|features|${bins}`, features, mask ?? new Uint8Array(0));
    const segment: AudioClipSegment = {
      type: 'media',
      modality: 'audio',
      hash,
      ids: spanIds(soft),
      softLength: soft,
      label,
      seconds: (frames * GEMMA3N_AUDIO_FEATURES.hopLength) / GEMMA_SAMPLE_RATE,
      async embed(signal) {
        const encoder = await ctx.encoder(signal);
        const t0 = performance.now();
        const e = await encoder.encode(features, frames, mask, { signal });
        segment.encodeMs = performance.now() - t0;
        return e.tokens.subarray(0, soft * width);
      },
    };
    return [segment];
  }

  const { samples, sampleRate, truncate } = payload;
  if (!(samples instanceof Float32Array)) fail(label, 'audio samples must be a Float32Array');
  if (!Number.isInteger(sampleRate) || sampleRate <= 0) fail(label, `the sample rate ${sampleRate} is not a positive integer number of Hz`);
  if (samples.length === 0) fail(label, 'the audio clip is empty (0 samples); record or pick a clip with some sound (silence is fine)');
  for (let i = 0; i < samples.length; i++) {
    if (!Number.isFinite(samples[i])) fail(label, `audio sample ${i} is ${samples[i]}; samples must be finite numbers (normally in [-1, 1])`);
  }
  const total = resampledLength(samples.length, sampleRate);
  const clipCount = truncate ? 1 : Math.max(1, Math.ceil(total / CLIP_SAMPLES));
  const base = await contentHash(`${MEDIA_PREPROCESSING_VERSION.audio}|samples|${sampleRate}|${truncate ? 'truncate' : 'split'}`, samples);
  // Resampled once per part, on the first clip that needs it.
  let resampled: Promise<Float32Array> | undefined;
  const audio16k = () => (resampled ??= Promise.resolve().then(() => (sampleRate === GEMMA_SAMPLE_RATE ? samples : resample(samples, sampleRate))));
  const clips: AudioClipSegment[] = [];
  for (let c = 0; c < clipCount; c++) {
    const start = c * CLIP_SAMPLES;
    const length = Math.min(CLIP_SAMPLES, total - start);
    if (length < MIN_CLIP_SAMPLES && c > 0) break; // a tail of under 32 ms: nothing audible
    const padded = Math.max(length, MIN_CLIP_SAMPLES);
    const frames = featureFrames(padded);
    const soft = family.tokensForFrames(ctx.tower, frames);
    const where = clipCount > 1 ? `${label} (${secondsText(start / GEMMA_SAMPLE_RATE)}–${secondsText((start + length) / GEMMA_SAMPLE_RATE)})` : label;
    const segment: AudioClipSegment = {
      type: 'media',
      modality: 'audio',
      hash: clipCount > 1 ? `${base}:${c}` : base,
      ids: spanIds(soft),
      softLength: soft,
      label: where,
      seconds: length / GEMMA_SAMPLE_RATE,
      async embed(signal) {
        const all = await audio16k();
        const clip = new Float32Array(padded);
        clip.set(all.subarray(start, start + length));
        const encoder = await ctx.encoder(signal);
        const t0 = performance.now();
        const f = gemma3nLogMel(clip);
        if (f.frames !== frames) throw new GemmaError('internal', `${where}: ${f.frames} feature frames, the layout expected ${frames}`);
        const e = await encoder.encode(f.features, f.frames, f.mask, { signal });
        segment.encodeMs = performance.now() - t0;
        if (e.count !== soft) throw new GemmaError('internal', `${where}: the tower made ${e.count} soft tokens, the layout expected ${soft}`);
        return e.tokens.subarray(0, soft * width);
      },
    };
    clips.push(segment);
  }
  return clips;
}
