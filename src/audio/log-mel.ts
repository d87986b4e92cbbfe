/**
 * Gemma 3n's audio features: the log-mel spectrogram Hugging Face's `Gemma3nAudioFeatureExtractor` computes (its
 * default settings are Gemma 3n's preprocessor_config.json), on the CPU. One clip per call:
 *   1. truncate to `maxSamples` (30 s), zero-pad at the end to a multiple of `padToMultipleOf` (128): length Lp;
 *   2. frames of frameLength + 1 = 513 samples every hop = 160: n = (Lp - 513) // 160 + 1 (HF unfolds 513 samples so
 *      that its HTK pre-emphasis sees one sample of history; the last sample is then dropped);
 *   3. HTK pre-emphasis inside the frame: y[0] = x[0] (1 - 0.97), y[j] = x[j] - 0.97 x[j - 1], j = 1..511;
 *   4. periodic Hann window of 512; 5. |rfft| of 1024 (zero-padded): 513 bins;
 *   6. 128 triangular HTK-mel filters 125..7,600 Hz, no area normalisation; 7. log(max(mel, 1e-5)).
 * The mask is all valid (HF's for one clip: padding frames are not masked).
 * Precision: frames, pre-emphasis and the Hann window are rounded to float32 as numpy does in HF; FFT, mel sums and
 * log in float64. Against the fixture: max 7.8e-5, mean 1.4e-7 (a plain float64 pipeline: max 1.5e-3).
 *
 * Why our own code and not transformers.js 4.3's extractor (bench/audio.ts measures both): transformers.js frames
 * with 512 samples and so returns one extra frame whenever (Lp - 512) % 160 == 0 (20 % of clip lengths), fails
 * unless frame_length / hop_length / fft_length are in its config, and runs the 513 x 128 mel product through
 * onnxruntime-web, whose wasm (14-28 MB) it fetches from a CDN by default. This file is a few KB, needs no wasm and
 * matches the fixture (test/audio/log-mel.test.ts) closer than the fixture asks.
 */
import { GemmaError } from '../errors.ts';
import { RealFft } from './fft.ts';

export interface AudioFeatureConfig {
  sampleRate: number;
  /** Mel bins (feature_size). */
  featureSize: number;
  /** Window length in samples (512); frames are unfolded with one more sample. */
  frameLength: number;
  hopLength: number;
  fftLength: number;
  minFrequency: number;
  maxFrequency: number;
  /** 0 disables pre-emphasis. */
  preemphasis: number;
  preemphasisHtkFlavor: boolean;
  melFloor: number;
  inputScaleFactor: number;
  /** Clips are truncated to this many samples (480,000 = 30 s). */
  maxSamples: number;
  padToMultipleOf: number;
  perBinMean: number[] | null;
  perBinStddev: number[] | null;
}

/** Gemma 3n's settings (HF's Gemma3nAudioFeatureExtractor defaults, as in the published preprocessor_config.json). */
export const GEMMA3N_AUDIO_FEATURES: Readonly<AudioFeatureConfig> = Object.freeze({
  sampleRate: 16000,
  featureSize: 128,
  frameLength: 512,
  hopLength: 160,
  fftLength: 1024,
  minFrequency: 125,
  maxFrequency: 7600,
  preemphasis: 0.97,
  preemphasisHtkFlavor: true,
  melFloor: 1e-5,
  inputScaleFactor: 1,
  maxSamples: 480_000,
  padToMultipleOf: 128,
  perBinMean: null,
  perBinStddev: null,
});

type Json = Record<string, unknown>;

function numberOr(c: Json, key: string, fallback: number): number {
  const v = c[key];
  if (v === undefined || v === null) return fallback;
  if (typeof v !== 'number' || !Number.isFinite(v)) throw new GemmaError('unsupported-config', `preprocessor_config.json: ${key} = ${JSON.stringify(v)} is not a number`);
  return v;
}

/**
 * The feature settings from a preprocessor_config.json (its top level, or a `feature_extractor` object inside it).
 * Accepts the sample counts (frame_length, hop_length, fft_length) or only the HF constructor's *_ms keys (then
 * derived as HF does: round(rate * ms / 1000), fft = next power of two, doubled with fft_overdrive). Missing keys
 * take Gemma 3n's defaults. A feature extractor other than Gemma3nAudioFeatureExtractor, or dither > 0 (random
 * noise: HF's own output would not be reproducible), is refused.
 */
export function parseAudioFeatureConfig(raw: unknown): AudioFeatureConfig {
  if (!raw || typeof raw !== 'object') throw new GemmaError('bad-file', 'preprocessor_config.json is not a JSON object');
  let c = raw as Json;
  if (c.feature_extractor && typeof c.feature_extractor === 'object') c = c.feature_extractor as Json;
  const type = c.feature_extractor_type;
  if (type !== undefined && type !== 'Gemma3nAudioFeatureExtractor') {
    throw new GemmaError('unsupported-config', `preprocessor_config.json: feature_extractor_type ${JSON.stringify(type)} is not Gemma3nAudioFeatureExtractor`);
  }
  if (numberOr(c, 'dither', 0) !== 0) throw new GemmaError('unsupported-config', 'preprocessor_config.json: dither > 0 adds random noise to the features; only 0 is supported');
  const d = GEMMA3N_AUDIO_FEATURES;
  const sampleRate = numberOr(c, 'sampling_rate', d.sampleRate);
  const frameLength = c.frame_length !== undefined ? numberOr(c, 'frame_length', d.frameLength) : Math.round((sampleRate * numberOr(c, 'frame_length_ms', 32)) / 1000);
  const hopLength = c.hop_length !== undefined ? numberOr(c, 'hop_length', d.hopLength) : Math.round((sampleRate * numberOr(c, 'hop_length_ms', 10)) / 1000);
  let fftLength = 2 ** Math.ceil(Math.log2(frameLength));
  if (c.fft_overdrive !== false) fftLength *= 2;
  fftLength = numberOr(c, 'fft_length', fftLength);
  const list = (key: string): number[] | null => {
    const v = c[key];
    if (v === undefined || v === null) return null;
    if (!Array.isArray(v) || !v.every((x) => typeof x === 'number')) throw new GemmaError('unsupported-config', `preprocessor_config.json: ${key} is not a list of numbers`);
    return v as number[];
  };
  const cfg: AudioFeatureConfig = {
    sampleRate,
    featureSize: numberOr(c, 'feature_size', d.featureSize),
    frameLength,
    hopLength,
    fftLength,
    minFrequency: numberOr(c, 'min_frequency', d.minFrequency),
    maxFrequency: numberOr(c, 'max_frequency', d.maxFrequency),
    preemphasis: numberOr(c, 'preemphasis', d.preemphasis),
    preemphasisHtkFlavor: c.preemphasis_htk_flavor !== false,
    melFloor: numberOr(c, 'mel_floor', d.melFloor),
    inputScaleFactor: numberOr(c, 'input_scale_factor', d.inputScaleFactor),
    maxSamples: d.maxSamples,
    padToMultipleOf: d.padToMultipleOf,
    perBinMean: list('per_bin_mean'),
    perBinStddev: list('per_bin_stddev'),
  };
  validate(cfg);
  return cfg;
}

function validate(c: AudioFeatureConfig): void {
  const bad = (what: string) => new GemmaError('unsupported-config', `audio feature settings: ${what}`);
  if (!Number.isInteger(c.frameLength) || c.frameLength < 2) throw bad(`frame length ${c.frameLength}`);
  if (!Number.isInteger(c.hopLength) || c.hopLength < 1) throw bad(`hop length ${c.hopLength}`);
  if (!Number.isInteger(Math.log2(c.fftLength)) || c.fftLength < c.frameLength) throw bad(`fft length ${c.fftLength} (a power of two >= the frame length)`);
  if (!Number.isInteger(c.featureSize) || c.featureSize < 1) throw bad(`feature size ${c.featureSize}`);
  if (!(c.minFrequency >= 0 && c.maxFrequency > c.minFrequency && c.maxFrequency <= c.sampleRate / 2)) throw bad(`mel range ${c.minFrequency}..${c.maxFrequency} Hz`);
  for (const [k, v] of [['per_bin_mean', c.perBinMean], ['per_bin_stddev', c.perBinStddev]] as const) {
    if (v && v.length !== c.featureSize) throw bad(`${k} has ${v.length} entries, not ${c.featureSize}`);
  }
}

/** Log-mel features of one clip. */
export interface AudioFeatures {
  /** [frames, bins] row-major float32. */
  features: Float32Array;
  frames: number;
  bins: number;
  /** 1 = valid frame (all 1 for one clip, as HF). */
  mask: Uint8Array;
  /** Samples the features were computed from (after truncation, before padding). */
  samples: number;
}

const hzToMel = (f: number) => 2595 * Math.log10(1 + f / 700);
const melToHz = (m: number) => 700 * (10 ** (m / 2595) - 1);

/**
 * HF's create_fb_matrix (HTK mel, no normalisation), [bins, mels] as per-filter sparse rows: filter m is nonzero
 * on bins first[m] .. first[m] + weights[m].length - 1. Bin frequencies are float32 in HF (k * rate / fft, exact
 * here for power-of-two ffts); the rest is float64 there and here.
 */
function melFilters(c: AudioFeatureConfig): { first: Int32Array; weights: Float64Array[] } {
  const bins = c.fftLength / 2 + 1;
  const n = c.featureSize;
  const mMin = hzToMel(c.minFrequency), mMax = hzToMel(c.maxFrequency);
  // numpy.linspace: i * step + start, the last point exactly the stop.
  const fPts = new Float64Array(n + 2);
  const step = (mMax - mMin) / (n + 1);
  for (let i = 0; i < n + 2; i++) fPts[i] = melToHz(i === n + 1 ? mMax : i * step + mMin);
  const binHz = (k: number) => Math.fround(k * Math.fround(c.sampleRate / c.fftLength));
  const first = new Int32Array(n);
  const weights: Float64Array[] = [];
  for (let m = 0; m < n; m++) {
    const lo = fPts[m], mid = fPts[m + 1], hi = fPts[m + 2];
    // HF: max(0, min(-(f_pts[m] - f) / f_diff[m], (f_pts[m + 2] - f) / f_diff[m + 1])); a triangle, so the nonzero
    // bins are one contiguous run.
    const w = (k: number) => Math.max(0, Math.min((binHz(k) - lo) / (mid - lo), (hi - binHz(k)) / (hi - mid)));
    let k0 = 0;
    while (k0 < bins && w(k0) === 0) k0++;
    let k1 = k0;
    while (k1 < bins && w(k1) > 0) k1++;
    first[m] = Math.min(k0, bins - 1);
    weights.push(Float64Array.from({ length: k1 - k0 }, (_, i) => w(k0 + i)));
  }
  return { first, weights };
}

/** HF's frame count for a clip of `samples` samples (after truncation and padding). 0 when shorter than a frame. */
export function featureFrames(samples: number, c: AudioFeatureConfig = GEMMA3N_AUDIO_FEATURES): number {
  const n = Math.min(samples, c.maxSamples);
  const padded = Math.ceil(n / c.padToMultipleOf) * c.padToMultipleOf;
  const unfold = c.frameLength + 1;
  return padded < unfold ? 0 : Math.floor((padded - unfold) / c.hopLength) + 1;
}

/** Computes Gemma 3n's log-mel features (see the file header). Reusable: filters, window and FFT are built once. */
export class LogMelExtractor {
  readonly config: AudioFeatureConfig;
  private readonly fft: RealFft;
  private readonly window: Float64Array;
  private readonly filters: { first: Int32Array; weights: Float64Array[] };

  constructor(config: AudioFeatureConfig = GEMMA3N_AUDIO_FEATURES) {
    validate(config);
    this.config = config;
    this.fft = new RealFft(config.fftLength);
    // Periodic Hann as HF computes it, in float32 throughout: 0.5 * (1 - cos(2 pi j / L)) on a float32 arange (numpy
    // casts the Python scalars 2 pi and L to float32; cos is float32). Rounding each step as float32 does matters:
    // the lowest mel bin of a loud frame sits 1e-6 below the frame's peak bin, where 1e-7 changes of the window show.
    const r = Math.fround;
    const twoPi = r(2 * Math.PI);
    this.window = Float64Array.from({ length: config.frameLength }, (_, j) => r(0.5 * r(1 - r(Math.cos(r(r(twoPi * j) / config.frameLength))))));
    this.filters = melFilters(config);
  }

  /**
   * Features of mono `samples` at config.sampleRate (resample first: src/audio/resample.ts). Clips longer than
   * maxSamples are truncated (as HF); a clip shorter than one frame (513 samples after padding) is an
   * 'invalid-argument' GemmaError. Non-finite samples are rejected.
   */
  extract(samples: Float32Array): AudioFeatures {
    const c = this.config;
    const n = Math.min(samples.length, c.maxSamples);
    const frames = featureFrames(n, c);
    if (frames === 0) {
      throw new GemmaError('invalid-argument', `audio clip of ${samples.length} samples is shorter than one feature frame (${c.frameLength + 1} samples after padding to ${c.padToMultipleOf}, ${((c.frameLength + 1) / c.sampleRate * 1000).toFixed(0)} ms); record a longer clip`);
    }
    // HF frames the float32 waveform and does pre-emphasis and windowing in float32 (numpy keeps float32 arrays
    // float32 against Python-float scalars): Math.fround reproduces that rounding, which is what brings us from a
    // float64 pipeline's 1.5e-3 (one low-energy bin of w3) to within 1e-5 of HF. FFT and mel sums stay float64 (the
    // fixture measured HF against a float64 FFT: 4.8e-7).
    const r = Math.fround;
    const scale = r(c.inputScaleFactor);
    const x = (i: number) => (i < n ? (scale === 1 ? samples[i] : r(samples[i] * scale)) : 0);
    for (let i = 0; i < n; i++) {
      if (!Number.isFinite(samples[i])) throw new GemmaError('invalid-argument', `audio sample ${i} is ${samples[i]}; samples must be finite (normally in [-1, 1])`);
    }
    const L = c.frameLength;
    const bins = c.featureSize;
    const out = new Float32Array(frames * bins);
    const frame = new Float64Array(L);
    const mag = new Float64Array(this.fft.bins);
    const { first, weights } = this.filters;
    const a = c.preemphasis;
    const a32 = r(a);
    const first0 = r(1 - a); // (1.0 - preemphasis) in float64, then a float32 scalar
    const logFloor = c.melFloor;
    for (let t = 0; t < frames; t++) {
      const s = t * c.hopLength;
      if (a > 0 && c.preemphasisHtkFlavor) {
        frame[0] = r(x(s) * first0);
        for (let j = 1; j < L; j++) frame[j] = r(x(s + j) - r(a32 * x(s + j - 1)));
      } else if (a > 0) {
        for (let j = 0; j < L; j++) frame[j] = r(x(s + j + 1) - r(a32 * x(s + j)));
      } else {
        for (let j = 0; j < L; j++) frame[j] = x(s + j);
      }
      for (let j = 0; j < L; j++) frame[j] = r(frame[j] * this.window[j]);
      this.fft.magnitudes(frame, mag);
      for (let m = 0; m < bins; m++) {
        const w = weights[m];
        const k0 = first[m];
        let acc = 0;
        for (let k = 0; k < w.length; k++) acc += mag[k0 + k] * w[k];
        let v = Math.log(Math.max(acc, logFloor));
        if (c.perBinMean) v -= c.perBinMean[m];
        if (c.perBinStddev) v /= c.perBinStddev[m];
        out[t * bins + m] = v;
      }
    }
    return { features: out, frames, bins, mask: new Uint8Array(frames).fill(1), samples: n };
  }
}

let defaultExtractor: LogMelExtractor | undefined;

/** Gemma 3n's features of one mono 16 kHz clip with the default settings. */
export function gemma3nLogMel(samples: Float32Array): AudioFeatures {
  defaultExtractor ??= new LogMelExtractor();
  return defaultExtractor.extract(samples);
}
