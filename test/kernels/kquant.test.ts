/**
 * K-quant weight formats (src/formats/kquant.ts) and q5 (ggml Q5_0's values, weight-format.ts) end to end:
 * - the CPU repack of ggml blocks dequantizes to exactly ggml's values (src/io/gguf-types.ts `dequantize`, an
 *   independent decoder of ggml's block layout), on random blocks (subnormal super-block scales included) and on
 *   every K-quant tensor of the fixture GGUFs;
 * - the GPU reads them exactly: the gather kernel (scale 1) returns ggml's values bit for bit;
 * - the matmul kernel (GEMV in both workgroup shapes, GEMM) equals a float64 reference on the same values within
 *   the f32-accumulation tolerance of test/kernels/matmul.test.ts, on shapes off every tile (partial super-blocks
 *   from our own quantizer's layout: K = 96, 288) and the E2B shapes.
 * q5 likewise: Q5_0 blocks repack losslessly (CPU and gather bit-exact), matmul within the same tolerance.
 * Column runs of whole super-blocks picked from a K-quant weight (pickKColumns: the offline cache serving a MatFormer
 * slice) dequantize to exactly those columns of the whole.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { dequantize as ggmlDequantize, GGML_TYPE } from '../../src/io/gguf-types.ts';
import { openGemma3nGguf } from '../../src/model/gemma3n/gguf.ts';
import { readGgufHeader } from '../../src/io/gguf.ts';
import { fileSource } from '../../src/node/file-source.ts';
import { f16BitsToF32 } from '../../src/io/half.ts';
import { dequantizeK, pickKColumns, repackGgmlK, K_FORMATS, type KFormat } from '../../src/formats/kquant.ts';
import { dequantize as dequantizePacked, packQ5, groupsPerRow } from '../../src/formats/weight-format.ts';
import { repackLossless } from '../../src/io/gguf-types.ts';
import { f32ToF16Bits } from '../../src/io/half.ts';
import { GatherKernel, packRowsForUpload, uploadedRowsBytes, type CpuTable } from '../../src/kernels/gather.ts';
import { createStorageBuffer, writeBuffer } from '../../src/gpu/buffers.ts';
import { MatmulKernel, type GemmTiling, type MatmulPath } from '../../src/kernels/matmul.ts';
import { submitDispatches } from '../../src/gpu/pipeline.ts';
import { testGpu, poisonedBuffer, upload, download } from '../helpers/gpu.ts';
import { freshRng } from '../helpers/random.ts';
import { countBitMismatches } from '../helpers/compare.ts';
import { fixtureDir } from '../helpers/fixtures.ts';
import { randomGgmlKBlocks, randomKPacked, scaleHalves } from '../helpers/kquant.ts';
import { uploadHostWeight, refMatmul, type HostWeight } from '../helpers/weights.ts';

const GGML_ID: Record<KFormat, number> = { q4k: GGML_TYPE.Q4_K, q5k: GGML_TYPE.Q5_K, q6k: GGML_TYPE.Q6_K };
const GGUF_DIR = fixtureDir('gguf-gemma3n-tiny-a', ['gemma3n-tiny-a-Q4_K_M.gguf', 'gemma3n-tiny-a-Q6_K.gguf']);


/** Every K-quant tensor of the fixture files: [file, HF name, format, rows, cols, raw bytes]. */
async function fixtureKTensors(): Promise<Array<{ what: string; format: KFormat; rows: number; cols: number; bytes: Uint8Array }>> {
  const out = [];
  for (const file of ['gemma3n-tiny-a-Q4_K_M.gguf', 'gemma3n-tiny-a-Q6_K.gguf']) {
    const g = await openGemma3nGguf(await readGgufHeader(fileSource(join(GGUF_DIR, file))));
    for (const t of g.tensors.values()) {
      const format = (Object.keys(GGML_ID) as KFormat[]).find((f) => GGML_ID[f] === t.ggmlType);
      if (format) out.push({ what: `${file} ${t.ggufName}`, format, rows: t.shape[0], cols: t.rowElements, bytes: await g.readRaw(t.hfName) });
    }
  }
  assert.deepEqual([...new Set(out.map((t) => t.format))].sort(), ['q4k', 'q6k'], 'the fixtures hold Q4_K and Q6_K tensors');
  return out;
}

test('K-quant repack: our layout dequantizes to exactly ggml\'s values (random blocks, subnormal d, fixture tensors)', async () => {
  const { rng, tag } = freshRng();
  for (const format of K_FORMATS) {
    for (const [rows, cols, subnormal] of [[3, 256, false], [5, 768, true], [2, 2048, false]] as const) {
      const bytes = randomGgmlKBlocks(rng, format, rows, cols, subnormal);
      const ours = dequantizeK(format, repackGgmlK(format, bytes, rows, cols), rows, cols, f16BitsToF32);
      const ggml = ggmlDequantize(GGML_ID[format], bytes, rows * cols);
      assert.equal(countBitMismatches(ours, ggml), 0, `${format} [${rows}, ${cols}] ${tag}`);
    }
  }
  for (const t of await fixtureKTensors()) {
    const ours = dequantizeK(t.format, repackGgmlK(t.format, t.bytes, t.rows, t.cols), t.rows, t.cols, f16BitsToF32);
    assert.equal(countBitMismatches(ours, ggmlDequantize(GGML_ID[t.format], t.bytes, t.rows * t.cols)), 0, t.what);
  }
});

test('K-quant bytes: GPU layout of whole super-blocks is exactly ggml\'s size (144 / 176 / 210 bytes per 256)', () => {
  for (const format of K_FORMATS) {
    for (const cols of [256, 2048, 8192]) {
      const p = repackGgmlK(format, new Uint8Array((cols / 256) * 4 * { q4k: 144, q5k: 176, q6k: 210 }[format]), 4, cols);
      assert.equal(p.data.byteLength + p.scales.byteLength, (4 * cols * { q4k: 144, q5k: 176, q6k: 210 }[format]) / 256 + (format === 'q6k' && cols === 256 ? 4 * 2 : 0), `${format} ${cols}`);
    }
  }
});

test('K-quant column runs (a MatFormer slice from a cached K-quant matrix): pickKColumns == those columns of the whole', () => {
  const { rng, tag } = freshRng();
  const rows = 3, cols = 2048;
  for (const format of K_FORMATS) {
    const whole = repackGgmlK(format, randomGgmlKBlocks(rng, format, rows, cols, false), rows, cols);
    const all = dequantizeK(format, whole, rows, cols, f16BitsToF32);
    // Odd super-block counts and starts (q6k keeps two f16 d per word), a prefix (ffn_down's MatFormer cut).
    for (const runs of [[{ start: 0, count: 768 }], [{ start: 256, count: 512 }, { start: 1024, count: 256 }, { start: 1792, count: 256 }]]) {
      const width = runs.reduce((a, r) => a + r.count, 0);
      const picked = pickKColumns(format, whole, rows, cols, runs)!;
      const got = dequantizeK(format, picked, rows, width, f16BitsToF32);
      const want = new Float32Array(rows * width);
      for (let r = 0; r < rows; r++) {
        let at = r * width;
        for (const run of runs) {
          want.set(all.subarray(r * cols + run.start, r * cols + run.start + run.count), at);
          at += run.count;
        }
      }
      assert.equal(countBitMismatches(got, want), 0, `${format} ${JSON.stringify(runs)} ${tag}`);
    }
    assert.equal(pickKColumns(format, whole, rows, cols, [{ start: 32, count: 256 }]), undefined, `${format}: a run off the super-blocks is refused`);
  }
});

function toHost(format: KFormat, rows: number, cols: number, p: { data: Uint32Array; scales: Uint32Array }): HostWeight {
  return { format, rows, cols, data: p.data, scales: scaleHalves(p.scales) };
}

test('gather K-quants: the GPU returns ggml\'s values bit for bit (random blocks in 2 parts, fixture tensors)', async () => {
  const ctx = await testGpu();
  const { rng, tag } = freshRng();
  const kernel = await GatherKernel.create(ctx);
  const cases: Array<{ what: string; format: KFormat; rows: number; cols: number; bytes: Uint8Array }> = [];
  for (const format of K_FORMATS) cases.push({ what: `random ${format}`, format, rows: 9, cols: 512, bytes: randomGgmlKBlocks(rng, format, 9, 512, true) });
  cases.push(...(await fixtureKTensors()));
  for (const c of cases) {
    const packed = repackGgmlK(c.format, c.bytes, c.rows, c.cols);
    const split = c.rows > 4 ? [Math.floor(c.rows / 2)] : [];
    const table = uploadHostWeight(ctx, toHost(c.format, c.rows, c.cols, packed), split);
    const ids = Array.from({ length: c.rows }, (_, i) => c.rows - 1 - i);
    const y = poisonedBuffer(ctx, ids.length * c.cols * 4);
    submitDispatches(ctx.device, [kernel.bind({ table, ids: upload(ctx, new Uint32Array(ids)), y, tokens: ids.length, scale: 1 })]);
    const got = new Float32Array(await download(ctx, y, ids.length * c.cols * 4));
    const ggml = ggmlDequantize(GGML_ID[c.format], c.bytes, c.rows * c.cols);
    const expected = new Float32Array(got.length);
    ids.forEach((r, t) => expected.set(ggml.subarray(r * c.cols, (r + 1) * c.cols), t * c.cols));
    assert.equal(countBitMismatches(got, expected), 0, `${c.what} ${tag}`);
  }
});

// Same tolerance as test/kernels/matmul.test.ts: f32 accumulation, 1e-5 of Σ|x·w| (the K-quant GEMV's folded min
// and offset terms (8·d·sc − dmin·m)·Σx add partial sums of the same magnitude, not more).
const REL = 1e-5;

interface Case { format: KFormat; K: number; N: number; T: number; path: MatmulPath; gemv?: [number, number]; gemm?: GemmTiling; split?: number[]; accumulate?: boolean }

async function runCase(c: Case, kernels: Map<string, Promise<MatmulKernel>>) {
  const ctx = await testGpu();
  const { rng, tag: seedTag } = freshRng();
  const tag = `${seedTag} ${JSON.stringify(c)}`;
  const key = `${c.format} ${c.gemv ?? ''} ${c.gemm ?? ''}`;
  if (!kernels.has(key)) kernels.set(key, MatmulKernel.create(ctx, 'f32', [c.format], { activations: 'f32', gemm: c.gemm, ...(c.gemv && { gemvRows: c.gemv[0], gemvLanes: c.gemv[1] }) }));
  const kernel = await kernels.get(key)!;
  const hw = toHost(c.format, c.N, c.K, randomKPacked(rng, c.format, c.N, c.K));
  const weight = uploadHostWeight(ctx, hw, c.split);
  const x = rng.normals(c.T * c.K, 1);
  const y = poisonedBuffer(ctx, c.T * c.N * 4);
  const y0 = c.accumulate ? rng.normals(c.T * c.N, 1) : undefined;
  if (y0) ctx.device.queue.writeBuffer(y, 0, y0);
  const d = kernel.bind({ x: upload(ctx, x), weight, y, rows: c.T, path: c.path, accumulate: c.accumulate });
  submitDispatches(ctx.device, [d]);
  const got = new Float32Array(await download(ctx, y, c.T * c.N * 4));
  const ref = refMatmul(x, c.T, hw);
  for (let i = 0; i < got.length; i++) {
    const want = ref.y[i] + (y0?.[i] ?? 0);
    const tol = REL * (ref.mag[i] + Math.abs(y0?.[i] ?? 0)) + 1e-30;
    if (!(Math.abs(got[i] - want) <= tol)) assert.fail(`y[${i}] = ${got[i]}, expected ${want} (tol ${tol}) ${tag}`);
  }
  d.destroy();
}

const cases: Case[] = [];
for (const format of K_FORMATS) {
  for (const K of [96, 288]) {
    cases.push({ format, K, N: 37, T: 1, path: 'gemv' }, { format, K, N: 37, T: 3, path: 'gemv' }, { format, K, N: 70, T: 67, path: 'gemm' });
  }
  cases.push({ format, K: 512, N: 100, T: 2, path: 'gemv', split: [36, 72], accumulate: true });
  cases.push({ format, K: 512, N: 100, T: 5, path: 'gemm', split: [36, 72], accumulate: true });
  cases.push({ format, K: 2048, N: 37, T: 1, path: 'gemv', gemv: [8, 32] });
  cases.push({ format, K: 96, N: 37, T: 3, path: 'gemv', gemv: [8, 32] });
  // The GEMM tilings other than this adapter's default (all three share the tile dequantization, w_part).
  cases.push({ format, K: 288, N: 70, T: 67, path: 'gemm', gemm: 'regs' }, { format, K: 288, N: 70, T: 67, path: 'gemm', gemm: 'wide' });
}
// E2B decode shapes (FFN up 2048 -> 8192 would take long on the CPU reference: one of each orientation).
cases.push({ format: 'q4k', K: 2048, N: 1024, T: 1, path: 'gemv' }, { format: 'q6k', K: 8192, N: 256, T: 1, path: 'gemv' }, { format: 'q5k', K: 2048, N: 512, T: 1, path: 'gemv' });

test('matmul K-quants: GEMV (both shapes) and GEMM == float64 reference on the same values', async () => {
  const kernels = new Map<string, Promise<MatmulKernel>>();
  for (const c of cases) await runCase(c, kernels);
});

/** Random Q5_0 blocks (random bytes, d a positive f16 of realistic size, some subnormal). */
function randomQ50(rng: ReturnType<typeof freshRng>['rng'], blocks: number): Uint8Array {
  const b = new Uint8Array(22 * blocks);
  for (let i = 0; i < b.length; i++) b[i] = rng.int(0, 256);
  for (let k = 0; k < blocks; k++) {
    const d = rng.next() < 0.2 ? rng.int(1, 1024) : f32ToF16Bits(rng.uniform(2e-3, 4e-2));
    b[22 * k] = d & 255;
    b[22 * k + 1] = d >> 8;
  }
  return b;
}

test('q5: Q5_0 repacks losslessly (CPU and gather bit-exact); matmul GEMV / GEMM == float64 reference', async () => {
  const ctx = await testGpu();
  const { rng, tag } = freshRng();
  const rows = 7, cols = 96;
  const bytes = randomQ50(rng, (rows * cols) / 32);
  const packed = repackLossless(GGML_TYPE.Q5_0, bytes, rows, cols, 'q5')!;
  const ggml = ggmlDequantize(GGML_TYPE.Q5_0, bytes, rows * cols);
  assert.equal(countBitMismatches(dequantizePacked('q5', packed, rows, cols, f16BitsToF32), ggml), 0, `CPU ${tag}`);
  const table = uploadHostWeight(ctx, { format: 'q5', rows, cols, data: packed.data, scales: packed.scales }, [4]);
  const kernel = await GatherKernel.create(ctx);
  const ids = [6, 0, 3, 4, 5, 1, 2];
  const y = poisonedBuffer(ctx, rows * cols * 4);
  submitDispatches(ctx.device, [kernel.bind({ table, ids: upload(ctx, new Uint32Array(ids)), y, tokens: rows, scale: 1 })]);
  const got = new Float32Array(await download(ctx, y, rows * cols * 4));
  const expected = new Float32Array(rows * cols);
  ids.forEach((r, t) => expected.set(ggml.subarray(r * cols, (r + 1) * cols), t * cols));
  assert.equal(countBitMismatches(got, expected), 0, `gather ${tag}`);

  const mm = await MatmulKernel.create(ctx, 'f32', ['q5'], { activations: 'f32' });
  const mmLanes = await MatmulKernel.create(ctx, 'f32', ['q5'], { gemvRows: 8, gemvLanes: 32, activations: 'f32' });
  for (const [K, N, T, path, k] of [[96, 37, 1, 'gemv', mm], [288, 37, 3, 'gemv', mmLanes], [80, 70, 67, 'gemm', mm], [2048, 40, 1, 'gemv', mm]] as const) {
    const G = groupsPerRow(K);
    const codes = Array.from({ length: N * K }, () => rng.int(0, 32));
    const d = new Uint16Array(N * G).map(() => f32ToF16Bits(rng.uniform(2e-3, 4e-2)));
    const p = packQ5(codes, d, N, K);
    const hw: HostWeight = { format: 'q5', rows: N, cols: K, data: p.data, scales: p.scales };
    const x = rng.normals(T * K, 1);
    const yb = poisonedBuffer(ctx, T * N * 4);
    submitDispatches(ctx.device, [k.bind({ x: upload(ctx, x), weight: uploadHostWeight(ctx, hw, N > 8 ? [N - 8] : []), y: yb, rows: T, path })]);
    const out = new Float32Array(await download(ctx, yb, T * N * 4));
    const ref = refMatmul(x, T, hw);
    for (let i = 0; i < out.length; i++) {
      if (!(Math.abs(out[i] - ref.y[i]) <= REL * ref.mag[i] + 1e-30)) assert.fail(`q5 ${K}->${N} T=${T} ${path}: y[${i}] = ${out[i]}, expected ${ref.y[i]} ${tag}`);
    }
  }
});

test('gather uploaded rows of K-quant and q5 host tables (the PLE path: E2B 7680 columns, a GGUF Q6_K table)', async () => {
  const ctx = await testGpu();
  const { rng, tag } = freshRng();
  const kernel = await GatherKernel.create(ctx);
  const cols = 7680, rows = 12, maxT = 4;
  for (const format of ['q6k', 'q4k', 'q5'] as const) {
    let table: CpuTable;
    if (format === 'q5') {
      const G = groupsPerRow(cols);
      const p = packQ5(Array.from({ length: rows * cols }, () => rng.int(0, 32)), new Uint16Array(rows * G).map(() => f32ToF16Bits(rng.uniform(2e-3, 4e-2))), rows, cols);
      table = { format, rows, cols, data: new Uint8Array(p.data.buffer), scales: p.scales };
    } else {
      const k = randomKPacked(rng, format, rows, cols);
      table = { format, rows, cols, data: new Uint8Array(k.data.buffer), scales: scaleHalves(k.scales) };
    }
    const all = dequantizePacked(format, { data: new Uint32Array(table.data.buffer), scales: table.scales! }, rows, cols, f16BitsToF32);
    const ids = [3, 11, 400_000];
    const up = packRowsForUpload(table, ids, 10, 0); // 11 and 400000 are >= the limit: row 0
    const sizes = uploadedRowsBytes(format, cols, maxT);
    const dataBuf = createStorageBuffer(ctx.device, sizes.data, 'up');
    const scaleBuf = createStorageBuffer(ctx.device, sizes.scales, 'up-scales');
    writeBuffer(ctx.device, dataBuf, up.data);
    writeBuffer(ctx.device, scaleBuf, up.scales!);
    const y = poisonedBuffer(ctx, maxT * cols * 4);
    const d = kernel.bindUploaded({ format, cols, data: dataBuf, scales: scaleBuf, y, tokens: ids.length, scale: 1 });
    submitDispatches(ctx.device, [d]);
    const got = new Float32Array(await download(ctx, y, ids.length * cols * 4));
    const expected = new Float32Array(ids.length * cols);
    [3, 0, 0].forEach((r, t) => expected.set(all.subarray(r * cols, (r + 1) * cols), t * cols));
    assert.equal(countBitMismatches(got, expected), 0, `${format} ${tag}`);
  }
});
