/**
 * The CLI's audio commands, audio-features and embed-audio (their usage is in cli.ts's USAGE, `--help`), reached
 * through cli.ts. audio-features: raw float32 mono samples -> the library's resampler (when the rate is not 16 kHz)
 * -> Gemma 3n log-mel features [frames, 128]. embed-audio: features (or a clip) -> the audio tower and embed_audio
 * -> soft tokens [n, D]. --model takes what the other commands take (a checkpoint directory, URL, hub id, or
 * random:PRESET for random tower weights at that preset's config).
 */
import { readFile, writeFile } from 'node:fs/promises';
import { GemmaError } from '../errors.ts';
import { toGemmaAudio, GEMMA_SAMPLE_RATE } from '../audio/resample.ts';
import { gemma3nLogMel, GEMMA3N_AUDIO_FEATURES } from '../audio/log-mel.ts';
import { MEDIA_ENCODERS } from '../model/registry.ts';
import { openSource } from '../runtime/loading/open-source.ts';
import { nodeModelSource } from './model-source.ts';
import { createNodeGpuContext } from './gpu.ts';

const FLAGS: Record<string, string[]> = {
  'audio-features': ['wave', 'sample-rate', 'out'],
  'embed-audio': ['model', 'wave', 'sample-rate', 'features', 'mask', 'weights', 'out'],
};

function flagsOf(command: string, rest: string[]): Map<string, string> {
  const flags = new Map<string, string>();
  for (let i = 0; i < rest.length; i++) {
    const [name, inline] = rest[i].startsWith('--') ? rest[i].slice(2).split(/=(.*)/s) : [undefined, undefined];
    if (name === undefined || !FLAGS[command].includes(name)) throw new GemmaError('invalid-argument', `${command}: unexpected argument ${rest[i]} (see --help)`);
    const value = inline ?? rest[++i];
    if (value === undefined || (inline === undefined && value.startsWith('--'))) throw new GemmaError('invalid-argument', `${command}: --${name} needs a value`);
    flags.set(name, value);
  }
  return flags;
}

async function readBytes(path: string, what: string): Promise<Uint8Array> {
  try {
    return new Uint8Array(await readFile(path));
  } catch (err) {
    throw new GemmaError('bad-file', `${what} ${path}: ${(err as Error).message}`);
  }
}

async function readF32File(path: string, what: string): Promise<Float32Array> {
  const b = await readBytes(path, what);
  if (b.byteLength % 4 !== 0) throw new GemmaError('bad-file', `${what} ${path}: ${b.byteLength} bytes is not a whole number of float32 values`);
  return new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
}

/** Mono 16 kHz samples from --wave and --sample-rate. */
async function waveFrom(flags: Map<string, string>): Promise<{ samples: Float32Array; sampleRate: number; resampled: boolean }> {
  const rate = Number(flags.get('sample-rate'));
  if (!flags.has('sample-rate') || !Number.isInteger(rate) || rate <= 0) {
    throw new GemmaError('invalid-argument', `--sample-rate ${flags.get('sample-rate') ?? '(missing)'}: the rate the samples were recorded at, a positive integer in Hz`);
  }
  const wave = await readF32File(flags.get('wave')!, '--wave');
  return { samples: toGemmaAudio([wave], rate), sampleRate: rate, resampled: rate !== GEMMA_SAMPLE_RATE };
}

async function writeOut(flags: Map<string, string>, data: Float32Array): Promise<string | undefined> {
  const out = flags.get('out');
  if (out) await writeFile(out, new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
  return out;
}

/** Runs an audio command; returns what the CLI prints as JSON. */
export async function runAudioCommand(argv: string[]): Promise<unknown> {
  const [command, ...rest] = argv;
  const flags = flagsOf(command, rest);
  if (command === 'audio-features') {
    if (!flags.has('wave')) throw new GemmaError('invalid-argument', 'audio-features: --wave is required (see --help)');
    const { samples, sampleRate, resampled } = await waveFrom(flags);
    const t0 = performance.now();
    const f = gemma3nLogMel(samples);
    const ms = performance.now() - t0;
    const out = await writeOut(flags, f.features);
    return { frames: f.frames, bins: f.bins, samples: f.samples, sampleRate, resampled, truncated: samples.length > GEMMA3N_AUDIO_FEATURES.maxSamples, ms: Math.round(ms * 10) / 10, out };
  }

  const model = flags.get('model');
  if (!model) throw new GemmaError('invalid-argument', 'embed-audio: --model is required (see --help)');
  if (flags.has('wave') === flags.has('features')) throw new GemmaError('invalid-argument', 'embed-audio: pass exactly one of --wave (with --sample-rate) and --features');
  const family = MEDIA_ENCODERS.audio;
  const weights = family.weightFormats.find((f) => f === (flags.get('weights') ?? family.weightFormats[0]));
  if (!weights) throw new GemmaError('invalid-argument', `--weights ${flags.get('weights')}: expected ${family.weightFormats.join(', ')}`);
  const bins = GEMMA3N_AUDIO_FEATURES.featureSize;
  let features: Float32Array;
  let mask: Uint8Array | undefined;
  if (flags.has('wave')) {
    if (flags.has('mask')) throw new GemmaError('invalid-argument', 'embed-audio: --mask goes with --features (a clip from --wave has every frame valid)');
    features = gemma3nLogMel((await waveFrom(flags)).samples).features;
  } else {
    features = await readF32File(flags.get('features')!, '--features');
    if (features.length === 0 || features.length % bins !== 0) throw new GemmaError('invalid-argument', `--features: ${features.length} values is not a whole number of ${bins}-bin frames`);
    if (flags.has('mask')) mask = Uint8Array.from(await readBytes(flags.get('mask')!, '--mask'), (b) => (b ? 1 : 0));
  }
  const frames = features.length / bins;
  const source = await nodeModelSource(model);
  const { checkpoint } = await openSource(source, { kind: 'none' }, { onProgress: () => {} });
  const ctx = await createNodeGpuContext();
  const encoder = await family.loadWith(ctx, checkpoint, { weights, random: source.kind === 'random' });
  try {
    const t0 = performance.now();
    const r = await encoder.encode(features, frames, mask);
    const ms = performance.now() - t0;
    const out = await writeOut(flags, r.tokens);
    return { shape: [r.count, r.width], valid: Array.from(r.valid), frames, weights, ms: Math.round(ms), gpuBytes: encoder.memory().gpu.total, out };
  } finally {
    encoder.destroy();
  }
}
