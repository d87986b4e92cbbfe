/**
 * A tensor in the form a model keeps it, handed to the loader's `onConverted` hook as soon as it exists; the offline
 * cache writes these (src/runtime/loading/converted-cache.ts) and reads them back as a Checkpoint, so a cached load
 * needs no download and no conversion. Family-neutral: every family's loader produces these.
 * - 'gpu': a matrix after conversion (q4/q8 blocks with f16 scales, f16/f32), read back from the GPU by the writer;
 * - 'f32': a small vector, before any load-time transform (it is re-read through the same code path);
 * - 'ple': a host-resident table as packed rows, in blocks of rows (in order; the cache stores them as one table);
 * - 'float': a tensor kept exactly as the checkpoint stores it (BF16 / F16 / F32 bytes), re-read through the same
 *   code path (the vision tower's bf16 weights: half of f32's bytes, no conversion).
 */
import type { GpuWeight } from '../formats/weight-format.ts';
import type { CpuTable } from '../kernels/gather.ts';
import type { FloatDtype } from '../io/checkpoint.ts';

export type ConvertedTensor =
  | { kind: 'gpu'; name: string; shape: number[]; weight: GpuWeight }
  | { kind: 'f32'; name: string; shape: number[]; values: Float32Array }
  | { kind: 'ple'; name: string; shape: number[]; blocks: readonly CpuTable[] }
  | { kind: 'float'; name: string; shape: number[]; dtype: FloatDtype; bytes: Uint8Array };
