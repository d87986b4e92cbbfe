/**
 * A checkpoint as the model loader sees it, whatever the container: an HF-style config plus named tensors
 * (HF names, PyTorch shapes) that can be read as float bytes, and optionally as already-quantized blocks in our
 * GPU layout. Safetensors (src/io/safetensors.ts) and GGUF (src/io/gguf*.ts) both implement it, so the Gemma 3n
 * loader has one code path.
 */
import { GemmaError } from '../errors.ts';
import { bf16ArrayToF32, f16ArrayToF32 } from './half.ts';
import type { PackedWeight, QuantFormat } from '../formats/weight-format.ts';

/** The float dtypes a checkpoint can hand to the loader (safetensors spelling). */
export type FloatDtype = 'F32' | 'F16' | 'BF16';

export interface TensorInfo {
  name: string;
  /** PyTorch order: [out, in] for linear layers. */
  shape: number[];
  /** As stored (e.g. 'BF16', 'Q4_0', 'I64'); only FloatDtype values (or packed ones) can be read. */
  dtype: string;
}

/** Raw little-endian float data of a tensor (or of a range of its rows). */
export interface TensorBytes {
  dtype: FloatDtype;
  bytes: Uint8Array;
}

/** A tensor already quantized into one of our GPU layouts (src/formats/), e.g. from GGUF Q4_0 / Q8_0 / K-quants. */
export interface PackedTensor extends PackedWeight {
  format: QuantFormat;
  rows: number;
  cols: number;
}

export interface Checkpoint {
  /** For messages: a directory, file or URL. */
  readonly name: string;
  /** The parsed config.json (top level: model_type `gemma3n` with `text_config`, or `gemma3n_text`). */
  readonly config: unknown;
  /** Metadata of a tensor, or undefined when absent. */
  tensor(name: string): TensorInfo | undefined;
  tensorNames(): string[];
  /**
   * The tensor's values as float bytes. `rows` restricts to rows [start, start + count) of the first dimension
   * (for streaming very large tables). Throws GemmaError('unsupported-dtype') naming the tensor and dtype when the
   * stored dtype cannot be read as float.
   */
  read(name: string, rows?: { start: number; count: number }): Promise<TensorBytes>;
  /**
   * Present when the container stores some tensors pre-quantized: the tensor in our GPU `format` when its stored
   * type repacks into it losslessly (src/formats/stored-dtype.ts: GGUF Q4_0 → q4/q8, Q8_0 / Q5_0 → q8, Q4_K / Q5_K /
   * Q6_K → q4k / q5k / q6k), else null (then the loader reads floats). `rows` restricts to a row range.
   */
  readPackedAs?(name: string, format: QuantFormat, rows?: { start: number; count: number }): Promise<PackedTensor | null>;
}

/** Float bytes → Float32Array (exact for all three dtypes). */
export function tensorBytesToF32(t: TensorBytes): Float32Array {
  const { bytes } = t;
  const aligned = bytes.byteOffset % 4 === 0 ? bytes : bytes.slice();
  switch (t.dtype) {
    case 'F32':
      return new Float32Array(aligned.buffer, aligned.byteOffset, aligned.byteLength / 4).slice();
    case 'F16':
      return f16ArrayToF32(new Uint16Array(aligned.buffer, aligned.byteOffset, aligned.byteLength / 2));
    case 'BF16':
      return bf16ArrayToF32(new Uint16Array(aligned.buffer, aligned.byteOffset, aligned.byteLength / 2));
  }
}

/** Reads a tensor as f32, failing with a clear message when it is missing. */
export async function readF32(ckpt: Checkpoint, name: string, rows?: { start: number; count: number }): Promise<Float32Array> {
  requireTensor(ckpt, name);
  return tensorBytesToF32(await ckpt.read(name, rows));
}

export function requireTensor(ckpt: Checkpoint, name: string, shape?: number[]): TensorInfo {
  const info = ckpt.tensor(name);
  if (!info) throw new GemmaError('bad-file', `${ckpt.name}: tensor ${name} is missing from the checkpoint.`);
  if (shape && (info.shape.length !== shape.length || info.shape.some((d, i) => d !== shape[i]))) {
    throw new GemmaError(
      'bad-file',
      `${ckpt.name}: tensor ${name} has shape [${info.shape}], but the config implies [${shape}]. The checkpoint and its config.json do not match.`,
    );
  }
  return info;
}

export const FLOAT_DTYPE_BYTES: Record<FloatDtype, number> = { F32: 4, F16: 2, BF16: 2 };

export function isFloatDtype(dtype: string): dtype is FloatDtype {
  return dtype === 'F32' || dtype === 'F16' || dtype === 'BF16';
}
