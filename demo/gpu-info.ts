/**
 * What the page can learn about the WebGPU adapter without opening a device (the worker owns the device):
 * its name, features and the limits that matter for the model. Also the "is WebGPU here at all?" check.
 */

export interface AdapterSummary {
  name: string;
  /** e.g. "vendor · architecture", for the facts list. */
  details: string;
  features: string[];
  maxBufferSize: number;
  maxStorageBufferBindingSize: number;
  isFallback: boolean;
}

export type WebGpuCheck = { ok: true; adapter: AdapterSummary } | { ok: false; reason: string };

/** Whether this browser can run the model: navigator.gpu exists and hands out an adapter. */
export async function checkWebGpu(): Promise<WebGpuCheck> {
  const gpu = (navigator as Navigator & { gpu?: GPU }).gpu;
  if (!gpu) {
    const reason = window.isSecureContext
      ? 'navigator.gpu is undefined: this browser (or its current settings) does not offer WebGPU.'
      : 'This page is not a secure context (https or localhost), and browsers only offer WebGPU to secure pages.';
    return { ok: false, reason };
  }
  let adapter: GPUAdapter | null = null;
  try {
    adapter = await gpu.requestAdapter({ powerPreference: 'high-performance' });
  } catch (err) {
    return { ok: false, reason: `requestAdapter() failed: ${(err as Error).message}` };
  }
  if (!adapter) return { ok: false, reason: 'WebGPU is present, but no GPU adapter is available (the GPU may be blocklisted or hardware acceleration turned off).' };
  const info = (adapter as GPUAdapter & { info?: GPUAdapterInfo }).info;
  const parts = [info?.vendor, info?.architecture, info?.device].filter((s): s is string => !!s);
  const name = info?.description || parts.join(' ') || 'WebGPU adapter';
  return {
    ok: true,
    adapter: {
      name,
      details: parts.join(' · ') || '–',
      features: [...adapter.features].sort(),
      maxBufferSize: adapter.limits.maxBufferSize,
      maxStorageBufferBindingSize: adapter.limits.maxStorageBufferBindingSize,
      isFallback: !!(info as (GPUAdapterInfo & { isFallbackAdapter?: boolean }) | undefined)?.isFallbackAdapter,
    },
  };
}
