/**
 * The adapter's f32 arithmetic ceiling: the best GFLOP/s any of a few pure-FMA kernels reaches (no memory traffic
 * in the loop; every thread keeps ACC independent vec4 accumulators so the FMA latency is hidden, at a few
 * workgroup counts). Compute-bound kernels (convolutions, prefill GEMMs) are judged by their ratio to it, the way
 * memory-bound ones are judged against bench/read-bandwidth.ts. One FMA = 2 FLOP; a vec4 FMA = 8.
 *
 * Timing: wall clock around submit → onSubmittedWorkDone, after a warm-up, best of `trials` (timestamp queries are
 * not available everywhere). Usable on its own: `node --import ./scripts/register.mjs bench/fma-ceiling.ts`.
 */
import type { GpuContext } from '../src/gpu/device.ts';

export interface FmaCeiling {
  /** FLOP per second of the best variant (an FMA counts 2). */
  flopsPerSecond: number;
  /** Which variant that was. */
  kernel: string;
  variants: Array<{ kernel: string; flopsPerSecond: number; cpuFlopsPerSecond?: number }>;
  /**
   * Node only: the most FLOP per second of this process's CPU time (user + system, all threads) any variant reached.
   * On a CPU adapter that runs in this process (SwiftShader) this stays put when other programs share the cores,
   * where the wall-clock rate drops with the machine's load; compare it with a kernel's FLOP per CPU-second.
   */
  cpuFlopsPerSecond?: number;
}

/** Seconds of this process's CPU time (Node), else undefined. */
function cpuSeconds(): number | undefined {
  const usage = (globalThis as { process?: { cpuUsage?: () => { user: number; system: number } } }).process?.cpuUsage?.();
  return usage && (usage.user + usage.system) / 1e6;
}

const WORKGROUP = 64;
const ACC = 8; // independent vec4 accumulators per thread

// x_{i+1} = x_i * a + b on ACC vec4 chains; a, b from a uniform (never constant-folded); the result is written only
// if it equals an impossible value, so nothing is optimised away and nothing is stored.
const SHADER = /* wgsl */ `
struct Params { iters: u32, a: f32, b: f32, pad: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> sink: array<f32>;

@compute @workgroup_size(${WORKGROUP})
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let a = vec4<f32>(p.a);
  let b = vec4<f32>(p.b);
  let s = f32(gid.x) * 1e-7;
${Array.from({ length: ACC }, (_, i) => `  var x${i} = vec4<f32>(s + ${i}.0, s - ${i}.0, s * ${i + 1}.0, s + 0.${i + 1});`).join('\n')}
  for (var i = 0u; i < p.iters; i++) {
${Array.from({ length: ACC }, (_, i) => `    x${i} = fma(x${i}, a, b);`).join('\n')}
  }
  let t = ${Array.from({ length: ACC }, (_, i) => `x${i}`).join(' + ')};
  let total = t.x + t.y + t.z + t.w;
  if (total == 1234.5678) { sink[gid.x] = total; }
}`;

export async function measureFmaCeiling(ctx: GpuContext, options: { iters?: number; trials?: number; workgroups?: number[] } = {}): Promise<FmaCeiling> {
  const { device } = ctx;
  const cpu = /swiftshader|llvmpipe/i.test(ctx.adapterName);
  const iters = options.iters ?? (cpu ? 2048 : 65536);
  const trials = options.trials ?? 3;
  const counts = options.workgroups ?? (cpu ? [16, 64, 256] : [1024, 4096, 16384]);
  const maxX = device.limits.maxComputeWorkgroupsPerDimension;
  const module = device.createShaderModule({ label: 'fma-ceiling', code: SHADER });
  const pipeline = await device.createComputePipelineAsync({ label: 'fma-ceiling', layout: 'auto', compute: { module, entryPoint: 'main' } });
  const sink = device.createBuffer({ label: 'fma-ceiling/sink', size: 4 * WORKGROUP * Math.max(...counts), usage: GPUBufferUsage.STORAGE });
  const params = device.createBuffer({ label: 'fma-ceiling/params', size: 16, usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST });
  const p = new ArrayBuffer(16);
  new Uint32Array(p)[0] = iters;
  new Float32Array(p).set([0.999, 1e-3], 1);
  device.queue.writeBuffer(params, 0, p);
  const bind = device.createBindGroup({ layout: pipeline.getBindGroupLayout(0), entries: [{ binding: 0, resource: { buffer: params } }, { binding: 1, resource: { buffer: sink } }] });
  try {
    const variants: FmaCeiling['variants'] = [];
    for (const groups of counts) {
      const gx = Math.min(groups, maxX);
      const gy = Math.ceil(groups / gx);
      const submit = async () => {
        const enc = device.createCommandEncoder();
        const pass = enc.beginComputePass();
        pass.setPipeline(pipeline);
        pass.setBindGroup(0, bind);
        pass.dispatchWorkgroups(gx, gy);
        pass.end();
        const c0 = cpuSeconds();
        const t0 = performance.now();
        device.queue.submit([enc.finish()]);
        await device.queue.onSubmittedWorkDone();
        const c1 = cpuSeconds();
        return { wall: (performance.now() - t0) / 1000, cpu: c0 === undefined || c1 === undefined ? undefined : c1 - c0 };
      };
      await submit(); // warm-up
      let best = Infinity;
      let bestCpu = Infinity;
      for (let t = 0; t < trials; t++) {
        const s = await submit();
        best = Math.min(best, s.wall);
        if (s.cpu !== undefined && s.cpu > 0) bestCpu = Math.min(bestCpu, s.cpu);
      }
      const flop = gx * gy * WORKGROUP * iters * ACC * 8;
      variants.push({ kernel: `${gx * gy} workgroups x ${WORKGROUP} threads, ${ACC} vec4 chains`, flopsPerSecond: flop / best, ...(bestCpu < Infinity && { cpuFlopsPerSecond: flop / bestCpu }) });
    }
    const best = variants.reduce((a, b) => (b.flopsPerSecond > a.flopsPerSecond ? b : a));
    const cpuRates = variants.flatMap((v) => (v.cpuFlopsPerSecond === undefined ? [] : [v.cpuFlopsPerSecond]));
    return { flopsPerSecond: best.flopsPerSecond, kernel: best.kernel, variants, ...(cpuRates.length > 0 && { cpuFlopsPerSecond: Math.max(...cpuRates) }) };
  } finally {
    sink.destroy();
    params.destroy();
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { createNodeGpuContext } = await import('../src/node/gpu.ts');
  const ctx = await createNodeGpuContext();
  const r = await measureFmaCeiling(ctx);
  console.log(`${ctx.adapterName}: f32 FMA ceiling ${(r.flopsPerSecond / 1e9).toFixed(2)} GFLOP/s (${r.kernel})`);
  for (const v of r.variants) console.log(`  ${v.kernel}: ${(v.flopsPerSecond / 1e9).toFixed(2)} GFLOP/s`);
  process.exit(0);
}
