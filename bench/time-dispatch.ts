/**
 * Timing of recorded dispatches for the kernel benches: GPU timestamps around the compute pass when the device has
 * `timestamp-query` (ctx.timestamps), else the wall clock from submit to onSubmittedWorkDone. One warm-up, then
 * `iters` measurements of `reps` back-to-back encodes in one pass; the median per call.
 */
import type { GpuContext } from '../src/gpu/device.ts';

export const median = (a: number[]) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)];

/** Median ms per call of `reps` encodes in one pass. */
export async function timeDispatch(ctx: GpuContext, encode: (pass: GPUComputePassEncoder) => void, reps: number, iters: number): Promise<{ ms: number; timing: 'timestamp' | 'wall' }> {
  const { device } = ctx;
  const qs = ctx.timestamps ? device.createQuerySet({ type: 'timestamp', count: 2 }) : undefined;
  const resolve = qs && device.createBuffer({ size: 16, usage: GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC });
  const read = qs && device.createBuffer({ size: 16, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
  const samples: number[] = [];
  for (let i = 0; i <= iters; i++) {
    const enc = device.createCommandEncoder();
    const pass = enc.beginComputePass(qs ? { timestampWrites: { querySet: qs, beginningOfPassWriteIndex: 0, endOfPassWriteIndex: 1 } } : {});
    for (let r = 0; r < reps; r++) encode(pass);
    pass.end();
    if (qs) {
      enc.resolveQuerySet(qs, 0, 2, resolve!, 0);
      enc.copyBufferToBuffer(resolve!, 0, read!, 0, 16);
    }
    const t0 = performance.now();
    device.queue.submit([enc.finish()]);
    await device.queue.onSubmittedWorkDone();
    const wall = performance.now() - t0;
    let ms = wall;
    if (qs) {
      await read!.mapAsync(GPUMapMode.READ);
      const t = new BigUint64Array(read!.getMappedRange().slice(0));
      read!.unmap();
      const ns = Number(t[1] - t[0]);
      if (ns > 0) ms = ns / 1e6;
    }
    if (i > 0) samples.push(ms / reps); // i = 0 is the warm-up
  }
  qs?.destroy();
  resolve?.destroy();
  read?.destroy();
  return { ms: median(samples), timing: qs ? 'timestamp' : 'wall' };
}
