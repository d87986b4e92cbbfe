/**
 * The Node host for the engine core: WebGPU from the `webgpu` npm package (Dawn). On machines without a
 * GPU, Dawn runs on SwiftShader (Chromium's CPU Vulkan driver) when its ICD file is found.
 */
import { existsSync } from 'node:fs';
import { createGpuContext, type DeviceOptions, type GpuContext } from '../gpu/device.ts';
import { GemmaError } from '../errors.ts';

const SWIFTSHADER_ICDS = ['/usr/lib/chromium/vk_swiftshader_icd.json', '/usr/lib/chromium-browser/vk_swiftshader_icd.json'];

let gpuPromise: Promise<GPU> | undefined;

/** The process-wide GPU object, with WebGPU's globals (GPUBufferUsage, ...) installed on globalThis. */
export function nodeGpu(): Promise<GPU> {
  gpuPromise ??= (async () => {
    if (!process.env.VK_ICD_FILENAMES && !process.env.VK_DRIVER_FILES) {
      const icd = SWIFTSHADER_ICDS.find((p) => existsSync(p));
      if (icd && process.env.GEMMA_WEBGPU_NATIVE_VULKAN !== '1') process.env.VK_ICD_FILENAMES = icd;
    }
    let mod: typeof import('webgpu');
    try {
      mod = await import('webgpu');
    } catch (err) {
      throw new GemmaError('no-webgpu', 'The `webgpu` npm package (Dawn for Node) is not installed: run `npm install webgpu`.', { cause: err });
    }
    Object.assign(globalThis, mod.globals);
    return mod.create([]);
  })();
  return gpuPromise;
}

export async function createNodeGpuContext(options?: DeviceOptions): Promise<GpuContext> {
  return createGpuContext(await nodeGpu(), options);
}
