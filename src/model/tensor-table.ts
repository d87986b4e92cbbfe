/**
 * A model family's tensor table: one typed structure of tensor descriptors (a field per tensor the forward pass
 * uses, arrays for per-layer ones) from which everything else is derived, so the list of tensors is written once:
 * loading (`loadTable`, preserving the structure, so the forward pass reads `w.layers[l].q`), the tensor count for
 * progress (`tableSpecs(...).length`), the GPU formats used (to compile only those kernels) and destruction
 * (`destroyLoaded`).
 */
import type { GpuWeight, WeightFormat } from '../formats/weight-format.ts';
import { destroyWeight } from '../kernels/upload-weight.ts';

/** A matrix [rows, cols] (PyTorch order: out features × in features), uploaded in a GPU weight format. */
export interface MatrixSpec {
  readonly kind: 'matrix';
  readonly name: string;
  readonly shape: readonly [number, number];
}

/** A small f32 vector (norm weights, scales, coefficients), optionally transformed after reading. */
export interface VectorSpec {
  readonly kind: 'vector';
  readonly name: string;
  readonly length: number;
  readonly transform?: (v: Float32Array) => Float32Array;
}

export type TensorSpec = MatrixSpec | VectorSpec;

export function matrix(name: string, rows: number, cols: number): MatrixSpec {
  return { kind: 'matrix', name, shape: [rows, cols] };
}

export function vector(name: string, length: number, transform?: (v: Float32Array) => Float32Array): VectorSpec {
  return { kind: 'vector', name, length, transform };
}

/** The loaded counterpart of a table: matrices become GpuWeights, vectors GPU buffers, structure kept. */
export type Loaded<T> = T extends MatrixSpec
  ? GpuWeight
  : T extends VectorSpec
    ? GPUBuffer
    : T extends undefined
      ? undefined
      : T extends readonly (infer U)[]
        ? Loaded<U>[]
        : { -readonly [K in keyof T]: Loaded<T[K]> };

function isSpec(x: unknown): x is TensorSpec {
  return typeof x === 'object' && x !== null && ((x as TensorSpec).kind === 'matrix' || (x as TensorSpec).kind === 'vector') && typeof (x as TensorSpec).name === 'string';
}

/** Every descriptor of a table, in field order (layers in order): the load order and the tensor count. */
export function tableSpecs(table: unknown): TensorSpec[] {
  if (table === undefined || table === null) return [];
  if (isSpec(table)) return [table];
  if (Array.isArray(table)) return table.flatMap(tableSpecs);
  if (typeof table === 'object') return Object.values(table).flatMap(tableSpecs);
  return [];
}

/** Loads every descriptor of `table` in order with `load`, keeping the table's structure. */
export async function loadTable<T>(table: T, load: (spec: TensorSpec) => Promise<GpuWeight | GPUBuffer>): Promise<Loaded<T>> {
  const done: Array<GpuWeight | GPUBuffer> = [];
  const walk = async (node: unknown): Promise<unknown> => {
    if (node === undefined || node === null) return node;
    if (isSpec(node)) {
      const leaf = await load(node);
      done.push(leaf);
      return leaf;
    }
    if (Array.isArray(node)) {
      const out: unknown[] = [];
      for (const item of node) out.push(await walk(item));
      return out;
    }
    const out: Record<string, unknown> = {};
    for (const [key, value] of Object.entries(node as Record<string, unknown>)) out[key] = await walk(value);
    return out;
  };
  try {
    return (await walk(table)) as Loaded<T>;
  } catch (err) {
    destroyLoaded(done); // a failed or aborted load keeps nothing on the GPU
    throw err;
  }
}

function isGpuWeight(x: unknown): x is GpuWeight {
  return typeof x === 'object' && x !== null && Array.isArray((x as GpuWeight).parts) && typeof (x as GpuWeight).format === 'string';
}

function isGpuBuffer(x: unknown): x is GPUBuffer {
  return typeof x === 'object' && x !== null && typeof (x as GPUBuffer).destroy === 'function' && typeof (x as GPUBuffer).size === 'number';
}

function loadedLeaves(node: unknown, out: Array<GpuWeight | GPUBuffer>): void {
  if (node === undefined || node === null || typeof node !== 'object' || ArrayBuffer.isView(node)) return;
  if (isGpuWeight(node) || isGpuBuffer(node)) {
    out.push(node);
    return;
  }
  for (const value of Array.isArray(node) ? node : Object.values(node)) loadedLeaves(value, out);
}

/** The weight formats of every loaded matrix (the matmul kernel compiles only these). */
export function loadedFormats(loaded: unknown): WeightFormat[] {
  const leaves: Array<GpuWeight | GPUBuffer> = [];
  loadedLeaves(loaded, leaves);
  return [...new Set(leaves.filter(isGpuWeight).map((w) => w.format))];
}

/** Frees every GPU buffer of a loaded table (or of a partly loaded one). */
export function destroyLoaded(loaded: unknown): void {
  const leaves: Array<GpuWeight | GPUBuffer> = [];
  loadedLeaves(loaded, leaves);
  for (const leaf of leaves) {
    if (isGpuWeight(leaf)) destroyWeight(leaf);
    else leaf.destroy();
  }
}
