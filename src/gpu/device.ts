import { GemmaError } from '../errors.ts';

/** What the kernels need to know about the device they run on. */
export interface GpuContext {
  device: GPUDevice;
  /** `shader-f16` is enabled: f16 kernel variants may be used. */
  f16: boolean;
  /** `subgroups` is enabled. */
  subgroups: boolean;
  /** `timestamp-query` is enabled (benchmarks only). */
  timestamps: boolean;
  /** Human-readable adapter description, for logs and the demo. Never used to choose code paths. */
  adapterName: string;
  /**
   * The adapter runs on the CPU (GPUAdapterInfo.isFallbackAdapter: SwiftShader, WARP, llvmpipe): kernels pick their
   * CPU-friendly shapes (no workgroup barriers, more work per thread).
   */
  cpuAdapter: boolean;
  /** WGSL has dot4I8Packed / dot4U8Packed (language feature packed_4x8_integer_dot_product). */
  packedDot?: boolean;
}

/** The limits below which we refuse to run, with what each one is for. */
const REQUIRED_LIMITS: Record<string, { min: number; why: string }> = {
  maxStorageBufferBindingSize: { min: 128 * 1024 * 1024, why: 'weight matrices are bound whole' },
  maxBufferSize: { min: 128 * 1024 * 1024, why: 'weight matrices are stored whole' },
  maxStorageBuffersPerShaderStage: { min: 8, why: 'the attention and matmul kernels bind up to 8 buffers' },
  maxComputeWorkgroupStorageSize: { min: 16384, why: 'tiled kernels stage tiles in workgroup memory' },
  maxComputeInvocationsPerWorkgroup: { min: 256, why: 'kernels use 256-thread workgroups' },
  maxComputeWorkgroupSizeX: { min: 256, why: 'kernels use 256-thread workgroups' },
};

/** Limits we ask for as high as the adapter offers (bigger buffers = fewer splits). */
const MAXIMISED_LIMITS = [
  'maxStorageBufferBindingSize',
  'maxBufferSize',
  'maxStorageBuffersPerShaderStage',
  'maxComputeWorkgroupStorageSize',
  'maxComputeInvocationsPerWorkgroup',
  'maxComputeWorkgroupSizeX',
  'maxComputeWorkgroupsPerDimension',
] as const;

export interface DeviceOptions {
  /** Use f16 kernels when the adapter has `shader-f16` (default true). */
  allowF16?: boolean;
  powerPreference?: GPUPowerPreference;
}

/**
 * Finds an adapter, checks it can run us, and opens a device with the features and limits we use.
 * `gpu` defaults to `navigator.gpu`; Node passes the `webgpu` package's GPU object.
 */
export async function createGpuContext(gpu?: GPU, options: DeviceOptions = {}): Promise<GpuContext> {
  const theGpu = gpu ?? (typeof navigator !== 'undefined' ? (navigator as Navigator).gpu : undefined);
  if (!theGpu) {
    throw new GemmaError(
      'no-webgpu',
      'WebGPU is not available here (navigator.gpu is undefined). Use a browser with WebGPU enabled ' +
        '(Chrome/Edge 113+, Safari 26+, Firefox 141+ on Windows) over https or localhost.',
    );
  }
  const adapter = await theGpu.requestAdapter({ powerPreference: options.powerPreference ?? 'high-performance' });
  if (!adapter) {
    throw new GemmaError(
      'no-adapter',
      'WebGPU is present but no GPU adapter was found. Check that hardware acceleration is enabled in the browser ' +
        'settings and that the GPU driver is not blocklisted (chrome://gpu shows why).',
    );
  }
  for (const [name, { min, why }] of Object.entries(REQUIRED_LIMITS)) {
    const have = (adapter.limits as unknown as Record<string, number>)[name];
    if (have < min) {
      throw new GemmaError(
        'limit-too-small',
        `This GPU's ${name} is ${have}, below the ${min} Gemma needs (${why}). Try another browser or GPU.`,
      );
    }
  }
  const requiredFeatures: GPUFeatureName[] = [];
  const f16 = (options.allowF16 ?? true) && adapter.features.has('shader-f16');
  if (f16) requiredFeatures.push('shader-f16');
  const subgroups = adapter.features.has('subgroups' as GPUFeatureName);
  if (subgroups) requiredFeatures.push('subgroups' as GPUFeatureName);
  const timestamps = adapter.features.has('timestamp-query');
  if (timestamps) requiredFeatures.push('timestamp-query');
  const requiredLimits: Record<string, number> = {};
  for (const name of MAXIMISED_LIMITS) requiredLimits[name] = (adapter.limits as unknown as Record<string, number>)[name];
  const device = await adapter.requestDevice({ requiredFeatures, requiredLimits });
  const info = adapter.info;
  const adapterName = [info?.vendor, info?.architecture, info?.device, info?.description].filter(Boolean).join(' ') || 'unknown adapter';
  const cpuAdapter = (info as GPUAdapterInfo & { isFallbackAdapter?: boolean })?.isFallbackAdapter === true || (adapter as GPUAdapter & { isFallbackAdapter?: boolean }).isFallbackAdapter === true;
  const packedDot = (theGpu as GPU & { wgslLanguageFeatures?: ReadonlySet<string> }).wgslLanguageFeatures?.has('packed_4x8_integer_dot_product') ?? false;
  return { device, f16, subgroups, timestamps, adapterName, cpuAdapter, packedDot };
}
