/**
 * The adapter's streaming-read ceiling: the best bytes/s a compute shader reaches reading one large buffer once
 * (16-byte loads, coalesced, one small write per workgroup), and the buffer-copy rate for comparison. Decode is
 * memory-bound, so this is the yardstick for the end-to-end roofline (bench/e2e.ts) and for kernels.
 *
 * Timing: wall clock around submit → onSubmittedWorkDone over `reps` repetitions after a warm-up, best of
 * `trials` (timestamp queries are not available everywhere; on real GPUs the submit overhead is ~0.1 ms against
 * tens of ms of reading).
 */
import type { GpuContext } from '../src/gpu/device.ts';

export interface ReadBandwidth {
  /** Bytes per second of the read kernel (best trial). */
  readBytesPerSecond: number;
  /** Bytes per second read by copyBufferToBuffer (it also writes as much). */
  copyBytesPerSecond: number;
  /** Size of the buffer read. */
  bytes: number;
}

const WORKGROUP = 256;
/** vec4<u32> loads per thread per workgroup pass: each workgroup streams a contiguous slab. */
const SHADER = /* wgsl */ `
@group(0) @binding(0) var<storage, read> src: array<vec4<u32>>;
@group(0) @binding(1) var<storage, read_write> sink: array<u32>;
struct Params { count: u32, perGroup: u32 }
@group(0) @binding(2) var<uniform> params: Params;

@compute @workgroup_size(${WORKGROUP})
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) n: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let group = wg.x + wg.y * n.x;
  let start = group * params.perGroup;
  let end = min(start + params.perGroup, params.count);
  var acc = vec4<u32>(0u);
  for (var i = start + lid; i < end; i += ${WORKGROUP}u) {
    acc ^= src[i];
  }
  let folded = acc.x ^ acc.y ^ acc.z ^ acc.w;
  // Almost never true, but the compiler cannot know: keeps the loads alive without a write per thread.
  if (folded == 0x9e3779b9u) { sink[group] = folded; }
}`;

export async function measureReadBandwidth(ctx: GpuContext, options: { bytes?: number; reps?: number; trials?: number } = {}): Promise<ReadBandwidth> {
  const { device } = ctx;
  const limit = Math.min(device.limits.maxStorageBufferBindingSize, device.limits.maxBufferSize);
  const bytes = Math.floor(Math.min(options.bytes ?? 256 * 2 ** 20, limit) / 16) * 16;
  const reps = options.reps ?? 10;
  const trials = options.trials ?? 3;
  const count = bytes / 16;
  const perGroup = WORKGROUP * 64; // 64 loads per thread: 256 KiB per workgroup
  const groups = Math.ceil(count / perGroup);
  const gx = Math.min(groups, device.limits.maxComputeWorkgroupsPerDimension);
  const gy = Math.ceil(groups / gx);

  const src = device.createBuffer({ label: 'bw/src', size: bytes, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST });
  const dst = device.createBuffer({ label: 'bw/dst', size: bytes, usage: GPUBufferUsage.COPY_DST });
  const sink = device.createBuffer({ label: 'bw/sink', size: Math.max(16, gx * gy * 4), usage: GPUBufferUsage.STORAGE });
  const uniform = device.createBuffer({ label: 'bw/params', size: 16, usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST });
  device.queue.writeBuffer(uniform, 0, new Uint32Array([count, perGroup, 0, 0]));
  try {
    // Fill with non-zero data (a copy of a written pattern) so no driver can shortcut zero pages.
    const pattern = new Uint32Array(Math.min(bytes, 4 * 2 ** 20) / 4).map((_, i) => Math.imul(i + 1, 2654435761));
    for (let off = 0; off < bytes; off += pattern.byteLength) device.queue.writeBuffer(src, off, pattern, 0, Math.min(pattern.length, (bytes - off) / 4));

    const module = device.createShaderModule({ label: 'bw/read', code: SHADER });
    const pipeline = await device.createComputePipelineAsync({ label: 'bw/read', layout: 'auto', compute: { module, entryPoint: 'main' } });
    const bind = device.createBindGroup({
      layout: pipeline.getBindGroupLayout(0),
      entries: [{ binding: 0, resource: { buffer: src } }, { binding: 1, resource: { buffer: sink } }, { binding: 2, resource: { buffer: uniform } }],
    });
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
    const readBytesPerSecond = await timeReps((enc) => {
      const pass = enc.beginComputePass();
      pass.setPipeline(pipeline);
      pass.setBindGroup(0, bind);
      pass.dispatchWorkgroups(gx, gy);
      pass.end();
    });
    const copyBytesPerSecond = await timeReps((enc) => enc.copyBufferToBuffer(src, 0, dst, 0, bytes));
    return { readBytesPerSecond, copyBytesPerSecond, bytes };
  } finally {
    for (const b of [src, dst, sink, uniform]) b.destroy();
  }
}
