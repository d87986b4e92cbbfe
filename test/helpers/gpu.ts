import { createNodeGpuContext } from '../../src/node/gpu.ts';
import type { GpuContext } from '../../src/gpu/device.ts';
import { uploadBuffer, createStorageBuffer, readBuffer } from '../../src/gpu/buffers.ts';

let ctxPromise: Promise<GpuContext> | undefined;

/** One device per test process (each test file runs in its own process). */
export function testGpu(): Promise<GpuContext> {
  ctxPromise ??= createNodeGpuContext().then((ctx) => {
    ctx.device.addEventListener('uncapturederror', (e) => {
      // A validation error means a test's result is meaningless: fail loudly.
      console.error('WebGPU uncaptured error:', (e as GPUUncapturedErrorEvent).error.message);
      process.exitCode = 1;
    });
    return ctx;
  });
  return ctxPromise;
}

/** The byte pattern outputs are filled with before a kernel runs: a quiet NaN in f32 (0x7fc0dead). */
export const POISON_U32 = 0x7fc0dead;

/** A storage buffer pre-filled with POISON_U32 words, so unwritten outputs show up as NaN. */
export function poisonedBuffer(ctx: GpuContext, byteSize: number, label = 'poisoned'): GPUBuffer {
  const words = new Uint32Array(Math.ceil(byteSize / 4)).fill(POISON_U32);
  const buffer = createStorageBuffer(ctx.device, words.byteLength, label);
  ctx.device.queue.writeBuffer(buffer, 0, words);
  return buffer;
}

export function upload(ctx: GpuContext, data: ArrayBufferView, label = 'input'): GPUBuffer {
  return uploadBuffer(ctx.device, data, label);
}

export async function download(ctx: GpuContext, buffer: GPUBuffer, byteSize = buffer.size): Promise<ArrayBuffer> {
  return readBuffer(ctx.device, buffer, byteSize);
}

/** Whether f16 variants can be tested here; tests of f16 paths skip with this message otherwise. */
export async function f16SkipReason(): Promise<string | false> {
  const ctx = await testGpu();
  return ctx.f16 ? false : 'adapter has no shader-f16 (SwiftShader): f16 variant not tested here';
}
