/**
 * Reads a family's tensors from a Checkpoint onto the GPU, one descriptor of its tensor table at a time
 * (src/model/tensor-table.ts `loadTable`), the same way for every family: a matrix in the format its plan picks (or a
 * GGUF's / the offline cache's own blocks, repacked losslessly: src/formats/stored-dtype.ts), streamed by rows (upload-weight.ts `weightFromCheckpoint`); a
 * small f32 vector (norms, scales) read exactly; each converted tensor handed to the offline cache's writer
 * (`onConverted`), progress counted, the AbortSignal checked between tensors. With `random`, matrices are drawn on
 * the GPU (memory accounting at real size) and nothing is read.
 */
import type { GpuContext } from '../gpu/device.ts';
import { uploadBuffer } from '../gpu/buffers.ts';
import { GemmaError } from '../errors.ts';
import { readF32, requireTensor, type Checkpoint, type PlannedRead } from '../io/checkpoint.ts';
import { createRandomWeight, weightFromCheckpoint } from '../kernels/upload-weight.ts';
import type { GpuWeight } from '../formats/weight-format.ts';
import type { ConvertedTensor } from './converted-tensor.ts';
import type { WeightMode } from './family.ts';
import type { StoredFormat } from './stored-format.ts';
import type { TensorSpec } from './tensor-table.ts';

export interface TensorLoaderOptions {
  mode: WeightMode;
  /** Sees each converted tensor once, in load order; awaited (so a slow consumer bounds memory, not grows it). */
  onConverted?: (t: ConvertedTensor) => Promise<void>;
  /** Progress as (tensors done, tensors total). */
  onTensor?: (done: number, total: number) => void;
  /** Synthetic weights: matrices drawn on the GPU, vectors from `randomVector`; no tensor is read. */
  random?: boolean;
  /** Checked after every tensor: an aborted load rejects with GemmaError('aborted'). */
  signal?: AbortSignal;
}

export interface TensorLoaderPlan {
  /** The GPU format of a matrix [rows, cols] stored as `dtype` (undefined for random weights). */
  formatOf(name: string, dtype: string | undefined, shape: readonly [number, number]): StoredFormat;
  /** Host values of a vector for random weights (default all ones: norm weights and scales). */
  randomVector?(name: string, length: number): Float32Array;
}

export class TensorLoader {
  /** GPU bytes of everything loaded so far. */
  gpuBytes = 0;
  private done = 0;
  private seed = 1;

  constructor(
    private readonly ctx: GpuContext,
    private readonly ckpt: Checkpoint,
    private readonly opts: TensorLoaderOptions,
    private readonly plan: TensorLoaderPlan,
    /** Tensors this load reports in all (the table's plus any the family loads itself). */
    readonly total: number,
  ) {}

  /**
   * Announces every tensor this load will read, in order, before the first (Checkpoint.willRead: the checkpoint then
   * fetches them in a few large windows and counts the download); nothing for random weights, which read none.
   */
  willRead(reads: readonly PlannedRead[]): void {
    if (!this.opts.random) this.ckpt.willRead?.(reads);
  }

  /** Counts one tensor done (and checks the AbortSignal). */
  tick(): void {
    if (this.opts.signal?.aborted) throw new GemmaError('aborted', `Loading ${this.ckpt.name} was aborted.`);
    this.opts.onTensor?.(++this.done, this.total);
  }

  /** One descriptor of a tensor table (the `load` callback of loadTable). */
  load = (spec: TensorSpec): Promise<GpuWeight | GPUBuffer> => (spec.kind === 'matrix' ? this.matrix(spec.name, ...spec.shape) : this.vector(spec.name, spec.length, spec.transform));

  /** A matrix [rows, cols] in the plan's (or the file's) format. */
  async matrix(name: string, rows: number, cols: number): Promise<GpuWeight> {
    const { ctx, ckpt, opts } = this;
    const format = this.plan.formatOf(name, ckpt.tensor(name)?.dtype, [rows, cols]);
    let w: GpuWeight;
    if (opts.random) {
      // Quantized formats: uniform codes written straight into the layout (codes: true), seconds for a whole real-size model on
      // SwiftShader where drawing normals and quantizing took minutes per layer. std 1/√cols: unit-variance inputs
      // give unit-variance outputs, so tens of layers of random weights keep activations (and the logits) finite.
      w = await createRandomWeight(ctx, { label: name, rows, cols, format, seed: this.seed++, std: 1 / Math.sqrt(cols), codes: true });
    } else {
      w = await weightFromCheckpoint(ctx, ckpt, name, rows, cols, format); // streamed by rows, never whole
    }
    this.gpuBytes += w.bytes;
    if (opts.onConverted && !opts.random) await opts.onConverted({ kind: 'gpu', name, shape: [rows, cols], weight: w });
    this.tick();
    return w;
  }

  /** A small f32 vector of `length` values as stored (then `transform`ed, e.g. clamped or broadcast). */
  async vector(name: string, length: number, transform?: (v: Float32Array) => Float32Array): Promise<GPUBuffer> {
    const { ctx, ckpt, opts } = this;
    let v: Float32Array;
    if (opts.random) v = this.plan.randomVector?.(name, length) ?? new Float32Array(length).fill(1);
    else {
      requireTensor(ckpt, name);
      v = await readF32(ckpt, name);
      if (v.length !== length) throw new GemmaError('bad-file', `${ckpt.name}: ${name} has ${v.length} values, the config implies ${length}.`);
      // Before any transform: the offline cache re-reads it through this same path.
      await opts.onConverted?.({ kind: 'f32', name, shape: ckpt.tensor(name)!.shape, values: v });
    }
    if (transform) v = transform(v);
    const buf = uploadBuffer(ctx.device, v, name);
    this.gpuBytes += buf.size;
    this.tick();
    return buf;
  }
}
