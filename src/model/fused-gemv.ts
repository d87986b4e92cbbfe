/**
 * The decode step's GEMV fusions, family-neutral (Gemma 3n and Gemma 4 record their layers through these): two
 * projections of one input in one GEMV dispatch (MatmulArgs.also), and the gated projections
 * gelu_tanh(W_gate x) ⊙ (W_up x | m) written by the GEMV itself (MatmulArgs.gelu), so a dense gated MLP's gate, up
 * and gelu are one dispatch and a per-layer-input gate's two are one. Where the kernel cannot fuse (formats or K
 * differ, a weight split in parts) or the step is a prefill chunk (the GEMM path), the same results come from
 * separate dispatches: the gelu_gate kernel then runs (it is recorded always and encodes nothing while the GEMV
 * applies the gate). Activation sparsity (Gemma 3n's first layers: a cutoff from the gate row's mean and standard
 * deviation) needs the whole gate row first: those layers fuse gate and up only and keep the gelu_gate dispatch.
 */
import type { GpuWeight } from '../formats/weight-format.ts';
import type { Operand } from '../kernels/elementwise.ts';
import type { GeluGateKernel } from '../kernels/gelu_gate.ts';
import type { MatmulDispatch, MatmulKernel } from '../kernels/matmul.ts';
import type { Op } from './step-recorder.ts';

/** An input row block [T, K] of a GEMV (x at element `offset`). */
export interface GemvInput {
  buffer: GPUBuffer;
  offset?: number;
}

/** One projection's output: `weight` applied to the input into `y` [T, rows] from element `offset`. */
export interface Projection {
  weight: GpuWeight;
  y: GPUBuffer;
  offset?: number;
}

function record(ops: Op[], d: MatmulDispatch): MatmulDispatch {
  ops.push({ d, rows: (T) => d.setRows(T) });
  return d;
}

/** a.weight·x into a.y and b.weight·x into b.y: one GEMV dispatch when the kernel can share them, else two. Returns the first dispatch. */
export function projectPair(mm: MatmulKernel, ops: Op[], x: GemvInput, a: Projection, b: Projection): MatmulDispatch {
  const base = { x: x.buffer, xOffset: x.offset, rows: 1 };
  if (mm.canShare(a.weight, b.weight)) {
    return record(ops, mm.bind({ ...base, weight: a.weight, y: a.y, yOffset: a.offset, also: { weight: b.weight, y: b.y, yOffset: b.offset } }));
  }
  const first = record(ops, mm.bind({ ...base, weight: a.weight, y: a.y, yOffset: a.offset }));
  record(ops, mm.bind({ ...base, weight: b.weight, y: b.y, yOffset: b.offset }));
  return first;
}

export interface GatedProjection {
  /** W_gate and its output γ = W_gate x [T, cols] (written unless the GEMV applies the gate). */
  gate: Projection;
  /** The multiplier: W_up x (a projection of the same input) or a given row block m [T, cols] (`rowStride` apart). */
  up: Projection | { mul: Operand & { rowStride: number } };
  /** y = gelu_tanh(γ') ⊙ up [T, cols]. */
  y: Operand;
  cols: number;
  /** Gemma 3n's activation sparsity target of this layer (0 / undefined: dense). */
  sparsity?: number;
}

/** Records y = gelu_tanh(W_gate x) ⊙ up (see the header) and returns the gate's GEMV dispatch. */
export function projectGated(mm: MatmulKernel, gelu: GeluGateKernel, ops: Op[], x: GemvInput, g: GatedProjection): MatmulDispatch {
  const sparse = (g.sparsity ?? 0) > 0;
  const base = { x: x.buffer, xOffset: x.offset, rows: 1, weight: g.gate.weight, y: g.gate.y, yOffset: g.gate.offset };
  const gateOut: Operand = { buffer: g.gate.y, offset: g.gate.offset, rowStride: g.cols };
  const geluOut = { y: g.y.buffer, yOffset: g.y.offset, rowStride: g.y.rowStride };
  let fused: MatmulDispatch;
  let upOperand: Operand;
  if ('mul' in g.up) {
    upOperand = g.up.mul;
    fused = record(ops, g.gate.weight.parts.length === 1 ? mm.bind({ ...base, gelu: { ...geluOut, mul: { ...g.up.mul } } }) : mm.bind(base));
  } else {
    const up = g.up;
    upOperand = { buffer: up.y, offset: up.offset, rowStride: g.cols };
    fused = mm.canShare(g.gate.weight, up.weight)
      ? record(ops, mm.bind({ ...base, also: { weight: up.weight, y: up.y, yOffset: up.offset }, gelu: sparse ? undefined : geluOut }))
      : projectPair(mm, ops, x, g.gate, up); // two dispatches: the gate and up outputs, gated by gelu_gate below
  }
  const gg = gelu.bind({ gate: gateOut, up: upOperand, y: g.y, rows: 1, cols: g.cols, sparsity: g.sparsity });
  // Runs where the GEMV did not gate (prefill, or no fusion): `fused`'s rows callback runs first and sets its path.
  ops.push({ d: gg, rows: (T) => gg.setRows(fused.fusedEpilogue ? 0 : T) });
  return fused;
}
