import { test } from 'node:test';
import assert from 'node:assert/strict';
import { GatherKernel, packRowsForUpload, uploadedRowsBytes, type CpuTable } from '../../src/kernels/gather.ts';
import { dequantize, groupsPerRow, packQ4, packQ8, scalesAsWords, type GpuWeight, type WeightFormat } from '../../src/formats/weight-format.ts';
import { submitDispatches } from '../../src/gpu/pipeline.ts';
import { createStorageBuffer, writeBuffer } from '../../src/gpu/buffers.ts';
import { testGpu, poisonedBuffer, upload, download, f16SkipReason } from '../helpers/gpu.ts';
import { freshRng, type Rng } from '../helpers/random.ts';
import { assertClose } from '../helpers/compare.ts';
import { f16BitsToF32, f32ArrayToF16, f32ToF16Bits, f16ArrayToF32 } from '../../src/io/half.ts';
import type { GpuContext } from '../../src/gpu/device.ts';

/** A random CPU table in `format` (q4/q8: random codes, f16 scales in [0.002, 0.05]). */
function randomTable(rng: Rng, format: WeightFormat, rows: number, cols: number): CpuTable {
  if (format === 'f32') return { format, rows, cols, data: new Uint8Array(rng.normals(rows * cols).buffer) };
  if (format === 'f16') return { format, rows, cols, data: new Uint8Array(f32ArrayToF16(rng.normals(rows * cols)).buffer) };
  const scales = new Uint16Array(rows * groupsPerRow(cols)).map(() => f32ToF16Bits(rng.uniform(0.002, 0.05)));
  const q = Array.from({ length: rows * cols }, () => (format === 'q4' ? rng.int(0, 16) : rng.int(-128, 128)));
  const packed = format === 'q4' ? packQ4(q, scales, rows, cols) : packQ8(q, scales, rows, cols);
  return { format, rows, cols, data: new Uint8Array(packed.data.buffer), scales };
}

/** Row r of a CPU table in f32 (weight-format.ts's CPU definitions). */
function tableRow(t: CpuTable, r: number): Float32Array {
  const { cols } = t;
  if (t.format === 'f32') return new Float32Array(t.data.buffer, t.data.byteOffset + r * cols * 4, cols);
  if (t.format === 'f16') return f16ArrayToF32(new Uint16Array(t.data.buffer, t.data.byteOffset + r * cols * 2, cols));
  const G = groupsPerRow(cols), blockBytes = t.format === 'q4' ? 16 : 32;
  const words = new Uint32Array(t.data.buffer, t.data.byteOffset + r * G * blockBytes, (G * blockBytes) / 4);
  return dequantize(t.format, { data: words, scales: t.scales!.subarray(r * G, (r + 1) * G) }, 1, cols, f16BitsToF32);
}

/** Uploads a CPU table as a GpuWeight split into parts at `splits` (row indices). */
function toGpu(ctx: GpuContext, t: CpuTable, splits: number[] = []): GpuWeight {
  const bounds = [0, ...splits, t.rows];
  const G = groupsPerRow(t.cols);
  const rb = t.format === 'f32' ? t.cols * 4 : t.format === 'f16' ? t.cols * 2 : G * (t.format === 'q4' ? 16 : 32);
  const parts = bounds.slice(0, -1).map((start, i) => {
    const rows = bounds[i + 1] - start;
    return {
      rowStart: start,
      rows,
      data: upload(ctx, t.data.slice(start * rb, (start + rows) * rb), 'table'),
      scales: t.scales ? upload(ctx, scalesAsWords(t.scales.slice(start * G, (start + rows) * G)), 'scales') : undefined,
    };
  });
  return { format: t.format, rows: t.rows, cols: t.cols, parts, bytes: 0 };
}

/** float64 reference: y[t] = scale * row(ids[t]) with the OOV rule; undefined = row untouched. */
function gatherRef(t: CpuTable, ids: number[], scale: number, limit: number, oov: 'substitute' | 'zero' | 'skip', sub = 0): Array<Float64Array | undefined> {
  return ids.map((id) => {
    if (id >= Math.min(limit, t.rows)) {
      if (oov === 'zero') return new Float64Array(t.cols);
      if (oov === 'skip') return undefined;
      id = sub;
    }
    return Float64Array.from(tableRow(t, id), (v) => v * scale);
  });
}

/** Compares rows; untouched rows must still be poison (NaN). */
function checkRows(got: Float32Array, expected: Array<Float64Array | undefined>, cols: number, tag: string) {
  const exp: number[] = [], act: number[] = [];
  expected.forEach((row, t) => {
    const g = got.subarray(t * cols, (t + 1) * cols);
    if (!row) return assert.ok(g.every(Number.isNaN), `skipped row ${t} was written ${tag}`);
    exp.push(...row);
    act.push(...g);
  });
  // Exact dequantization (q * f16 scale is exact in f32) then one f32 multiply: <= 0.5 ulp = 6e-8 relative.
  assertClose(act, exp, { atol: 0, rtol: 1e-7, tag });
}

const SQRT_D = Math.sqrt(2048);

for (const format of ['f32', 'f16', 'q4', 'q8'] as const) {
  test(`gather ${format} E2B embedding shape D=2048, T=13, 3 parts, oov zero`, async () => {
    const ctx = await testGpu();
    const { rng, tag } = freshRng();
    const rows = 40, cols = 2048, limit = 30;
    const table = randomTable(rng, format, rows, cols);
    const ids = [0, 39, 29, 30, 35, ...Array.from({ length: 8 }, () => rng.int(0, rows))];
    const kernel = await GatherKernel.create(ctx);
    const y = poisonedBuffer(ctx, ids.length * cols * 4);
    const d = kernel.bind({ table: toGpu(ctx, table, [7, 23]), ids: upload(ctx, new Uint32Array(ids)), y, tokens: ids.length, scale: SQRT_D, limit, oov: 'zero' });
    submitDispatches(ctx.device, [d]);
    checkRows(new Float32Array(await download(ctx, y, ids.length * cols * 4)), gatherRef(table, ids, Math.fround(SQRT_D), limit, 'zero'), cols, `${tag} ${format}`);
  });
}

test('gather odd widths: q4 cols=80, q8 cols=80, f16 cols=81 (groups and halves straddle rows), oov substitute', async () => {
  const ctx = await testGpu();
  const { rng, tag } = freshRng();
  const kernel = await GatherKernel.create(ctx);
  for (const [format, cols] of [['q4', 80], ['q8', 80], ['f16', 81], ['f32', 81]] as const) {
    const table = randomTable(rng, format, 9, cols);
    const ids = [8, 1, 100];
    const y = poisonedBuffer(ctx, (1 + 3 * (cols + 2)) * 4);
    submitDispatches(ctx.device, [kernel.bind({ table: toGpu(ctx, table, [5]), ids: upload(ctx, new Uint32Array(ids)), y: { buffer: y, offset: 1, rowStride: cols + 2 }, tokens: 3, oov: 'substitute', substitute: 4 })]);
    const all = new Float32Array(await download(ctx, y, (1 + 3 * (cols + 2)) * 4));
    const got = new Float32Array(3 * cols);
    for (let t = 0; t < 3; t++) got.set(all.subarray(1 + t * (cols + 2), 1 + t * (cols + 2) + cols), t * cols);
    checkRows(got, gatherRef(table, ids, 1, 9, 'substitute', 4), cols, `${tag} ${format} cols=${cols}`);
    assert.ok(Number.isNaN(all[0]) && Number.isNaN(all[1 + cols]), `wrote outside the view ${tag}`);
  }
});

test('gather from a 262,400-row q8 table on the GPU in 3 parts (vocab-size ids, PLE rule ids >= 262144 -> row 0, x16)', async () => {
  const ctx = await testGpu();
  const { rng, tag } = freshRng();
  const rows = 262_400, cols = 64, G = 2;
  // Random bytes directly (17 MB), and scales drawn from a pool of valid f16 values.
  const words = new Uint32Array(rows * G * 8);
  for (let i = 0; i < words.length; i++) words[i] = (rng.next() * 4294967296) >>> 0;
  const pool = Array.from({ length: 64 }, () => f32ToF16Bits(rng.uniform(0.002, 0.05)));
  const scales = new Uint16Array(rows * G);
  for (let i = 0; i < scales.length; i++) scales[i] = pool[i & 63] ^ (i & 0x7 ? 0 : 1);
  const table: CpuTable = { format: 'q8', rows, cols, data: new Uint8Array(words.buffer), scales };
  const gpu = toGpu(ctx, table, [100_000, 200_001]);
  const ids = [0, 262_399, 262_143, 262_144, 262_200, 99_999, 100_000, 200_000, 200_001, 2, 1_000, 150_000, 262_000];
  const idBuf = createStorageBuffer(ctx.device, 64 * 4, 'ids');
  writeBuffer(ctx.device, idBuf, new Uint32Array(ids), 5 * 4); // at an offset, as a ring of ids would be
  const kernel = await GatherKernel.create(ctx);
  const n = ids.length;
  const y = poisonedBuffer(ctx, n * cols * 4);
  const d = kernel.bind({ table: gpu, ids: idBuf, idsOffset: 5, y, tokens: n, scale: 16, limit: 262_144, oov: 'substitute', substitute: 0 });
  submitDispatches(ctx.device, [d]);
  checkRows(new Float32Array(await download(ctx, y, n * cols * 4)), gatherRef(table, ids, 16, 262_144, 'substitute'), cols, `${tag} PLE`);

  // Token-embedding use: ids >= 262144 are multimodal; 'skip' leaves their rows for the embedders.
  const y2 = poisonedBuffer(ctx, n * cols * 4);
  const d2 = kernel.bind({ table: gpu, ids: idBuf, idsOffset: 5, y: y2, tokens: n, scale: SQRT_D, limit: 262_144, oov: 'skip' });
  submitDispatches(ctx.device, [d2]);
  checkRows(new Float32Array(await download(ctx, y2, n * cols * 4)), gatherRef(table, ids, Math.fround(SQRT_D), 262_144, 'skip'), cols, `${tag} embed`);
  // Decode step: one token, same dispatch.
  writeBuffer(ctx.device, idBuf, new Uint32Array([262_143]), 5 * 4);
  d2.setTokens(1);
  submitDispatches(ctx.device, [d2]);
  checkRows(new Float32Array(await download(ctx, y2, cols * 4)), gatherRef(table, [262_143], Math.fround(SQRT_D), 262_144, 'skip'), cols, `${tag} decode`);
});

for (const format of ['f32', 'f16', 'q4', 'q8'] as const) {
  test(`gather ${format} uploaded PLE rows (E2B: 30 layers x 256 = 7680 cols, x16)`, async () => {
    const ctx = await testGpu();
    const { rng, tag } = freshRng();
    const cols = 30 * 256, maxT = 8;
    const table = randomTable(rng, format, 12, cols);
    const ids = [3, 11, 400_000];
    const packed = packRowsForUpload(table, ids, 10, 0); // 11 and 400000 are >= the limit: row 0
    const sizes = uploadedRowsBytes(format, cols, maxT);
    const dataBuf = createStorageBuffer(ctx.device, sizes.data, 'ple/upload');
    const scaleBuf = sizes.scales ? createStorageBuffer(ctx.device, sizes.scales, 'ple/upload-scales') : undefined;
    writeBuffer(ctx.device, dataBuf, packed.data);
    if (scaleBuf) writeBuffer(ctx.device, scaleBuf, packed.scales!);
    const kernel = await GatherKernel.create(ctx);
    const y = poisonedBuffer(ctx, maxT * cols * 4);
    const d = kernel.bindUploaded({ format, cols, data: dataBuf, scales: scaleBuf, y, tokens: 1, scale: 16 });
    d.setTokens(ids.length);
    submitDispatches(ctx.device, [d]);
    const got = new Float32Array(await download(ctx, y, maxT * cols * 4));
    checkRows(got.subarray(0, ids.length * cols), gatherRef(table, ids, 16, 10, 'substitute', 0), cols, `${tag} ${format}`);
    assert.ok(got.subarray(ids.length * cols).every(Number.isNaN), `rows beyond tokens written ${tag}`);
  });
}

test('gather f16 output variant', async (t) => {
  const skip = await f16SkipReason();
  if (skip) return t.skip(skip);
  const ctx = await testGpu();
  const { rng, tag } = freshRng();
  const table = randomTable(rng, 'q4', 20, 2048);
  const ids = [1, 19, 7];
  const kernel = await GatherKernel.create(ctx, 'f16');
  const y = poisonedBuffer(ctx, ids.length * 2048 * 2);
  submitDispatches(ctx.device, [kernel.bind({ table: toGpu(ctx, table), ids: upload(ctx, new Uint32Array(ids)), y, tokens: 3, scale: SQRT_D })]);
  const got = f16ArrayToF32(new Uint16Array(await download(ctx, y, ids.length * 2048 * 2)));
  // f16 output rounding: 2^-11 relative.
  assertClose(got, gatherRef(table, ids, SQRT_D, 20, 'zero').flatMap((r) => Array.from(r!)), { atol: 1e-4, rtol: 1e-3, tag });
});
