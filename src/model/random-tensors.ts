/**
 * Random-weight checkpoints in memory, for any family (family-neutral; each family's random-checkpoint.ts lists its
 * tensors and config): the same `Checkpoint` interface (src/io/checkpoint.ts) the safetensors and GGUF readers
 * implement, so the whole loader → engine path runs with no download.
 *
 * Values are deterministic from the seed: each row of each tensor has its own generator (seeded by the seed, the
 * tensor name and the row), so a tensor is produced lazily, row range by row range, and any range reads the same
 * values as a whole read. Nothing is held in memory; full-vocabulary tables (tens of MB) are generated on demand.
 * Distribution: uniform with mean `mean` and standard deviation `std` per tensor: not trained, so the text is
 * gibberish by design.
 */
import type { Checkpoint, TensorBytes, TensorInfo } from '../io/checkpoint.ts';

/** How one tensor's values are drawn. */
export interface RandomTensorPlan {
  info: TensorInfo;
  mean: number;
  std: number;
  /** Rows at or above this repeat row 0 (Gemma 3n's embed_tokens: the converter's 256 copies of the pad row). */
  copyRow0From?: number;
}

/** A plan list being built, with the usual kinds of tensor. */
export class RandomTensorPlans {
  readonly plans = new Map<string, RandomTensorPlan>();
  constructor(private readonly dtype: 'BF16' | 'F32') {}

  add(name: string, shape: number[], mean: number, std: number, extra: Partial<RandomTensorPlan> = {}): void {
    this.plans.set(name, { info: { name, shape, dtype: this.dtype }, mean, std, ...extra });
  }

  /** A linear [out, in]: unit-variance inputs give unit-variance outputs. */
  linear(name: string, out: number, inp: number): void {
    this.add(name, [out, inp], 0, 1 / Math.sqrt(inp));
  }

  /** A norm weight: about 1. */
  norm(name: string, dim: number): void {
    this.add(name, [dim], 1, 0.05);
  }
}

/** FNV-1a of a string (tensor names → per-tensor seeds). */
function hashString(s: string): number {
  let h = 2166136261;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 16777619);
  return h >>> 0;
}

/** A 32-bit mix (murmur3 finalizer): decorrelates nearby seeds. */
function mix32(x: number): number {
  x ^= x >>> 16;
  x = Math.imul(x, 0x85ebca6b);
  x ^= x >>> 13;
  x = Math.imul(x, 0xc2b2ae35);
  return (x ^ (x >>> 16)) >>> 0;
}

/** Fills `out` with one row's values: uniform, mean `mean`, standard deviation `std` (xorshift32 per row). */
function fillRow(out: Float32Array, offset: number, count: number, rowSeed: number, mean: number, std: number): void {
  let s = rowSeed || 0x9e3779b9;
  const half = std * Math.sqrt(3); // uniform on [−a, a] has std a/√3
  const k = (2 * half) / 4294967296;
  for (let i = 0; i < count; i++) {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    out[offset + i] = mean - half + (s >>> 0) * k;
  }
}

/** f32 → bf16 bits, round to nearest even (values here are finite). */
function toBf16(src: Float32Array): Uint8Array {
  const bits = new Uint32Array(src.buffer, src.byteOffset, src.length);
  const out = new Uint16Array(src.length);
  for (let i = 0; i < src.length; i++) {
    const x = bits[i];
    out[i] = (x + 0x7fff + ((x >>> 16) & 1)) >>> 16;
  }
  return new Uint8Array(out.buffer);
}

/** A Checkpoint whose tensors are drawn lazily from `plans` (see the header). */
export function randomTensorCheckpoint(name: string, config: unknown, plans: ReadonlyMap<string, RandomTensorPlan>, seed: number, dtype: 'BF16' | 'F32'): Checkpoint {
  return {
    name,
    config,
    tensor: (tensorName) => plans.get(tensorName)?.info,
    tensorNames: () => [...plans.keys()],
    async read(tensorName, rows) {
      const plan = plans.get(tensorName);
      if (!plan) throw new Error(`${name}: no tensor ${tensorName}`);
      const [rowCount, ...rest] = plan.info.shape;
      const cols = rest.reduce((a, b) => a * b, 1);
      const start = rows?.start ?? 0;
      const count = rows?.count ?? rowCount;
      if (!(start >= 0 && count >= 0 && start + count <= rowCount)) {
        throw new RangeError(`${name}: rows [${start}, ${start + count}) of ${tensorName} outside [0, ${rowCount})`);
      }
      const values = new Float32Array(count * cols);
      const tensorSeed = mix32(hashString(tensorName) ^ mix32(seed));
      for (let r = 0; r < count; r++) {
        const row = plan.copyRow0From !== undefined && start + r >= plan.copyRow0From ? 0 : start + r;
        fillRow(values, r * cols, cols, mix32(tensorSeed + Math.imul(row, 0x9e3779b1)), plan.mean, plan.std);
      }
      const result: TensorBytes = dtype === 'F32' ? { dtype: 'F32', bytes: new Uint8Array(values.buffer) } : { dtype: 'BF16', bytes: toBf16(values) };
      return result;
    },
  };
}
