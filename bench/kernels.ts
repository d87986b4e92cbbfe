/**
 * Kernel benchmark (`npm run bench:kernels [-- --quick] [-- --json FILE]`): the adapter's ceilings measured in the
 * same run (copyBufferToBuffer, the best of a few streaming-read kernels: bench/read-bandwidth.ts, shared with the
 * end-to-end roofline; the f32 FMA ceiling: bench/fma-ceiling.ts), then the decode GEMV at Gemma 3n E2B shapes
 * (weight bytes/s, % of both read ceilings) for f32, q4 and the K-quants q4k / q6k, each quantized format with f32
 * activations (exact; "before") and with int8 activations (src/kernels/matmul.ts; "after"), the prefill GEMM (512
 * tokens, GFLOP/s and % of the FMA ceiling) in each tiling ('wide', the GPU tiling; 'regs', CPU adapters without
 * subgroups; 'quad', CPU adapters with subgroups; bench/prefill-gemm.ts has the E2B shapes at prefill-chunk size), decode attention at 4K context (K/V bytes/s) and the per-token PLE fetch (host row
 * pack + upload + GPU dequantize).
 *
 * Timing: GPU timestamps around the compute pass when the device has `timestamp-query` (ctx.timestamps), else the
 * wall clock from submit to onSubmittedWorkDone; the ceilings use the wall clock (best trial, read-bandwidth.ts). Each row:
 * warm-up, then `iters` measurements of `reps` back-to-back calls, median reported. On SwiftShader (a CPU) the
 * kernels are ALU-bound and the machine is shared: read the ratios, not the absolute numbers.
 */
import { writeFileSync } from 'node:fs';
import { createNodeGpuContext } from '../src/node/gpu.ts';
import type { GpuContext } from '../src/gpu/device.ts';
import { createStorageBuffer } from '../src/gpu/buffers.ts';
import type { Dispatch } from '../src/gpu/pipeline.ts';
import { MatmulKernel } from '../src/kernels/matmul.ts';
import { createRandomWeight, destroyWeight } from '../src/kernels/upload-weight.ts';
import type { WeightFormat } from '../src/formats/weight-format.ts';
import { measureReadBandwidth } from './read-bandwidth.ts';
import { measureFmaCeiling } from './fma-ceiling.ts';
import { median, timeDispatch } from './time-dispatch.ts';

const args = process.argv.slice(2);
const quick = args.includes('--quick');
const jsonIdx = args.indexOf('--json');
const jsonFile = jsonIdx >= 0 ? args[jsonIdx + 1] : undefined;
if (jsonIdx >= 0 && !jsonFile) throw new Error('--json needs a file name');

interface Row {
  name: string;
  /** Median milliseconds per call. */
  ms: number;
  /** Bytes per call the rate is computed from (weights, K/V, ...), if a bandwidth row. */
  bytes?: number;
  gbps?: number;
  gflops?: number;
  /** GFLOP/s as % of the FMA ceiling. */
  pctFma?: number;
  pctCopy?: number;
  pctRead?: number;
  timing: 'timestamp' | 'wall';
  note?: string;
}

const ctx = await createNodeGpuContext();
const rows: Row[] = [];
const reps = quick ? 2 : 10;
const iters = quick ? 3 : 7; // measured iterations after one warm-up
const GB = 1e9;
console.log(`adapter: ${ctx.adapterName}; timestamps: ${ctx.timestamps}; subgroups: ${ctx.subgroups}; ${quick ? 'quick' : 'full'} run`);

// Ceilings: the shared implementation (bench/read-bandwidth.ts, also the end-to-end roofline's), wall clock.
const ceilBytes = (quick ? 64 : 256) * 2 ** 20;
const bw = await measureReadBandwidth(ctx, { bytes: ceilBytes, reps, trials: iters });
const copyGbps = bw.copyBytesPerSecond / GB;
const readGbps = bw.readBytesPerSecond / GB;
rows.push({ name: `ceiling: copyBufferToBuffer ${bw.bytes >> 20} MiB`, ms: (bw.bytes / bw.copyBytesPerSecond) * 1000, bytes: bw.bytes, gbps: copyGbps, timing: 'wall', note: 'bytes copied/s (each read once, written once)' });
rows.push({ name: `ceiling: streaming read ${bw.bytes >> 20} MiB`, ms: (bw.bytes / bw.readBytesPerSecond) * 1000, bytes: bw.bytes, gbps: readGbps, timing: 'wall', note: `best of ${bw.readVariants.length}: ${bw.readKernel}` });
const fmaCeiling = async () => (await measureFmaCeiling(ctx, { trials: quick ? 2 : 3 })).flopsPerSecond / GB;
let fmaGflops = await fmaCeiling();
rows.push({ name: 'ceiling: f32 FMA', ms: NaN, gflops: fmaGflops, pctFma: 100, timing: 'wall', note: 'bench/fma-ceiling.ts (best of its variants)' });

function pushTimedRow(name: string, ms: number, note: string): void {
  rows.push({ name, ms, timing: 'wall', note });
  console.log(`  ${name}: ${ms.toFixed(1)} ms, ${note}`);
}

function bandwidthRow(name: string, ms: number, bytes: number, timing: Row['timing'], note?: string): Row {
  const gbps = bytes / ms / 1e6;
  return { name, ms, bytes, gbps, pctCopy: (100 * gbps) / copyGbps, pctRead: (100 * gbps) / readGbps, timing, note };
}

// Decode GEMV at E2B shapes: K -> N with N = out features. Quantized formats with exact f32 activations and with
// int8 activations (the adapter's default integer product), so before / after come from the same run.
const shapes: Array<[number, number, string]> = [
  [2048, 8192, 'FFN gate/up'],
  [8192, 2048, 'FFN down'],
  [2048, 262400, 'LM head'],
];
const gemvFormats: WeightFormat[] = ['q4', 'q4k', 'q6k', 'f32'];
const matmulExact = await MatmulKernel.create(ctx, 'f32', gemvFormats, { activations: 'f32' });
const matmulInt8 = await MatmulKernel.create(ctx, 'f32', gemvFormats.filter((f) => f !== 'f32'), { activations: 'int8' });
for (const format of gemvFormats) {
  for (const [K, N, what] of shapes) {
    if (quick && (format === 'f32' || format === 'q6k') && N > 100000) {
      rows.push({ name: `decode GEMV ${format} ${K}->${N} (${what})`, ms: NaN, timing: 'wall', note: 'skipped in --quick; run without --quick' });
      continue;
    }
    // Quantized: uniform random codes (same bytes as quantized normals; quantizing 537 M normals takes minutes on a CPU).
    let weight;
    try {
      weight = await createRandomWeight(ctx, { rows: N, cols: K, format, seed: 1, std: 0.02, codes: true });
    } catch (err) {
      rows.push({ name: `decode GEMV ${format} ${K}->${N} (${what})`, ms: NaN, timing: 'wall', note: `skipped: ${err instanceof Error ? err.message.split(':').slice(-1)[0].trim() : err}` });
      continue;
    }
    const x = createStorageBuffer(ctx.device, K * 4, 'x');
    const y = createStorageBuffer(ctx.device, N * 4, 'y');
    for (const [act, mm] of format === 'f32' ? [['f32', matmulExact] as const] : [['f32', matmulExact] as const, ['int8', matmulInt8] as const]) {
      const name = `decode GEMV ${format}${format === 'f32' ? '' : ` x ${act}`} ${K}->${N} (${what})`;
      const d = mm.bind({ x, weight, y, rows: 1 });
      const big = weight.bytes > 512 * 2 ** 20;
      const r = await timeDispatch(ctx, (pass) => d.encode(pass), big || quick ? 1 : reps, big && quick ? 1 : iters);
      rows.push(bandwidthRow(name, r.ms, weight.bytes, r.timing, `${weight.parts.length} part(s), ${(weight.bytes / 2 ** 20).toFixed(1)} MiB${act === 'int8' ? ' (x quantized by the GEMV workgroups)' : ''}`));
      console.log(`  ${name}: ${r.ms.toFixed(2)} ms`);
      d.destroy();
    }
    destroyWeight(weight);
    x.destroy();
    y.destroy();
  }
}

// Prefill GEMM: 512 tokens through the FFN up projection, both GEMM shapes, q4 and q4k, against the FMA ceiling
// measured again right before each (a CPU adapter's rate drifts with the machine's load).
for (const format of ['q4', 'q4k'] as const) {
  for (const shape of ctx.subgroups ? (['wide', 'regs', 'quad'] as const) : (['wide', 'regs'] as const)) {
    // --quick: 1024 of the 8192 output features (GFLOP/s is per-tile work; the full shape takes minutes on a CPU).
    const T = 512, K = 2048, N = quick ? 1024 : 8192;
    const mm = await MatmulKernel.create(ctx, 'f32', [format], { activations: 'f32', gemm: shape });
    const weight = await createRandomWeight(ctx, { rows: N, cols: K, format, seed: 2, std: 0.02, codes: true });
    const x = createStorageBuffer(ctx.device, T * K * 4, 'x');
    const y = createStorageBuffer(ctx.device, T * N * 4, 'y');
    const d = mm.bind({ x, weight, y, rows: T });
    fmaGflops = await fmaCeiling();
    const r = await timeDispatch(ctx, (pass) => d.encode(pass), 1, quick ? 1 : 3);
    d.destroy();
    const gflops = (2 * T * K * N) / r.ms / 1e6;
    rows.push({ name: `prefill GEMM ${format} ${shape} ${K}->${N}, ${T} tokens`, ms: r.ms, gflops, pctFma: (100 * gflops) / fmaGflops, timing: r.timing, note: `FMA ceiling ${fmaGflops.toFixed(2)} GFLOP/s just before; ${d.path}` });
    console.log(`  ${rows[rows.length - 1].name}: ${r.ms.toFixed(1)} ms, ${gflops.toFixed(2)} GFLOP/s = ${((100 * gflops) / fmaGflops).toFixed(1)} % of FMA`);
    destroyWeight(weight);
    x.destroy();
    y.destroy();
  }
}

// Load-time quantization (our own int4, quant-plan.ts): a bf16 matrix uploaded and quantized on the GPU by
// createWeight, per format: q4 (absmax, the plan before), q4k / q6k / q5 (the error-minimising searches). Weights/s
// include the upload; the search formats cost ~20 candidate scales per sub-block.
{
  const rows = quick ? 1024 : 4096, cols = 2048;
  const bf16 = new Uint16Array(rows * cols);
  let seed = 0x2545f491;
  for (let i = 0; i < bf16.length; i++) {
    seed ^= seed << 13; seed ^= seed >>> 17; seed ^= seed << 5;
    bf16[i] = 0x3c00 + ((seed >>> 0) % 0x300) | ((seed & 1) << 15); // |w| ~ 0.008 .. 0.03, both signs
  }
  for (const format of ['q4', 'q4k', 'q6k', 'q5'] as const) {
    const { createWeight } = await import('../src/kernels/upload-weight.ts');
    await createWeight(ctx, { label: 'warm-up', rows: 64, cols, format, dtype: 'bf16', bytes: new Uint8Array(bf16.buffer, 0, 64 * cols * 2) }).then(destroyWeight);
    const t0 = performance.now();
    const w = await createWeight(ctx, { label: 'quantize', rows, cols, format, dtype: 'bf16', bytes: new Uint8Array(bf16.buffer) });
    await ctx.device.queue.onSubmittedWorkDone();
    const ms = performance.now() - t0;
    destroyWeight(w);
    pushTimedRow(`load-time quantization bf16 -> ${format}, ${rows}x${cols}`, ms, `${((rows * cols) / ms / 1e3).toFixed(2)} M weights/s (upload included)`);
  }
}

// Decode attention at 4K context (E2B: 8 query heads, 2 KV heads, head dim 256, f32 cache) — src/kernels/attention.ts.
try {
  const { AttentionKernel } = await import('../src/kernels/attention.ts');
  const { KvCache } = await import('../src/kernels/kv-cache.ts');
  const H = 8, Hkv = 2, dh = 256, context = 4096;
  const attn = await AttentionKernel.create(ctx, { headDim: dh, group: H / Hkv });
  const cache = KvCache.create(ctx, { kind: 'full', kvHeads: Hkv, headDim: dh, maxContext: context });
  const q = createStorageBuffer(ctx.device, H * dh * 4, 'q');
  const out = createStorageBuffer(ctx.device, H * dh * 4, 'out');
  const d = attn.bind({ q, out, cache, heads: H });
  d.setStep(context - 1, 1);
  const r = await timeDispatch(ctx, (pass) => d.encode(pass), reps, iters);
  rows.push(bandwidthRow(`decode attention, ${context} context (E2B heads)`, r.ms, 2 * context * Hkv * dh * 4, r.timing, `K/V bytes; ${d.splits} key splits`));
  cache.destroy();
} catch (err) {
  rows.push({ name: 'decode attention, 4096 context', ms: NaN, timing: 'wall', note: `TODO: src/kernels/attention.ts failed: ${err instanceof Error ? err.message : err}` });
}

// PLE fetch per decode token (E2B: 30 layers x 256 = 7680 values, q4): the row is packed from the host table,
// uploaded with writeBuffer and dequantized by the gather kernel — src/kernels/gather.ts, as forward.ts does.
try {
  const { GatherKernel, packRowsForUpload, uploadedRowsBytes } = await import('../src/kernels/gather.ts');
  const cols = 30 * 256, tableRows = 4096; // a slice of the 262,144-row table: the per-token cost does not depend on it
  const G = cols / 32;
  const table = { format: 'q4' as const, rows: tableRows, cols, data: new Uint8Array(tableRows * G * 16), scales: new Uint16Array(tableRows * G).fill(0x3c00) };
  for (let i = 0; i < table.data.length; i++) table.data[i] = (i * 2654435761) >>> 24;
  const gather = await GatherKernel.create(ctx);
  const sizes = uploadedRowsBytes('q4', cols, 1);
  const data = createStorageBuffer(ctx.device, sizes.data, 'ple-data');
  const scales = createStorageBuffer(ctx.device, sizes.scales, 'ple-scales');
  const y = createStorageBuffer(ctx.device, cols * 4, 'ple-out');
  const d: Dispatch = gather.bindUploaded({ format: 'q4', cols, data, scales, y, tokens: 1, scale: 16 });
  const samples: number[] = [];
  const n = quick ? 5 : 50;
  for (let i = 0; i <= n; i++) {
    const t0 = performance.now();
    const rowsUp = packRowsForUpload(table, [(i * 7919) % tableRows]);
    ctx.device.queue.writeBuffer(data, 0, rowsUp.data);
    ctx.device.queue.writeBuffer(scales, 0, rowsUp.scales!);
    const enc = ctx.device.createCommandEncoder();
    const pass = enc.beginComputePass();
    d.encode(pass);
    pass.end();
    ctx.device.queue.submit([enc.finish()]);
    await ctx.device.queue.onSubmittedWorkDone();
    if (i > 0) samples.push(performance.now() - t0);
  }
  rows.push(bandwidthRow('PLE fetch, 1 token (pack + upload + dequantize 7680 q4 values)', median(samples), sizes.data + sizes.scales, 'wall', 'wall time incl. submit round trip; bytes = the uploaded row'));
} catch (err) {
  rows.push({ name: 'PLE fetch', ms: NaN, timing: 'wall', note: `TODO: src/kernels/gather.ts failed: ${err instanceof Error ? err.message : err}` });
}

// The table.
const fmt = (v: number | undefined, d = 1) => (v === undefined || Number.isNaN(v) ? '' : v.toFixed(d));
const header = ['kernel', 'ms', 'GB/s', 'GFLOP/s', '% FMA', '% copy', '% read', 'timing', 'note'];
const body = rows.map((r) => [r.name, fmt(r.ms, 3), fmt(r.gbps, 2), fmt(r.gflops, 2), fmt(r.pctFma), fmt(r.pctCopy), fmt(r.pctRead), r.timing, r.note ?? '']);
const widths = header.map((h, i) => Math.max(h.length, ...body.map((b) => b[i].length)));
const line = (cells: string[]) => cells.map((c, i) => (i === 0 || i >= 7 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ');
console.log(`\n${line(header)}\n${widths.map((w) => '-'.repeat(w)).join('  ')}\n${body.map(line).join('\n')}`);
if (jsonFile) {
  writeFileSync(jsonFile, JSON.stringify({ adapter: ctx.adapterName, timestamps: ctx.timestamps, quick, date: new Date().toISOString(), rows }, null, 2));
  console.log(`wrote ${jsonFile}`);
}
process.exit(0);
