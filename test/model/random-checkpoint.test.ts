// The random-weight checkpoint: configs that parse with every structural feature, the complete HF tensor set with
// the shapes the config implies, deterministic values that do not depend on how rows are read, and the converter's
// pad-row copies in embed_tokens.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createRandomCheckpoint, randomGemma3nConfig } from '../../src/model/gemma3n/random-checkpoint.ts';
import { parseGemma3nConfig } from '../../src/model/gemma3n/config.ts';
import { readF32 } from '../../src/io/checkpoint.ts';

const LM = 'model.language_model.';

test('tiny preset: full Gemma vocabulary, sliding + full layers, KV sharing, sparsity on layer 0', () => {
  const c = parseGemma3nConfig(randomGemma3nConfig('tiny'));
  assert.equal(c.text.vocabSize, 262400);
  assert.equal(c.text.vocabSizePerLayerInput, 262144);
  assert.deepEqual(c.text.layerTypes, ['sliding_attention', 'full_attention', 'sliding_attention', 'full_attention']);
  assert.deepEqual(c.text.kvSourceLayer, [0, 1, 0, 1]);
  assert.deepEqual(c.text.gateCutoffZ.map((z) => z !== null), [true, false, false, false]);
  assert.equal(new Set(c.text.intermediateSize).size > 1, true, 'per-layer intermediate sizes');
  assert.deepEqual(c.eosTokenIds, [1, 106]);
  assert.equal(c.vision?.vocabOffset, 262144);
  assert.equal(c.audio?.vocabOffset, 262272);
});

test('e2b / e4b presets match the published text configs; --layers keeps per-layer dimensions', () => {
  const e2b = parseGemma3nConfig(randomGemma3nConfig('e2b')).text;
  assert.equal(e2b.numLayers, 30);
  assert.equal(e2b.numKvSharedLayers, 10);
  assert.deepEqual(e2b.layerTypes.flatMap((t, i) => (t === 'full_attention' ? [i] : [])), [4, 9, 14, 19, 24, 29]);
  assert.equal(e2b.activationSparsity.filter((s) => s === 0.95).length, 10);
  assert.deepEqual([e2b.hiddenSize, e2b.pleDim, e2b.intermediateSize[0], e2b.headDim, e2b.slidingWindow], [2048, 256, 8192, 256, 512]);
  const e4b = parseGemma3nConfig(randomGemma3nConfig('e4b')).text;
  assert.deepEqual([e4b.numLayers, e4b.numKvSharedLayers, e4b.intermediateSize[0]], [35, 15, 16384]);
  for (const layers of [1, 2, 3, 7, 12]) {
    const c = parseGemma3nConfig(randomGemma3nConfig('e2b', layers)).text;
    assert.equal(c.numLayers, layers);
    assert.ok(c.layerTypes.includes('full_attention'), `${layers} layers: a full-attention layer`);
    assert.equal(c.intermediateSize[0], 8192);
  }
});

test('every tensor of the HF layout is present with the shape the config implies', () => {
  const ckpt = createRandomCheckpoint();
  const c = parseGemma3nConfig(ckpt.config).text;
  const D = c.hiddenSize, P = c.pleDim, L = c.numLayers;
  const expect: Record<string, number[]> = {
    [LM + 'embed_tokens.weight']: [262400, D],
    [LM + 'embed_tokens_per_layer.weight']: [262144, L * P],
    [LM + 'per_layer_model_projection.weight']: [L * P, D],
    [LM + 'altup_projections.2.weight']: [D, D],
    [LM + 'altup_unembed_projections.0.weight']: [D, D],
    [`${LM}layers.3.self_attn.k_proj.weight`]: [c.numKvHeads * c.headDim, D],
    [`${LM}layers.2.mlp.down_proj.weight`]: [D, c.intermediateSize[2]],
    [`${LM}layers.0.altup.prediction_coefs.weight`]: [16, 4],
    [`${LM}layers.0.altup.correct_output_scale`]: [D],
    ['model.embed_vision.embedding_projection.weight']: [D, 64],
  };
  for (const [name, shape] of Object.entries(expect)) assert.deepEqual(ckpt.tensor(name)?.shape, shape, name);
  assert.equal(ckpt.tensor('model.audio_tower.conformer.1.attention.attn.q_proj.weight')?.shape.join(), '48,48');
  // + the audio tower: 5 sub-sampler tensors and 22 per conformer block (2 blocks).
  assert.equal(ckpt.tensorNames().length, 5 + 6 + 24 * L + 8 + 5 + 22 * 2);
  assert.equal(ckpt.tensor(LM + 'layers.0.self_attn.v_norm.weight'), undefined, 'v_norm has no weight');
});

test('values: deterministic per seed, independent of the row range read, pad rows copy row 0, sensible scale', async () => {
  const a = createRandomCheckpoint({ seed: 7, dtype: 'F32' });
  const b = createRandomCheckpoint({ seed: 7, dtype: 'F32' });
  const other = createRandomCheckpoint({ seed: 8, dtype: 'F32' });
  const name = `${LM}layers.1.mlp.gate_proj.weight`;
  const whole = await readF32(a, name);
  assert.deepEqual(await readF32(b, name), whole);
  assert.notDeepEqual((await readF32(other, name)).subarray(0, 16), whole.subarray(0, 16));
  const cols = a.tensor(name)!.shape[1];
  assert.deepEqual(await readF32(a, name, { start: 37, count: 5 }), whole.subarray(37 * cols, 42 * cols));

  const embed = LM + 'embed_tokens.weight';
  const row0 = await readF32(a, embed, { start: 0, count: 1 });
  assert.deepEqual(await readF32(a, embed, { start: 262399, count: 1 }), row0);
  assert.notDeepEqual(await readF32(a, embed, { start: 262143, count: 1 }), row0);

  let s = 0, s2 = 0;
  for (const x of whole) (s += x), (s2 += x * x);
  const std = Math.sqrt(s2 / whole.length - (s / whole.length) ** 2);
  assert.ok(Math.abs(std - 1 / Math.sqrt(cols)) < 0.01 / Math.sqrt(cols), `std ${std}`);
  const norm = await readF32(a, `${LM}layers.0.input_layernorm.weight`);
  assert.ok(norm.every((x) => x > 0.9 && x < 1.1), 'norm weights near 1 (Gemma 3n norms multiply by w, not 1 + w)');

  const bf16 = await readF32(createRandomCheckpoint({ seed: 7 }), name, { start: 0, count: 1 });
  bf16.forEach((x, i) => assert.ok(Math.abs(x - whole[i]) <= Math.abs(whole[i]) / 256, 'bf16 rounds the same values'));
});
