import source from '../../shaders/gelu_gate.wgsl?raw';
import type { GpuContext } from '../gpu/device.ts';
import { createUniformBuffer } from '../gpu/buffers.ts';
import { bindBuffers, getPipeline, grid2d, makeDispatch, type ActType, type Dispatch } from '../gpu/pipeline.ts';
import type { Operand } from './elementwise.ts';

const WG = 256;

/** erf in double: 2/sqrt(pi) e^(-x^2) sum_n 2^n x^(2n+1) / (1*3*...*(2n+1)), all terms positive (no cancellation). */
function erf64(x: number): number {
  const ax = Math.abs(x);
  if (ax >= 6) return Math.sign(x);
  let term = ax;
  let sum = ax;
  const x2 = ax * ax;
  for (let n = 1; n < 500 && term > sum * 1e-17; n++) {
    term *= (2 * x2) / (2 * n + 1);
    sum += term;
  }
  return Math.sign(x) * (2 / Math.sqrt(Math.PI)) * Math.exp(-x2) * sum;
}

/** erfinv in double: Giles' single-precision approximation, then Newton steps on erf64. */
function erfinv64(x: number): number {
  if (x <= -1) return -Infinity;
  if (x >= 1) return Infinity;
  let w = -Math.log((1 - x) * (1 + x));
  let p: number;
  if (w < 5) {
    w -= 2.5;
    p = 2.81022636e-8;
    for (const c of [3.43273939e-7, -3.5233877e-6, -4.39150654e-6, 0.00021858087, -0.00125372503, -0.00417768164, 0.246640727, 1.50140941]) p = c + p * w;
  } else {
    w = Math.sqrt(w) - 3;
    p = -0.000200214257;
    for (const c of [0.000100950558, 0.00134934322, -0.00367342844, 0.00573950773, -0.0076224613, 0.00943887047, 1.00167406, 2.83297682]) p = c + p * w;
  }
  let y = p * x;
  for (let i = 0; i < 3; i++) y -= (erf64(y) - x) / ((2 / Math.sqrt(Math.PI)) * Math.exp(-y * y));
  return y;
}

/**
 * Φ⁻¹(p) as torch's `Normal(0, 1).icdf(torch.tensor(p, dtype=float32))` computes it: every step in f32,
 * `erfinv(2p - 1) * sqrt(2)` (with an accurately rounded erfinv). Φ⁻¹(0.95) = 1.6448536 (f32); llama.cpp's
 * hard-coded 1.6448533535 differs in the 7th digit. p = 0 gives -Infinity (GGUF's value for dense layers).
 */
export function inverseNormalCdf(p: number): number {
  const f = Math.fround;
  const x = f(f(2 * f(p)) - 1);
  return f(f(erfinv64(x)) * Math.SQRT2);
}

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
  private constructor(
    private readonly ctx: GpuContext,
    private readonly pipeline: GPUComputePipeline,
    private readonly elemBytes: number,
  ) {}

  static async create(ctx: GpuContext, act: ActType = 'f32'): Promise<GeluGateKernel> {
    const pipeline = await getPipeline(ctx, { label: 'gelu_gate', source, act, constants: { WG } });
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
    const params = createUniformBuffer(device, 48, 'gelu_gate/params');
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
}
