// The host-independent engine over a fake model and the real Gemma tokenizer: UTF-8 safe streaming, stop
// tokens and strings, KV-reuse accounting, context limits, abort and busy.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Engine } from '../../src/runtime/engine.ts';
import { GenerationStream } from '../../src/runtime/generation-stream.ts';
import { Prompt, type MediaSegment, type PromptSegment } from '../../src/runtime/prompt.ts';
import { GemmaError } from '../../src/errors.ts';
import type { ChatMessage, GenerateOptions } from '../../src/runtime/protocol.ts';
import { FakeModel, type FakeModelOptions } from './fake-model.ts';
import { gemmaTokenizer } from './gemma-tokenizer.ts';
import { freshRng } from '../helpers/random.ts';
import { collect } from '../helpers/stream.ts';

const GEMMA_STOP = [1, 106];

async function makeEngine(opts: FakeModelOptions = {}) {
  const model = new FakeModel(opts);
  const engine = new Engine({ model, tokenizer: await gemmaTokenizer(), stopTokenIds: GEMMA_STOP });
  return { model, engine };
}


async function rejectsWith(p: Promise<unknown> | GenerationStream, code: string, pattern?: RegExp) {
  await assert.rejects(p instanceof GenerationStream ? p.stats : p, (err: unknown) => {
    assert.ok(err instanceof GemmaError, `expected a GemmaError, got ${err}`);
    assert.equal(err.code, code, err.message);
    if (pattern) assert.match(err.message, pattern);
    return true;
  });
}

/** No lone UTF-16 surrogate (String.prototype.isWellFormed, which our TS lib target lacks). */
function wellFormed(s: string): boolean {
  return !/[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/.test(s);
}

const hi: ChatMessage[] = [{ role: 'user', content: 'Hi' }];

test('streamed text is whole characters: byte-fallback emoji, CJK and rare scripts split across tokens', async () => {
  const tok = await gemmaTokenizer();
  const replyText = 'Hi 𠜎𠜱 and 🦩🪿, ꙮ 你好 ✓ 😀 done.';
  const reply = tok.encode(replyText).filter((id) => id !== 2);
  assert.ok(reply.length > replyText.length / 3);
  // The text really uses byte-fallback pieces (more than one token per character somewhere).
  assert.ok(reply.some((id) => tok.tokenBytes(id).length === 1 && tok.tokenBytes(id)[0] >= 0x80), 'expected byte-fallback tokens');
  const { engine } = await makeEngine({ reply });
  const r = await collect(engine.chat(hi, { temperature: 0 }));
  assert.equal(r.text, replyText);
  assert.equal(r.text, tok.decode(reply));
  assert.deepEqual(r.ids, reply);
  for (const d of r.deltas) {
    assert.ok(!d.text.includes('\uFFFD'), `delta ${JSON.stringify(d.text)} has a replacement character`);
    assert.ok(wellFormed(d.text), `delta ${JSON.stringify(d.text)} is not well-formed UTF-16`);
  }
  assert.ok(r.deltas.some((d) => d.text === '' && d.tokenIds.length === 1), 'some token finishes no character');
  assert.equal(r.stats.finishReason, 'stop');
  assert.equal(r.stats.newTokens, reply.length + 1); // + <end_of_turn>
});

test('incremental text equals the full decode for random token sequences (fuzz)', async () => {
  const tok = await gemmaTokenizer();
  const { rng, tag } = freshRng();
  const pieces = ['a', ' the', '😀', '𠜎', '🦩', 'ꙮ', '好', '\n', 'é', ' ', '<0xE2>', '<0x80>', '<0xFF>', '<0xF0>', '<0x9F>'];
  const vocabIds = pieces.flatMap((p) => {
    const byte = /^<0x([0-9A-F]{2})>$/.exec(p);
    return byte ? [byteTokenId(tok, parseInt(byte[1], 16))] : tok.encode(p).filter((id) => id !== 2);
  });
  for (let trial = 0; trial < 20; trial++) {
    const reply = Array.from({ length: 1 + rng.int(0, 30) }, () => vocabIds[rng.int(0, vocabIds.length)]);
    const { engine } = await makeEngine({ reply });
    const r = await collect(engine.generate([2, 100], { temperature: 0 }));
    assert.equal(r.text, tok.decode(reply), `trial ${trial} ${JSON.stringify(reply)} ${tag}`);
    // Only genuinely invalid bytes become U+FFFD; never a character that is still being completed.
    for (const d of r.deltas) assert.ok(wellFormed(d.text), tag);
  }
});

/** Gemma's byte-fallback pieces <0x00>..<0xFF> are ids 238..493. */
function byteTokenId(tok: Awaited<ReturnType<typeof gemmaTokenizer>>, b: number): number {
  const id = 238 + b;
  assert.deepEqual([...tok.tokenBytes(id)], [b]);
  return id;
}

test('stop strings end generation and never leak, even split across tokens', async () => {
  const tok = await gemmaTokenizer();
  const reply = tok.encode('Hello world. ST').concat(tok.encode('OP here and more')).filter((id) => id !== 2);
  const { engine } = await makeEngine({ reply });
  const r = await collect(engine.chat(hi, { stop: ['STOP'] }));
  assert.equal(r.text, 'Hello world. ');
  assert.equal(r.stats.finishReason, 'stop');
  assert.ok(r.stats.newTokens < reply.length);
  for (const d of r.deltas) assert.ok(!d.text.includes('ST'), JSON.stringify(d.text));

  // A partial match that never completes is released at the end.
  const reply2 = tok.encode('ends with ST').filter((id) => id !== 2);
  const e2 = await makeEngine({ reply: reply2 });
  const r2 = await collect(e2.engine.chat(hi, { stop: ['STOP'] }));
  assert.equal(r2.text, 'ends with ST');
  assert.equal(r2.stats.finishReason, 'stop'); // by <end_of_turn>
});

test('stop tokens (<end_of_turn>, <eos>, extra stopTokenIds) end generation and are not emitted', async () => {
  for (const [stopId, extra] of [[106, []], [1, []], [5000, [5000]]] as const) {
    const { engine } = await makeEngine({ reply: [1000, 1001, stopId, 1002] });
    const r = await collect(engine.chat(hi, { stopTokenIds: [...extra] }));
    assert.deepEqual(r.ids, [1000, 1001]);
    assert.equal(r.stats.finishReason, 'stop');
    assert.equal(r.stats.newTokens, 3);
  }
});

test('maxNewTokens ends with finishReason length', async () => {
  const { engine, model } = await makeEngine();
  const r = await collect(engine.chat(hi, { maxNewTokens: 7 }));
  assert.equal(r.ids.length, 7);
  assert.equal(r.stats.newTokens, 7);
  assert.equal(r.stats.finishReason, 'length');
  // The last sampled token is not fed: the cache holds the prompt + 6.
  assert.equal(model.cache.length, r.stats.promptTokens + 6);
});

test('multi-turn: the second turn prefills only the new tokens; edits invalidate from the edit on', async () => {
  const tok = await gemmaTokenizer();
  const { engine, model } = await makeEngine({ reply: tok.encode('Hello there!').filter((id) => id !== 2) });
  const t1 = await collect(engine.chat(hi, {}));
  assert.equal(t1.stats.reusedTokens, 0);
  assert.equal(t1.stats.prefillTokens, t1.stats.promptTokens);
  assert.equal(t1.text, 'Hello there!');

  const turn2: ChatMessage[] = [...hi, { role: 'assistant', content: t1.text }, { role: 'user', content: 'And now?' }];
  const before = model.processed;
  const t2 = await collect(engine.chat(turn2, {}));
  const prompt2 = tok.applyChatTemplate(turn2);
  assert.equal(t2.stats.promptTokens, prompt2.length);
  // Everything up to the end of the model's reply was cached: prompt 1 + the reply tokens.
  assert.equal(t2.stats.reusedTokens, t1.stats.promptTokens + t1.ids.length);
  assert.equal(t2.stats.prefillTokens, prompt2.length - t2.stats.reusedTokens);
  assert.equal(model.processed - before, t2.stats.prefillTokens + t2.stats.newTokens - 1);
  assert.deepEqual(model.cache.slice(0, prompt2.length), prompt2);

  // Editing the first user message keeps only the template prefix before it.
  const edited: ChatMessage[] = [{ role: 'user', content: 'Yo' }, ...turn2.slice(1)];
  const t3 = await collect(engine.chat(edited, {}));
  const common = tok.applyChatTemplate(edited).findIndex((id, i) => id !== prompt2[i]);
  assert.equal(t3.stats.reusedTokens, common);
  assert.ok(common > 0 && common < 5, `reused ${common}`);

  // Same prompt again (regenerate): all but the last prompt token are reused.
  const t4 = await collect(engine.chat(edited, {}));
  assert.equal(t4.stats.reusedTokens, t4.stats.promptTokens - 1);
  assert.equal(t4.stats.prefillTokens, 1);
});

test('KV reuse gives the same tokens as a fresh prefill (hash model sees the whole cache)', async () => {
  const a = await makeEngine();
  const first = await collect(a.engine.generate([2, 10, 11, 12], { temperature: 0, maxNewTokens: 5 }));
  const cont = [2, 10, 11, 12, ...first.ids, 42, 43];
  const reused = await collect(a.engine.generate(cont, { temperature: 0, maxNewTokens: 5 }));
  assert.equal(reused.stats.reusedTokens, 4 + 4); // 5 sampled, the last one never fed
  const b = await makeEngine();
  const fresh = await collect(b.engine.generate(cont, { temperature: 0, maxNewTokens: 5 }));
  assert.equal(fresh.stats.reusedTokens, 0);
  assert.deepEqual(reused.ids, fresh.ids);
});

test('a model that cannot rewind its cache that far: the engine prefills from the start, and says so', async () => {
  // Like sliding-window rings: rewinding up to 2 positions is free, further back everything must be recomputed.
  const { engine, model } = await makeEngine({ keepLimit: (requested, length) => (length - requested <= 2 ? requested : 0) });
  const first = await collect(engine.generate([2, 10, 11, 12, 13, 14], { maxNewTokens: 3 }));
  const near = [2, 10, 11, 12, 13, 14, first.ids[0], 77];
  const r1 = await collect(engine.generate(near, { maxNewTokens: 2 }));
  assert.equal(r1.stats.reusedTokens, 7);
  assert.equal(r1.stats.prefillTokens, 1);
  const far = [2, 10, 11, 12, 99];
  const r2 = await collect(engine.generate(far, { temperature: 0, maxNewTokens: 2 }));
  assert.equal(r2.stats.reusedTokens, 0);
  assert.equal(r2.stats.prefillTokens, far.length);
  assert.deepEqual(model.cache.slice(0, far.length), far);
  // The tokens are what a fresh engine gives for the same prompt.
  const fresh = await makeEngine();
  assert.deepEqual(r2.ids, (await collect(fresh.engine.generate(far, { temperature: 0, maxNewTokens: 2 }))).ids);
});

test('context overflow: a clear error with the numbers; generation stops at the context end with length', async () => {
  const { engine } = await makeEngine({ maxContext: 32 });
  const long = Array.from({ length: 40 }, (_, i) => 100 + i);
  await rejectsWith(engine.generate(long), 'context-overflow', /40 tokens.*context holds 32.*contextLength/s);
  await rejectsWith(engine.generate(long.slice(0, 32)), 'context-overflow', /32 tokens/);
  const r = await collect(engine.generate(long.slice(0, 28), { maxNewTokens: 100 }));
  assert.equal(r.stats.finishReason, 'length');
  assert.equal(r.stats.newTokens, 32 - 28 + 1); // 4 fed + the last one sampled
  // And the engine still works after both.
  const ok = await collect(engine.generate([2, 5], { maxNewTokens: 3 }));
  assert.equal(ok.stats.newTokens, 3);
});

test('abort stops within one token; the next generation works and reuses the cache', async () => {
  const { engine, model } = await makeEngine({ delayMs: 2 });
  const controller = new AbortController();
  let seen = 0;
  let atAbort = 0;
  const stream = engine.chat(hi, { maxNewTokens: 1000, signal: controller.signal });
  for await (const _ of stream) {
    if (++seen === 5) {
      controller.abort();
      atAbort = model.processed;
    }
  }
  const stats = await stream.stats;
  assert.equal(stats.finishReason, 'abort');
  // The consumer sees a delta after the engine has moved on: at most the one token in flight follows the abort.
  assert.ok(stats.newTokens === 5 || stats.newTokens === 6, `${stats.newTokens} tokens`);
  assert.ok(model.processed <= atAbort + 1, 'no model call after the one in flight');
  const r = await collect(engine.chat(hi, { maxNewTokens: 3 }));
  assert.equal(r.stats.finishReason, 'length');
  assert.equal(r.stats.reusedTokens, r.stats.promptTokens - 1);

  // Already aborted: nothing runs.
  const pre = new AbortController();
  pre.abort();
  const before = model.processed;
  const s = await engine.generate([2, 77, 78], { signal: pre.signal }).stats;
  assert.equal(s.finishReason, 'abort');
  assert.equal(s.newTokens, 0);
  assert.equal(model.processed, before);
});

test('busy: a second generation while one runs fails with code busy; the first is unaffected', async () => {
  const { engine } = await makeEngine({ delayMs: 1 });
  const first = engine.chat(hi, { maxNewTokens: 20 });
  await rejectsWith(engine.chat(hi), 'busy', /already running/);
  await rejectsWith(engine.generate([2, 3]), 'busy');
  const stats = await first.stats;
  assert.equal(stats.newTokens, 20);
  assert.equal((await engine.chat(hi, { maxNewTokens: 2 }).stats).newTokens, 2);
});

test('seeded sampling is reproducible; sampling params reach the model', async () => {
  const opts: GenerateOptions = { seed: 1234, temperature: 0.7, topK: 40, topP: 0.9, maxNewTokens: 8 };
  const a = await makeEngine();
  const ra = await collect(a.engine.generate([2, 9], opts));
  const b = await makeEngine();
  const rb = await collect(b.engine.generate([2, 9], opts));
  assert.deepEqual(ra.ids, rb.ids);
  const c = await makeEngine();
  const rc = await collect(c.engine.generate([2, 9], { ...opts, seed: 99 }));
  assert.notDeepEqual(ra.ids, rc.ids);
  assert.deepEqual({ ...a.model.samples[0], random: 0 }, { temperature: 0.7, topK: 40, topP: 0.9, random: 0 });
  // Defaults are Gemma's generation_config.
  const d = await makeEngine();
  await d.engine.generate([2, 9], { maxNewTokens: 1 }).stats;
  assert.deepEqual({ ...d.model.samples[0], random: 0 }, { temperature: 1, topK: 64, topP: 0.95, random: 0 });
});

test('works without the fused step (prefill + sample per token)', async () => {
  const a = await makeEngine({ fusedStep: false });
  const b = await makeEngine();
  const ra = await collect(a.engine.generate([2, 9, 8], { temperature: 0, maxNewTokens: 6 }));
  const rb = await collect(b.engine.generate([2, 9, 8], { temperature: 0, maxNewTokens: 6 }));
  assert.deepEqual(ra.ids, rb.ids);
});

test('bad arguments and a disposed engine give typed errors', async () => {
  const { engine, model } = await makeEngine();
  await rejectsWith(engine.generate([2, 262400]), 'invalid-argument', /262400/);
  await rejectsWith(engine.generate([]), 'invalid-argument', /empty/);
  await rejectsWith(engine.generate([2], { temperature: -1 }), 'invalid-argument', /temperature/);
  await rejectsWith(engine.generate([2], { topP: 0 }), 'invalid-argument', /topP/);
  await rejectsWith(engine.generate([2], { maxNewTokens: 0 }), 'invalid-argument', /maxNewTokens/);
  await rejectsWith(engine.chat([{ role: 'assistant', content: 'x' }]), 'invalid-argument', /alternate/);
  await rejectsWith(engine.chat([]), 'invalid-argument');
  const noText = new Engine({ model: new FakeModel() });
  await rejectsWith(noText.chat(hi), 'invalid-argument', /tokenizer/);
  const r = await noText.generate([2, 3], { maxNewTokens: 2 }).stats;
  assert.equal(r.newTokens, 2);
  engine.dispose();
  assert.ok(model.disposed);
  await rejectsWith(engine.chat(hi), 'disposed');
});

test('the chat template puts the system prompt into the first user turn (Gemma format)', async () => {
  const tok = await gemmaTokenizer();
  const ids = tok.applyChatTemplate([
    { role: 'system', content: 'S' },
    { role: 'user', content: 'Hi' },
  ]);
  assert.equal(tok.decode(ids), 'user\nS\n\nHi\nmodel\n'); // specials skipped
  assert.deepEqual(ids.slice(0, 2), [2, 105]);
  assert.deepEqual(ids.slice(-3), [105, tok.encode('model').at(-1), 107]);
  assert.equal(ids.filter((id) => id === 106).length, 1);
});

test('prefix reuse keys media spans by content: a different image with the same placeholder ids recomputes from its span', async () => {
  const { engine, model } = await makeEngine({ maxChunk: 4 });
  const width = model.embeddingWidth;
  const media = (hash: string, value: number): PromptSegment => ({
    type: 'media',
    modality: 'image',
    hash,
    ids: [262145, 262145, 262145],
    embed: async () => new Float32Array(3 * width).fill(value),
  });
  const prompt = (image: PromptSegment) => new Prompt([{ type: 'text', ids: [2, 105, 50, 51, 52] }, image, { type: 'text', ids: [53, 54] }]);
  const a = await collect(engine.generate(prompt(media('A', 1)), { temperature: 0, maxNewTokens: 2 }));
  assert.equal(a.stats.reusedTokens, 0);
  assert.deepEqual([5, 6, 7].map((p) => model.softRows.get(p)?.[0]), [1, 1, 1], 'the image rows were fed at its positions');
  // The same image again: everything up to the last prompt position is reused, nothing re-encoded.
  let encoded = 0;
  const sameA: PromptSegment = { ...(media('A', 1) as MediaSegment), embed: async () => (encoded++, new Float32Array(3 * width).fill(1)) };
  const again = await collect(engine.generate(prompt(sameA), { temperature: 0, maxNewTokens: 2 }));
  assert.equal(again.stats.reusedTokens, 9);
  assert.equal(encoded, 0, 'a cached image is not encoded again');
  assert.deepEqual(again.ids, a.ids);
  // A different image, identical ids: reuse stops where its span starts; the new rows are fed.
  const b = await collect(engine.generate(prompt(media('B', 2)), { temperature: 0, maxNewTokens: 2 }));
  assert.equal(b.stats.reusedTokens, 5);
  assert.equal(b.stats.prefillTokens, 5);
  assert.deepEqual([5, 6, 7].map((p) => model.softRows.get(p)?.[0]), [2, 2, 2]);
  // Token ids alone would have matched the whole prompt.
  assert.deepEqual(prompt(media('A', 1)).ids, prompt(media('B', 2)).ids);
});

test('a span that straddles prefill chunks gets its rows at the right offsets; a wrong row count is an error', async () => {
  const { engine, model } = await makeEngine({ maxChunk: 4 });
  const width = model.embeddingWidth;
  const rows = Float32Array.from({ length: 6 * width }, (_, i) => Math.floor(i / width));
  const image: PromptSegment = { type: 'media', modality: 'image', hash: 'h', ids: new Array(6).fill(262145), embed: async () => rows };
  await collect(engine.generate(new Prompt([{ type: 'text', ids: [2, 3, 4] }, image, { type: 'text', ids: [9] }]), { temperature: 0, maxNewTokens: 1 }));
  assert.deepEqual(model.feeds, [4, 4, 2]);
  assert.deepEqual([3, 4, 5, 6, 7, 8].map((p) => model.softRows.get(p)?.[0]), [0, 1, 2, 3, 4, 5]);
  const bad: PromptSegment = { ...image, hash: 'bad', embed: async () => new Float32Array(5 * width) };
  await rejectsWith(engine.generate(new Prompt([{ type: 'text', ids: [2] }, bad, { type: 'text', ids: [9] }])), 'internal', /5 rows.*6 positions/);
});

test('prefill runs in the model chunks, and an abort between chunks stops it within one chunk', async () => {
  const { engine, model } = await makeEngine({ maxChunk: 8, delayMs: 5 });
  const controller = new AbortController();
  const long = Array.from({ length: 80 }, (_, i) => 1000 + i);
  const stream = engine.generate(long, { signal: controller.signal, maxNewTokens: 4 });
  while (model.feeds.length < 3) await new Promise((r) => setTimeout(r, 1));
  controller.abort();
  const stats = await stream.stats;
  assert.equal(stats.finishReason, 'abort');
  assert.ok(model.feeds.length <= 4, `fed ${model.feeds.length} chunks after the abort`);
  assert.ok(model.feeds.every((n) => n <= 8));
});
