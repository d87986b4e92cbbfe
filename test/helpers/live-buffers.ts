/**
 * Tracks the GPU buffers a device has live: wraps device.createBuffer so every buffer created from now on is
 * recorded until its destroy(). Tests use it to show that a model frees what it made (dispose) and that memory()
 * counts every byte it holds.
 */
export interface LiveBuffers {
  /** The buffers created since tracking began and not destroyed yet. */
  readonly live: ReadonlySet<GPUBuffer>;
  /** Restores the device's own createBuffer (buffers made meanwhile stay tracked until destroyed). */
  stop(): void;
}

export function trackLiveBuffers(device: GPUDevice): LiveBuffers {
  const live = new Set<GPUBuffer>();
  const create = device.createBuffer.bind(device);
  device.createBuffer = (descriptor: GPUBufferDescriptor) => {
    const buffer = create(descriptor);
    live.add(buffer);
    const destroy = buffer.destroy.bind(buffer);
    buffer.destroy = () => {
      live.delete(buffer);
      destroy();
    };
    return buffer;
  };
  return { live, stop: () => { device.createBuffer = create; } };
}

/** Total bytes of some buffers. */
export function bufferBytes(buffers: Iterable<GPUBuffer>): number {
  let sum = 0;
  for (const b of buffers) sum += b.size;
  return sum;
}

/** Total bytes of some buffers per class (`classify` names a buffer's class: from its label, its usage). */
export function bytesByClass(buffers: Iterable<GPUBuffer>, classify: (b: GPUBuffer) => string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const b of buffers) {
    const c = classify(b);
    out[c] = (out[c] ?? 0) + b.size;
  }
  return out;
}
