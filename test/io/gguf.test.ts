/**
 * GGUF import (src/io/gguf*.ts) against llama.cpp's own GGUF conversions of the tiny-a fixture
 * (test/fixtures/gguf-gemma3n-tiny-a) and the same model's safetensors (test/fixtures/gemma3n-tiny-a), plus
 * synthetic files for what the fixtures do not contain (other types, malformed headers).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { FIXTURES_DIR } from '../helpers/fixtures.ts';
import { elementGrid } from '../helpers/ggml-bounds.ts';
import { writeGguf, type GgufTypedValue } from '../helpers/gguf-writer.ts';
import { freshRng } from '../helpers/random.ts';
import { countBitMismatches } from '../helpers/compare.ts';
import { memorySource } from '../../src/io/byte-source.ts';
import { fileSource } from '../../src/node/file-source.ts';
import { readSafetensorsHeader, safetensorsCheckpoint } from '../../src/io/safetensors.ts';
import { readF32, tensorBytesToF32, type Checkpoint } from '../../src/io/checkpoint.ts';
import { readGgufHeader } from '../../src/io/gguf.ts';
import { openGemma3nGguf, type Gemma3nGguf } from '../../src/model/gemma3n/gguf.ts';
import { openGgufCheckpoint } from '../../src/model/registry.ts';
import { normalCdf } from '../../src/math/normal.ts';
import { GGML_TYPE, dequantize, repackLossless } from '../../src/io/gguf-types.ts';
import { losslessFormatOf, losslessFormatsOf } from '../../src/formats/stored-dtype.ts';
import { dequantize as dequantizePacked } from '../../src/formats/weight-format.ts';
import { f16BitsToF32 } from '../../src/io/half.ts';
import { parseGemma3nConfig } from '../../src/model/gemma3n/config.ts';
import { GemmaError } from '../../src/errors.ts';

const GGUF_DIR = join(FIXTURES_DIR, 'gguf-gemma3n-tiny-a');
const HF_DIR = join(FIXTURES_DIR, 'gemma3n-tiny-a');
const present = existsSync(GGUF_DIR) && existsSync(join(HF_DIR, 'model.safetensors'));
const skip = present ? false : `fixtures not found under ${FIXTURES_DIR}`;
const ggufFiles = present ? readdirSync(GGUF_DIR).filter((f) => f.endsWith('.gguf')).sort() : [];

const hfConfig = present ? (JSON.parse(readFileSync(join(HF_DIR, 'config.json'), 'utf8')) as { text_config: Record<string, unknown> }) : undefined;
let hfCheckpoint: Promise<Checkpoint> | undefined;
function safetensors(): Promise<Checkpoint> {
  hfCheckpoint ??= readSafetensorsHeader(fileSource(join(HF_DIR, 'model.safetensors'))).then((e) => safetensorsCheckpoint(HF_DIR, hfConfig, e));
  return hfCheckpoint;
}
const open = async (file: string): Promise<Gemma3nGguf> => openGemma3nGguf(await readGgufHeader(fileSource(join(GGUF_DIR, file))));

/** HF text_config keys that only matter for training or serialization; the GGUF has no counterpart. */
const NOT_INFERENCE_KEYS = ['altup_lr_multiplier', 'attention_dropout', 'initializer_range', 'torch_dtype', 'use_cache'];

async function assertRejects(p: Promise<unknown>, code: string, mustMention: string[]): Promise<GemmaError> {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof GemmaError, `expected a GemmaError, got ${String(err)}`);
    assert.equal(err.code, code, err.message);
    for (const m of mustMention) assert.ok(err.message.includes(m), `message should mention ${m}: ${err.message}`);
    return err;
  }
  assert.fail('expected a rejection');
}


for (const file of ggufFiles) {
  test(`${file}: config equals the safetensors text_config on every inference key, and the parser accepts it`, { skip }, async () => {
    const g = await open(file);
    const ours = g.config as unknown as Record<string, unknown>;
    const hf = hfConfig!.text_config;
    for (const [key, value] of Object.entries(ours)) {
      if (key === 'activation_sparsity_kappa') continue; // our extra key, checked below
      assert.ok(key in hf, `${key} is not an HF text_config key`);
      assert.deepEqual(value, hf[key], `text_config.${key}`);
    }
    const missing = Object.keys(hf).filter((k) => !(k in ours));
    assert.deepEqual(missing.sort(), NOT_INFERENCE_KEYS, 'HF keys the GGUF config lacks');
    // κ as stored: Φ⁻¹(0.95) computed by torch in f32; null for dense layers.
    assert.deepEqual(g.config.activation_sparsity_kappa, [1.6448533535003662, 1.6448533535003662, null, null, null, null]);
    // The model engineer's parser gives the same model from either source.
    assert.deepEqual(parseGemma3nConfig(g.config).text, parseGemma3nConfig(hfConfig).text);
  });

  test(`${file}: HF tensor names and PyTorch shapes match the safetensors language model`, { skip }, async () => {
    const g = await open(file);
    const st = await safetensors();
    const hfNames = st.tensorNames().filter((n) => n.startsWith('model.language_model.')).sort();
    assert.deepEqual(g.tensorNames().sort(), hfNames);
    for (const n of hfNames) assert.deepEqual(g.tensor(n)!.shape, st.tensor(n)!.shape, n);
    assert.deepEqual(g.unmappedTensors, []);
  });
}

for (const kind of ['F32', 'BF16']) {
  const file = `gemma3n-tiny-a-${kind}.gguf`;
  test(`${file}: every tensor equals the safetensors bf16 values exactly (readF32 and the Checkpoint read)`, { skip: skip || !ggufFiles.includes(file) && `${file} missing` }, async () => {
    const g = await open(file);
    const st = await safetensors();
    for (const n of g.tensorNames()) {
      const expected = await readF32(st, n);
      assert.equal(countBitMismatches(await g.readF32(n), expected), 0, `${n}: readF32 differs`);
      assert.equal(countBitMismatches(tensorBytesToF32(await g.read(n)), expected), 0, `${n}: read() differs`);
    }
  });
}

/**
 * Bound on |dequantized − original| for one element, from how each quantizer rounds (llama.cpp at the fixture's
 * commit; gguf-py for the converter's Q8_0):
 * - inside the grid: half a step. Q8_0 (gguf-py) and Q4_0 / Q5_0 (llama-quantize) choose the integer with the
 *   unrounded scale and then store the scale as f16, which moves an element at `level` steps from the centre by
 *   level · |d − f16(d)| ≤ level · max(2⁻¹¹·step, 2⁻²⁵) (f16 subnormal scales have absolute spacing 2⁻²⁴). K-quants
 *   recompute the integers with the final scales, so for them this term is not needed (it is kept: it is tiny).
 * - on the grid's edge the quantizer clamps: Q4_0 / Q5_0 provably ≤ 1 step (the largest-magnitude element maps to
 *   the far end exactly; the opposite end is one level short). K-quants (optimized scales and mins, then clamped):
 *   ≤ 1 step is the bound we assert; measured on these files 0.81 (Q6_K) and 0.86 (Q4_K).
 * Plus f32 rounding of the arithmetic: 2⁻²² relative.
 */
function elementBound(step: number, level: number, edge: boolean, value: number): number {
  return (edge ? 1 : 0.5) * step + level * Math.max(step * 2 ** -11, 2 ** -25) + Math.abs(value) * 2 ** -22;
}

for (const kind of ['Q8_0', 'Q4_0', 'Q6_K', 'Q4_K_M']) {
  const file = `gemma3n-tiny-a-${kind}.gguf`;
  test(`${file}: every tensor within its type's bound of the safetensors values; Q4_0/Q8_0 repack bit-exactly`, { skip: skip || !ggufFiles.includes(file) && `${file} missing` }, async () => {
    const g = await open(file);
    const st = await safetensors();
    const seen = new Map<string, { tensors: number; worstInside: number; worstEdge: number }>();
    for (const n of g.tensorNames()) {
      const t = g.tensors.get(n)!;
      const expected = await readF32(st, n);
      const got = await g.readF32(n);
      const stat = seen.get(t.typeName) ?? { tensors: 0, worstInside: 0, worstEdge: 0 };
      seen.set(t.typeName, stat);
      stat.tensors++;
      if (t.typeName === 'F32' || t.typeName === 'BF16') {
        assert.equal(countBitMismatches(got, expected), 0, `${n} (${t.typeName}) should be exact`);
        continue;
      }
      if (t.typeName === 'F16') {
        // bf16 → f16: exact where f16 is normal (7 ≤ 10 mantissa bits); f16 subnormals are spaced 2⁻²⁴.
        for (let i = 0; i < got.length; i++) assert.ok(Math.abs(got[i] - expected[i]) <= 2 ** -25, `${n}[${i}]: ${got[i]} vs ${expected[i]}`);
        continue;
      }
      const grid = elementGrid(t.ggmlType, await g.readRaw(n), got.length);
      for (let i = 0; i < got.length; i++) {
        const err = Math.abs(got[i] - expected[i]);
        const bound = elementBound(grid.step[i], grid.level[i], grid.edge[i] === 1, expected[i]);
        if (!(err <= bound)) assert.fail(`${n} (${t.typeName}) [${i}]: |${got[i]} − ${expected[i]}| = ${err} > ${bound} (step ${grid.step[i]}, edge ${grid.edge[i]})`);
        const ratio = grid.step[i] > 0 ? err / grid.step[i] : 0;
        if (grid.edge[i]) stat.worstEdge = Math.max(stat.worstEdge, ratio);
        else stat.worstInside = Math.max(stat.worstInside, ratio);
      }
      // Lossless repack: our layouts dequantize to exactly ggml's values (Q5_0 → q8, K-quants → q4k/q6k included).
      for (const format of ['q4', 'q8', 'q4k', 'q5k', 'q6k'] as const) {
        const packed = await g.readPackedAs(n, format);
        const lossless = losslessFormatsOf(t.typeName).includes(format);
        assert.equal(packed !== null, lossless, `${n} (${t.typeName}) → ${format}: lossless repack ${lossless ? 'expected' : 'must be refused'}`);
        if (!packed) continue;
        assert.deepEqual([packed.rows, packed.cols], t.shape);
        const back = dequantizePacked(format, packed, packed.rows, packed.cols, f16BitsToF32);
        assert.equal(countBitMismatches(back, got), 0, `${n} (${t.typeName}) → ${format} repack is not bit-exact`);
      }
      assert.equal(losslessFormatOf(t.typeName), { Q4_0: 'q4', Q8_0: 'q8', Q5_0: 'q5', Q4_K: 'q4k', Q6_K: 'q6k' }[t.typeName], t.typeName);
    }
    const expectedTypes = { Q8_0: ['Q8_0', 'F16'], Q4_0: ['Q4_0', 'Q8_0', 'F16'], Q6_K: ['Q6_K', 'Q8_0', 'F16'], Q4_K_M: ['Q4_K', 'Q5_0', 'Q8_0', 'F16'] }[kind]!;
    for (const type of expectedTypes) assert.ok(seen.has(type), `${file} should contain ${type} tensors (saw ${[...seen.keys()]})`);
    console.log(`${file}: worst |err|/step per type ${JSON.stringify(Object.fromEntries([...seen].filter(([k]) => k.startsWith('Q')).map(([k, v]) => [k, { inside: +v.worstInside.toFixed(4), edge: +v.worstEdge.toFixed(4) }])))}`);
  });
}

test('PLE table: zero padding trimmed (vocab_size_per_layer_input 448 of 512 rows); row ranges read the same values', { skip }, async () => {
  const g = await open('gemma3n-tiny-a-Q8_0.gguf');
  const st = await safetensors();
  const name = 'model.language_model.embed_tokens_per_layer.weight';
  assert.deepEqual(g.tensor(name)!.shape, [448, 96]);
  assert.equal(g.gguf.tensors.get('per_layer_token_embd.weight')!.ne[1], 512);
  const all = await g.readF32(name);
  const rows = await g.readF32(name, { start: 440, count: 8 });
  assert.equal(countBitMismatches(rows, all.subarray(440 * 96, 448 * 96)), 0);
  const f32 = await open('gemma3n-tiny-a-F32.gguf');
  assert.equal(countBitMismatches(await f32.readF32(name, { start: 440, count: 8 }), await readF32(st, name, { start: 440, count: 8 })), 0);
  await assertRejects(g.readF32(name, { start: 440, count: 9 }), 'invalid-argument', ['rows [440, 449)']);
  // Row chunks of a packed table: the same blocks as the whole.
  const whole = (await g.readPackedAs(name, 'q8'))!;
  const part = (await g.readPackedAs(name, 'q8', { start: 100, count: 7 }))!;
  assert.deepEqual([part.rows, part.cols], [7, 96]);
  assert.deepEqual(part.scales, whole.scales.subarray(100 * 3, 107 * 3));
  assert.deepEqual(part.data, whole.data.subarray(100 * 3 * 8, 107 * 3 * 8));
});

test('stacked AltUp projections: slice k of altup_proj is altup_projections.k', { skip }, async () => {
  const g = await open('gemma3n-tiny-a-BF16.gguf');
  const t = g.gguf.tensors.get('altup_proj.weight')!;
  assert.deepEqual(t.ne, [64, 64, 3]);
  const whole = dequantize(t.type, await g.gguf.source.read(t.offset, t.byteLength!), 64 * 64 * 3);
  for (let k = 0; k < 3; k++) {
    const slice = await g.readF32(`model.language_model.altup_projections.${k}.weight`);
    assert.equal(countBitMismatches(slice, whole.subarray(k * 4096, (k + 1) * 4096)), 0, `slice ${k}`);
  }
});

// ---------------------------------------------------------------------------------------------------------------
// Malformed and unsupported files

test('a truncated GGUF (prefix of the file) fails at open with bad-file naming the file', { skip }, async () => {
  const bytes = new Uint8Array(readFileSync(join(GGUF_DIR, 'gemma3n-tiny-a-Q4_0.gguf')));
  const header = await readGgufHeader(memorySource('whole.gguf', bytes));
  // Inside the magic, inside the metadata, inside the tensor infos, inside the data.
  for (const cut of [2, 100, 5000, header.dataOffset - 10, bytes.length - 1000, bytes.length - 1]) {
    const name = `cut-at-${cut}.gguf`;
    await assertRejects(openGgufCheckpoint(memorySource(name, bytes.subarray(0, cut))), 'bad-file', [name, 'truncated']);
  }
});

test('bad magic and unsupported versions give bad-file naming the file', async () => {
  const good = writeGguf({ metadata: {}, tensors: [] });
  await readGgufHeader(memorySource('empty.gguf', good)); // an empty GGUF is valid
  const notGguf = new TextEncoder().encode('{"__metadata__": {}} safetensors-ish bytes');
  await assertRejects(readGgufHeader(memorySource('model.safetensors', notGguf)), 'bad-file', ['model.safetensors', 'not a GGUF file', '"GGUF"']);
  await assertRejects(readGgufHeader(memorySource('v1.gguf', writeGguf({ metadata: {}, tensors: [], version: 1 }))), 'bad-file', ['v1.gguf', 'version 1']);
  await assertRejects(readGgufHeader(memorySource('v4.gguf', writeGguf({ metadata: {}, tensors: [], version: 4 }))), 'bad-file', ['v4.gguf', 'version 4']);
});

/** A minimal Gemma-3n-shaped file holding one FFN tensor of the given type (enough to reach the type check). */
function gemmaLike(type: number, data: Uint8Array, ne: number[]): Uint8Array {
  return writeGguf({
    metadata: { 'general.architecture': { type: 'string', value: 'gemma3n' } },
    tensors: [{ name: 'blk.0.ffn_down.weight', ne, type, data }],
  });
}

test('tensor types we cannot decode give unsupported-dtype naming the type and tensor', async () => {
  // Q2_K (known size, no decoder) and an id ggml does not define.
  await assertRejects(openGgufCheckpoint(memorySource('q2k.gguf', gemmaLike(GGML_TYPE.Q2_K, new Uint8Array(84), [256, 1]))), 'unsupported-dtype', ['Q2_K', 'blk.0.ffn_down.weight', 'q2k.gguf']);
  await assertRejects(openGgufCheckpoint(memorySource('t99.gguf', gemmaLike(99, new Uint8Array(64), [32, 1]))), 'unsupported-dtype', ['ggml type 99', 'blk.0.ffn_down.weight']);
  // The container itself still parses (the type name is reported, the size is unknown).
  const h = await readGgufHeader(memorySource('t99.gguf', gemmaLike(99, new Uint8Array(64), [32, 1])));
  assert.equal(h.tensors.get('blk.0.ffn_down.weight')!.typeName, 'ggml type 99');
  assert.throws(() => dequantize(GGML_TYPE.IQ4_XS, new Uint8Array(136), 256, 'tensor X'), (e: unknown) => e instanceof GemmaError && e.code === 'unsupported-dtype' && e.message.includes('IQ4_XS'));
});

test('a GGUF of another architecture gives unsupported-config', async () => {
  const file = writeGguf({ metadata: { 'general.architecture': { type: 'string', value: 'llama' } }, tensors: [] });
  await assertRejects(openGgufCheckpoint(memorySource('llama.gguf', file)), 'unsupported-config', ['llama.gguf', '"llama"']);
});

test('metadata: every value type, nested arrays, custom alignment and a large header read in chunks', async () => {
  const tokens = Array.from({ length: 30000 }, (_, i) => `tok_${i}_${'x'.repeat(i % 13)}`); // ~600 KB: many chunk refills
  const metadata: Record<string, GgufTypedValue> = {
    'general.alignment': { type: 'u32', value: 64 },
    u8: { type: 'u8', value: 250 }, i8: { type: 'i8', value: -5 }, u16: { type: 'u16', value: 65000 }, i16: { type: 'i16', value: -30000 },
    u32: { type: 'u32', value: 4000000000 }, i32: { type: 'i32', value: -2000000000 }, f32: { type: 'f32', value: 0.1 },
    bool: { type: 'bool', value: true }, str: { type: 'string', value: 'héllo ✓' },
    u64: { type: 'u64', value: 2n ** 40n }, i64: { type: 'i64', value: -(2n ** 62n) }, f64: { type: 'f64', value: Math.PI },
    bools: { type: 'array', elemType: 'bool', value: [true, false, true] },
    nested: { type: 'array', elemType: 'array', value: [{ type: 'array', elemType: 'i32', value: [1, -2] }, { type: 'array', elemType: 'string', value: ['a', 'b'] }] },
    tokens: { type: 'array', elemType: 'string', value: tokens },
  };
  const { rng } = freshRng();
  const data = new Uint8Array(4 * 40);
  new Float32Array(data.buffer).set(rng.normals(40));
  const bytes = writeGguf({ metadata, alignment: 64, tensors: [{ name: 'a', ne: [40], type: GGML_TYPE.F32, data }, { name: 'b', ne: [8, 5], type: GGML_TYPE.F32, data }] });
  let reads = 0;
  const src = memorySource('meta.gguf', bytes);
  const counting = { ...src, read: (o: number, n: number) => (reads++, src.read(o, n)) };
  const h = await readGgufHeader(counting);
  const m = h.metadata;
  assert.equal(h.alignment, 64);
  assert.equal(h.dataOffset % 64, 0);
  assert.deepEqual([m.get('u8'), m.get('i8'), m.get('u16'), m.get('i16'), m.get('u32'), m.get('i32')], [250, -5, 65000, -30000, 4000000000, -2000000000]);
  assert.equal(m.get('f32'), Math.fround(0.1));
  assert.deepEqual([m.get('bool'), m.get('str'), m.get('u64'), m.get('i64'), m.get('f64')], [true, 'héllo ✓', 2 ** 40, -(2n ** 62n), Math.PI]);
  assert.deepEqual(m.get('bools'), [true, false, true]);
  assert.deepEqual(m.get('nested'), [[1, -2], ['a', 'b']]);
  assert.deepEqual(m.get('tokens'), tokens);
  assert.ok(reads > 3 && reads < 12, `header read in ${reads} growing chunks`);
  const b = h.tensors.get('b')!;
  assert.equal(b.offset % 64, 0);
  assert.deepEqual(dequantize(b.type, await src.read(b.offset, b.byteLength!), 40), new Float32Array(data.buffer));
});

// ---------------------------------------------------------------------------------------------------------------
// Decoders the fixtures do not exercise, checked through exact relations to the ones they do

test('Q4_1 / Q5_1 with m = −8d / −16d equal Q4_0 / Q5_0 exactly; Q5_K with no fifth bits equals Q4_K, and each set bit adds 16 steps', { skip }, async () => {
  const { rng } = freshRng();
  // Q4_0 → Q4_1: same d and nibbles, m = −8d (exact in f16).
  const q40 = new Uint8Array(18 * 8);
  for (let b = 0; b < 8; b++) {
    q40.set([rng.int(0, 256), rng.int(4, 0x3c)], 18 * b); // positive normal f16 d
    for (let i = 2; i < 18; i++) q40[18 * b + i] = rng.int(0, 256);
  }
  const q41 = new Uint8Array(20 * 8);
  for (let b = 0; b < 8; b++) {
    const dBits = q40[18 * b] | (q40[18 * b + 1] << 8);
    const mBits = (dBits + (3 << 10)) | 0x8000; // −8d: exponent + 3, sign set
    q41.set([q40[18 * b], q40[18 * b + 1], mBits & 255, mBits >> 8], 20 * b);
    q41.set(q40.subarray(18 * b + 2, 18 * b + 18), 20 * b + 4);
  }
  assert.equal(countBitMismatches(dequantize(GGML_TYPE.Q4_1, q41, 256), dequantize(GGML_TYPE.Q4_0, q40, 256)), 0, 'Q4_1 vs Q4_0');

  // Q5_0 → Q5_1 likewise (m = −16d), random fifth bits.
  const q50 = new Uint8Array(22 * 8), q51 = new Uint8Array(24 * 8);
  for (let b = 0; b < 8; b++) {
    q50.set([rng.int(0, 256), rng.int(4, 0x3c)], 22 * b);
    for (let i = 2; i < 22; i++) q50[22 * b + i] = rng.int(0, 256);
    const dBits = q50[22 * b] | (q50[22 * b + 1] << 8);
    const mBits = (dBits + (4 << 10)) | 0x8000;
    q51.set([q50[22 * b], q50[22 * b + 1], mBits & 255, mBits >> 8], 24 * b);
    q51.set(q50.subarray(22 * b + 2, 22 * b + 22), 24 * b + 4);
  }
  const v50 = dequantize(GGML_TYPE.Q5_0, q50, 256);
  assert.equal(countBitMismatches(dequantize(GGML_TYPE.Q5_1, q51, 256), v50), 0, 'Q5_1 vs Q5_0');
  // Q5_0 with qh = 0 is Q4_0 shifted by −8 steps: element i = d·(nibble − 16).
  const q4from5 = dequantize(GGML_TYPE.Q5_0, (() => { const c = q50.slice(); for (let b = 0; b < 8; b++) c.fill(0, 22 * b + 2, 22 * b + 6); return c; })(), 256);
  for (let b = 0; b < 8; b++) {
    const d = f16BitsToF32(q50[22 * b] | (q50[22 * b + 1] << 8));
    for (let i = 0; i < 32; i++) {
      const byte = q50[22 * b + 6 + (i % 16)];
      assert.equal(q4from5[32 * b + i], Math.fround(((i < 16 ? byte & 15 : byte >> 4) - 16) * d));
    }
  }

  // Q5_K from the fixture's real Q4_K blocks.
  const g = await open('gemma3n-tiny-a-Q4_K_M.gguf');
  const name = [...g.tensors.values()].find((t) => t.typeName === 'Q4_K')!.hfName;
  const q4k = await g.readRaw(name, { start: 0, count: 4 }); // 4 rows × 256 = 4 blocks
  const nb = q4k.byteLength / 144;
  const v4k = dequantize(GGML_TYPE.Q4_K, q4k, nb * 256);
  const toQ5K = (qh: (b: number, l: number) => number) => {
    const out = new Uint8Array(176 * nb);
    for (let b = 0; b < nb; b++) {
      out.set(q4k.subarray(144 * b, 144 * b + 16), 176 * b);
      for (let l = 0; l < 32; l++) out[176 * b + 16 + l] = qh(b, l);
      out.set(q4k.subarray(144 * b + 16, 144 * b + 144), 176 * b + 48);
    }
    return out;
  };
  assert.equal(countBitMismatches(dequantize(GGML_TYPE.Q5_K, toQ5K(() => 0), nb * 256), v4k), 0, 'Q5_K (no high bits) vs Q4_K');
  const bits = Array.from({ length: nb * 32 }, () => rng.int(0, 256));
  const v5k = dequantize(GGML_TYPE.Q5_K, toQ5K((b, l) => bits[32 * b + l]), nb * 256);
  const grid = elementGrid(GGML_TYPE.Q4_K, q4k, nb * 256);
  for (let b = 0; b < nb; b++) {
    for (let j = 0; j < 8; j++) {
      for (let l = 0; l < 32; l++) {
        const i = 256 * b + 32 * j + l;
        const bit = (bits[32 * b + l] >> j) & 1; // sub-block j = 2c + (0|1) uses bit j of qh[l]
        const expected = v4k[i] + 16 * bit * grid.step[i];
        assert.ok(Math.abs(v5k[i] - expected) <= 2 ** -22 * (Math.abs(expected) + 16 * grid.step[i]), `Q5_K element ${i}: ${v5k[i]} vs ${expected}`);
      }
    }
  }
});

test('repackLossless refuses Q8_0 → q4 and formats other types; Φ matches known values', () => {
  assert.equal(repackLossless(GGML_TYPE.Q8_0, new Uint8Array(34), 1, 32, 'q4'), null);
  assert.equal(repackLossless(GGML_TYPE.Q4_K, new Uint8Array(144), 1, 256, 'q4'), null);
  assert.equal(repackLossless(GGML_TYPE.Q4_K, new Uint8Array(144), 1, 256, 'q6k'), null);
  assert.equal(repackLossless(GGML_TYPE.Q4_1, new Uint8Array(20), 1, 32, 'q8'), null);
  // Φ(κ) for the stored κ of p = 0.95 and 0.9 (torch f32 icdf) round to p at 7 decimals; tails are accurate.
  assert.equal(Math.round(normalCdf(1.6448533535003662) * 1e7) / 1e7, 0.95);
  assert.equal(Math.round(normalCdf(1.2815513611) * 1e7) / 1e7, 0.9);
  assert.ok(Math.abs(normalCdf(-1) - 0.15865525393145707) < 1e-15);
  assert.ok(Math.abs(normalCdf(5) - 0.9999997133484281) < 1e-15);
  assert.ok(Math.abs(normalCdf(-6) - 9.865876450377e-10) < 1e-20);
});
