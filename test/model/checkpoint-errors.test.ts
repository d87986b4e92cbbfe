/**
 * Loading failures must say what is wrong: a truncated safetensors file (names the file and both sizes), a dtype we
 * cannot read (names the tensor and the dtype), an unsupported config (names the key and the value).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { GemmaError } from '../../src/errors.ts';
import { memorySource } from '../../src/io/byte-source.ts';
import { openSafetensorsCheckpoint, readSafetensorsHeader, type CheckpointFiles } from '../../src/io/safetensors.ts';
import { parseGemma3nConfig } from '../../src/model/gemma3n/config.ts';
import { tinyFixtureDirs } from '../helpers/fixtures.ts';

const fixture = tinyFixtureDirs()[0];

function memoryFiles(files: Record<string, Uint8Array>): CheckpointFiles {
  return { name: 'mem', exists: async (p) => p in files, open: (p) => memorySource(`mem/${p}`, files[p]) };
}

/** A safetensors file with the given header entries and zero-filled data of `dataBytes`. */
function makeSafetensors(header: Record<string, unknown>, dataBytes: number): Uint8Array {
  const json = new TextEncoder().encode(JSON.stringify(header));
  const out = new Uint8Array(8 + json.length + dataBytes);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
  out.set(json, 8);
  return out;
}

const tinyConfig = () => JSON.parse(readFileSync(join(fixture.dir, 'config.json'), 'utf8'));

async function rejectsWith(p: Promise<unknown>, code: string, ...mustMention: string[]): Promise<void> {
  await assert.rejects(p, (err: unknown) => {
    assert.ok(err instanceof GemmaError, `expected GemmaError, got ${err}`);
    assert.equal(err.code, code, err.message);
    for (const s of mustMention) assert.ok(err.message.includes(s), `message should mention ${s}: ${err.message}`);
    return true;
  });
}

test('truncated safetensors: bad-file naming the file and the sizes', async () => {
  const full = readFileSync(join(fixture.dir, 'model.safetensors'));
  const cut = full.subarray(0, full.length - 1000);
  await rejectsWith(readSafetensorsHeader(memorySource('cut/model.safetensors', cut)), 'bad-file', 'cut/model.safetensors', String(cut.length), String(full.length));
  // Cut inside the header as well.
  await rejectsWith(readSafetensorsHeader(memorySource('head.safetensors', full.subarray(0, 100))), 'bad-file', 'head.safetensors', '100');
});

test('wrong dtype: unsupported-dtype naming the tensor and the dtype, only when that tensor is read', async () => {
  const st = makeSafetensors(
    {
      'model.language_model.norm.weight': { dtype: 'I32', shape: [4], data_offsets: [0, 16] },
      'model.vision_tower.x': { dtype: 'F64', shape: [2], data_offsets: [16, 32] },
      'model.language_model.ok.weight': { dtype: 'F16', shape: [2], data_offsets: [32, 36] },
    },
    36,
  );
  const ckpt = await openSafetensorsCheckpoint(memoryFiles({ 'config.json': new TextEncoder().encode(JSON.stringify(tinyConfig())), 'model.safetensors': st }));
  await ckpt.read('model.language_model.ok.weight'); // readable tensors read fine next to unreadable ones
  await rejectsWith(ckpt.read('model.language_model.norm.weight'), 'unsupported-dtype', 'model.language_model.norm.weight', 'I32');
});

test('sharded checkpoint: index.json + shards', async () => {
  const a = makeSafetensors({ x: { dtype: 'F32', shape: [1], data_offsets: [0, 4] } }, 4);
  const b = makeSafetensors({ y: { dtype: 'BF16', shape: [2], data_offsets: [0, 4] } }, 4);
  const index = { metadata: {}, weight_map: { x: 'model-00001-of-00002.safetensors', y: 'model-00002-of-00002.safetensors' } };
  const enc = (o: unknown) => new TextEncoder().encode(JSON.stringify(o));
  const ckpt = await openSafetensorsCheckpoint(
    memoryFiles({ 'config.json': enc(tinyConfig()), 'model.safetensors.index.json': enc(index), 'model-00001-of-00002.safetensors': a, 'model-00002-of-00002.safetensors': b }),
  );
  assert.deepEqual(ckpt.tensorNames().sort(), ['x', 'y']);
  assert.deepEqual(ckpt.tensor('y')?.shape, [2]);
  assert.equal((await ckpt.read('y')).dtype, 'BF16');
});

test('unsupported config values: unsupported-config naming key and value', () => {
  const cases: Array<[string, (c: any) => void, string[]]> = [
    ['altup_num_inputs', (c) => (c.text_config.altup_num_inputs = 3), ['text_config.altup_num_inputs', '3']],
    ['attention_bias', (c) => (c.text_config.attention_bias = true), ['text_config.attention_bias', 'true']],
    ['rope_scaling', (c) => (c.text_config.rope_scaling = { rope_type: 'linear', factor: 2 }), ['text_config.rope_scaling', 'linear']],
    ['hidden_activation', (c) => (c.text_config.hidden_activation = 'silu'), ['text_config.hidden_activation', 'silu']],
    ['layer_types length', (c) => c.text_config.layer_types.pop(), ['text_config.layer_types']],
    ['intermediate_size length', (c) => (c.text_config.intermediate_size = [1, 2]), ['text_config.intermediate_size', '[1,2]']],
    ['model_type', (c) => (c.model_type = 'llama'), ['model_type', 'llama']],
    ['rope_parameters type', (c) => {
      delete c.text_config.rope_theta;
      c.text_config.rope_parameters = { full_attention: { rope_type: 'yarn', rope_theta: 1e6 }, sliding_attention: { rope_type: 'default', rope_theta: 1e4 } };
    }, ['rope_parameters.full_attention.rope_type', 'yarn']],
  ];
  for (const [what, mutate, mention] of cases) {
    const c = tinyConfig();
    mutate(c);
    assert.throws(() => parseGemma3nConfig(c), (err: unknown) => {
      assert.ok(err instanceof GemmaError && err.code === 'unsupported-config', `${what}: ${err}`);
      for (const s of mention) assert.ok(err.message.includes(s), `${what}: message should mention ${s}: ${err.message}`);
      return true;
    }, what);
  }
});

test('config spellings: gemma3n_text alone and rope_parameters give the same text config', () => {
  const c = tinyConfig();
  const base = parseGemma3nConfig(c).text;
  const textOnly = parseGemma3nConfig(c.text_config).text;
  assert.deepEqual(textOnly, base);
  const tc = { ...c.text_config };
  delete tc.rope_theta;
  delete tc.rope_local_base_freq;
  delete tc.rope_scaling;
  tc.rope_parameters = { full_attention: { rope_type: 'default', rope_theta: 1e6 }, sliding_attention: { rope_type: 'default', rope_theta: 1e4 } };
  assert.deepEqual(parseGemma3nConfig(tc).text, base);
  // κ = Φ⁻¹(0.95) in f32, as HF computes it.
  assert.equal(base.gateCutoffZ[0], Math.fround(1.6448536269514722));
});
