/**
 * Audio in prompts, through the engine as the worker builds it (loadFromSource -> MediaEncoders -> PromptBuilder ->
 * Engine), in Node on Dawn:
 * - gemma3n-audio-tiny's end-to-end golden: the raw prompt [ids, audio features, ids] lays out as HF's input_ids
 *   (padded span positions carry the pad hard token, whose embedding HF merges there), logits of every position
 *   within the README's 1e-3 (float weights: f32 decoder and tower), and the 8-token greedy continuation;
 * - prefix reuse keyed by content: a different clip at the same position is encoded and prefilled again, the same
 *   clip is served from the cache;
 * - the layout of long clips (the random tiny preset's tower: 188 tokens per 30 s): a 75 s clip becomes 3 spans,
 *   `truncate` keeps one; hashes follow the samples and the rate;
 * - bad input: empty clips, features longer than a span, non-prefix masks, a model without an audio tower (Gemma 4's
 *   gemma4_audio config included), a clip longer than the context (the message says how much fits).
 * ~10 s here (the fixture's decoder and tower are tiny).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { directoryFiles } from '../../src/node/checkpoint-files.ts';
import { loadFromSource } from '../../src/runtime/loading/model-factory.ts';
import { MediaEncoders } from '../../src/runtime/media/encoders.ts';
import { PromptBuilder } from '../../src/runtime/media/prompt-builder.ts';
import { Engine } from '../../src/runtime/engine.ts';
import { GemmaError } from '../../src/errors.ts';
import { createRandomCheckpoint } from '../../src/model/gemma3n/random-checkpoint.ts';
import { createGemma4RandomCheckpoint, randomGemma4Config } from '../../src/model/gemma4/random-checkpoint.ts';
import type { GpuContext } from '../../src/gpu/device.ts';
import type { ContentPart } from '../../src/runtime/content.ts';
import { testGpu } from '../helpers/gpu.ts';
import { fixtureDir } from '../helpers/fixtures.ts';
import { assertClose } from '../helpers/compare.ts';
import { collect } from '../helpers/stream.ts';

const dir = fixtureDir('gemma3n-audio-tiny', ['README.md', 'golden.json', 'config.json', 'model.safetensors']);
interface E2EGolden {
  tolerance: { recommended_atol_logits_fp32: number };
  audio_input: { input_features: number[][]; input_features_mask: boolean[] };
  end_to_end: { input_ids: number[]; logits: number[][]; greedy_generated_ids: number[] };
}
const golden = JSON.parse(readFileSync(join(dir, 'golden.json'), 'utf8')) as E2EGolden;
const features = Float32Array.from(golden.audio_input.input_features.flat());
const mask = Uint8Array.from(golden.audio_input.input_features_mask, (v) => (v ? 1 : 0));
const ids = golden.end_to_end.input_ids;
const config = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')) as Record<string, number>;
const before = ids.slice(0, ids.indexOf(config.boa_token_id));
const after = ids.slice(ids.indexOf(config.eoa_token_id) + 1);

const setup = (async () => {
  const gpu = await testGpu();
  const loaded = await loadFromSource(gpu, { kind: 'folder', files: directoryFiles(dir) }, { kind: 'none' }, { weights: 'float', contextLength: 64, cache: false });
  const encoders = new MediaEncoders(gpu, loaded.media);
  const prompts = new PromptBuilder({ encoders, maxContext: loaded.model.maxContext });
  const engine = new Engine({ model: loaded.model, stopTokenIds: [], prompts });
  return { engine, prompts, encoders };
})();

/** Features with the golden's mask (`null`: no mask, every frame valid). */
const featuresPart = (f: Float32Array<ArrayBufferLike> = features, m: Uint8Array | null = mask): ContentPart => ({ type: 'audio_features', features: f, mask: m ?? undefined });

test('gemma3n-audio-tiny end to end: HF layout, logits within 1e-3, golden greedy continuation', async () => {
  const { engine, prompts, encoders } = await setup;
  const prompt = await prompts.raw([...before, featuresPart(), ...after]);
  // HF's input_ids, except that the padded span positions carry the pad hard token (vocab_offset + vocab_size - 1),
  // whose embedding is exactly what HF's merge puts there.
  const pad = (config as unknown as { audio_config: { vocab_offset: number; vocab_size: number } }).audio_config;
  const soft = prompt.mediaSpans[0].segment.softLength!;
  assert.equal(soft, 6, '7 soft tokens, the last one padded');
  assert.deepEqual(
    prompt.ids,
    ids.map((id, i) => (id === config.audio_token_id && i - before.length - 1 >= soft ? pad.vocab_offset + pad.vocab_size - 1 : id)),
  );
  const logits = await engine.logits(prompt);
  const err = assertClose(Float32Array.from(logits.flatMap((r) => Array.from(r))), golden.end_to_end.logits.flat(), { atol: golden.tolerance.recommended_atol_logits_fp32, tag: 'e2e logits' });
  const out = await collect(engine.generate(prompt, { temperature: 0, maxNewTokens: 8 }));
  assert.deepEqual(out.deltas.flatMap((d) => d.tokenIds), golden.end_to_end.greedy_generated_ids);
  assert.ok(out.stats!.encodeMs! > 0, 'the tower ran and its time is reported');
  // The memory line the worker posts (ModelInfo.memory.encoders.audio) is the tower's whole memory(): weights,
  // activations and the buffers its kernels own.
  const tower = (await encoders.get('audio')).memory().gpu;
  assert.ok(tower.kernels > 0 && tower.total === tower.weights + tower.scratch + tower.kernels, JSON.stringify(tower));
  assert.equal(encoders.memory().audio, tower.total, 'the tower has its own memory line');
  console.log(`audio e2e logits max error ${err.toExponential(2)}; encode ${out.stats!.encodeMs!.toFixed(1)} ms`);
});

test('prefix reuse is keyed by the audio content: another clip at the same position is recomputed', async () => {
  const { engine, prompts } = await setup;
  const other = features.map((v, i) => v + 0.25 * Math.sin(i));
  const run = async (f: Float32Array<ArrayBufferLike>) => (await collect(engine.generate(await prompts.raw([...before, featuresPart(f), ...after]), { temperature: 0, maxNewTokens: 1 }))).stats!;
  await engine.resetCache();
  const first = await run(features);
  const same = await run(features);
  const different = await run(other);
  assert.equal(first.reusedTokens, 0);
  assert.equal(same.reusedTokens, ids.length - 1, 'the same clip: everything but the last position is reused');
  assert.equal(same.encodeMs, undefined, 'and the tower does not run');
  assert.equal(different.reusedTokens, before.length + 1, 'a different clip: reuse stops at its span (after the begin-of-audio token)');
  assert.ok(different.encodeMs! > 0);
});

test('bad audio input: clear typed errors naming the part, the engine stays usable', async () => {
  const { engine, prompts } = await setup;
  const reject = async (items: Parameters<PromptBuilder['raw']>[0], code: string, message: RegExp) => {
    await assert.rejects(prompts.raw(items), (e: unknown) => {
      assert.ok(e instanceof GemmaError && e.code === code && message.test(e.message), `expected ${code} ${message}, got ${(e as GemmaError).code}: ${(e as Error).message}`);
      return true;
    });
  };
  await reject([...before, { type: 'audio', audio: new Float32Array(0), sampleRate: 16000 }], 'invalid-argument', /prompt item 5 \(audio\).*empty/);
  await reject([{ type: 'audio', audio: new Float32Array(100) } as ContentPart], 'invalid-argument', /sample rate/);
  await reject([{ type: 'audio', audio: Float32Array.of(0, NaN, 0), sampleRate: 8000 }], 'invalid-argument', /sample 1 is NaN/);
  await reject([featuresPart(new Float32Array(128 * 200), null)], 'invalid-argument', /make 13 audio tokens, more than the 12/);
  const holes = new Uint8Array(100).fill(1);
  holes[16] = 0; // the conformer samples the frame mask every 16 frames (stride 4, reduction 4)
  await reject([featuresPart(features, holes)], 'invalid-argument', /run of valid frames/);
  await reject([featuresPart(new Float32Array(7), null)], 'invalid-argument', /\[frames, 128\]/);
  // Too long for the context (64 positions): 5 clips of 14 positions.
  const five = Array.from({ length: 5 }, () => featuresPart());
  await assert.rejects(prompts.raw(five), (e: unknown) => e instanceof GemmaError && e.code === 'context-overflow' && /at most \d+ s of audio fit/.test(e.message));
  // Silence is valid audio (features of a silent clip are the log floor everywhere).
  const silent = await collect(engine.generate([...before, featuresPart(new Float32Array(128 * 40).fill(Math.log(1e-5)), null), ...after], { temperature: 0, maxNewTokens: 2 }));
  assert.equal(silent.stats.newTokens, 2);
});

test('a model without an audio tower: unsupported-input naming the part', async () => {
  const gpu = await testGpu();
  const textOnly = new PromptBuilder({ encoders: new MediaEncoders(gpu, undefined), maxContext: 64 });
  await assert.rejects(textOnly.raw([2, featuresPart()]), (e: unknown) => e instanceof GemmaError && e.code === 'unsupported-input' && /prompt item 2 \(audio features\).*cannot take audio/.test(e.message));
  const noTower = { ...(createRandomCheckpoint().config as Record<string, unknown>) };
  delete noTower.audio_config;
  const ggufLike = new PromptBuilder({ encoders: new MediaEncoders(gpu, { config: noTower, weights: 'q4', checkpoint: async () => createRandomCheckpoint() }), maxContext: 64 });
  await assert.rejects(ggufLike.raw([2, featuresPart()]), (e: unknown) => e instanceof GemmaError && e.code === 'unsupported-input' && /no audio encoder.*audio_config/.test(e.message));
  // Gemma 4's audio_config describes another tower (gemma4_audio): not Gemma 3n's, so not taken for one.
  const gemma4 = { ...randomGemma4Config(), audio_config: { model_type: 'gemma4_audio', hidden_size: 1024, num_hidden_layers: 12, num_attention_heads: 8 } };
  const gemma4Encoders = new MediaEncoders(gpu, { config: gemma4, weights: 'q4', checkpoint: async () => createGemma4RandomCheckpoint() });
  assert.equal(gemma4Encoders.family('audio'), undefined);
  const gemma4Prompts = new PromptBuilder({ encoders: gemma4Encoders, maxContext: 64 });
  await assert.rejects(gemma4Prompts.raw([2, featuresPart()]), (e: unknown) => e instanceof GemmaError && e.code === 'unsupported-input' && /no audio encoder.*Gemma 4/.test(e.message));
});

test('long clips: 30 s segments, each its own span (or one with truncate); hashes follow samples and rate', async () => {
  const random = createRandomCheckpoint();
  // Layout only: nothing here loads or runs the tower.
  const encoders = new MediaEncoders({} as GpuContext, { config: random.config, weights: 'q4', checkpoint: async () => random });
  const prompts = new PromptBuilder({ encoders, maxContext: 4096 });
  const c = random.config as Record<string, number>;
  const voice = Float32Array.from({ length: 75 * 16000 }, (_, i) => 0.1 * Math.sin(i / 7));
  const whole = await prompts.raw([{ type: 'audio', audio: voice, sampleRate: 16000 }]);
  const spans = whole.mediaSpans.map((m) => ({ positions: m.segment.ids.length, soft: m.segment.softLength }));
  assert.deepEqual(spans, [
    { positions: 188, soft: 188 },
    { positions: 188, soft: 188 },
    { positions: 188, soft: 94 }, // 15 s: 1497 frames -> 375 steps -> 94 tokens
  ]);
  assert.equal(whole.length, 3 * (188 + 2));
  assert.deepEqual([whole.ids[0], whole.ids[189], whole.ids[190]], [c.boa_token_id, c.eoa_token_id, c.boa_token_id]);
  assert.equal(new Set(whole.mediaSpans.map((m) => m.segment.hash)).size, 3, 'each segment has its own key');
  const truncated = await prompts.raw([{ type: 'audio', audio: voice, sampleRate: 16000, truncate: true }]);
  assert.equal(truncated.mediaSpans.length, 1);
  // 2 minutes at 44.1 kHz: 4 spans.
  const long = await prompts.raw([{ type: 'audio', audio: new Float32Array(120 * 44100), sampleRate: 44100 }]);
  assert.equal(long.mediaSpans.length, 4);
  // A 20 ms clip is padded to one frame: 1 token.
  const blip = await prompts.raw([{ type: 'audio', audio: new Float32Array(320), sampleRate: 16000 }]);
  assert.equal(blip.mediaSpans[0].segment.softLength, 1);
  // Hashes: same samples -> same key; one sample or the rate changed -> different keys.
  const key = async (audio: Float32Array, sampleRate: number) => (await prompts.raw([{ type: 'audio', audio, sampleRate }])).mediaSpans[0].segment.hash;
  const a = Float32Array.from({ length: 16000 }, (_, i) => Math.sin(i));
  const b = a.slice();
  b[8000] += 1e-6;
  assert.equal(await key(a, 16000), await key(a.slice(), 16000));
  assert.notEqual(await key(a, 16000), await key(b, 16000));
  assert.notEqual(await key(a, 16000), await key(a, 22050));
});
