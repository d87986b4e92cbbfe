// Constrained decoding end to end through the GPU model: the random full-vocabulary Gemma 3n (262,400 logits, real
// tokenizer and chat template) on Dawn, the engine's lazy mask uploaded per step and honoured by the GPU sampler.
// Gibberish by design: whatever the random logits say, JSON-schema replies parse and validate (ajv) and a required
// tool call names a tool and its arguments validate. The GrammarConstraint also checks every sampled id against its
// mask (an id outside it fails the generation). Few generations, small schemas: this model decodes a few tokens
// per second on SwiftShader; test/runtime/constrained/ drives 50 per schema through random logits on the CPU.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import Ajv2020 from 'ajv/dist/2020.js';
import { Engine } from '../../src/runtime/engine.ts';
import { defaultModelFactory } from '../../src/runtime/loading/model-factory.ts';
import type { ToolDeclaration } from '../../src/runtime/protocol.ts';
import { loadXGrammarForNode } from '../../src/node/xgrammar.ts';
import { testGpu } from '../helpers/gpu.ts';
import { collect } from '../helpers/stream.ts';
import { freshRng } from '../helpers/random.ts';
import { gemmaTokenizer } from './gemma-tokenizer.ts';

loadXGrammarForNode();

// Every string in these is fixed or bounded, so a reply is at most ~25 / ~50 characters: it always finishes.
const SCHEMA = { type: 'object', properties: { ok: { type: 'boolean' }, n: { type: 'integer', minimum: 0, maximum: 9 } }, required: ['ok', 'n'] };
const TOOLS: ToolDeclaration[] = [
  { type: 'function', function: { name: 'flip', description: 'Flips a coin', parameters: { type: 'object', properties: { heads: { type: 'boolean' } }, required: ['heads'] } } },
  { type: 'function', function: { name: 'roll', description: 'Rolls a die', parameters: { type: 'object', properties: { n: { type: 'integer', minimum: 1, maximum: 6 } }, required: ['n'] } } },
];

test('random full-vocabulary model on the GPU: JSON-schema replies validate, a required tool call validates', async () => {
  const { rng, tag } = freshRng();
  const loaded = await defaultModelFactory({ request: { model: { randomCheckpoint: { preset: 'tiny', seed: 3 } }, tokenizer: false, contextLength: 512 }, gpu: testGpu, onProgress: () => {} });
  const engine = new Engine({ model: loaded.model, tokenizer: await gemmaTokenizer(), stopTokenIds: loaded.stopTokenIds });
  assert.equal(engine.model.vocabSize, 262400);
  const ajv = new Ajv2020({ strict: true });
  const validate = ajv.compile(SCHEMA);
  for (let i = 0; i < 2; i++) {
    const seed = rng.int(0, 1e9);
    const r = await collect(engine.chat([{ role: 'user', content: 'Give me JSON.' }], { responseFormat: { type: 'json_schema', schema: SCHEMA }, seed, temperature: 1.5, maxNewTokens: 40 }));
    assert.equal(r.stats.complete, true, `${JSON.stringify(r.text)} ${tag}`);
    assert.equal(r.stats.finishReason, 'stop');
    const value = JSON.parse(r.text);
    assert.ok(validate(value), `${r.text} ${JSON.stringify(validate.errors)} ${tag}`);
    console.log(`# seed ${seed}: ${r.text} (${r.stats.newTokens} tokens, ${r.stats.decodeTokensPerSecond.toFixed(2)} tok/s)`);
  }
  const r = await collect(engine.chat([{ role: 'user', content: 'Pick one.' }], { tools: TOOLS, toolChoice: 'required', seed: rng.int(0, 1e9), maxNewTokens: 80 }));
  const calls = r.deltas.flatMap((d) => d.toolCalls ?? []);
  assert.equal(r.stats.finishReason, 'tool_calls', `${JSON.stringify(r)} ${tag}`);
  assert.equal(calls.length, 1, tag);
  const tool = TOOLS.find((t) => t.function.name === calls[0].name);
  assert.ok(tool, `called ${calls[0].name} ${tag}`);
  assert.ok(ajv.validate(tool.function.parameters as object, calls[0].arguments), `${JSON.stringify(calls[0])} ${tag}`);
  console.log(`# call: ${JSON.stringify(calls[0])} (${r.stats.promptTokens} prompt tokens in ${r.stats.timeToFirstTokenMs.toFixed(0)} ms, ${r.stats.newTokens} new)`);
  engine.dispose();
});
