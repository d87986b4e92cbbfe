/**
 * Timing of recorded dispatches for the kernel benches: GPU timestamps around the compute pass when the device has
 * `timestamp-query` (ctx.timestamps), else the wall clock from submit to onSubmittedWorkDone. One warm-up, then
 * `iters` measurements of `reps` back-to-back encodes in one pass; the median per call.
 */
import type { GpuContext } from '../src/gpu/device.ts';

export const median = (a: number[]) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)];

/** One measured pass: what its submit took on the wall clock and in this process's CPU, and on the GPU's clock. */
export interface PassTime {
  wallMs: number;
  cpuMs: number;
  /** From the pass's timestamps; undefined without `timestamp-query` (or a zero reading). */
  gpuMs?: number;
}

/**
 * Runs compute passes one at a time and times each: GPU timestamps around the pass when the device has
 * `timestamp-query`, the wall clock and process CPU time from submit to onSubmittedWorkDone always.
 */
export class PassTimer {
  private readonly qs: GPUQuerySet | undefined;
  private readonly resolve: GPUBuffer | undefined;
  private readonly read: GPUBuffer | undefined;

  constructor(private readonly ctx: GpuContext) {
    const { device } = ctx;
    this.qs = ctx.timestamps ? device.createQuerySet({ type: 'timestamp', count: 2 }) : undefined;
    this.resolve = this.qs && device.createBuffer({ size: 16, usage: GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC });
    this.read = this.qs && device.createBuffer({ size: 16, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
  }

  get timing(): 'timestamp' | 'wall' {
    return this.qs ? 'timestamp' : 'wall';
  }

  async time(encode: (pass: GPUComputePassEncoder) => void): Promise<PassTime> {
    const { device } = this.ctx;
    const { qs, resolve, read } = this;
    const enc = device.createCommandEncoder();
    const pass = enc.beginComputePass(qs ? { timestampWrites: { querySet: qs, beginningOfPassWriteIndex: 0, endOfPassWriteIndex: 1 } } : {});
    encode(pass);
    pass.end();
    if (qs) {
      enc.resolveQuerySet(qs, 0, 2, resolve!, 0);
      enc.copyBufferToBuffer(resolve!, 0, read!, 0, 16);
    }
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    device.queue.submit([enc.finish()]);
    await device.queue.onSubmittedWorkDone();
    const wallMs = performance.now() - t0;
    const c = process.cpuUsage(c0);
    let gpuMs: number | undefined;
    if (qs) {
      await read!.mapAsync(GPUMapMode.READ);
      const t = new BigUint64Array(read!.getMappedRange().slice(0));
      read!.unmap();
      const ns = Number(t[1] - t[0]);
      if (ns > 0) gpuMs = ns / 1e6;
    }
    return { wallMs, cpuMs: (c.user + c.system) / 1000, gpuMs };
  }

  destroy(): void {
    this.qs?.destroy();
    this.resolve?.destroy();
    this.read?.destroy();
  }
}

/** Median ms per call of `reps` encodes in one pass (one warm-up, then `iters` passes). */
export async function timeDispatch(ctx: GpuContext, encode: (pass: GPUComputePassEncoder) => void, reps: number, iters: number): Promise<{ ms: number; timing: 'timestamp' | 'wall' }> {
  const timer = new PassTimer(ctx);
  const samples: number[] = [];
  for (let i = 0; i <= iters; i++) {
    const t = await timer.time((pass) => {
      for (let r = 0; r < reps; r++) encode(pass);
    });
    if (i > 0) samples.push((t.gpuMs ?? t.wallMs) / reps); // i = 0 is the warm-up
  }
  const timing = timer.timing;
  timer.destroy();
  return { ms: median(samples), timing };
}
