/** Buffer helpers. All storage buffers can also be copied from and to, for uploads, readbacks and tests. */


/** Rounds a byte size up to a multiple of 4 (WebGPU requires it for copies and writes). */
export function align4(bytes: number): number {
  return Math.ceil(bytes / 4) * 4;
}

export function createStorageBuffer(device: GPUDevice, byteSize: number, label: string): GPUBuffer {
  return device.createBuffer({ label, size: Math.max(16, align4(byteSize)), usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST });
}

/** A storage buffer initialised from typed data (padded to 4 bytes). */
export function uploadBuffer(device: GPUDevice, data: ArrayBufferView, label: string): GPUBuffer {
  const buffer = createStorageBuffer(device, data.byteLength, label);
  writeBuffer(device, buffer, data);
  return buffer;
}

/** queue.writeBuffer with the 4-byte padding WebGPU demands. */
export function writeBuffer(device: GPUDevice, buffer: GPUBuffer, data: ArrayBufferView, byteOffset = 0): void {
  const bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  if (bytes.byteLength % 4 === 0) {
    device.queue.writeBuffer(buffer, byteOffset, bytes);
  } else {
    const padded = new Uint8Array(align4(bytes.byteLength));
    padded.set(bytes);
    device.queue.writeBuffer(buffer, byteOffset, padded);
  }
}

export function createUniformBuffer(device: GPUDevice, byteSize: number, label: string): GPUBuffer {
  return device.createBuffer({ label, size: Math.max(16, Math.ceil(byteSize / 16) * 16), usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST });
}

/** Copies `byteSize` bytes of a GPU buffer back to the CPU. */
export async function readBuffer(device: GPUDevice, buffer: GPUBuffer, byteSize = buffer.size, byteOffset = 0): Promise<ArrayBuffer> {
  const size = align4(byteSize);
  const staging = device.createBuffer({ label: 'readback', size, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
  const encoder = device.createCommandEncoder({ label: 'readback' });
  encoder.copyBufferToBuffer(buffer, byteOffset, staging, 0, size);
  device.queue.submit([encoder.finish()]);
  await staging.mapAsync(GPUMapMode.READ);
  const copy = staging.getMappedRange().slice(0, byteSize);
  staging.unmap();
  staging.destroy();
  return copy;
}

export async function readF32(device: GPUDevice, buffer: GPUBuffer, count: number, offset = 0): Promise<Float32Array> {
  return new Float32Array(await readBuffer(device, buffer, count * 4, offset * 4));
}

export async function readU32(device: GPUDevice, buffer: GPUBuffer, count: number, offset = 0): Promise<Uint32Array> {
  return new Uint32Array(await readBuffer(device, buffer, count * 4, offset * 4));
}

/**
 * Packs a uniform struct of u32/i32/f32 scalars laid out in declaration order (every field 4 bytes, so the
 * WGSL struct must use only 4-byte scalars). `types` gives each field's kind.
 */
export function packUniform(fields: Array<[kind: 'u32' | 'i32' | 'f32', value: number]>): ArrayBuffer {
  const buf = new ArrayBuffer(Math.max(16, Math.ceil((fields.length * 4) / 16) * 16));
  const view = new DataView(buf);
  fields.forEach(([kind, value], i) => {
    if (kind === 'f32') view.setFloat32(i * 4, value, true);
    else if (kind === 'i32') view.setInt32(i * 4, value, true);
    else view.setUint32(i * 4, value, true);
  });
  return buf;
}

/**
 * What owns GPU buffers of its own (a kernel: its arena's): how many bytes they take, and freeing them. A model's
 * memory() counts each owner's bytes once, from the owner itself.
 */
export interface GpuBufferOwner {
  /** Bytes of the buffers held now. */
  readonly gpuBytes: number;
  destroy(): void;
}

/**
 * The small buffers a kernel creates for its dispatches (parameter uniforms, scratch, dummies for unused bindings),
 * owned in one place so that a model's `dispose()` frees every one of them (kernel.destroy() → arena.destroy()).
 */
export class BufferArena {
  private buffers: GPUBuffer[] = [];

  constructor(readonly device: GPUDevice) {}

  /** A uniform buffer of at least `byteSize` bytes (rounded up to 16). */
  uniform(byteSize: number, label: string): GPUBuffer {
    return this.own(createUniformBuffer(this.device, byteSize, label));
  }

  /** A storage buffer (copyable, as every storage buffer here). */
  storage(byteSize: number, label: string): GPUBuffer {
    return this.own(createStorageBuffer(this.device, byteSize, label));
  }

  /**
   * A 16-byte storage buffer bound where a kernel variant leaves a binding unused (WebGPU needs every binding of the
   * layout). A kernel with unused read-only and writable slots needs two: one buffer may not be both in a dispatch.
   */
  placeholder(label: string): GPUBuffer {
    return this.own(this.device.createBuffer({ label, size: 16, usage: GPUBufferUsage.STORAGE }));
  }

  /** A storage buffer initialised from typed data. */
  upload(data: ArrayBufferView, label: string): GPUBuffer {
    return this.own(uploadBuffer(this.device, data, label));
  }

  own(buffer: GPUBuffer): GPUBuffer {
    this.buffers.push(buffer);
    return buffer;
  }

  /** Frees one buffer of this arena before the rest (a dispatch's parameters when the dispatch is destroyed). */
  release(buffer: GPUBuffer): void {
    const i = this.buffers.indexOf(buffer);
    if (i < 0) return;
    this.buffers.splice(i, 1);
    buffer.destroy();
  }

  /** Bytes held. */
  get bytes(): number {
    return this.buffers.reduce((s, b) => s + b.size, 0);
  }

  destroy(): void {
    for (const b of this.buffers) b.destroy();
    this.buffers = [];
  }
}
