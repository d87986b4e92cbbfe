/**
 * The audio encoder (src/model/audio/) against the gemma3n-audio-tiny goldens (HF's Gemma3nModel.get_audio_features
 * on 100 frames with the last 13 invalid): the sub-sampler output, both conformer blocks, the reduced and masked
 * last hidden state, the masks and the soft tokens, all within the README's 1e-4 (f32 weights; HF's own f32 vs f64
 * distance is <= 3.3e-6). The single-submission encode() must give the same soft tokens as the staged one; a
 * shorter clip reuses the buffers; bad input is refused with typed errors; the default int8 storage stays within
 * its measured distance (bench/audio-formats.ts compares every plan); memory() counts every GPU byte the encoder
 * holds (weights, activations, the buffers its kernels own, each to the byte) and destroy() frees them all.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { openSafetensorsCheckpoint } from '../../src/io/safetensors.ts';
import { directoryFiles } from '../../src/node/checkpoint-files.ts';
import { AudioEncoder } from '../../src/model/audio/encoder.ts';
import type { AudioEncoding } from '../../src/model/audio/encoder.ts';
import { readF32 } from '../../src/io/checkpoint.ts';
import { featureFrames } from '../../src/audio/log-mel.ts';
import { GemmaError } from '../../src/errors.ts';
import { testGpu } from '../helpers/gpu.ts';
import { fixtureDir } from '../helpers/fixtures.ts';
import { assertClose } from '../helpers/compare.ts';
import { trackLiveBuffers } from '../helpers/live-buffers.ts';
import { assertEncoderMemoryAndDestroy } from '../helpers/encoder-memory.ts';

const dir = fixtureDir('gemma3n-audio-tiny', ['README.md', 'golden.json', 'config.json', 'model.safetensors']);
interface AudioGolden {
  tolerance: { recommended_atol_audio_tensors_fp32: number };
  audio_input: { input_features: number[][]; input_features_mask: boolean[] };
  audio_tower: {
    subsample_conv_projection: number[][];
    subsampled_mask: boolean[];
    conformer_layer_outputs: number[][][];
    last_hidden_state: number[][];
    audio_mel_mask: boolean[];
  };
  audio_soft_tokens: number[][];
  end_to_end: { merged_audio_features: number[][] };
}
const golden = JSON.parse(readFileSync(join(dir, 'golden.json'), 'utf8')) as AudioGolden;
const atol = golden.tolerance.recommended_atol_audio_tensors_fp32;
const frames = golden.audio_input.input_features.length;
const features = Float32Array.from(golden.audio_input.input_features.flat());
const mask = Uint8Array.from(golden.audio_input.input_features_mask, (v) => (v ? 1 : 0));
const flat = (a: number[][]) => a.flat();

/**
 * HF's merge of one clip into its span, as the reference the runtime's layout must reproduce: the clip's soft tokens
 * fill the first `count` positions, padded ones (valid = 0) and every position past `count` take `padRow` (embed_audio
 * of the last hard token). The runtime does the same by putting that hard token's id at those positions
 * (src/runtime/media/audio-clips.ts), whose embedding the decoder computes.
 */
function audioSpanRows(encoding: AudioEncoding, span: number, padRow: Float32Array): Float32Array {
  const { width, count } = encoding;
  if (count > span) throw new GemmaError('invalid-argument', `${count} soft tokens for a span of ${span}`);
  const rows = new Float32Array(span * width);
  for (let j = 0; j < span; j++) rows.set(j < count && encoding.valid[j] === 1 ? encoding.tokens.subarray(j * width, (j + 1) * width) : padRow, j * width);
  return rows;
}

const encoderPromise = (async () => {
  const ctx = await testGpu();
  return AudioEncoder.load(ctx, await openSafetensorsCheckpoint(directoryFiles(dir)), { weights: 'f32' });
})();

test('audio tower (f32 weights): intermediates, masks and soft tokens within 1e-4 of HF', async () => {
  const enc = await encoderPromise;
  const { encoding, intermediates } = await enc.encodeWithIntermediates(features, frames, mask);
  const g = golden.audio_tower;
  const report: string[] = [];
  const check = (name: string, got: Float32Array, want: number[][]) => {
    const err = assertClose(got, flat(want), { atol, tag: name });
    report.push(`${name} ${err.toExponential(2)}`);
  };
  assert.deepEqual(Array.from(intermediates.stepValid), g.subsampled_mask.map((padded) => (padded ? 0 : 1)), 'conformer mask (frame mask at t * 4)');
  check('subsample_conv_projection', intermediates.subsampled, g.subsample_conv_projection);
  assert.equal(intermediates.layers.length, g.conformer_layer_outputs.length);
  intermediates.layers.forEach((x, l) => check(`conformer[${l}]`, x, g.conformer_layer_outputs[l]));
  check('last_hidden_state', intermediates.lastHidden, g.last_hidden_state);
  assert.deepEqual(Array.from(encoding.valid), g.audio_mel_mask.map((padded) => (padded ? 0 : 1)), 'reduced mask');
  assert.equal(encoding.count, golden.audio_soft_tokens.length);
  assert.equal(encoding.width, golden.audio_soft_tokens[0].length);
  check('audio_soft_tokens', encoding.tokens, golden.audio_soft_tokens);
  // HF's padded soft tokens are exact zeros.
  encoding.valid.forEach((v, j) => {
    if (!v) assert.ok(encoding.tokens.subarray(j * encoding.width, (j + 1) * encoding.width).every((x) => x === 0), `padded token ${j} is not zero`);
  });
  console.log(`# audio tower f32 vs HF, max abs: ${report.join(', ')}`);

  const single = await enc.encode(features, frames, mask);
  assert.deepEqual(single.tokens, encoding.tokens, 'one submission = staged submissions');
});

test('audio tower: a shorter clip after a longer one (same plan), all frames valid by default', async () => {
  const enc = await encoderPromise;
  const r = await enc.encode(features.subarray(0, 37 * 128), 37);
  assert.equal(r.count, enc.tokensFor(37));
  assert.equal(r.count, 3); // 37 -> 19 -> 10 steps -> ceil(10 / 4)
  assert.ok(r.valid.every((v) => v === 1));
  assert.ok(r.tokens.every(Number.isFinite));
  // The soft tokens are RMS-normalised rows (no scale): mean square 1.
  for (let j = 0; j < r.count; j++) {
    const row = r.tokens.subarray(j * r.width, (j + 1) * r.width);
    assert.ok(Math.abs(row.reduce((s, x) => s + x * x, 0) / r.width - 1) < 1e-3);
  }
});

test('audio span rows: soft tokens, padded ones and the rest of the span replaced as HF merges them', async () => {
  const enc = await encoderPromise;
  const ckpt = await openSafetensorsCheckpoint(directoryFiles(dir));
  const cfg = ckpt.config as { text_config: { vocab_size: number }; audio_config: { vocab_offset: number; rms_norm_eps: number }; audio_soft_tokens_per_image: number };
  // embed_audio of hard id text_vocab - 1, in float64: RMS0(W_proj · RMSNorm_hard(Emb[id - offset])).
  const emb = await readF32(ckpt, 'model.embed_audio.embedding.weight');
  const hardNorm = await readF32(ckpt, 'model.embed_audio.hard_embedding_norm.weight');
  const proj = await readF32(ckpt, 'model.embed_audio.embedding_projection.weight');
  const E = hardNorm.length, Dt = proj.length / E, eps = cfg.audio_config.rms_norm_eps;
  const row = emb.subarray((cfg.text_config.vocab_size - 1 - cfg.audio_config.vocab_offset) * E, (cfg.text_config.vocab_size - cfg.audio_config.vocab_offset) * E);
  const inv = 1 / Math.sqrt(row.reduce((a, x) => a + x * x, 0) / E + eps);
  const y = Array.from({ length: Dt }, (_, i) => row.reduce((a, x, j) => a + proj[i * E + j] * x * inv * hardNorm[j], 0));
  const inv2 = 1 / Math.sqrt(y.reduce((a, x) => a + x * x, 0) / Dt + eps);
  const padRow = Float32Array.from(y, (x) => x * inv2);
  const encoding = await enc.encode(features, frames, mask);
  const span = cfg.audio_soft_tokens_per_image;
  assert.equal(span, enc.config.softTokensPerClip);
  assertClose(audioSpanRows(encoding, span, padRow), flat(golden.end_to_end.merged_audio_features), { atol, tag: 'merged_audio_features' });
  assert.throws(() => audioSpanRows(encoding, 5, padRow), (e: unknown) => e instanceof GemmaError && e.code === 'invalid-argument');
});

test('audio tower: encodeSamples = features then encode', async () => {
  const enc = await encoderPromise;
  const samples = Float32Array.from({ length: 8000 }, (_, i) => 0.3 * Math.sin(i / 5) + 0.1 * Math.sin(i / 1.3));
  const r = await enc.encodeSamples(samples);
  assert.equal(r.count, enc.tokensFor(featureFrames(samples.length)));
  assert.ok(r.tokens.every(Number.isFinite) && r.valid.every((v) => v === 1));
});

test('audio tower: bad input is a typed error and the encoder stays usable', async () => {
  const enc = await encoderPromise;
  const bad = (f: () => Promise<unknown>) => assert.rejects(f, (e: unknown) => e instanceof GemmaError && e.code === 'invalid-argument');
  await bad(() => enc.encode(features, frames + 1));
  await bad(() => enc.encode(new Float32Array(0), 0));
  await bad(() => enc.encode(features, frames, new Uint8Array(3)));
  const nan = features.slice(0, 128 * 8);
  nan[200] = NaN;
  await bad(() => enc.encode(nan, 8));
  assert.equal((await enc.encode(features, frames, mask)).count, 7);
});

test('audio tower, default storage (q8): within the measured distance of HF; memory() counts every GPU byte it holds, destroy() frees them', async () => {
  // bench/audio-formats.ts measures every plan; q8 lands at relative RMS 1.35e-2 on the soft tokens (q4: 0.24).
  const ctx = await testGpu();
  const checkpoint = await openSafetensorsCheckpoint(directoryFiles(dir));
  const { live, stop } = trackLiveBuffers(ctx.device);
  const enc = await AudioEncoder.load(ctx, checkpoint);
  assert.equal(enc.weightPlan, 'q8');
  // Before the first encode the kernels hold only their placeholders (the plan and its parameters come with a clip).
  const atLoad = enc.memory().gpu;
  assert.ok(atLoad.kernels > 0 && atLoad.scratch === 0 && atLoad.total === atLoad.weights + atLoad.kernels, JSON.stringify(atLoad));
  const { tokens } = await enc.encode(features, frames, mask);
  const want = flat(golden.audio_soft_tokens);
  let se = 0, sw = 0;
  want.forEach((w, i) => {
    se += (tokens[i] - w) ** 2;
    sw += w * w;
  });
  const rel = Math.sqrt(se / sw);
  console.log(`# audio tower q8: soft tokens relative RMS error ${rel.toExponential(2)}`);
  // 2x the measured value: int8 rounding is deterministic, so only a real regression moves it.
  assert.ok(rel < 0.03, `relative RMS ${rel}`);
  try {
    const mem = assertEncoderMemoryAndDestroy(enc, live, 'audio/');
    assert.ok(mem.weights > 0 && mem.scratch > 0 && mem.kernels > atLoad.kernels);
    console.log(`# audio tower q8: memory() ${JSON.stringify(mem)}`);
  } finally {
    stop();
    enc.destroy();
  }
  await assert.rejects(() => enc.encode(features, frames), (e: unknown) => e instanceof GemmaError && e.code === 'disposed');
});
