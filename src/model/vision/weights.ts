/**
 * The vision tower's and `embed_vision`'s weights on the GPU, read from a `Checkpoint` (HF names, formats doc §1.5)
 * in the layouts the kernels read:
 * - full and pointwise convolutions (and the projection): `ConvWeight`s in the chosen storage format, PyTorch's
 *   [out, in, kh, kw] repacked to [out, kh, kw, in] (1x1 kernels keep PyTorch's order, so bf16 bytes upload as
 *   they are); the stem's 3 input channels are zero-padded to 4;
 * - depthwise convolutions: f32 [k, k, C] (0.4 % of the parameters);
 * - RMS norm scales: f32, with the UIR blocks' layer scale folded in (gamma * w: both bf16 in every Gemma 3n
 *   checkpoint, so the f32 product is exact); the attention blocks' layer scale stays a vector (applied by the
 *   output projection before the residual add, as timm orders it).
 * Storage format (`VisionWeightFormat`): 'bf16' is lossless for bf16 checkpoints (all published Gemma 3n ones) and
 * the fastest to decode (a 16-bit shift); 'f16' rounds bf16 values below 2^-14 (f16 subnormals) and cannot hold
 * |w| > 65504; 'f32' doubles the bytes. Measured against the goldens: test/model/vision-golden.test.ts.
 */
import type { GpuContext } from '../../gpu/device.ts';
import { GemmaError } from '../../errors.ts';
import { requireTensor, tensorBytesToF32, type Checkpoint, type TensorBytes } from '../../io/checkpoint.ts';
import { f32ToBf16Bits, f32ToF16Bits } from '../../io/half.ts';
import { uploadBuffer } from '../../gpu/buffers.ts';
import type { ConvWeight, ConvWeightFormat } from '../../kernels/conv2d.ts';
import { EMBED_PREFIX, TOWER_PREFIX, msfaIn, visionTensorSpecs } from './arch.ts';
import type { VisionConfig } from './config.ts';
import type { ConvertedTensor } from '../converted-tensor.ts';

export type VisionWeightFormat = ConvWeightFormat;

export interface DepthwiseWeights {
  kernel: number;
  /** f32 [k, k, C]. */
  weight: GPUBuffer;
  norm: GPUBuffer;
}

export interface ErWeights {
  kind: 'er';
  convExp: ConvWeight;
  bn1: GPUBuffer;
  convPwl: ConvWeight;
  bn2: GPUBuffer;
}

export interface UirWeights {
  kind: 'uir';
  dwStart?: DepthwiseWeights;
  pwExp: ConvWeight;
  pwExpNorm: GPUBuffer;
  dwMid?: DepthwiseWeights;
  pwProj: ConvWeight;
  /** pw_proj.bn.weight * layer_scale.gamma. */
  pwProjNorm: GPUBuffer;
}

export interface KvWeights {
  /** The stride-2 depthwise downsample and its norm (absent when kvStride is 1). */
  down?: DepthwiseWeights;
  proj: ConvWeight;
}

export interface MqaWeights {
  kind: 'mqa';
  norm: GPUBuffer;
  query: ConvWeight;
  key: KvWeights;
  value: KvWeights;
  output: ConvWeight;
  gamma: GPUBuffer;
}

export type BlockWeights = ErWeights | UirWeights | MqaWeights;

export interface VisionWeights {
  format: VisionWeightFormat;
  stem: { conv: ConvWeight; bias: GPUBuffer; norm: GPUBuffer };
  blocks: BlockWeights[][];
  msfa: { pwExp: ConvWeight; pwExpNorm: GPUBuffer; pwProj: ConvWeight; pwProjNorm: GPUBuffer; norm: GPUBuffer };
  embed: { softNorm: GPUBuffer; projection: ConvWeight };
  /** GPU bytes of all of the above. */
  bytes: number;
  destroy(): void;
}

export interface LoadVisionWeightsOptions {
  format?: VisionWeightFormat;
  /** Called after each tensor with the checkpoint bytes read so far and in all. */
  onProgress?: (loaded: number, total: number) => void;
  /** Each tensor as read (its stored bytes, bf16 as bf16), for the offline cache; a cached entry is read back through this same loader. */
  onConverted?: (t: ConvertedTensor) => Promise<void>;
  /** Checked between tensors: an aborted load frees what it made and rejects with GemmaError('aborted'). */
  signal?: AbortSignal;
}

/** Bytes of raw float data → the format's GPU bytes (f32 values in between when a conversion is needed). */
function encode(values: Float32Array, format: VisionWeightFormat): ArrayBufferView {
  if (format === 'f32') return values;
  const out = new Uint16Array(values.length);
  const conv = format === 'bf16' ? f32ToBf16Bits : f32ToF16Bits;
  for (let i = 0; i < values.length; i++) out[i] = conv(values[i]);
  return out;
}

const SAME_DTYPE: Record<VisionWeightFormat, TensorBytes['dtype']> = { f32: 'F32', f16: 'F16', bf16: 'BF16' };

export async function loadVisionWeights(ctx: GpuContext, ckpt: Checkpoint, cfg: VisionConfig, options: LoadVisionWeightsOptions = {}): Promise<VisionWeights> {
  const { device } = ctx;
  const format = options.format ?? 'bf16';
  const { arch } = cfg;
  const shapes = new Map(visionTensorSpecs(arch, cfg.textHidden).filter((s) => !s.name.includes('.embedding.weight') && !s.name.includes('hard_embedding')).map((s) => [s.name, s.shape]));
  const total = [...shapes.entries()].reduce((a, [n, s]) => a + s.reduce((x, y) => x * y, 1) * (ckpt.tensor(n)?.dtype === 'F32' ? 4 : 2), 0);
  const buffers: GPUBuffer[] = [];
  let bytes = 0;
  let loaded = 0;
  const upload = (data: ArrayBufferView, label: string): GPUBuffer => {
    const b = uploadBuffer(device, data, label);
    buffers.push(b);
    bytes += b.size;
    return b;
  };
  const read = async (name: string): Promise<TensorBytes> => {
    if (options.signal?.aborted) throw new GemmaError('aborted', 'Loading the vision encoder was aborted.');
    const shape = shapes.get(name);
    if (!shape) throw new Error(`vision weights: no spec for ${name}`);
    requireTensor(ckpt, name, shape);
    const t = await ckpt.read(name);
    await options.onConverted?.({ kind: 'float', name, shape, dtype: t.dtype, bytes: t.bytes });
    loaded += t.bytes.byteLength;
    options.onProgress?.(loaded, total);
    return t;
  };
  const f32 = async (name: string) => tensorBytesToF32(await read(name));
  const vector = async (name: string, label = name) => upload(await f32(name), label);

  /** A full or pointwise convolution [out, in, k, k] → out-major [out, k, k, inPadded] in `format`. */
  const conv = async (name: string, padIn?: number): Promise<ConvWeight> => {
    const t = await read(name);
    const [cout, cin, kh, kw] = shapes.get(name)!.length === 4 ? shapes.get(name)! : [...shapes.get(name)!, 1, 1];
    const cinPad = padIn ?? cin;
    let data: ArrayBufferView;
    if (kh === 1 && kw === 1 && cinPad === cin && t.dtype === SAME_DTYPE[format]) {
      data = t.bytes; // stored exactly as the kernel reads it
    } else {
      const src = tensorBytesToF32(t);
      const dst = new Float32Array(cout * kh * kw * cinPad);
      for (let o = 0; o < cout; o++)
        for (let c = 0; c < cin; c++)
          for (let y = 0; y < kh; y++)
            for (let x = 0; x < kw; x++) dst[((o * kh + y) * kw + x) * cinPad + c] = src[((o * cin + c) * kh + y) * kw + x];
      data = encode(dst, format);
    }
    return { format, layout: 'out-major', cout, cin: cinPad, kh, kw, data: upload(data, name) };
  };
  /** A depthwise convolution [C, 1, k, k] → f32 [k, k, C], with its norm. */
  const depthwise = async (convName: string, normName: string): Promise<DepthwiseWeights> => {
    const [C, , k] = shapes.get(convName)!;
    const src = await f32(convName);
    const dst = new Float32Array(k * k * C);
    for (let c = 0; c < C; c++) for (let i = 0; i < k * k; i++) dst[i * C + c] = src[c * k * k + i];
    return { kernel: k, weight: upload(dst, convName), norm: await vector(normName) };
  };

  try {
    const T = TOWER_PREFIX;
    const stem = { conv: await conv(T + 'conv_stem.conv.weight', 4), bias: await vector(T + 'conv_stem.conv.bias'), norm: await vector(T + 'conv_stem.bn.weight') };
    const blocks: BlockWeights[][] = [];
    for (let s = 0; s < arch.stages.length; s++) {
      const stage: BlockWeights[] = [];
      for (let i = 0; i < arch.stages[s].length; i++) {
        const b = arch.stages[s][i];
        const p = `${T}blocks.${s}.${i}.`;
        if (b.kind === 'er') {
          stage.push({ kind: 'er', convExp: await conv(p + 'conv_exp.weight'), bn1: await vector(p + 'bn1.weight'), convPwl: await conv(p + 'conv_pwl.weight'), bn2: await vector(p + 'bn2.weight') });
        } else if (b.kind === 'uir') {
          const dwStart = b.dwStart ? await depthwise(p + 'dw_start.conv.weight', p + 'dw_start.bn.weight') : undefined;
          const pwExp = await conv(p + 'pw_exp.conv.weight');
          const pwExpNorm = await vector(p + 'pw_exp.bn.weight');
          const dwMid = b.dwMid ? await depthwise(p + 'dw_mid.conv.weight', p + 'dw_mid.bn.weight') : undefined;
          const pwProj = await conv(p + 'pw_proj.conv.weight');
          const norm = await f32(p + 'pw_proj.bn.weight');
          const gamma = await f32(p + 'layer_scale.gamma');
          const folded = norm.map((w, c) => w * gamma[c]);
          stage.push({ kind: 'uir', dwStart, pwExp, pwExpNorm, dwMid, pwProj, pwProjNorm: upload(folded, p + 'pw_proj.bn.weight*gamma') });
        } else {
          const kv = async (which: 'key' | 'value'): Promise<KvWeights> => ({
            down: b.kvStride > 1 ? await depthwise(p + `attn.${which}.down_conv.weight`, p + `attn.${which}.norm.weight`) : undefined,
            proj: await conv(p + `attn.${which}.proj.weight`),
          });
          const norm = await vector(p + 'norm.weight');
          const query = await conv(p + 'attn.query.proj.weight');
          const key = await kv('key');
          const value = await kv('value');
          stage.push({ kind: 'mqa', norm, query, key, value, output: await conv(p + 'attn.output.proj.weight'), gamma: await vector(p + 'layer_scale.gamma') });
        }
      }
      blocks.push(stage);
    }
    if (msfaIn(arch) % 4 !== 0) throw new GemmaError('unsupported-config', `${arch.name}: MSFA input channels must be a multiple of 4`);
    const msfa = {
      pwExp: await conv(T + 'msfa.ffn.pw_exp.conv.weight'),
      pwExpNorm: await vector(T + 'msfa.ffn.pw_exp.bn.weight'),
      pwProj: await conv(T + 'msfa.ffn.pw_proj.conv.weight'),
      pwProjNorm: await vector(T + 'msfa.ffn.pw_proj.bn.weight'),
      norm: await vector(T + 'msfa.norm.weight'),
    };
    const embed = { softNorm: await vector(EMBED_PREFIX + 'soft_embedding_norm.weight'), projection: await conv(EMBED_PREFIX + 'embedding_projection.weight') };
    const weights: VisionWeights = {
      format,
      stem,
      blocks,
      msfa,
      embed,
      bytes,
      destroy() {
        for (const b of buffers) b.destroy();
        buffers.length = 0;
        weights.bytes = 0;
      },
    };
    return weights;
  } catch (err) {
    for (const b of buffers) b.destroy();
    throw err;
  }
}
