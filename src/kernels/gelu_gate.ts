import source from '../../shaders/gelu_gate.wgsl?raw';
import geluLib from '../../shaders/lib/gelu-tanh.wgsl?raw';
import type { GpuContext } from '../gpu/device.ts';
import { BufferArena } from '../gpu/buffers.ts';
import { bindBuffers, getPipeline, grid2d, makeDispatch, type ActType, type Dispatch } from '../gpu/pipeline.ts';
import type { Operand } from './elementwise.ts';
import { inverseNormalCdf } from '../math/normal.ts';

const WG = 256;

export interface GeluGateArgs {
  /** Gate pre-activations γ, act_t; element (t, j) at offset + t * rowStride + j. */
  gate: Operand | GPUBuffer;
  /** Up projection, act_t. May be the same buffer as `gate` (fused [T, 2F]: gate offset 0, up offset F, strides 2F). */
  up: Operand | GPUBuffer;
  /** Output [T, F] act_t (or a strided view); must not be the gate/up buffer. */
  y: Operand | GPUBuffer;
  rows: number;
  /** F, the intermediate size (the statistics run over all of it). */
  cols: number;
  /**
   * Activation sparsity target p (0.95 in Gemma 3n's layers 0..9), or 0 / undefined for a dense layer.
   * κ = inverseNormalCdf(p) is computed here.
   */
  sparsity?: number;
}

function asOperand(x: Operand | GPUBuffer): Operand {
  return 'buffer' in x ? x : { buffer: x };
}

/** y = gelu_tanh(γ') ⊙ up with Gemma 3n's Gaussian top-k sparsity (see shaders/gelu_gate.wgsl). */
export class GeluGateKernel {
  /** Every buffer this kernel created for its dispatches (freed by destroy()). */
  private readonly arena: BufferArena;

  private constructor(
    private readonly ctx: GpuContext,
    private readonly pipeline: GPUComputePipeline,
    private readonly elemBytes: number,
  ) {
    this.arena = new BufferArena(ctx.device);
  }

  static async create(ctx: GpuContext, act: ActType = 'f32'): Promise<GeluGateKernel> {
    const pipeline = await getPipeline(ctx, { label: 'gelu_gate', source, libraries: [geluLib], act, constants: { WG } });
    return new GeluGateKernel(ctx, pipeline, act === 'f16' ? 2 : 4);
  }

  bind(args: GeluGateArgs): Dispatch & { setRows(rows: number): void } {
    const { device } = this.ctx;
    const { cols } = args;
    if (!(cols > 0)) throw new Error(`gelu_gate: bad cols ${cols}`);
    const g = asOperand(args.gate), u = asOperand(args.up), y = asOperand(args.y);
    if (y.buffer === g.buffer || y.buffer === u.buffer) throw new Error('gelu_gate: y must not alias gate/up');
    const sparse = args.sparsity !== undefined && args.sparsity > 0;
    const kappa = sparse ? inverseNormalCdf(args.sparsity!) : 0;
    const views: Array<[string, Operand]> = [['gate', g], ['up', u], ['y', y]];
    const offs = views.map(([, o]) => o.offset ?? 0);
    const strides = views.map(([name, o]) => {
      const s = o.rowStride ?? cols;
      if (s < cols) throw new Error(`gelu_gate: ${name}.rowStride ${s} < cols ${cols}`);
      return s;
    });
    const params = this.arena.uniform(48, 'gelu_gate/params');
    const bindGroup = bindBuffers(device, this.pipeline, [params, g.buffer, u.buffer, y.buffer], 'gelu_gate');
    const maxPerDim = device.limits.maxComputeWorkgroupsPerDimension;
    const data = new ArrayBuffer(48);
    const w = new Uint32Array(data);
    const f = new Float32Array(data);
    let grid: [number, number] = [0, 1];
    const setRows = (rows: number) => {
      views.forEach(([name, o], i) => {
        const end = offs[i] + (rows - 1) * strides[i] + cols;
        if (rows > 0 && end * this.elemBytes > o.buffer.size) throw new Error(`gelu_gate: ${name} too small for ${rows} rows`);
      });
      grid = grid2d(rows, maxPerDim);
      w.set([rows, cols, offs[0], strides[0], offs[1], strides[1], offs[2], strides[2], sparse ? 1 : 0]);
      f[9] = kappa;
      w[10] = grid[0];
      device.queue.writeBuffer(params, 0, data);
    };
    setRows(args.rows);
    return { ...makeDispatch('gelu_gate', this.pipeline, bindGroup, () => grid), setRows };
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
