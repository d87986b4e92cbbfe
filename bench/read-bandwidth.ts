/**
 * The adapter's streaming-read ceiling: the best bytes/s any of a few streaming-read kernels reaches reading one
 * large buffer once (16-byte loads; contiguous slabs per workgroup or a grid-stride loop, at a few workgroup
 * counts), and the buffer-copy rate for comparison. Decode is memory-bound, so the best read kernel is the yardstick
 * for the end-to-end roofline (bench/e2e.ts) and for kernels (bench/kernels.ts): one implementation for both.
 *
 * Timing: wall clock around submit → onSubmittedWorkDone over `reps` repetitions after a warm-up, best of
 * `trials` (timestamp queries are not available everywhere; on real GPUs the submit overhead is ~0.1 ms against
 * tens of ms of reading).
 */
import type { GpuContext } from '../src/gpu/device.ts';

export interface ReadBandwidth {
  /** Bytes per second of the best streaming-read kernel (best trial): the roofline ceiling. */
  readBytesPerSecond: number;
  /** Which read kernel that was (access pattern, workgroups). */
  readKernel: string;
  /** Every read kernel tried, bytes per second. */
  readVariants: Array<{ kernel: string; bytesPerSecond: number }>;
  /** Bytes per second read by copyBufferToBuffer (it also writes as much); for comparison only. */
  copyBytesPerSecond: number;
  /** Size of the buffer read. */
  bytes: number;
}

const WORKGROUP = 256;
// Each thread XORs vec4<u32> loads (nothing can be optimized away) into one word kept only if an impossible value
// turns up: no write per thread, so the kernel's traffic is the read.
const SHADER = /* wgsl */ `
struct Params { count: u32, per_group: u32, grid_stride: u32, mode: u32 }
@group(0) @binding(0) var<storage, read> src: array<vec4<u32>>;
@group(0) @binding(1) var<storage, read_write> sink: array<u32>;
@group(0) @binding(2) var<uniform> p: Params;

@compute @workgroup_size(${WORKGROUP})
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) n: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let g = wg.x + wg.y * n.x;
  var acc = vec4<u32>(0u);
  if (p.mode == 0u) { // contiguous slab per workgroup
    let start = g * p.per_group;
    let end = min(start + p.per_group, p.count);
    for (var i = start + lid; i < end; i += ${WORKGROUP}u) { acc ^= src[i]; }
  } else { // grid-stride over the whole buffer
    for (var i = g * ${WORKGROUP}u + lid; i < p.count; i += p.grid_stride) { acc ^= src[i]; }
  }
  let folded = acc.x ^ acc.y ^ acc.z ^ acc.w;
  if (folded == 0x9e3779b9u) { sink[g] = folded; }
}`;

export async function measureReadBandwidth(ctx: GpuContext, options: { bytes?: number; reps?: number; trials?: number } = {}): Promise<ReadBandwidth> {
  const { device } = ctx;
  const limit = Math.min(device.limits.maxStorageBufferBindingSize, device.limits.maxBufferSize);
  const bytes = Math.floor(Math.min(options.bytes ?? 256 * 2 ** 20, limit - 2 ** 20) / 16) * 16;
  const reps = options.reps ?? 10;
  const trials = options.trials ?? 3;
  const count = bytes / 16;
  const maxX = device.limits.maxComputeWorkgroupsPerDimension;
  // Slabs of 64 loads per thread (256 KiB per workgroup, one per ~core-sized chunk), and fixed grids that suit
  // GPUs with few (1024) or many (4096, 8192) resident workgroups.
  const slab64 = Math.ceil(count / (WORKGROUP * 64));
  const variants: Array<{ mode: 0 | 1; groups: number }> = [
    { mode: 0, groups: slab64 },
    { mode: 0, groups: 1024 },
    { mode: 0, groups: 4096 },
    { mode: 1, groups: 1024 },
    { mode: 1, groups: 8192 },
  ];

  const src = device.createBuffer({ label: 'bw/src', size: bytes, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST });
  const dst = device.createBuffer({ label: 'bw/dst', size: bytes, usage: GPUBufferUsage.COPY_DST });
  const sink = device.createBuffer({ label: 'bw/sink', size: 4 * Math.max(8192, slab64), usage: GPUBufferUsage.STORAGE });
  const uniforms: GPUBuffer[] = [];
  try {
    // Fill with non-zero data (a copy of a written pattern) so no driver can shortcut zero pages.
    const pattern = new Uint32Array(Math.min(bytes, 4 * 2 ** 20) / 4).map((_, i) => Math.imul(i + 1, 2654435761));
    for (let off = 0; off < bytes; off += pattern.byteLength) device.queue.writeBuffer(src, off, pattern, 0, Math.min(pattern.length, (bytes - off) / 4));

    const module = device.createShaderModule({ label: 'bw/read', code: SHADER });
    const pipeline = await device.createComputePipelineAsync({ label: 'bw/read', layout: 'auto', compute: { module, entryPoint: 'main' } });
    const timeReps = async (record: (enc: GPUCommandEncoder) => void): Promise<number> => {
      const submit = () => {
        const enc = device.createCommandEncoder();
        for (let r = 0; r < reps; r++) record(enc);
        device.queue.submit([enc.finish()]);
        return device.queue.onSubmittedWorkDone();
      };
      await submit(); // warm-up
      let best = Infinity;
      for (let t = 0; t < trials; t++) {
        const t0 = performance.now();
        await submit();
        best = Math.min(best, (performance.now() - t0) / 1000);
      }
      return (bytes * reps) / best;
    };
    const readVariants: ReadBandwidth['readVariants'] = [];
    for (const v of variants) {
      const uniform = device.createBuffer({ label: 'bw/params', size: 16, usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST });
      uniforms.push(uniform);
      device.queue.writeBuffer(uniform, 0, new Uint32Array([count, Math.ceil(count / v.groups), v.groups * WORKGROUP, v.mode]));
      const bind = device.createBindGroup({
        layout: pipeline.getBindGroupLayout(0),
        entries: [{ binding: 0, resource: { buffer: src } }, { binding: 1, resource: { buffer: sink } }, { binding: 2, resource: { buffer: uniform } }],
      });
      const gx = Math.min(v.groups, maxX);
      const gy = Math.ceil(v.groups / gx);
      const bytesPerSecond = await timeReps((enc) => {
        const pass = enc.beginComputePass();
        pass.setPipeline(pipeline);
        pass.setBindGroup(0, bind);
        pass.dispatchWorkgroups(gx, gy);
        pass.end();
      });
      readVariants.push({ kernel: `${v.mode === 0 ? 'slab' : 'grid-stride'}, ${v.groups} workgroups`, bytesPerSecond });
    }
    const best = readVariants.reduce((a, b) => (b.bytesPerSecond > a.bytesPerSecond ? b : a));
    const copyBytesPerSecond = await timeReps((enc) => enc.copyBufferToBuffer(src, 0, dst, 0, bytes));
    return { readBytesPerSecond: best.bytesPerSecond, readKernel: best.kernel, readVariants, copyBytesPerSecond, bytes };
  } finally {
    for (const b of [src, dst, sink, ...uniforms]) b.destroy();
  }
}
