/**
 * Where the vision tower's time goes, per kernel family: every distinct step of the bound forward (stem, each block
 * shape, MSFA, embed_vision; identical blocks share a signature) runs once, one dispatch per submission, and each
 * dispatch's cost is multiplied by how often its step occurs in the tower. Costs are process CPU time
 * (process.cpuUsage: SwiftShader's worker threads are threads of this process), which a shared machine inflates far
 * less than wall time, plus GPU timestamps when the device has `timestamp-query`. On a real GPU read the timestamps.
 *
 * Used by `npm run bench:vision -- --profile` (bench/vision.ts); the result is a table per family and per dispatch.
 */
import type { GpuContext } from '../src/gpu/device.ts';
import type { Dispatch } from '../src/gpu/pipeline.ts';
import { PassTimer } from './time-dispatch.ts';

export interface DispatchCost {
  label: string;
  family: string;
  /** Times the dispatch runs per image. */
  count: number;
  /** CPU milliseconds of one run. */
  cpuMs: number;
  /** GPU timestamp milliseconds of one run (0 without timestamp-query). */
  gpuMs: number;
  /** Multiply-accumulates of one run (convolutions / GEMMs; 0 for the rest). */
  macs: number;
}

export interface Profile {
  dispatches: DispatchCost[];
  /** Per family: CPU ms per image, GPU ms per image, GMAC per image. */
  families: Array<{ family: string; cpuMs: number; gpuMs: number; gmac: number; dispatches: number }>;
  cpuMsPerImage: number;
  gpuMsPerImage: number;
}

const CONV = /^conv2d(?:\[[^\]]*\])?\[(\w+) (\d+)x(\d+)\/(\d+) (\d+)->(\d+) (\d+)x(\d+)\]/;

/** The kernel family of a dispatch label, and its MACs when it is a convolution. */
export function classify(label: string): { family: string; macs: number } {
  const m = CONV.exec(label);
  if (m) {
    const [, format, kh, kw, stride, cin, cout, h, w] = m;
    const oh = Math.ceil(+h / +stride);
    const ow = Math.ceil(+w / +stride);
    const macs = oh * ow * +cin * +cout * +kh * +kw;
    if (format === 'f32' && +h === 1) return { family: 'attention q.k / p.v (gemm)', macs };
    if (+h === 1) return { family: 'embed projection (gemm)', macs };
    if (+kh > 1) return { family: `conv ${kh}x${kw} (full)`, macs };
    return { family: `conv 1x1 at ${h}x${w}`, macs };
  }
  if (label.startsWith('depthwise-conv')) return { family: 'depthwise conv', macs: 0 };
  if (label.startsWith('channel-norm')) return { family: 'channel norm', macs: 0 };
  if (label.startsWith('softmax')) return { family: 'attention softmax', macs: 0 };
  if (label.startsWith('resample')) return { family: 'resample (MSFA)', macs: 0 };
  return { family: label.replace(/\[.*$/, ''), macs: 0 };
}

export async function profilePlan(ctx: GpuContext, plan: ReadonlyArray<{ readonly name: string; readonly dispatches: readonly Dispatch[] }>, options: { log?: (line: string) => void } = {}): Promise<Profile> {
  const signature = (s: { dispatches: readonly Dispatch[] }) => s.dispatches.map((d) => d.label).join('|');
  const counts = new Map<string, number>();
  for (const s of plan) counts.set(signature(s), (counts.get(signature(s)) ?? 0) + 1);
  const timer = new PassTimer(ctx);
  const run = async (d: Dispatch): Promise<{ cpuMs: number; gpuMs: number }> => {
    const t = await timer.time((pass) => d.encode(pass));
    return { cpuMs: t.cpuMs, gpuMs: t.gpuMs ?? 0 };
  };
  const seen = new Set<string>();
  const dispatches: DispatchCost[] = [];
  for (const step of plan) {
    const sig = signature(step);
    if (seen.has(sig)) continue;
    seen.add(sig);
    const count = counts.get(sig)!;
    let stepCpu = 0;
    for (const d of step.dispatches) {
      const { cpuMs, gpuMs } = await run(d);
      stepCpu += cpuMs;
      dispatches.push({ label: d.label, ...classify(d.label), count, cpuMs, gpuMs });
    }
    options.log?.(`${step.name} (x${count}): ${stepCpu.toFixed(0)} ms CPU`);
  }
  timer.destroy();
  const fam = new Map<string, { family: string; cpuMs: number; gpuMs: number; gmac: number; dispatches: number }>();
  for (const d of dispatches) {
    const f = fam.get(d.family) ?? { family: d.family, cpuMs: 0, gpuMs: 0, gmac: 0, dispatches: 0 };
    f.cpuMs += d.cpuMs * d.count;
    f.gpuMs += d.gpuMs * d.count;
    f.gmac += (d.macs * d.count) / 1e9;
    f.dispatches += d.count;
    fam.set(d.family, f);
  }
  const families = [...fam.values()].sort((a, b) => b.cpuMs - a.cpuMs);
  return {
    dispatches,
    families,
    cpuMsPerImage: families.reduce((a, f) => a + f.cpuMs, 0),
    gpuMsPerImage: families.reduce((a, f) => a + f.gpuMs, 0),
  };
}

/** Markdown tables of a profile: families, then the `top` most expensive dispatches. */
export function profileTables(p: Profile, top = 25): string {
  const lines = ['| family | dispatches / image | CPU s / image | share | GMAC | GFLOP/s (CPU time) |', '| --- | --- | --- | --- | --- | --- |'];
  for (const f of p.families) {
    const gflops = f.gmac > 0 ? ((2 * f.gmac) / (f.cpuMs / 1000)).toFixed(2) : '';
    lines.push(`| ${f.family} | ${f.dispatches} | ${(f.cpuMs / 1000).toFixed(1)} | ${((100 * f.cpuMs) / p.cpuMsPerImage).toFixed(1)} % | ${f.gmac.toFixed(1)} | ${gflops} |`);
  }
  lines.push(`| total | | ${(p.cpuMsPerImage / 1000).toFixed(1)} | | | |`, '');
  lines.push('| dispatch | x / image | CPU ms each | CPU s / image | GFLOP/s (CPU time) |', '| --- | --- | --- | --- | --- |');
  for (const d of [...p.dispatches].sort((a, b) => b.cpuMs * b.count - a.cpuMs * a.count).slice(0, top)) {
    const gflops = d.macs > 0 ? ((2 * d.macs) / (d.cpuMs / 1000) / 1e9).toFixed(2) : '';
    lines.push(`| ${d.label} | ${d.count} | ${d.cpuMs.toFixed(0)} | ${((d.cpuMs * d.count) / 1000).toFixed(1)} | ${gflops} |`);
  }
  return lines.join('\n');
}
