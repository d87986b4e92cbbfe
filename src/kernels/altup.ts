import tanhLib from '../../shaders/lib/tanh.wgsl?raw';
import sumLib from '../../shaders/lib/workgroup-sum.wgsl?raw';
import source from '../../shaders/altup.wgsl?raw';
import type { GpuContext } from '../gpu/device.ts';
import { BufferArena } from '../gpu/buffers.ts';
import { getPipeline, grid2d, makeDispatch, type Dispatch } from '../gpu/pipeline.ts';

const WG = 256;
const ENTRIES = ['predict', 'correct', 'rescale', 'ple_combine'] as const;
type Entry = (typeof ENTRIES)[number];

/**
 * Streams buffer layout (f32): stream i, token t, dim d at `i * streamStride + t * dim + d`.
 * `streamStride` defaults to `tokens * dim` of the bind call, so bind with tokens = the buffer's capacity
 * (then lower it with setTokens) or pass `streamStride` explicitly.
 */
export interface StreamsLayout {
  tokens: number;
  /** D (2048 for E2B). */
  dim: number;
  streamStride?: number;
}

export interface RouterArgs {
  /** Multiplies the logits before tanh (default 1 / dim, HF's router_input_scale). */
  routerScale?: number;
  /** Clamp the coefficient matrix entries to ±coefClip (HF: altup_coef_clip = 120); off when undefined. */
  coefClip?: number;
}

export interface AltUpPredictArgs extends StreamsLayout, RouterArgs {
  /** x_0..x_3 (read). */
  streams: GPUBuffer;
  /**
   * The layer's router table [5, dim] f32: router_norm's weight w_r, then W_r's 4 rows. predict computes the logits
   * r = W_r · RMSNorm_{w_r}(x_0) itself (with norm.eps), before HF's 1/D input scale and tanh.
   */
  routerTable: GPUBuffer;
  /** prediction_coefs [16, 4] f32 (row j = output coefficient j = 4 i + k). */
  coefs: GPUBuffer;
  /** x̂_0..x̂_3 (written), same layout; must be another buffer. */
  out: GPUBuffer;
  /** The layer's input norm of the active prediction: n = RMSNorm_weight(x̂_0), written [T, dim] at `offset` of `out`. */
  norm: { weight: GPUBuffer; eps: number; out: GPUBuffer; offset?: number };
}

export interface AltUpCorrectArgs extends StreamsLayout, RouterArgs {
  /** Router logits [T, 4] f32 = W_r · RMSNorm_{w_r}(g) (residual-norm's projected out), before the 1/D scale and tanh. */
  router: GPUBuffer;
  /** x̂_0..x̂_3 from predict (read). */
  predicted: GPUBuffer;
  /** The layer output g [T, D] f32 (read). */
  activated: GPUBuffer;
  /** correction_coefs [4, 4] f32. */
  coefs: GPUBuffer;
  /** x̃_0..x̃_3 (written), same layout; may be the streams buffer that fed predict. */
  out: GPUBuffer;
  /** altup.correct_output_scale s [D] f32; with `scaledOut`, u = x̃_0 ⊙ s is written there ([T, D] f32). */
  outputScale?: GPUBuffer;
  scaledOut?: GPUBuffer;
}

export interface AltUpRescaleArgs extends StreamsLayout {
  /** Streams buffer holding the targets y_i (rescaled in place unless `mean` is given). */
  streams: GPUBuffer;
  /** First target stream (default 1) and how many (default 3, at most 3). */
  firstTarget?: number;
  targets?: number;
  /**
   * The reference rows [T, D] whose rms sets the magnitude: a separate buffer (element offset `refOffset`,
   * default 0), or omitted to use stream 0 of `streams`.
   */
  ref?: GPUBuffer;
  refOffset?: number;
  /** If given: write (ref + Σ rescaled y_i) / (1 + targets) here as [T, D] f32 and leave the streams alone. */
  mean?: GPUBuffer;
}

export interface PleCombineArgs {
  /** W_plmp · e as the matmul wrote it: [T, layers * dim] f32 (read). */
  proj: GPUBuffer;
  /** per_layer_projection_norm weight [dim] f32. */
  weight: GPUBuffer;
  /** z_tok [T, layers * dim] f32 (the gathered, ×16 PLE rows); overwritten with z. */
  z: GPUBuffer;
  tokens: number;
  layers: number;
  /** Default 256. */
  dim?: number;
  /** Applied to proj before the norm (default D^-1/2 with D = 2048: pass hidden**-0.5 for other models). */
  preScale?: number;
  eps?: number;
  /** Default 2^-1/2. */
  outScale?: number;
}

export type TokensDispatch = Dispatch & { setTokens(tokens: number): void };

/** AltUp stream kernels and the PLE combine (see shaders/altup.wgsl). f32 only: residual streams are always f32. */
export class AltUpKernel {
  /** Every buffer this kernel created for its dispatches (freed by destroy()). */
  private readonly arena: BufferArena;
  /** Stand-ins for unused bindings: one for read-only and one for writable slots (one buffer may not be both in a dispatch). */
  private readonly dummy: GPUBuffer;
  private readonly dummyW: GPUBuffer;

  private constructor(
    private readonly ctx: GpuContext,
    private readonly pipelines: Record<Entry, GPUComputePipeline>,
  ) {
    this.arena = new BufferArena(ctx.device);
    this.dummy = this.arena.placeholder('altup/unused');
    this.dummyW = this.arena.placeholder('altup/unused-w');
  }

  static async create(ctx: GpuContext): Promise<AltUpKernel> {
    const compiled = await Promise.all(ENTRIES.map((entryPoint) => getPipeline(ctx, { label: 'altup', source, libraries: [tanhLib, sumLib], entryPoint, constants: { WG } })));
    const pipelines = Object.fromEntries(ENTRIES.map((e, i) => [e, compiled[i]])) as Record<Entry, GPUComputePipeline>;
    return new AltUpKernel(ctx, pipelines);
  }

  private bindGroup(entry: Entry, buffers: GPUBuffer[]): GPUBindGroup {
    return this.ctx.device.createBindGroup({
      label: `altup/${entry}`,
      layout: this.pipelines[entry].getBindGroupLayout(0),
      entries: buffers.map((buffer, binding) => ({ binding, resource: { buffer } })),
    });
  }

  private need(what: string, buffer: GPUBuffer, floats: number) {
    if (buffer.size < floats * 4) throw new Error(`altup: ${what} holds ${buffer.size / 4} floats, needs ${floats}`);
  }

  private streamStride(l: StreamsLayout): number {
    const s = l.streamStride ?? l.tokens * l.dim;
    if (s < l.tokens * l.dim) throw new Error(`altup: streamStride ${s} < tokens * dim`);
    return s;
  }

  /** A dispatch whose params are rewritten by `write(tokens)` and whose grid comes from `grid(tokens)`. */
  private tokensDispatch(entry: Entry, bindGroup: GPUBindGroup, tokens: number, write: (tokens: number) => ArrayBuffer, gridFor: (tokens: number) => [number, number], params: GPUBuffer): TokensDispatch {
    let grid: [number, number] = [0, 1];
    const setTokens = (n: number) => {
      grid = gridFor(n);
      this.ctx.device.queue.writeBuffer(params, 0, write(n));
    };
    setTokens(tokens);
    return { ...makeDispatch(`altup/${entry}`, this.pipelines[entry], bindGroup, () => grid), setTokens };
  }

  private coefDispatch(entry: 'predict' | 'correct', args: StreamsLayout & RouterArgs, buffers: GPUBuffer[], hasU: boolean, checks: (n: number) => void, norm?: { eps: number; offset: number }): TokensDispatch {
    const { device } = this.ctx;
    const { dim } = args;
    const ss = this.streamStride(args);
    const params = this.arena.uniform(48, `altup/${entry}/params`);
    const data = new ArrayBuffer(48);
    const u = new Uint32Array(data), f = new Float32Array(data);
    const maxY = device.limits.maxComputeWorkgroupsPerDimension;
    return this.tokensDispatch(entry, this.bindGroup(entry, [params, ...buffers]), args.tokens, (n) => {
      if (n * dim > ss) throw new Error(`altup ${entry}: ${n} tokens exceed the stream stride`);
      if (n > maxY) throw new Error(`altup ${entry}: at most ${maxY} tokens per dispatch`);
      checks(n);
      u.set([n, dim, ss, args.coefClip !== undefined ? 1 : 0]);
      f[4] = args.routerScale ?? 1 / dim;
      f[5] = args.coefClip ?? 0;
      u[6] = hasU ? 1 : 0;
      f[7] = norm?.eps ?? 0;
      u[8] = norm?.offset ?? 0;
      return data;
    }, (n) => [entry === 'predict' ? 1 : Math.ceil(dim / WG), n], params);
  }

  /** r = W_r·RMSNorm(x_0), x̂_i = x_i + Σ_k c[4i+k] x_k with c = W_pred tanh(r / D), and n = RMSNorm_w(x̂_0). Grid (1, T). */
  bindPredict(args: AltUpPredictArgs): TokensDispatch {
    const { norm } = args;
    if (args.streams === args.out) throw new Error('altup predict: out must be another buffer');
    if (norm.out === args.out || norm.out === args.streams) throw new Error('altup predict: the norm goes to a buffer of its own');
    const ss = this.streamStride(args);
    const normAt = norm.offset ?? 0;
    this.need('coefs', args.coefs, 64);
    this.need('norm weight', norm.weight, args.dim);
    this.need('router table', args.routerTable, 5 * args.dim);
    return this.coefDispatch('predict', args, [args.streams, args.routerTable, args.coefs, args.out, norm.weight, norm.out], false, (n) => {
      this.need('streams', args.streams, 3 * ss + n * args.dim);
      this.need('out', args.out, 3 * ss + n * args.dim);
      this.need('norm out', norm.out, normAt + n * args.dim);
    }, { eps: norm.eps, offset: normAt });
  }

  /** x̃_i = x̂_i + (W_corr tanh(r' / D) + 1)_i (g − x̂_0); optionally u = x̃_0 ⊙ s. */
  bindCorrect(args: AltUpCorrectArgs): TokensDispatch {
    if (args.predicted === args.out) throw new Error('altup correct: out must be another buffer than predicted');
    if (!!args.outputScale !== !!args.scaledOut) throw new Error('altup correct: outputScale and scaledOut go together');
    const ss = this.streamStride(args);
    this.need('coefs', args.coefs, 16);
    if (args.outputScale) this.need('outputScale', args.outputScale, args.dim);
    const buffers = [args.predicted, args.router, args.coefs, args.activated, args.outputScale ?? this.dummy, args.out, args.scaledOut ?? this.dummyW];
    return this.coefDispatch('correct', args, buffers, !!args.scaledOut, (n) => {
      this.need('predicted', args.predicted, 3 * ss + n * args.dim);
      this.need('out', args.out, 3 * ss + n * args.dim);
      this.need('activated', args.activated, n * args.dim);
      this.need('router', args.router, n * 4);
      if (args.scaledOut) this.need('scaledOut', args.scaledOut, n * args.dim);
    });
  }

  /** y_i ← y_i · rms(ref) / sqrt(max(mean(y_i²), 1e-5)) per token (stream init §2.4), or the final mean of streams (§2.6). */
  bindRescale(args: AltUpRescaleArgs): TokensDispatch {
    const { device } = this.ctx;
    const { dim } = args;
    const ss = this.streamStride(args);
    const first = args.firstTarget ?? 1;
    const count = args.targets ?? 3;
    if (!(count >= 0 && count <= 3)) throw new Error('altup rescale: 0..3 targets');
    if (args.mean === args.streams || (args.mean && args.mean === args.ref)) throw new Error('altup rescale: mean must be its own buffer');
    if (args.ref === args.streams) throw new Error('altup rescale: omit ref to use stream 0 of streams');
    const refInY = !args.ref;
    const refOff = args.ref ? (args.refOffset ?? 0) : 0;
    if (refInY && first === 0) throw new Error('altup rescale: stream 0 is the reference, targets start at 1');
    const params = this.arena.uniform(48, 'altup/rescale/params');
    const bindGroup = this.bindGroup('rescale', [params, args.ref ?? this.dummy, args.streams, args.mean ?? this.dummyW]);
    const data = new Uint32Array(12);
    const maxPerDim = device.limits.maxComputeWorkgroupsPerDimension;
    return this.tokensDispatch('rescale', bindGroup, args.tokens, (n) => {
      if (n * dim > ss) throw new Error(`altup rescale: ${n} tokens exceed the stream stride`);
      this.need('streams', args.streams, (first + count - 1) * ss + n * dim);
      if (args.ref) this.need('ref', args.ref, refOff + n * dim);
      if (args.mean) this.need('mean', args.mean, n * dim);
      data.set([n, dim, ss, count, first, refOff, refInY ? 1 : 0, args.mean ? 1 : 0, grid2d(n, maxPerDim)[0]]);
      return data.buffer;
    }, (n) => grid2d(n, maxPerDim), params);
  }

  /** z[t, l] = (RMSNorm_w(preScale · proj[t, l]) + z[t, l]) · outScale for every 256-slice (§2.3); z in place. */
  bindPleCombine(args: PleCombineArgs): TokensDispatch {
    const { device } = this.ctx;
    const dim = args.dim ?? 256;
    this.need('weight', args.weight, dim);
    const params = this.arena.uniform(32, 'altup/ple_combine/params');
    const bindGroup = this.bindGroup('ple_combine', [params, args.proj, args.weight, args.z]);
    const data = new ArrayBuffer(32);
    const u = new Uint32Array(data), f = new Float32Array(data);
    const maxPerDim = device.limits.maxComputeWorkgroupsPerDimension;
    return this.tokensDispatch('ple_combine', bindGroup, args.tokens, (n) => {
      const rows = n * args.layers;
      this.need('proj', args.proj, rows * dim);
      this.need('z', args.z, rows * dim);
      u[0] = rows;
      u[1] = dim;
      f[2] = args.preScale ?? 2048 ** -0.5;
      f[3] = args.eps ?? 1e-6;
      f[4] = args.outScale ?? Math.SQRT1_2;
      u[5] = grid2d(rows, maxPerDim)[0];
      return data;
    }, (n) => grid2d(n * args.layers, maxPerDim), params);
  }

  /** Bytes of the GPU buffers this kernel created (a model's memory() counts them). */
  get gpuBytes(): number {
    return this.arena.bytes;
  }

  /** Frees the buffers this kernel created (its dispatches must not be encoded afterwards). */
  destroy(): void {
    this.arena.destroy();
  }
}
