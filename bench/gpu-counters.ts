/**
 * Counts what the host asks of the GPU, for benchmarks: command encoders, compute passes, dispatches, submits and
 * queue writes, by wrapping the device's createCommandEncoder and its queue's submit and writeBuffer (own properties
 * on those two objects; nothing in src/ knows). Host-neutral: runs on Node's Dawn and in a browser page alike.
 *
 * Each dispatch is named after its pipeline: `family/entry` from the pipeline label getPipeline() gives
 * (`<spec label>/<act>/<entry point>`), plus the bind group's label where it says more (the matmul's
 * `matmul[q4 2048x8192]`).
 *
 * Profiling (`profile = true`, needs `timestamp-query`): every dispatch is then recorded in a compute pass of its
 * own with timestamp writes at its start and end; the encoder resolves the query set before it finishes, and
 * `readTimestamps()` returns each dispatch's GPU nanoseconds in recording order. Same work, same order (the pass
 * replays the pipeline and bind groups set before each dispatch), so results are unchanged; only the per-pass
 * overhead grows, which is why host times are measured with profiling off.
 */

export interface DispatchRecord {
  /** Pipeline family: the first segment of the pipeline's label (`matmul`, `rmsnorm`, `altup`, ...). */
  family: string;
  /** The pipeline's entry point (`gemv`, `predict`, `main`, ...). */
  entry: string;
  /** The bind group's label when it names more than the family (matmul: format and shape), else ''. */
  detail: string;
}

export interface GpuCounts {
  encoders: number;
  passes: number;
  dispatches: number;
  submits: number;
  commandBuffers: number;
  writeBuffers: number;
  writeBufferBytes: number;
  copies: number;
}

const zeroCounts = (): GpuCounts => ({ encoders: 0, passes: 0, dispatches: 0, submits: 0, commandBuffers: 0, writeBuffers: 0, writeBufferBytes: 0, copies: 0 });

/** Most dispatches one submission can time (two timestamps each; WebGPU caps a query set at 4,096). */
const MAX_TIMED = 2048;

function describe(pipeline: GPUComputePipeline | undefined, group: GPUBindGroup | undefined): DispatchRecord {
  const [family = 'unlabelled', , entry = 'main'] = (pipeline?.label ?? '').split('/');
  const g = group?.label ?? '';
  return { family: family || 'unlabelled', entry, detail: g && g !== family && g.startsWith(family) ? g : '' };
}

export class GpuCounter {
  counts: GpuCounts = zeroCounts();
  /** Every dispatch since the last reset, in order (when `record` is on). */
  records: DispatchRecord[] = [];
  record = true;
  /** One pass per dispatch with timestamps (see the header). Only when the device has timestamp-query. */
  profile = false;
  /** performance.now() when the first queue.submit since the last reset was entered (NaN if none). */
  firstSubmitAt = NaN;
  /** performance.now() when the last queue.submit returned. */
  lastSubmitEnd = NaN;
  /** Milliseconds spent inside queue.submit since the last reset. */
  submitMs = 0;
  /** Dispatches recorded while profiling whose timestamps did not fit the query set. */
  untimed = 0;

  private readonly querySet?: GPUQuerySet;
  private readonly resolveBuffer?: GPUBuffer;
  private readonly readBuffer?: GPUBuffer;
  /** Timestamp pairs written into the query set by the encoder being recorded (reset per encoder). */
  private timed = 0;
  /** Timestamp pairs resolved into readBuffer by the last finished profiled encoder. */
  private resolved = 0;
  private readonly restore: Array<() => void> = [];

  private constructor(private readonly device: GPUDevice, readonly timestamps: boolean) {
    if (timestamps) {
      this.querySet = device.createQuerySet({ label: 'gpu-counter', type: 'timestamp', count: 2 * MAX_TIMED });
      this.resolveBuffer = device.createBuffer({ label: 'gpu-counter/resolve', size: 16 * MAX_TIMED, usage: GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC });
      this.readBuffer = device.createBuffer({ label: 'gpu-counter/read', size: 16 * MAX_TIMED, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
    }
  }

  /**
   * Wraps `device` (until `uninstall()`). `timestamps`: the device was created with timestamp-query.
   * `encoders: false` hooks only the queue (submit and writeBuffer timing and counts, no dispatch counts): the
   * lightest touch, for host timings.
   */
  static install(device: GPUDevice, timestamps: boolean, options: { encoders?: boolean } = {}): GpuCounter {
    const c = new GpuCounter(device, timestamps);
    const queue = device.queue;
    const createEncoder = device.createCommandEncoder;
    const submit = queue.submit;
    const write = queue.writeBuffer;
    const own = (o: object, k: string) => Object.prototype.hasOwnProperty.call(o, k);
    const had = { enc: own(device, 'createCommandEncoder'), submit: own(queue, 'submit'), write: own(queue, 'writeBuffer') };
    if (options.encoders ?? true) Object.assign(device, {
      createCommandEncoder(desc?: GPUCommandEncoderDescriptor) {
        c.counts.encoders++;
        return c.wrapEncoder(createEncoder.call(device, desc));
      },
    });
    Object.assign(queue, {
      submit(buffers: Iterable<GPUCommandBuffer>) {
        const t0 = performance.now();
        if (Number.isNaN(c.firstSubmitAt)) c.firstSubmitAt = t0;
        const list = [...buffers];
        c.counts.submits++;
        c.counts.commandBuffers += list.length;
        submit.call(queue, list);
        c.lastSubmitEnd = performance.now();
        c.submitMs += c.lastSubmitEnd - t0;
      },
      writeBuffer(buffer: GPUBuffer, offset: number, data: BufferSource | SharedArrayBuffer, dataOffset?: number, size?: number) {
        c.counts.writeBuffers++;
        const bytes = size ?? ('byteLength' in data ? data.byteLength : 0);
        c.counts.writeBufferBytes += bytes;
        return (write as (...a: unknown[]) => void).call(queue, buffer, offset, data, dataOffset, size);
      },
    });
    c.restore.push(() => {
      const d = device as unknown as Record<string, unknown>;
      const q = queue as unknown as Record<string, unknown>;
      if (!had.enc) delete d.createCommandEncoder;
      if (!had.submit) delete q.submit;
      if (!had.write) delete q.writeBuffer;
    });
    return c;
  }

  reset(): void {
    this.counts = zeroCounts();
    this.records = [];
    this.firstSubmitAt = NaN;
    this.lastSubmitEnd = NaN;
    this.submitMs = 0;
    this.untimed = 0;
  }

  uninstall(): void {
    for (const r of this.restore.splice(0)) r();
    this.querySet?.destroy();
    this.resolveBuffer?.destroy();
    this.readBuffer?.destroy();
  }

  /**
   * GPU nanoseconds of each timed dispatch of the last profiled submission, in recording order (read back; call
   * after that submission, before the next profiled encoder finishes).
   */
  async readTimestamps(): Promise<number[]> {
    if (!this.readBuffer || this.resolved === 0) return [];
    const n = this.resolved;
    await this.readBuffer.mapAsync(GPUMapMode.READ, 0, 16 * n);
    const t = new BigUint64Array(this.readBuffer.getMappedRange(0, 16 * n).slice(0));
    this.readBuffer.unmap();
    this.resolved = 0;
    return Array.from({ length: n }, (_, i) => Number(t[2 * i + 1] - t[2 * i]));
  }

  private wrapEncoder(encoder: GPUCommandEncoder): GPUCommandEncoder {
    const c = this;
    let profiled = false;
    const overrides: Record<string, unknown> = {
      beginComputePass(desc?: GPUComputePassDescriptor) {
        c.counts.passes++;
        if (c.profile && c.querySet) {
          if (!profiled) c.timed = 0;
          profiled = true;
          return c.splittingPass(encoder, desc);
        }
        return c.wrapPass(encoder.beginComputePass(desc));
      },
      copyBufferToBuffer(...a: unknown[]) {
        c.counts.copies++;
        return (encoder.copyBufferToBuffer as (...x: unknown[]) => void).apply(encoder, a);
      },
      finish(desc?: GPUCommandBufferDescriptor) {
        if (profiled && c.timed > 0) {
          encoder.resolveQuerySet(c.querySet!, 0, 2 * c.timed, c.resolveBuffer!, 0);
          encoder.copyBufferToBuffer(c.resolveBuffer!, 0, c.readBuffer!, 0, 16 * c.timed);
          c.resolved = c.timed;
        }
        return encoder.finish(desc);
      },
    };
    return forward(encoder, overrides);
  }

  /** A pass that counts and names its dispatches. */
  private wrapPass(pass: GPUComputePassEncoder): GPUComputePassEncoder {
    const c = this;
    let pipeline: GPUComputePipeline | undefined;
    let group0: GPUBindGroup | undefined;
    return forward(pass, {
      setPipeline(p: GPUComputePipeline) {
        pipeline = p;
        pass.setPipeline(p);
      },
      setBindGroup(index: number, group: GPUBindGroup | null, ...rest: unknown[]) {
        if (index === 0) group0 = group ?? undefined;
        (pass.setBindGroup as (...a: unknown[]) => void).call(pass, index, group, ...rest);
      },
      dispatchWorkgroups(x: number, y?: number, z?: number) {
        c.counts.dispatches++;
        if (c.record) c.records.push(describe(pipeline, group0));
        pass.dispatchWorkgroups(x, y, z);
      },
    });
  }

  /**
   * A pass whose every dispatch becomes a real pass of its own with timestamps at its start and end; the pipeline
   * and bind groups set so far are replayed into each.
   */
  private splittingPass(encoder: GPUCommandEncoder, desc?: GPUComputePassDescriptor): GPUComputePassEncoder {
    const c = this;
    let pipeline: GPUComputePipeline | undefined;
    const groups = new Map<number, unknown[]>();
    const unsupported = (name: string) => () => {
      throw new Error(`GpuCounter: ${name} is not supported while profiling`);
    };
    const stub: Record<string, unknown> = {
      label: desc?.label ?? '',
      setPipeline(p: GPUComputePipeline) {
        pipeline = p;
      },
      setBindGroup(index: number, ...rest: unknown[]) {
        groups.set(index, rest);
      },
      dispatchWorkgroups(x: number, y = 1, z = 1) {
        c.counts.dispatches++;
        if (c.record) c.records.push(describe(pipeline, groups.get(0)?.[0] as GPUBindGroup | undefined));
        const timed = c.timed < MAX_TIMED;
        if (!timed) c.untimed++;
        const real = encoder.beginComputePass({
          label: desc?.label,
          timestampWrites: timed ? { querySet: c.querySet!, beginningOfPassWriteIndex: 2 * c.timed, endOfPassWriteIndex: 2 * c.timed + 1 } : undefined,
        });
        if (timed) c.timed++;
        if (pipeline) real.setPipeline(pipeline);
        for (const [i, args] of groups) (real.setBindGroup as (...a: unknown[]) => void).call(real, i, ...args);
        real.dispatchWorkgroups(x, y, z);
        real.end();
      },
      dispatchWorkgroupsIndirect: unsupported('dispatchWorkgroupsIndirect'),
      pushDebugGroup() {},
      popDebugGroup() {},
      insertDebugMarker() {},
      end() {},
    };
    return stub as unknown as GPUComputePassEncoder;
  }
}

/** `target` with some methods replaced; every other property reads through to it (methods bound to it). */
function forward<T extends object>(target: T, overrides: Record<string, unknown>): T {
  return new Proxy(target, {
    get(t, key) {
      if (typeof key === 'string' && key in overrides) return overrides[key];
      const v = Reflect.get(t, key, t) as unknown;
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(t) : v;
    },
    set(t, key, value) {
      return Reflect.set(t, key, value, t);
    },
  });
}
