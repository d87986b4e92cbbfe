/**
 * Decode GEMV of one weight format at Gemma 3n E2B shapes, before / after in one run (`node --import
 * ./scripts/register.mjs bench/decode-gemv.ts [--formats q6k] [--shapes 8192x2048,2048x262400] [--acts int8,f32]
 * [--baseline DIR] [--iters 3]`): y = W x for one token through src/kernels/matmul.ts with int8 and with f32
 * activations and, with `--baseline DIR`, through DIR/src/kernels/matmul.ts (another checkout: `git archive main src
 * shaders | tar -x -C DIR` plus a package.json {"type":"module"} there) on the same weight, the two timed alternately
 * call by call. Each row: median ms per call (timestamps where available, else the wall clock), the CPU ms of this
 * process per call (Node: SwiftShader runs in this process, so other programs on the shared cores move it less than
 * the wall clock), and weight bytes/s as % of the streaming-read ceiling (bench/read-bandwidth.ts) measured at the
 * start. Weights: uniform random codes.
 */
import { createNodeGpuContext } from '../src/node/gpu.ts';
import { createStorageBuffer } from '../src/gpu/buffers.ts';
import { MatmulKernel, type GemvActivations } from '../src/kernels/matmul.ts';
import { createRandomWeight, destroyWeight } from '../src/kernels/upload-weight.ts';
import type { WeightFormat } from '../src/formats/weight-format.ts';
import { measureReadBandwidth } from './read-bandwidth.ts';
import { PassTimer, median } from './time-dispatch.ts';

const args = process.argv.slice(2);
const opt = (name: string) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : undefined;
};
const formats = (opt('formats') ?? 'q6k').split(',') as WeightFormat[];
const shapes = (opt('shapes') ?? '8192x2048,2048x262400').split(',').map((s) => s.split('x').map(Number) as [number, number]);
const acts = (opt('acts') ?? 'int8,f32').split(',') as GemvActivations[];
const baselineDir = opt('baseline');
const iters = Number(opt('iters') ?? 3);

const ctx = await createNodeGpuContext();
const bw = await measureReadBandwidth(ctx, { bytes: 64 * 2 ** 20, reps: 2, trials: 3 });
console.log(`adapter: ${ctx.adapterName}; read ceiling ${(bw.readBytesPerSecond / 1e9).toFixed(3)} GB/s (${bw.readKernel})`);
type Kernel = Pick<MatmulKernel, 'bind' | 'destroy'>;
type Create = (c: typeof ctx, act: 'f32', formats: WeightFormat[], o: { activations: GemvActivations }) => Promise<Kernel>;
const Baseline = baselineDir ? ((await import(`${baselineDir}/src/kernels/matmul.ts`)) as { MatmulKernel: { create: Create } }).MatmulKernel : undefined;
const timer = new PassTimer(ctx);
for (const format of formats) {
  for (const act of acts) {
    const kernels: Array<[string, Kernel]> = [];
    if (Baseline) kernels.push(['baseline', await Baseline.create(ctx, 'f32', [format], { activations: act })]);
    kernels.push(['this tree', await MatmulKernel.create(ctx, 'f32', [format], { activations: act })]);
    for (const [K, N] of shapes) {
      const weight = await createRandomWeight(ctx, { rows: N, cols: K, format, seed: 1, std: 0.02, codes: true });
      const x = createStorageBuffer(ctx.device, K * 4, 'x');
      const y = createStorageBuffer(ctx.device, N * 4, 'y');
      const ds = kernels.map(([, k]) => k.bind({ x, weight, y, rows: 1 }));
      const times: Array<Array<{ ms: number; cpu: number }>> = ds.map(() => []);
      for (let i = 0; i <= iters; i++) {
        for (let k = 0; k < ds.length; k++) {
          const t = await timer.time((pass) => ds[k].encode(pass));
          if (i > 0) times[k].push({ ms: t.gpuMs ?? t.wallMs, cpu: t.cpuMs });
        }
      }
      for (let k = 0; k < ds.length; k++) {
        const ms = median(times[k].map((t) => t.ms));
        const cpu = median(times[k].map((t) => t.cpu));
        const pct = (100 * weight.bytes) / (ms / 1000) / bw.readBytesPerSecond;
        console.log(`${format} x ${act} ${K}->${N} ${kernels[k][0]}: ${ms.toFixed(1)} ms (all: ${times[k].map((t) => t.ms.toFixed(0)).join(' ')}), CPU ${cpu.toFixed(0)} ms, ${pct.toFixed(1)} % of read`);
        ds[k].destroy();
      }
      destroyWeight(weight);
      x.destroy();
      y.destroy();
    }
    for (const [, k] of kernels) k.destroy();
  }
}
timer.destroy();
