// The host-independent engine over a fake model and the real Gemma tokenizer: UTF-8 safe streaming, stop
// tokens and strings, KV-reuse accounting, context limits, abort and busy.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Engine } from '../../src/runtime/engine.ts';
import { GemmaError } from '../../src/errors.ts';
import type { ChatMessage, Delta, GenerateOptions, GenerationStats } from '../../src/runtime/protocol.ts';
import { FakeModel, type FakeModelOptions } from './fake-model.ts';
import { gemmaTokenizer } from './gemma-tokenizer.ts';
import { freshRng } from '../helpers/random.ts';

const GEMMA_STOP = [1, 106];

async function makeEngine(opts: FakeModelOptions = {}) {
  const model = new FakeModel(opts);
  const engine = new Engine({ model, tokenizer: await gemmaTokenizer(), stopTokenIds: GEMMA_STOP });
  return { model, engine };
}

async function collect(run: (onDelta: (d: Delta) => void) => Promise<GenerationStats>) {
  const deltas: Delta[] = [];
  const stats = await run((d) => deltas.push(d));
  return { deltas, stats, text: deltas.map((d) => d.text).join(''), ids: deltas.flatMap((d) => d.tokenIds) };
}

async function rejectsWith(p: Promise<unknown>, code: string, pattern?: RegExp) {
  await assert.rejects(p, (err: unknown) => {
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
  const r = await collect((onDelta) => engine.chat(hi, { temperature: 0 }, { onDelta }));
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
    const r = await collect((onDelta) => engine.generate([2, 100], { temperature: 0 }, { onDelta }));
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
  const r = await collect((onDelta) => engine.chat(hi, { stop: ['STOP'] }, { onDelta }));
  assert.equal(r.text, 'Hello world. ');
  assert.equal(r.stats.finishReason, 'stop');
  assert.ok(r.stats.newTokens < reply.length);
  for (const d of r.deltas) assert.ok(!d.text.includes('ST'), JSON.stringify(d.text));

  // A partial match that never completes is released at the end.
  const reply2 = tok.encode('ends with ST').filter((id) => id !== 2);
  const e2 = await makeEngine({ reply: reply2 });
  const r2 = await collect((onDelta) => e2.engine.chat(hi, { stop: ['STOP'] }, { onDelta }));
  assert.equal(r2.text, 'ends with ST');
  assert.equal(r2.stats.finishReason, 'stop'); // by <end_of_turn>
});

test('stop tokens (<end_of_turn>, <eos>, extra stopTokenIds) end generation and are not emitted', async () => {
  for (const [stopId, extra] of [[106, []], [1, []], [5000, [5000]]] as const) {
    const { engine } = await makeEngine({ reply: [1000, 1001, stopId, 1002] });
    const r = await collect((onDelta) => engine.chat(hi, { stopTokenIds: [...extra] }, { onDelta }));
    assert.deepEqual(r.ids, [1000, 1001]);
    assert.equal(r.stats.finishReason, 'stop');
    assert.equal(r.stats.newTokens, 3);
  }
});

test('maxNewTokens ends with finishReason length', async () => {
  const { engine, model } = await makeEngine();
  const r = await collect((onDelta) => engine.chat(hi, { maxNewTokens: 7 }, { onDelta }));
  assert.equal(r.ids.length, 7);
  assert.equal(r.stats.newTokens, 7);
  assert.equal(r.stats.finishReason, 'length');
  // The last sampled token is not fed: the cache holds the prompt + 6.
  assert.equal(model.cache.length, r.stats.promptTokens + 6);
});

test('multi-turn: the second turn prefills only the new tokens; edits invalidate from the edit on', async () => {
  const tok = await gemmaTokenizer();
  const { engine, model } = await makeEngine({ reply: tok.encode('Hello there!').filter((id) => id !== 2) });
  const t1 = await collect((onDelta) => engine.chat(hi, {}, { onDelta }));
  assert.equal(t1.stats.reusedTokens, 0);
  assert.equal(t1.stats.prefillTokens, t1.stats.promptTokens);
  assert.equal(t1.text, 'Hello there!');

  const turn2: ChatMessage[] = [...hi, { role: 'assistant', content: t1.text }, { role: 'user', content: 'And now?' }];
  const before = model.processed;
  const t2 = await collect((onDelta) => engine.chat(turn2, {}, { onDelta }));
  const prompt2 = tok.applyChatTemplate(turn2);
  assert.equal(t2.stats.promptTokens, prompt2.length);
  // Everything up to the end of the model's reply was cached: prompt 1 + the reply tokens.
  assert.equal(t2.stats.reusedTokens, t1.stats.promptTokens + t1.ids.length);
  assert.equal(t2.stats.prefillTokens, prompt2.length - t2.stats.reusedTokens);
  assert.equal(model.processed - before, t2.stats.prefillTokens + t2.stats.newTokens - 1);
  assert.deepEqual(model.cache.slice(0, prompt2.length), prompt2);

  // Editing the first user message keeps only the template prefix before it.
  const edited: ChatMessage[] = [{ role: 'user', content: 'Yo' }, ...turn2.slice(1)];
  const t3 = await collect((onDelta) => engine.chat(edited, {}, { onDelta }));
  const common = tok.applyChatTemplate(edited).findIndex((id, i) => id !== prompt2[i]);
  assert.equal(t3.stats.reusedTokens, common);
  assert.ok(common > 0 && common < 5, `reused ${common}`);

  // Same prompt again (regenerate): all but the last prompt token are reused.
  const t4 = await collect((onDelta) => engine.chat(edited, {}, { onDelta }));
  assert.equal(t4.stats.reusedTokens, t4.stats.promptTokens - 1);
  assert.equal(t4.stats.prefillTokens, 1);
});

test('KV reuse gives the same tokens as a fresh prefill (hash model sees the whole cache)', async () => {
  const a = await makeEngine();
  const first = await collect((onDelta) => a.engine.generate([2, 10, 11, 12], { temperature: 0, maxNewTokens: 5 }, { onDelta }));
  const cont = [2, 10, 11, 12, ...first.ids, 42, 43];
  const reused = await collect((onDelta) => a.engine.generate(cont, { temperature: 0, maxNewTokens: 5 }, { onDelta }));
  assert.equal(reused.stats.reusedTokens, 4 + 4); // 5 sampled, the last one never fed
  const b = await makeEngine();
  const fresh = await collect((onDelta) => b.engine.generate(cont, { temperature: 0, maxNewTokens: 5 }, { onDelta }));
  assert.equal(fresh.stats.reusedTokens, 0);
  assert.deepEqual(reused.ids, fresh.ids);
});

test('a model that cannot rewind its cache that far: the reported reuse is what it kept', async () => {
  const { engine, model } = await makeEngine({ keepLimit: () => 3 });
  const first = await collect((onDelta) => engine.generate([2, 10, 11, 12, 13, 14], { maxNewTokens: 3 }, { onDelta }));
  const r = await collect((onDelta) => engine.generate([2, 10, 11, 12, 13, 14, ...first.ids], { maxNewTokens: 2 }, { onDelta }));
  assert.equal(r.stats.reusedTokens, 3);
  assert.equal(r.stats.prefillTokens, r.stats.promptTokens - 3);
  assert.deepEqual(model.cache.slice(0, r.stats.promptTokens), [2, 10, 11, 12, 13, 14, ...first.ids]);
});

test('context overflow: a clear error with the numbers; generation stops at the context end with length', async () => {
  const { engine } = await makeEngine({ maxContext: 32 });
  const long = Array.from({ length: 40 }, (_, i) => 100 + i);
  await rejectsWith(engine.generate(long), 'context-overflow', /40 tokens.*context holds 32.*contextLength/s);
  await rejectsWith(engine.generate(long.slice(0, 32)), 'context-overflow', /32 tokens/);
  const r = await collect((onDelta) => engine.generate(long.slice(0, 28), { maxNewTokens: 100 }, { onDelta }));
  assert.equal(r.stats.finishReason, 'length');
  assert.equal(r.stats.newTokens, 32 - 28 + 1); // 4 fed + the last one sampled
  // And the engine still works after both.
  const ok = await collect((onDelta) => engine.generate([2, 5], { maxNewTokens: 3 }, { onDelta }));
  assert.equal(ok.stats.newTokens, 3);
});

test('abort stops within one token; the next generation works and reuses the cache', async () => {
  const { engine, model } = await makeEngine({ delayMs: 2 });
  const controller = new AbortController();
  let seen = 0;
  let atAbort = 0;
  const stats = await engine.chat(hi, { maxNewTokens: 1000 }, {
    signal: controller.signal,
    onDelta: () => {
      if (++seen === 5) {
        controller.abort();
        atAbort = model.processed;
      }
    },
  });
  assert.equal(stats.finishReason, 'abort');
  assert.equal(stats.newTokens, 5);
  assert.equal(model.processed, atAbort, 'no model call after the abort');
  const r = await collect((onDelta) => engine.chat(hi, { maxNewTokens: 3 }, { onDelta }));
  assert.equal(r.stats.finishReason, 'length');
  assert.equal(r.stats.reusedTokens, r.stats.promptTokens - 1);

  // Already aborted: nothing runs.
  const pre = new AbortController();
  pre.abort();
  const before = model.processed;
  const s = await engine.generate([2, 77, 78], {}, { signal: pre.signal });
  assert.equal(s.finishReason, 'abort');
  assert.equal(s.newTokens, 0);
  assert.equal(model.processed, before);
});

test('busy: a second generation while one runs fails with code busy; the first is unaffected', async () => {
  const { engine } = await makeEngine({ delayMs: 1 });
  const first = engine.chat(hi, { maxNewTokens: 20 });
  await rejectsWith(engine.chat(hi), 'busy', /already running/);
  await rejectsWith(engine.generate([2, 3]), 'busy');
  const stats = await first;
  assert.equal(stats.newTokens, 20);
  assert.equal((await engine.chat(hi, { maxNewTokens: 2 })).newTokens, 2);
});

test('seeded sampling is reproducible; sampling params reach the model', async () => {
  const opts: GenerateOptions = { seed: 1234, temperature: 0.7, topK: 40, topP: 0.9, maxNewTokens: 8 };
  const a = await makeEngine();
  const ra = await collect((onDelta) => a.engine.generate([2, 9], opts, { onDelta }));
  const b = await makeEngine();
  const rb = await collect((onDelta) => b.engine.generate([2, 9], opts, { onDelta }));
  assert.deepEqual(ra.ids, rb.ids);
  const c = await makeEngine();
  const rc = await collect((onDelta) => c.engine.generate([2, 9], { ...opts, seed: 99 }, { onDelta }));
  assert.notDeepEqual(ra.ids, rc.ids);
  assert.deepEqual({ ...a.model.samples[0], random: 0 }, { temperature: 0.7, topK: 40, topP: 0.9, random: 0 });
  // Defaults are Gemma's generation_config.
  const d = await makeEngine();
  await d.engine.generate([2, 9], { maxNewTokens: 1 });
  assert.deepEqual({ ...d.model.samples[0], random: 0 }, { temperature: 1, topK: 64, topP: 0.95, random: 0 });
});

test('works without the fused step (prefill + sample per token)', async () => {
  const a = await makeEngine({ fusedStep: false });
  const b = await makeEngine();
  const ra = await collect((onDelta) => a.engine.generate([2, 9, 8], { temperature: 0, maxNewTokens: 6 }, { onDelta }));
  const rb = await collect((onDelta) => b.engine.generate([2, 9, 8], { temperature: 0, maxNewTokens: 6 }, { onDelta }));
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
  const r = await noText.generate([2, 3], { maxNewTokens: 2 });
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
