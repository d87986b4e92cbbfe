// The host PLE table (src/model/ple-table.ts): rows in blocks of at most 64 MiB in every format (none of
// E2B's or E4B's blocks passes it; the host table is never f32), packing across block edges equal to one table,
// the GPU-resident copy equal too, a Q6_K table (llama.cpp's Q4_K_M files) kept as q6k block by block with exactly the
// file's values, a Q4_1 one (no lossless GPU home) requantized to int4 exactly as dequantize + quantize,
// bf16 → f16 exact for every bf16 value f16 can hold, and what f16 (float mode) does to the logits, measured with
// the float64 reference on every tiny fixture.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { openSafetensorsCheckpoint } from '../../src/io/safetensors.ts';
import { directoryFiles } from '../../src/node/checkpoint-files.ts';
import { memorySource } from '../../src/io/byte-source.ts';
import type { Checkpoint, TensorBytes } from '../../src/io/checkpoint.ts';
import { readGgufHeader } from '../../src/io/gguf.ts';
import { ggufCheckpoint, ggufTensor } from '../../src/io/gguf-checkpoint.ts';
import { dequantize, GGML_TYPE } from '../../src/io/gguf-types.ts';
import { f16BitsToF32, f32ToF16Bits } from '../../src/io/half.ts';
import { BLOCK_BYTES, PleTable, pleHostBytes, pleHostFormat, rowsPerBlock, type PleFormat } from '../../src/model/ple-table.ts';
import { quantizeCpu } from '../../src/model/cpu-quant.ts';
import { parseGemma3nConfig } from '../../src/model/gemma3n/config.ts';
import { createRandomCheckpoint } from '../../src/model/gemma3n/random-checkpoint.ts';
import { PLE_TABLE } from '../../src/model/gemma3n/tensors.ts';
import { dataBytes, dequantize as dequantizePacked, groupsPerRow, scalesAsWords } from '../../src/formats/weight-format.ts';
import { countBitMismatches } from '../helpers/compare.ts';
import { GemmaError } from '../../src/errors.ts';
import { loadRefWeights, referenceForward } from '../helpers/reference-gemma3n.ts';
import { tinyFixtures, maxAbsDiff2d } from '../helpers/fixtures.ts';
import { testGpu, download } from '../helpers/gpu.ts';
import { writeGguf } from '../helpers/gguf-writer.ts';
import { freshRng } from '../helpers/random.ts';

const GiB = 2 ** 30;

test('E2B / E4B host tables: the format per stored dtype and mode, never f32, every block ≤ 64 MiB', () => {
  assert.equal(pleHostFormat('BF16', 'q4'), 'q4');
  assert.equal(pleHostFormat('BF16', 'float'), 'f16');
  assert.equal(pleHostFormat('F32', 'float'), 'f16');
  assert.equal(pleHostFormat(undefined, 'float'), 'f16');
  assert.equal(pleHostFormat('Q4_0', 'float'), 'q4');
  assert.equal(pleHostFormat('Q8_0', 'q4'), 'q8');
  // Block types a GPU format holds losslessly keep their values in every mode (src/formats/stored-dtype.ts).
  for (const [type, format] of [['Q6_K', 'q6k'], ['Q5_K', 'q5k'], ['Q4_K', 'q4k'], ['Q5_0', 'q5']]) {
    for (const mode of ['float', 'q4', 'q8'] as const) assert.equal(pleHostFormat(type, mode), format, `${type} ${mode}`);
  }
  assert.equal(pleHostFormat('Q4_1', 'float'), 'q4');
  assert.equal(pleHostFormat('BF16', 'q8'), 'q8');
  assert.equal(pleHostFormat('Q4_1', 'q8'), 'q8');
  assert.equal(pleHostFormat('Q4_0', 'q8'), 'q4');
  for (const preset of ['e2b', 'e4b'] as const) {
    const c = parseGemma3nConfig(createRandomCheckpoint({ preset }).config).text;
    const cols = c.numLayers * c.pleDim;
    for (const format of ['q4', 'q8', 'f16'] as PleFormat[]) {
      const perBlock = rowsPerBlock(format, cols);
      assert.ok(perBlock % 2 === 0 && dataBytes(format, perBlock, cols) <= BLOCK_BYTES, `${preset} ${format}`);
      assert.ok(perBlock * groupsPerRow(cols) * 2 <= BLOCK_BYTES);
    }
    const q4 = pleHostBytes('q4', c.vocabSizePerLayerInput, cols);
    console.log(`# ${preset} PLE host table: q4 ${(q4 / 1e9).toFixed(3)} GB, q8 ${(pleHostBytes('q8', c.vocabSizePerLayerInput, cols) / 1e9).toFixed(3)} GB, f16 ${(pleHostBytes('f16', c.vocabSizePerLayerInput, cols) / 1e9).toFixed(3)} GB (f32 would be ${((c.vocabSizePerLayerInput * cols * 4) / 1e9).toFixed(3)} GB)`);
    assert.ok(q4 > GiB && q4 < 1.5 * GiB);
  }
});

test('packing across block edges and the GPU-resident copy equal one whole table, in every format', async () => {
  const ctx = await testGpu();
  const fx = tinyFixtures()[0];
  const ckpt = await openSafetensorsCheckpoint(directoryFiles(fx.dir));
  const [rows, cols] = ckpt.tensor(PLE_TABLE)!.shape;
  const { rng, tag } = freshRng();
  const ids = Array.from({ length: 37 }, () => rng.int(0, rows + 40)); // some ≥ rows: row 0
  for (const format of ['q4', 'q8', 'f16'] as PleFormat[]) {
    const whole = await PleTable.load(ckpt, PLE_TABLE, rows, cols, format, 1);
    const blocked = await PleTable.load(ckpt, PLE_TABLE, rows, cols, format, 1, { blockBytes: dataBytes(format, 10, cols) });
    assert.equal(whole.table.blocks.length, 1);
    assert.equal(blocked.table.blocks.length, Math.ceil(rows / 10), `${format}: blocks of 10 rows`);
    assert.equal(blocked.bytes, whole.bytes);
    const a = whole.pack(ids), b = blocked.pack(ids);
    assert.deepEqual(b.data, a.data, `${tag} ${format} data`);
    assert.deepEqual(b.scales, a.scales, `${tag} ${format} scales`);
    // GPU copies made of 2-block parts hold the same bytes as the one-part copy.
    const small = blocked.toGpu({ ...ctx, device: deviceWithLimit(ctx.device, dataBytes(format, 20, cols) + 2 ** 20) } as typeof ctx);
    assert.ok(small.parts.length > 1);
    const one = whole.toGpu(ctx);
    const flat = new Uint8Array(await download(ctx, one.parts[0].data, dataBytes(format, rows, cols)));
    let at = 0;
    for (const part of small.parts) {
      const n = dataBytes(format, part.rows, cols);
      assert.deepEqual(new Uint8Array(await download(ctx, part.data, n)), flat.subarray(at, at + n), `${format} part @${part.rowStart}`);
      at += n;
    }
    for (const w of [small, one]) for (const p of w.parts) (p.data.destroy(), p.scales?.destroy());
  }
});

/** The same device with smaller buffer limits (only the limits are read by toGpu). */
function deviceWithLimit(device: GPUDevice, bytes: number): GPUDevice {
  const limits = { maxStorageBufferBindingSize: bytes, maxBufferSize: bytes };
  return new Proxy(device, { get: (t, k) => (k === 'limits' ? limits : (Reflect.get(t, k) as unknown) instanceof Function ? (Reflect.get(t, k) as Function).bind(t) : Reflect.get(t, k)) });
}

/** A one-tensor GGUF checkpoint of a [rows, cols] PLE table stored as `type`. */
async function pleGguf(type: number, raw: Uint8Array, rows: number, cols: number): Promise<Checkpoint> {
  const file = writeGguf({ metadata: {}, tensors: [{ name: 'per_layer_token_embd.weight', ne: [cols, rows], type, data: raw }] });
  const gguf = await readGgufHeader(memorySource('ple.gguf', file));
  const info = gguf.tensors.get('per_layer_token_embd.weight')!;
  return ggufCheckpoint(gguf, new Map([[PLE_TABLE, ggufTensor(PLE_TABLE, info, [rows, cols])]]), [], {});
}

/** Random blocks of `blockBytes` with a finite, modest f16 at each of `halves` (byte offsets): random bytes could make a scale inf or NaN. */
function randomBlocks(rng: ReturnType<typeof freshRng>['rng'], blocks: number, blockBytes: number, halves: number[]): Uint8Array {
  const raw = new Uint8Array(blocks * blockBytes);
  for (let i = 0; i < raw.length; i++) raw[i] = rng.int(0, 256);
  for (let b = 0; b < blocks; b++) {
    for (const at of halves) {
      const h = f32ToF16Bits(rng.uniform(1e-4, 1e-3));
      raw[b * blockBytes + at] = h & 255;
      raw[b * blockBytes + at + 1] = h >> 8;
    }
  }
  return raw;
}

test('a Q6_K table is kept as q6k block by block (the file\'s values exactly); a Q4_1 one is requantized to int4 exactly as dequantize then quantize', async () => {
  const rows = 70, cols = 512;
  const { rng, tag } = freshRng();
  const all = Array.from({ length: rows }, (_, i) => i);
  // Q6_K: 210-byte blocks of 256, f16 d in the last two bytes.
  const q6k = randomBlocks(rng, (rows * cols) / 256, 210, [208]);
  const kept = await PleTable.load(await pleGguf(GGML_TYPE.Q6_K, q6k, rows, cols), PLE_TABLE, rows, cols, pleHostFormat('Q6_K', 'q4'), 1, { blockBytes: dataBytes('q6k', 8, cols) });
  assert.equal(kept.format, 'q6k');
  assert.equal(kept.table.blocks.length, 9);
  const k = kept.pack(all);
  const values = dequantizePacked('q6k', { data: k.data, scales: new Uint16Array(k.scales!.buffer) }, rows, cols, f16BitsToF32);
  assert.equal(countBitMismatches(values, dequantize(GGML_TYPE.Q6_K, q6k, rows * cols)), 0, `q6k rows vs ggml ${tag}`);
  // Q4_1: 20-byte blocks of 32 (f16 d, f16 m, 16 bytes of nibbles).
  const q41 = randomBlocks(rng, (rows * cols) / 32, 20, [0, 2]);
  const table = await PleTable.load(await pleGguf(GGML_TYPE.Q4_1, q41, rows, cols), PLE_TABLE, rows, cols, pleHostFormat('Q4_1', 'q4'), 1, { blockBytes: dataBytes('q4', 8, cols) });
  assert.equal(table.table.blocks.length, 9);
  const expected = quantizeCpu('q4', dequantize(GGML_TYPE.Q4_1, q41, rows * cols), rows, cols);
  const packed = table.pack(all);
  assert.deepEqual(new Uint32Array(packed.data.buffer), expected.data);
  assert.deepEqual(packed.scales, scalesAsWords(expected.scales));
});

test('float mode: bf16 rows become f16 exactly wherever f16 can hold them; out-of-range values fail the load', async () => {
  // Every bf16 bit pattern whose value lies within f16's range (NaNs included).
  const patterns: number[] = [];
  for (let b = 0; b < 65536; b++) {
    const v = new Float32Array(new Uint32Array([b << 16]).buffer)[0];
    if (!(Math.abs(v) > 65504)) patterns.push(b);
  }
  const cols = 64;
  const rows = Math.ceil(patterns.length / cols);
  const bf16 = new Uint16Array(rows * cols);
  bf16.set(patterns);
  const stub = (bytes: Uint16Array): Checkpoint => ({
    name: 'stub',
    config: {},
    tensor: () => ({ name: PLE_TABLE, shape: [rows, cols], dtype: 'BF16' }),
    tensorNames: () => [PLE_TABLE],
    read: async (_n, r): Promise<TensorBytes> => ({ dtype: 'BF16', bytes: new Uint8Array(bytes.buffer, r!.start * cols * 2, r!.count * cols * 2) }),
  });
  const table = await PleTable.load(stub(bf16), PLE_TABLE, rows, cols, 'f16', 1, { blockBytes: 64 * cols * 2 });
  const got = new Uint16Array(table.pack(Array.from({ length: rows }, (_, i) => i)).data.buffer, 0, rows * cols);
  let inexact = 0;
  for (let i = 0; i < patterns.length; i++) {
    const v = new Float32Array(new Uint32Array([patterns[i] << 16]).buffer)[0];
    assert.equal(got[i], f32ToF16Bits(v), `bf16 0x${patterns[i].toString(16)}`);
    if (!Number.isNaN(v) && f16BitsToF32(got[i]) !== v) {
      inexact++;
      assert.ok(Math.abs(v) < 2 ** -14 && Math.abs(f16BitsToF32(got[i]) - v) <= 2 ** -25, `only f16 subnormals round: ${v}`);
    }
  }
  // (By count of bit patterns most bf16 values are tiny: 112 of its 256 exponents lie below f16's 2^-14.)
  assert.ok(inexact > 0);
  const big = new Uint16Array(rows * cols);
  big[5] = 0x4780; // 65536 in bf16
  await assert.rejects(PleTable.load(stub(big), PLE_TABLE, rows, cols, 'f16', 1), (e: unknown) => e instanceof GemmaError && /beyond ±65504/.test(e.message));
});

test('float mode keeps the table in f16: what that does to the logits (float64 reference, every tiny fixture)', async () => {
  let worst = 0;
  for (const fx of tinyFixtures()) {
    const ckpt = await openSafetensorsCheckpoint(directoryFiles(fx.dir));
    const cfg = parseGemma3nConfig(ckpt.config);
    const exact = await loadRefWeights(ckpt);
    const viaF16 = new Map(exact);
    const table = exact.get(PLE_TABLE)!;
    viaF16.set(PLE_TABLE, table.map((v) => f16BitsToF32(f32ToF16Bits(v))));
    const changed = table.filter((v) => f16BitsToF32(f32ToF16Bits(v)) !== v).length;
    console.log(`# ${fx.name}: ${changed} of ${table.length} PLE values change in f16 (smallest |value| ${Math.min(...table.filter((v) => v !== 0).map(Math.abs)).toExponential(2)})`);
    for (const gc of fx.golden.cases) {
      const a = referenceForward(cfg, exact, gc.input_ids).logits;
      const b = referenceForward(cfg, viaF16, gc.input_ids).logits;
      const d = maxAbsDiff2d(a, b);
      worst = Math.max(worst, d);
      console.log(`# ${fx.name} ${gc.name}: max |Δlogit| from the f16 PLE table = ${d.toExponential(2)}`);
    }
  }
  // The float-mode golden tolerance is 1e-3 (1.44e-4 the goldens' own fp32-vs-fp64 bound): the table's f16 costs nothing
  // measurable against either.
  assert.ok(worst <= 1e-5, String(worst));
});
