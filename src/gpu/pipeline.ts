import type { GpuContext } from './device.ts';

/** Element type of activations (and of float weights) in a kernel variant. */
export type ActType = 'f32' | 'f16';

/**
 * Kernels are written once against the alias `act_t`; the variant is chosen here by prepending the alias
 * (and `enable f16;` for the f16 variant). This is the only text we ever add to a shader: tile and
 * workgroup sizes are WGSL `override` constants.
 */
export function shaderSource(source: string, act: ActType, extraEnables: string[] = []): string {
  const enables = [...(act === 'f16' ? ['f16'] : []), ...extraEnables].map((e) => `enable ${e};\n`).join('');
  return `${enables}alias act_t = ${act};\n${source}`;
}

export interface PipelineSpec {
  label: string;
  source: string;
  act?: ActType;
  entryPoint?: string;
  constants?: Record<string, number>;
  /** Extra `enable` directives, e.g. 'subgroups'. */
  enables?: string[];
  /** Shared WGSL functions (shaders/lib/*.wgsl) placed before `source`. */
  libraries?: string[];
}

const pipelineCache = new WeakMap<GPUDevice, Map<string, Promise<GPUComputePipeline>>>();

/** Compiles (once per device and variant) a compute pipeline with an auto layout. Rejects with the compiler's message. */
export function getPipeline(ctx: GpuContext, spec: PipelineSpec): Promise<GPUComputePipeline> {
  const act = spec.act ?? 'f32';
  if (act === 'f16' && !ctx.f16) throw new Error(`${spec.label}: f16 variant requested but shader-f16 is not enabled`);
  const entryPoint = spec.entryPoint ?? 'main';
  const source = [...(spec.libraries ?? []), spec.source].join('\n');
  const key = JSON.stringify([spec.label, act, entryPoint, spec.constants ?? {}, spec.enables ?? [], source.length]);
  let perDevice = pipelineCache.get(ctx.device);
  if (!perDevice) pipelineCache.set(ctx.device, (perDevice = new Map()));
  let pipeline = perDevice.get(key);
  if (!pipeline) {
    const code = shaderSource(source, act, spec.enables);
    const module = ctx.device.createShaderModule({ label: spec.label, code });
    pipeline = ctx.device
      .createComputePipelineAsync({
        label: `${spec.label}/${act}/${entryPoint}`,
        layout: 'auto',
        compute: { module, entryPoint, constants: spec.constants },
      })
      .catch(async (err: unknown) => {
        const info = await module.getCompilationInfo();
        const messages = info.messages.map((m) => `${m.type} ${m.lineNum}:${m.linePos} ${m.message}`).join('\n');
        throw new Error(`failed to compile ${spec.label} (${act}): ${err instanceof Error ? err.message : err}\n${messages}`);
      });
    perDevice.set(key, pipeline);
  }
  return pipeline;
}

/** Bind group 0 from buffers in binding order. */
export function bindBuffers(device: GPUDevice, pipeline: GPUComputePipeline, buffers: GPUBuffer[], label?: string): GPUBindGroup {
  return device.createBindGroup({
    label,
    layout: pipeline.getBindGroupLayout(0),
    entries: buffers.map((buffer, binding) => ({ binding, resource: { buffer } })),
  });
}

/** A recorded-once dispatch: pipeline + bind group + grid. Encoding it costs no allocation. */
export interface Dispatch {
  readonly label: string;
  encode(pass: GPUComputePassEncoder): void;
}

export function makeDispatch(label: string, pipeline: GPUComputePipeline, bindGroup: GPUBindGroup, grid: () => [number, number?, number?]): Dispatch {
  return {
    label,
    encode(pass) {
      const [x, y = 1, z = 1] = grid();
      if (x === 0 || y === 0 || z === 0) return;
      pass.setPipeline(pipeline);
      pass.setBindGroup(0, bindGroup);
      pass.dispatchWorkgroups(x, y, z);
    },
  };
}

/** Runs dispatches in one compute pass and submits. */
export function submitDispatches(device: GPUDevice, dispatches: Dispatch[], label = 'dispatches'): void {
  const encoder = device.createCommandEncoder({ label });
  const pass = encoder.beginComputePass({ label });
  for (const d of dispatches) d.encode(pass);
  pass.end();
  device.queue.submit([encoder.finish()]);
}

/** Splits a workgroup count that may exceed maxComputeWorkgroupsPerDimension into an (x, y) grid. */
export function grid2d(workgroups: number, maxPerDim = 65535): [number, number] {
  if (workgroups <= maxPerDim) return [workgroups, 1];
  const y = Math.ceil(workgroups / maxPerDim);
  return [Math.ceil(workgroups / y), y];
}
