/**
 * Launchers for shaders/gemma3n_glue.wgsl: the embedding gather (any weight format, plus precomputed hard-token
 * rows), AltUp predict / correct, AltUp magnitude matching and a one-workgroup argmax. f32 activations only.
 */
import source from '../../../shaders/gemma3n_glue.wgsl?raw';
import type { GpuContext } from '../../gpu/device.ts';
import { createUniformBuffer } from '../../gpu/buffers.ts';
import { getPipeline, grid2d, type Dispatch } from '../../gpu/pipeline.ts';
import { groupsPerRow, type GpuWeight, type WeightFormat } from '../../kernels/weight-format.ts';

const WG = 256;
const FMT: Record<WeightFormat, number> = { f32: 0, f16: 1, q4: 2, q8: 3 };
type Entry = 'embed_gather' | 'altup_predict' | 'altup_correct' | 'rescale' | 'argmax';
/** Bindings each entry point uses (auto layouts only contain those). */
const BINDINGS: Record<Entry, number[]> = {
  embed_gather: [0, 2, 3, 4, 5, 6],
  altup_predict: [0, 1, 2, 3, 4],
  altup_correct: [0, 1, 2, 3, 4],
  rescale: [0, 1, 4],
  argmax: [0, 1, 4],
};

export interface GlueParams {
  tokens?: number;
  dim: number;
  streamRows?: number;
  streams?: number;
  scale?: number;
  rowStart?: number;
  rows?: number;
  groupsPerRow?: number;
  aOffset?: number;
  outOffset?: number;
}

/** A bound glue dispatch whose token count can change per step. */
export type GlueDispatch = Dispatch & { setTokens(tokens: number): void };

export class GlueKernels {
  private constructor(
    private readonly ctx: GpuContext,
    private readonly pipelines: Map<string, GPUComputePipeline>,
    private readonly dummy: GPUBuffer,
  ) {}

  static async create(ctx: GpuContext): Promise<GlueKernels> {
    const pipelines = new Map<string, GPUComputePipeline>();
    const specs: Array<[string, Entry, Record<string, number> | undefined]> = [
      ['altup_predict', 'altup_predict', undefined],
      ['altup_correct', 'altup_correct', undefined],
      ['rescale', 'rescale', undefined],
      ['argmax', 'argmax', undefined],
      ...(['f32', 'f16', 'q4', 'q8'] as WeightFormat[]).map((f): [string, Entry, Record<string, number>] => [`embed_gather/${f}`, 'embed_gather', { FMT: FMT[f] }]),
    ];
    await Promise.all(
      specs.map(async ([key, entryPoint, constants]) => {
        pipelines.set(key, await getPipeline(ctx, { label: `gemma3n_glue/${key}`, source, entryPoint, constants }));
      }),
    );
    const dummy = ctx.device.createBuffer({ label: 'glue/unused', size: 16, usage: GPUBufferUsage.STORAGE });
    return new GlueKernels(ctx, pipelines, dummy);
  }

  private bind(key: string, entry: Entry, buffers: Partial<Record<number, GPUBuffer>>, params: GlueParams, grid: (tokens: number) => [number, number]): GlueDispatch {
    const { device } = this.ctx;
    const pipeline = this.pipelines.get(key)!;
    const uniform = createUniformBuffer(device, 48, `glue/${key}`);
    const bindGroup = device.createBindGroup({
      label: `glue/${key}`,
      layout: pipeline.getBindGroupLayout(0),
      entries: BINDINGS[entry].map((binding) => ({ binding, resource: { buffer: binding === 0 ? uniform : (buffers[binding] ?? this.dummy) } })),
    });
    const data = new ArrayBuffer(48);
    const u = new Uint32Array(data);
    const f = new Float32Array(data);
    let g: [number, number] = [0, 1];
    const setTokens = (tokens: number) => {
      u.set([tokens, params.dim, params.streamRows ?? 0, params.streams ?? 4]);
      f[4] = params.scale ?? 1;
      u.set([params.rowStart ?? 0, params.rows ?? 0, params.groupsPerRow ?? 0, params.aOffset ?? 0, params.outOffset ?? 0], 5);
      g = tokens === 0 ? [0, 1] : grid(tokens);
      device.queue.writeBuffer(uniform, 0, data);
    };
    setTokens(params.tokens ?? 1);
    return {
      label: `glue/${key}`,
      setTokens,
      encode(pass) {
        if (g[0] === 0) return;
        pass.setPipeline(pipeline);
        pass.setBindGroup(0, bindGroup);
        pass.dispatchWorkgroups(g[0], g[1]);
      },
    };
  }

  private elementGrid(dim: number): (tokens: number) => [number, number] {
    const maxPerDim = this.ctx.device.limits.maxComputeWorkgroupsPerDimension;
    return (tokens) => grid2d(Math.ceil((tokens * dim) / WG), maxPerDim);
  }

  /**
   * out[t] = scale · weight row ids[t] (one dispatch per weight part, all returned). `ids` holds u32 ids; an id with
   * the top bit set selects row (id & 0x7fffffff) of `hardRows` (unscaled) instead.
   */
  embedGather(args: { weight: GpuWeight; ids: GPUBuffer; hardRows: GPUBuffer; out: GPUBuffer; scale: number }): GlueDispatch {
    const { weight } = args;
    const parts = weight.parts.map((part) =>
      this.bind(
        `embed_gather/${weight.format}`,
        'embed_gather',
        { 2: args.ids, 3: args.hardRows, 4: args.out, 5: part.data, 6: part.scales },
        { dim: weight.cols, scale: args.scale, rowStart: part.rowStart, rows: part.rows, groupsPerRow: groupsPerRow(weight.cols) },
        this.elementGrid(weight.cols),
      ),
    );
    return {
      label: 'glue/embed_gather',
      setTokens: (t) => parts.forEach((p) => p.setTokens(t)),
      encode: (pass) => parts.forEach((p) => p.encode(pass)),
    };
  }

  /** streams [A, streamRows, D] + router logits [T, A] + W_pred [A², A] → predictions (same layout). */
  altupPredict(args: { streams: GPUBuffer; routerLogits: GPUBuffer; coefs: GPUBuffer; out: GPUBuffer; dim: number; streamRows: number }): GlueDispatch {
    return this.bind('altup_predict', 'altup_predict', { 1: args.streams, 2: args.routerLogits, 3: args.coefs, 4: args.out }, { dim: args.dim, streamRows: args.streamRows }, this.elementGrid(args.dim));
  }

  /** predictions [A + 1, streamRows, D] (slot A = layer output) + router logits + W_corr [A, A] → corrected streams. */
  altupCorrect(args: { predictions: GPUBuffer; routerLogits: GPUBuffer; coefs: GPUBuffer; out: GPUBuffer; dim: number; streamRows: number }): GlueDispatch {
    return this.bind('altup_correct', 'altup_correct', { 1: args.predictions, 2: args.routerLogits, 3: args.coefs, 4: args.out }, { dim: args.dim, streamRows: args.streamRows }, this.elementGrid(args.dim));
  }

  /** y rows (in place, at yOffset) scaled to the RMS of the reference rows (at refOffset), floor 1e-5. */
  rescale(args: { ref: GPUBuffer; refOffset: number; y: GPUBuffer; yOffset: number; dim: number }): GlueDispatch {
    return this.bind('rescale', 'rescale', { 1: args.ref, 4: args.y }, { dim: args.dim, aOffset: args.refOffset, outOffset: args.yOffset }, (t) => [t, 1]);
  }

  /** out[outOffset] (as u32 bits) = argmax of x[xOffset .. xOffset + dim). */
  argmax(args: { x: GPUBuffer; xOffset: number; dim: number; out: GPUBuffer; outOffset: number }): GlueDispatch {
    return this.bind('argmax', 'argmax', { 1: args.x, 4: args.out }, { dim: args.dim, aOffset: args.xOffset, outOffset: args.outOffset }, () => [1, 1]);
  }
}
