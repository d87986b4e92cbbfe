/**
 * Gemma 4 config parsing and the registry (no GPU): the fixture's and the real E2B/E4B configs give the per-layer
 * facts the forward pass uses (KV sharing by type, head dims, RoPE angles, MLP widths); features E2B/E4B do not have
 * are refused with the key named; the registry picks the family by model_type; the native tool-call tokens resolve
 * through a tokenizer that has them and are refused by one that does not.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { GemmaError } from '../../src/errors.ts';
import { parseGemma4Config } from '../../src/model/gemma4/config.ts';
import { randomGemma4Config } from '../../src/model/gemma4/random-checkpoint.ts';
import { gemma4TensorTable } from '../../src/model/gemma4/tensors.ts';
import { tableSpecs } from '../../src/model/tensor-table.ts';
import { familyForConfig, randomCheckpoint } from '../../src/model/registry.ts';
import { resolveToolTokens } from '../../src/model/tool-tokens.ts';
import { createTokenizer } from '../../src/runtime/tokenizer.ts';
import { gemma4Fixture } from '../helpers/gemma4-fixture.ts';
import { GEMMA_TOKENIZER_DIR, gemmaTokenizer } from '../runtime/gemma-tokenizer.ts';

const fixtureConfig = () => JSON.parse(readFileSync(join(gemma4Fixture().dir, 'config.json'), 'utf8')) as Record<string, unknown>;

test('gemma4 config: the fixture\'s derived per-layer facts', () => {
  const cfg = parseGemma4Config(fixtureConfig());
  const c = cfg.text;
  assert.deepEqual(c.kvSourceLayer, [0, 1, 2, 3, 2, 2, 2, 3], 'shared S layers read layer 2, the shared F layer reads layer 3');
  assert.deepEqual(c.layerHeadDim, [16, 16, 16, 32, 16, 16, 16, 32]);
  assert.deepEqual(c.ropeAngles, [8, 8, 8, 4, 8, 8, 8, 4], 'full layers rotate int(0.25 · 32 / 2) = 4 angles');
  assert.deepEqual(c.ropeTheta, [1e4, 1e4, 1e4, 1e6, 1e4, 1e4, 1e4, 1e6]);
  assert.deepEqual(c.intermediateSize, [192, 192, 192, 192, 384, 384, 384, 384], 'double-wide MLP on the KV-shared layers');
  assert.deepEqual(cfg.placeholderIds, [508, 509, 510]);
  assert.deepEqual(cfg.eosTokenIds, [1]);
  assert.equal(c.finalLogitSoftcap, 30);
  // The tensor table: no k/v/k_norm for the 4 shared layers (12 decoys in the file are never read).
  const names = tableSpecs(gemma4TensorTable(c)).map((s) => s.name);
  assert.equal(names.length + 1, 141 - 12, 'the table + the PLE table (loaded to host memory) = every tensor but the 12 decoys');
  assert.ok(!names.some((n) => /layers\.[4-7]\.self_attn\.(k_proj|v_proj|k_norm)/.test(n)));
  // A bare gemma4_text config is the same model.
  assert.deepEqual(parseGemma4Config(fixtureConfig().text_config).text, c);
});

test('gemma4 config: the real E2B and E4B dimensions', () => {
  const e2b = parseGemma4Config(randomGemma4Config('e2b')).text;
  assert.equal(e2b.numLayers, 35);
  assert.equal(e2b.firstKvSharedLayer, 15);
  assert.equal(e2b.layerTypes.filter((t) => t === 'full_attention').length, 7);
  assert.deepEqual([...new Set(e2b.kvSourceLayer.slice(15))].sort((a, b) => a - b), [13, 14], 'shared layers read the last sliding (13) and full (14) owners');
  assert.deepEqual([...new Set(e2b.ropeAngles)].sort((a, b) => a - b), [64, 128]);
  assert.deepEqual([e2b.intermediateSize[14], e2b.intermediateSize[15]], [6144, 12288]);
  assert.deepEqual([e2b.numHeads, e2b.numKvHeads, e2b.headDim, e2b.globalHeadDim, e2b.hiddenSize], [8, 1, 256, 512, 1536]);
  const e4b = parseGemma4Config(randomGemma4Config('e4b')).text;
  assert.equal(e4b.numLayers, 42);
  assert.equal(e4b.firstKvSharedLayer, 24);
  assert.deepEqual([...new Set(e4b.kvSourceLayer.slice(24))].sort((a, b) => a - b), [22, 23]);
  assert.deepEqual([...new Set(e4b.intermediateSize)], [10240]);
  assert.deepEqual([e4b.numKvHeads, e4b.hiddenSize], [2, 2560]);
});

test('gemma4 config: features E2B/E4B do not have are refused, naming the key', () => {
  const bad = (edit: (tc: Record<string, unknown>) => void, key: RegExp) => {
    const cfg = fixtureConfig();
    edit(cfg.text_config as Record<string, unknown>);
    assert.throws(() => parseGemma4Config(cfg), (e: unknown) => e instanceof GemmaError && e.code === 'unsupported-config' && key.test(e.message), String(key));
  };
  bad((tc) => (tc.enable_moe_block = true), /enable_moe_block/);
  bad((tc) => (tc.attention_k_eq_v = true), /attention_k_eq_v/);
  bad((tc) => (tc.num_global_key_value_heads = 4), /num_global_key_value_heads/);
  bad((tc) => (tc.hidden_size_per_layer_input = 0), /hidden_size_per_layer_input/);
  bad((tc) => ((tc.rope_parameters as Record<string, Record<string, unknown>>).full_attention.rope_type = 'yarn'), /rope_type/);
  bad((tc) => ((tc.rope_parameters as Record<string, Record<string, unknown>>).full_attention.partial_rotary_factor = 0), /partial_rotary_factor/);
  bad((tc) => (tc.hidden_activation = 'gelu'), /hidden_activation/);
  bad((tc) => (tc.use_bidirectional_attention = 'all'), /use_bidirectional_attention/);
  bad((tc) => (tc.num_kv_shared_layers = 7), /num_kv_shared_layers/);
  bad((tc) => (tc.layer_types = ['sliding_attention']), /layer_types/);
  assert.throws(() => parseGemma4Config({ model_type: 'gemma4' }), /text_config/);
});

test('gemma4 in the registry: by model_type; random checkpoints at the real sizes', () => {
  assert.equal(familyForConfig(fixtureConfig()).name, 'gemma4');
  assert.equal(familyForConfig(fixtureConfig().text_config).name, 'gemma4');
  assert.equal(familyForConfig({ model_type: 'gemma3n', text_config: {} }).name, 'gemma3n');
  assert.throws(() => familyForConfig({ model_type: 'gemma5' }), /gemma3n, gemma3n_text, gemma4, gemma4_text/);
  const ckpt = randomCheckpoint({ family: 'gemma4', preset: 'e2b' });
  const cfg = parseGemma4Config(ckpt.config);
  assert.equal(cfg.text.vocabSize, 262144);
  // Every tensor of the table exists with its shape, and the shared layers carry k/v copies as the release does.
  for (const spec of tableSpecs(gemma4TensorTable(cfg.text))) {
    const info = ckpt.tensor(spec.name);
    assert.ok(info, spec.name);
    assert.deepEqual(info.shape, spec.kind === 'matrix' ? [...spec.shape] : [spec.length], spec.name);
  }
  assert.ok(ckpt.tensor('model.language_model.layers.34.self_attn.k_proj.weight'));
  assert.throws(() => randomCheckpoint({ family: 'gemma4', preset: 'e8b' }), /e8b/);
});

test('gemma4 tool-call tokens: declared by the family, resolved through a tokenizer that has them, refused by one that does not', async () => {
  const family = familyForConfig(fixtureConfig());
  const tokens = family.toolTokens!;
  assert.deepEqual(tokens.call, { open: '<|tool_call>', close: '<tool_call|>' });
  assert.equal(familyForConfig({ model_type: 'gemma3n', text_config: {} }).toolTokens, undefined);
  // A Gemma tokenizer with Gemma 4's control tokens added (no Gemma 4 tokenizer files can be fetched here): the real
  // Gemma 3 tokenizer.json plus the seven markers as added special tokens.
  const json = JSON.parse(await readFile(GEMMA_TOKENIZER_DIR + 'tokenizer.json', 'utf8')) as { added_tokens: unknown[] };
  const config = JSON.parse(await readFile(GEMMA_TOKENIZER_DIR + 'tokenizer_config.json', 'utf8'));
  const markers = [tokens.declaration.open, tokens.declaration.close, tokens.call.open, tokens.call.close, tokens.response.open, tokens.response.close, tokens.stringDelimiter];
  markers.forEach((content, i) => json.added_tokens.push({ id: 262200 + i, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true }));
  const tok = await createTokenizer({ tokenizerJson: json, tokenizerConfig: config });
  const ids = resolveToolTokens(tokens, (t) => tok.encode(t), 2);
  assert.deepEqual(ids, { declaration: { open: 262200, close: 262201 }, call: { open: 262202, close: 262203 }, response: { open: 262204, close: 262205 }, stringDelimiter: 262206 });
  // A tool call as the model writes it: the markers come out as single ids.
  const call = tok.encode('<|tool_call>call:get_weather{city:<|"|>Paris<|"|>}<tool_call|>');
  assert.equal(call[1], ids.call.open);
  assert.equal(call.at(-1), ids.call.close);
  assert.equal(call.filter((id) => id === ids.stringDelimiter).length, 2);
  // The plain Gemma 3 tokenizer splits the markers: a clear error, not wrong ids.
  const gemma3 = await gemmaTokenizer();
  assert.throws(() => resolveToolTokens(tokens, (t) => gemma3.encode(t), 2), (e: unknown) => e instanceof GemmaError && /<\|tool>/.test(e.message));
});
