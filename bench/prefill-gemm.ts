/**
 * Prefill GEMM at Gemma 3n E2B shapes (`npm run bench:prefill [-- --tokens 128] [-- --formats q4,q4k]
 * [-- --gemm quad,regs,wide] [-- --baseline DIR] [-- --quick] [-- --json FILE]`): y[T, N] = x[T, K] · Wᵀ through src/kernels/matmul.ts for a
 * prefill chunk of T tokens at 2048->8192 (FFN gate/up), 8192->2048 (FFN down) and 2048->2048 (attention q/o), per
 * weight format and GEMM tiling, in GFLOP/s (2·T·K·N per call) and as a share of the adapter's f32 FMA ceiling
 * (bench/fma-ceiling.ts) measured right before each row (a CPU adapter's rate drifts with the machine's load).
 * `--baseline DIR`: also times DIR/src/kernels/matmul.ts (another checkout, e.g. `git archive main src shaders`) with
 * its default tiling, interleaved with this tree's rows, so before and after come from one run.
 * Weights: uniform random codes (the same bytes and work as quantized normals). Timing: bench/time-dispatch.ts's
 * PassTimer (timestamps where available, else the wall clock); the median of `iters` calls after a warm-up.
 * On a CPU adapter the wall-clock ceiling swings with the machine's load (2.5-8 GFLOP/s within one run here), so
 * each row also gives FLOP per second of this process's CPU time against the ceiling's (FmaCeiling.cpuFlopsPerSecond),
 * which other programs on the same cores barely move: `% FMA (CPU time)`.
 */
import { writeFileSync } from 'node:fs';
import { createNodeGpuContext } from '../src/node/gpu.ts';
import { createStorageBuffer } from '../src/gpu/buffers.ts';
import { MatmulKernel, type MatmulOptions } from '../src/kernels/matmul.ts';
import { createRandomWeight, destroyWeight } from '../src/kernels/upload-weight.ts';
import type { WeightFormat } from '../src/formats/weight-format.ts';
import { measureFmaCeiling } from './fma-ceiling.ts';
import { PassTimer, median } from './time-dispatch.ts';

const args = process.argv.slice(2);
const opt = (name: string) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : undefined;
};
const quick = args.includes('--quick');
const T = Number(opt('tokens') ?? 128);
const formats = (opt('formats') ?? 'q4,q4k,q6k,q8').split(',') as WeightFormat[];
const gemms = (opt('gemm') ?? 'auto').split(',') as Array<NonNullable<MatmulOptions['gemm']>>;
const baselineDir = opt('baseline');
const iters = Number(opt('iters') ?? (quick ? 1 : 3));
const jsonFile = opt('json');
const allShapes: Array<[number, number, string]> = [
  [2048, 8192, 'FFN gate/up'],
  [8192, 2048, 'FFN down'],
  [2048, 2048, 'attention q/o'],
];
const shapes = quick ? allShapes.slice(2) : allShapes;

const ctx = await createNodeGpuContext();
console.log(`adapter: ${ctx.adapterName}; cpuAdapter: ${ctx.cpuAdapter}; timestamps: ${ctx.timestamps}; T = ${T}; ${quick ? 'quick' : 'full'} run`);
interface Row {
  format: string; gemm: string; K: number; N: number; T: number; ms: number; gflops: number; fmaGflops: number; pctFma: number; timing: string;
  /** GFLOP per CPU-second of this process, the ceiling's, and their ratio in % (Node). */
  cpuGflops?: number; fmaCpuGflops?: number; pctFmaCpu?: number;
}
const rows: Row[] = [];
const timer = new PassTimer(ctx);
type Kernel = Pick<MatmulKernel, 'bind' | 'destroy'>;
const Baseline = baselineDir ? ((await import(`${baselineDir}/src/kernels/matmul.ts`)) as { MatmulKernel: { create: (...a: unknown[]) => Promise<Kernel> } }).MatmulKernel : undefined;
const kernels: Array<[string, (format: WeightFormat) => Promise<Kernel>]> = [
  ...(Baseline ? [['baseline', (format: WeightFormat) => Baseline.create(ctx, 'f32', [format], { activations: 'f32' })] as [string, (format: WeightFormat) => Promise<Kernel>]] : []),
  ...gemms.map((gemm) => [gemm, (format: WeightFormat) => MatmulKernel.create(ctx, 'f32', [format], { activations: 'f32', gemm })] as [string, (format: WeightFormat) => Promise<Kernel>]),
];
const names = kernels.map(([name]) => name);
// Per format and shape, every kernel in turn (interleaved), each right after its own ceiling measurement.
for (const format of formats) {
  const mms: Array<[string, Kernel]> = [];
  for (const [name, create] of kernels) mms.push([name, await create(format)]);
  for (const [K, N, what] of shapes) {
    const weight = await createRandomWeight(ctx, { rows: N, cols: K, format, seed: 2, std: 0.02, codes: true });
    const x = createStorageBuffer(ctx.device, T * K * 4, 'x');
    const y = createStorageBuffer(ctx.device, T * N * 4, 'y');
    for (const [gemm, mm] of mms) {
      const d = mm.bind({ x, weight, y, rows: T, path: 'gemm' });
      const ceiling = await measureFmaCeiling(ctx, { trials: 2 });
      const fma = ceiling.flopsPerSecond / 1e9;
      const times = [];
      for (let i = 0; i <= iters; i++) times.push(await timer.time((pass) => d.encode(pass)));
      const measured = times.slice(1); // [0] is the warm-up
      const ms = median(measured.map((t) => t.gpuMs ?? t.wallMs));
      const cpuMs = median(measured.map((t) => t.cpuMs));
      const flop = 2 * T * K * N;
      const gflops = flop / ms / 1e6;
      const fmaCpu = ceiling.cpuFlopsPerSecond && ceiling.cpuFlopsPerSecond / 1e9;
      const cpuGflops = cpuMs > 0 ? flop / cpuMs / 1e6 : undefined;
      const pctFmaCpu = fmaCpu && cpuGflops ? (100 * cpuGflops) / fmaCpu : undefined;
      rows.push({ format, gemm, K, N, T, ms, gflops, fmaGflops: fma, pctFma: (100 * gflops) / fma, timing: timer.timing, cpuGflops, fmaCpuGflops: fmaCpu, pctFmaCpu });
      const cpuNote = pctFmaCpu === undefined ? '' : `; CPU time: ${cpuGflops!.toFixed(2)} GFLOP/s = ${pctFmaCpu.toFixed(1)} % of ${fmaCpu!.toFixed(2)}`;
      console.log(`prefill GEMM ${format} ${gemm} ${K}->${N} (${what}), ${T} tokens: ${ms.toFixed(1)} ms, ${gflops.toFixed(2)} GFLOP/s = ${((100 * gflops) / fma).toFixed(1)} % of FMA ceiling ${fma.toFixed(2)} GFLOP/s (${timer.timing})${cpuNote}`);
      d.destroy();
    }
    destroyWeight(weight);
    x.destroy();
    y.destroy();
  }
  for (const [, mm] of mms) mm.destroy();
}
for (const format of formats) {
  for (const gemm of names) {
    const mine = rows.filter((r) => r.format === format && r.gemm === gemm);
    const mean = (f: (r: Row) => number) => mine.reduce((s, r) => s + f(r), 0) / mine.length;
    const cpu = mine.every((r) => r.pctFmaCpu !== undefined) ? `; CPU time: ${mean((r) => r.cpuGflops!).toFixed(2)} GFLOP/s, ${mean((r) => r.pctFmaCpu!).toFixed(1)} %` : '';
    console.log(`${format} ${gemm}: mean ${mean((r) => r.gflops).toFixed(2)} GFLOP/s, ${mean((r) => r.pctFma).toFixed(1)} % of the FMA ceiling${cpu}`);
  }
}
if (jsonFile) writeFileSync(jsonFile, JSON.stringify({ adapter: ctx.adapterName, date: new Date().toISOString(), T, rows }, null, 2));
process.exit(0);
