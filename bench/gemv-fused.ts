/**
 * The decode GEMV fusions at Gemma 3n E2B shapes (src/model/fused-gemv.ts), each against the dispatches it replaces,
 * in the same run, with f32 and int8 activations (q4k MLP / attention weights and q8 PLE gate, the Q4_K_M plan's):
 *   - MLP, dense layer: gate, up (2048 -> 8192 each) and gelu_gate (3 dispatches) vs one GEMV with the gelu epilogue;
 *   - MLP, sparse layer: the same with gate+up in one GEMV and gelu_gate apart (2);
 *   - q, k (2048 -> 2048, 2048 -> 512): two GEMVs vs one;
 *   - PLE gate (2048 -> 256) and its gelu_gate vs one GEMV with the vector epilogue;
 * and the single GEMV 2048 -> 8192 (whose shader gained the second-matrix code: compare with main's by running this
 * file there, which prints the single rows only).
 * Timing: bench/time-dispatch.ts (timestamps or wall clock; medians). On SwiftShader the GEMVs are ALU-bound and the
 * machine is shared: read ratios within one run.
 * Usage: node --import ./scripts/register.mjs bench/gemv-fused.ts [--reps N] [--iters N] [--single (the single GEMV rows only)]
 */
import { createNodeGpuContext } from '../src/node/gpu.ts';
import { createStorageBuffer } from '../src/gpu/buffers.ts';
import type { Dispatch } from '../src/gpu/pipeline.ts';
import { MatmulKernel } from '../src/kernels/matmul.ts';
import { GeluGateKernel } from '../src/kernels/gelu_gate.ts';
import { createRandomWeight } from '../src/kernels/upload-weight.ts';
import type { WeightFormat } from '../src/formats/weight-format.ts';
import { timeDispatch } from './time-dispatch.ts';

const argNum = (name: string, d: number) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : d;
};
const reps = argNum('reps', 5), iters = argNum('iters', 5);
const ctx = await createNodeGpuContext();
console.log(`adapter: ${ctx.adapterName}; timestamps: ${ctx.timestamps}; ${reps} calls x ${iters} iterations (medians)`);
const D = 2048, F = 8192, Q = 2048, KV = 512, P = 256;
const weight = (rows: number, cols: number, format: WeightFormat, seed: number) => createRandomWeight(ctx, { rows, cols, format, seed, std: 0.02, codes: true });
const [gate, up, wq, wk, pleGate] = await Promise.all([weight(F, D, 'q4k', 1), weight(F, D, 'q4k', 2), weight(Q, D, 'q4k', 3), weight(KV, D, 'q4k', 4), weight(P, D, 'q8', 5)]);
const buf = (floats: number, label: string) => createStorageBuffer(ctx.device, floats * 4, label);
const x = buf(D, 'x'), g = buf(F, 'gate'), u = buf(F, 'up'), act = buf(F, 'act'), q = buf(Q, 'q'), k = buf(KV, 'k');
const ple = buf(P, 'ple'), pg = buf(P, 'ple-gate'), pa = buf(P, 'ple-act');
const gelu = await GeluGateKernel.create(ctx, 'f32');
const fusedApi = 'canShare' in MatmulKernel.prototype;

async function row(name: string, ds: Dispatch[]): Promise<number> {
  const r = await timeDispatch(ctx, (pass) => ds.forEach((d) => d.encode(pass)), reps, iters);
  console.log(`  ${name}: ${r.ms.toFixed(2)} ms (${r.timing})`);
  return r.ms;
}

for (const activations of ['f32', 'int8'] as const) {
  const mm = await MatmulKernel.create(ctx, 'f32', ['q4k', 'q8'], { activations });
  console.log(`${activations} activations:`);
  const one = (w: typeof gate, y: GPUBuffer) => mm.bind({ x, weight: w, y, rows: 1 });
  const single = one(gate, g);
  await row(`single GEMV q4k ${D}->${F}`, [single]);
  if (!fusedApi || process.argv.includes('--single')) continue;
  const dense = gelu.bind({ gate: g, up: u, y: act, rows: 1, cols: F });
  const sparse = gelu.bind({ gate: g, up: u, y: act, rows: 1, cols: F, sparsity: 0.95 });
  const upAlone = one(up, u);
  const a = await row('MLP dense, before: gate, up, gelu_gate (3)', [single, upAlone, dense]);
  const b = await row('MLP dense, after: gate+up+gelu (1)', [mm.bind({ x, weight: gate, y: g, rows: 1, also: { weight: up, y: u }, gelu: { y: act } })]);
  const c = await row('MLP sparse, before: gate, up, gelu_gate sparse (3)', [single, upAlone, sparse]);
  const d = await row('MLP sparse, after: gate+up, gelu_gate sparse (2)', [mm.bind({ x, weight: gate, y: g, rows: 1, also: { weight: up, y: u } }), sparse]);
  const qAlone = one(wq, q);
  const e = await row('q, k before (2)', [qAlone, one(wk, k)]);
  const f = await row('q+k after (1)', [mm.bind({ x, weight: wq, y: q, rows: 1, also: { weight: wk, y: k } })]);
  const pAlone = one(pleGate, pg);
  const h = await row('PLE gate before: gate, gelu_gate (2)', [pAlone, gelu.bind({ gate: pg, up: ple, y: pa, rows: 1, cols: P })]);
  const i = await row('PLE gate after (1)', [mm.bind({ x, weight: pleGate, y: pg, rows: 1, gelu: { y: pa, mul: { buffer: ple, rowStride: P } } })]);
  console.log(`  after / before: MLP dense ${(b / a).toFixed(2)}, sparse ${(d / c).toFixed(2)}, q+k ${(f / e).toFixed(2)}, PLE gate ${(i / h).toFixed(2)}`);
  mm.destroy();
}
process.exit(0);
