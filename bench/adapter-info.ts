/**
 * The adapter the benches run on, as JSON on stdout: name, GPUAdapterInfo, whether it is a fallback (CPU) adapter,
 * its features and limits, and the Node/Dawn versions (scripts/gpu-bench.mjs puts this at the top of its report).
 * Usage: node --import ./scripts/register.mjs bench/adapter-info.ts
 */
import { nodeGpu } from '../src/node/gpu.ts';

const gpu = await nodeGpu();
const adapter = await gpu.requestAdapter({ powerPreference: 'high-performance' });
if (!adapter) {
  console.log(JSON.stringify({ error: 'no WebGPU adapter (no Vulkan driver found?)', env: { VK_ICD_FILENAMES: process.env.VK_ICD_FILENAMES, VK_DRIVER_FILES: process.env.VK_DRIVER_FILES } }));
  process.exit(2);
}
const info = adapter.info as GPUAdapterInfo & { isFallbackAdapter?: boolean };
const limits: Record<string, number> = {};
for (const key in adapter.limits) limits[key] = (adapter.limits as unknown as Record<string, number>)[key];
const name = [info.vendor, info.architecture, info.device, info.description].filter(Boolean).join(' ') || 'unknown adapter';
console.log(
  JSON.stringify({
    name,
    info: { vendor: info.vendor, architecture: info.architecture, device: info.device, description: info.description },
    isFallbackAdapter: info.isFallbackAdapter === true,
    features: [...adapter.features].sort(),
    limits,
    node: process.version,
    env: { VK_ICD_FILENAMES: process.env.VK_ICD_FILENAMES, VK_DRIVER_FILES: process.env.VK_DRIVER_FILES },
  }),
);
process.exit(0);
