import tanhLib from '../../shaders/lib/tanh.wgsl?raw';
import source from '../../shaders/elementwise.wgsl?raw';
import type { GpuContext } from '../gpu/device.ts';
import { BufferArena } from '../gpu/buffers.ts';
import { getPipeline, grid2d, makeDispatch, type ActType, type Dispatch } from '../gpu/pipeline.ts';

const WG = 256;

/**
 * - `add`:     y = a + b
 * - `axpy`:    y = a + alpha * b
 * - `lincomb`: y = alpha * a + beta * b
 * - `scale`:   y = alpha * a
 * - `copy`:    y = a (bit-exact for finite values)
 * - `mulRow`:  y = alpha * a ⊙ w   (w f32 [cols], broadcast over rows; alpha defaults to 1)
 * - `softcap`: y = alpha * tanh(a / alpha)   (alpha = the cap, e.g. 30 for Gemma 3n's logits)
 * - `silu`:    y = a * sigmoid(a)            (the audio conformer's feed-forward activation)
 */
export type ElementwiseOp = 'add' | 'axpy' | 'lincomb' | 'scale' | 'copy' | 'mulRow' | 'softcap' | 'silu';

/** A rows x cols view of a buffer: element (r, c) at `offset + r * rowStride + c` (elements of act_t). */
export interface Operand {
  buffer: GPUBuffer;
  /** Element offset (default 0). */
  offset?: number;
  /** Elements between rows (default cols). */
  rowStride?: number;
}

export interface ElementwiseArgs {
  op: ElementwiseOp;
  /** First input. May be the output buffer itself (in place): then regions must be identical or disjoint. */
  a: Operand | GPUBuffer;
  /** Second input (add, axpy, lincomb). May also be the output buffer. */
  b?: Operand | GPUBuffer;
  /** Row-broadcast vector, f32 [cols] (mulRow). */
  w?: GPUBuffer;
  y: Operand | GPUBuffer;
  rows: number;
  cols: number;
  /** See ElementwiseOp (axpy's s, scale's s, mulRow's optional s, softcap's cap, lincomb's alpha). */
  alpha?: number;
  /** lincomb's beta. */
  beta?: number;
}

export type ElementwiseDispatch = Dispatch & {
  /** Changes the row count (e.g. T) for later encodes. */
  setRows(rows: number): void;
  /** Changes alpha (and beta) for later encodes. */
  setScalars(alpha: number, beta?: number): void;
};

const OP_CODE: Record<ElementwiseOp, number> = { add: 0, axpy: 0, lincomb: 0, scale: 1, copy: 1, mulRow: 2, softcap: 3, silu: 4 };

function asOperand(x: Operand | GPUBuffer): Operand {
  return 'buffer' in x ? x : { buffer: x };
}

/** Elementwise ops (see shaders/elementwise.wgsl). One instance per activation type; all op variants compiled up front. */
export class ElementwiseKernel {
  /** Every buffer this kernel created for its dispatches (freed by destroy()). */
  private readonly arena: BufferArena;
  /** The stand-in for unused bindings. */
  private readonly dummy: GPUBuffer;

  private constructor(
    private readonly ctx: GpuContext,
    private readonly pipelines: Map<string, GPUComputePipeline>,
    private readonly elemBytes: number,
  ) {
    this.arena = new BufferArena(ctx.device);
    this.dummy = this.arena.placeholder('elementwise/unused');
  }

  static async create(ctx: GpuContext, act: ActType = 'f32'): Promise<ElementwiseKernel> {
    const variants: Array<[number, boolean, boolean]> = [];
    for (const op of [0, 1, 2, 3, 4]) {
      for (const aInY of [false, true]) for (const bInY of op === 0 ? [false, true] : [false]) variants.push([op, aInY, bInY]);
    }
    const pipelines = new Map<string, GPUComputePipeline>();
    await Promise.all(
      variants.map(async ([op, aInY, bInY]) => {
        const pipeline = await getPipeline(ctx, { label: 'elementwise', source, libraries: [tanhLib], act, constants: { OP: op, A_IN_Y: aInY ? 1 : 0, B_IN_Y: bInY ? 1 : 0, WG } });
        pipelines.set(`${op}/${aInY}/${bInY}`, pipeline);
      }),
    );
    return new ElementwiseKernel(ctx, pipelines, act === 'f16' ? 2 : 4);
  }

  bind(args: ElementwiseArgs): ElementwiseDispatch {
    const { device } = this.ctx;
    const { op, cols } = args;
    const code = OP_CODE[op];
    if (code === undefined) throw new Error(`elementwise: unknown op ${op}`);
    if (!(cols > 0)) throw new Error(`elementwise: bad cols ${cols}`);
    const a = asOperand(args.a);
    const y = asOperand(args.y);
    const needsB = code === 0;
    const b = args.b ? asOperand(args.b) : undefined;
    if (needsB && !b) throw new Error(`elementwise ${op}: b is required`);
    if (op === 'mulRow' && !args.w) throw new Error('elementwise mulRow: w is required');
    if (op === 'mulRow' && args.w!.size < cols * 4) throw new Error('elementwise mulRow: w is shorter than cols');
    const aInY = a.buffer === y.buffer;
    const bInY = needsB && b!.buffer === y.buffer;
    const pipeline = this.pipelines.get(`${code}/${aInY}/${bInY}`)!;
    const ops: Array<[string, Operand | undefined]> = [['a', a], ['b', needsB ? b : undefined], ['y', y]];
    const strides = ops.map(([, o]) => o?.rowStride ?? cols);
    const offsets = ops.map(([, o]) => o?.offset ?? 0);
    strides.forEach((s, i) => {
      if (ops[i][1] && s < cols) throw new Error(`elementwise ${op}: ${ops[i][0]}.rowStride ${s} < cols ${cols}`);
    });
    const params = this.arena.uniform(48, `elementwise/${op}/params`);
    const buffers = [params, aInY ? this.dummy : a.buffer, needsB && !bInY ? b!.buffer : this.dummy, op === 'mulRow' ? args.w! : this.dummy, y.buffer];
    const bindGroup = device.createBindGroup({
      label: `elementwise/${op}`,
      layout: pipeline.getBindGroupLayout(0),
      entries: buffers.map((buffer, binding) => ({ binding, resource: { buffer } })),
    });
    const maxPerDim = device.limits.maxComputeWorkgroupsPerDimension;
    const data = new ArrayBuffer(48);
    const u = new Uint32Array(data);
    const f = new Float32Array(data);
    let grid: [number, number] = [0, 1];
    let alpha = op === 'copy' || op === 'add' || op === 'silu' ? 1 : args.alpha ?? (op === 'softcap' || op === 'lincomb' ? NaN : 1);
    let beta = op === 'add' ? 1 : op === 'lincomb' ? args.beta ?? NaN : 0;
    if (op === 'axpy') [alpha, beta] = [1, args.alpha ?? NaN];
    if (Number.isNaN(alpha) || Number.isNaN(beta)) throw new Error(`elementwise ${op}: alpha${op === 'lincomb' ? ' and beta are' : ' is'} required`);
    let rows = args.rows;
    const write = () => {
      for (let i = 0; i < ops.length; i++) {
        const [name, o] = ops[i];
        if (!o || rows === 0) continue;
        const end = offsets[i] + (rows - 1) * strides[i] + cols;
        if (end * this.elemBytes > o.buffer.size) throw new Error(`elementwise ${op}: ${name} needs ${end} elements, buffer holds ${o.buffer.size / this.elemBytes}`);
      }
      grid = grid2d(Math.ceil((rows * cols) / WG), maxPerDim);
      u.set([rows, cols, offsets[0], strides[0], offsets[1], strides[1], offsets[2], strides[2]]);
      f[8] = alpha;
      f[9] = beta;
      u[10] = grid[0];
      device.queue.writeBuffer(params, 0, data);
    };
    write();
    const setRows = (n: number) => {
      rows = n;
      write();
    };
    const setScalars = (s: number, t?: number) => {
      if (op === 'add' || op === 'copy' || op === 'silu') throw new Error(`elementwise ${op}: has no scalars`);
      if (op === 'axpy') beta = s;
      else {
        alpha = s;
        if (t !== undefined) beta = t;
      }
      write();
    };
    return { ...makeDispatch(`elementwise/${op}`, pipeline, bindGroup, () => grid), setRows, setScalars };
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
