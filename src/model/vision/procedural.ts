/**
 * The procedural vision checkpoint of the gemma3n-vision-procedural fixture (its README, "Procedural weights"):
 * every weight is a pure function of its checkpoint name and flat index,
 *
 *   h = fnv1a64(name); r = splitmix64(h ^ i); u = (r >> 11) * 2^-52 - 1;
 *   w = bf16_rne(float32(offset + scale * u))
 *
 * with (offset, scale) from the tensor's role. The values are bf16-exact, so a BF16 checkpoint holds them losslessly.
 * `proceduralVisionCheckpoint()` serves them through the same `Checkpoint` interface the safetensors reader
 * implements (generated on read, nothing held), for benchmarks; `npm run fixture:vision` writes them to disk as an
 * ordinary bf16 safetensors checkpoint (scripts/fixture-vision.ts) for tests and outside checks.
 *
 * 64-bit arithmetic is done on 32-bit halves (products split into 16-bit limbs in doubles, exact below 2^53):
 * ~300 M values take seconds, where BigInt takes minutes.
 */
import type { Checkpoint, TensorBytes, TensorInfo } from '../../io/checkpoint.ts';
import { GemmaError } from '../../errors.ts';
import { MOBILENETV5_300M_ENC, visionTensorSpecs, type TensorSpec, type VisionArch } from './arch.ts';

export type WeightRole = 'conv' | 'linear' | 'embedding' | 'bias' | 'attn_query' | 'layer_scale' | 'norm';

export interface RoleParams {
  role: WeightRole;
  offset: number;
  scale: number;
}

/** The README's role table (checked in that order: attn_query before conv). */
export function roleOf(name: string, shape: number[]): RoleParams {
  if (name.endsWith('.attn.query.proj.weight')) {
    const fanIn = shape.slice(1).reduce((a, b) => a * b, 1);
    return { role: 'attn_query', offset: 0, scale: 4 * Math.sqrt(3 / fanIn) };
  }
  if (shape.length === 4) return { role: 'conv', offset: 0, scale: Math.sqrt(3 / (shape[1] * shape[2] * shape[3])) };
  if (name.endsWith('.embedding.weight')) return { role: 'embedding', offset: 0, scale: 1 };
  if (shape.length === 2) return { role: 'linear', offset: 0, scale: Math.sqrt(3 / shape[1]) };
  if (name.endsWith('.bias')) return { role: 'bias', offset: 0, scale: 0.02 };
  if (name.endsWith('.layer_scale.gamma')) return { role: 'layer_scale', offset: 0.25, scale: 0.125 };
  if (shape.length === 1 && name.endsWith('.weight')) return { role: 'norm', offset: 1, scale: 0.1 };
  throw new Error(`procedural weights: no role for ${name} [${shape}]`);
}

/** FNV-1a 64 of the UTF-8 bytes of `name`, as [hi, lo] u32 halves. */
export function fnv1a64(name: string): [number, number] {
  let hi = 0xcbf29ce4;
  let lo = 0x84222325;
  for (const byte of new TextEncoder().encode(name)) {
    lo = (lo ^ byte) >>> 0;
    // (hi, lo) *= 0x100000001b3 = 2^40 + 0x1b3: lo * 0x1b3 (full), hi * 0x1b3 + lo * 2^8 (high word, mod 2^32).
    const l = lo * 0x1b3; // < 2^41: exact
    const nlo = l >>> 0;
    const carry = Math.floor(l / 0x100000000);
    hi = (Math.imul(hi, 0x1b3) + Math.imul(lo, 0x100) + carry) >>> 0;
    lo = nlo;
  }
  return [hi >>> 0, lo >>> 0];
}

// 64-bit helpers on (hi, lo) u32 pairs; results in module scratch (no allocation per value).
let rHi = 0;
let rLo = 0;

/** (ah, al) * (bh, bl) mod 2^64 into (rHi, rLo). */
function mul64(ah: number, al: number, bh: number, bl: number): void {
  const a0 = al & 0xffff, a1 = al >>> 16;
  const b0 = bl & 0xffff, b1 = bl >>> 16;
  const mid = a0 * b1 + a1 * b0; // < 2^33
  const low = a0 * b0 + (mid % 0x10000) * 0x10000; // < 2^33
  rLo = low >>> 0;
  const carry = Math.floor(low / 0x100000000);
  rHi = (a1 * b1 + Math.floor(mid / 0x10000) + carry + Math.imul(ah, bl) + Math.imul(al, bh)) >>> 0;
}

/** splitmix64 of (hi, lo) into (rHi, rLo). */
function splitmix64(hi: number, lo: number): void {
  // z = x + 0x9e3779b97f4a7c15
  let zl = lo + 0x7f4a7c15;
  let zh = (hi + 0x9e3779b9 + (zl > 0xffffffff ? 1 : 0)) >>> 0;
  zl >>>= 0;
  // z = (z ^ z >> 30) * 0xbf58476d1ce4e5b9
  mul64((zh ^ (zh >>> 30)) >>> 0, (zl ^ ((zl >>> 30) | (zh << 2))) >>> 0, 0xbf58476d, 0x1ce4e5b9);
  zh = rHi;
  zl = rLo;
  // z = (z ^ z >> 27) * 0x94d049bb133111eb
  mul64((zh ^ (zh >>> 27)) >>> 0, (zl ^ ((zl >>> 27) | (zh << 5))) >>> 0, 0x94d049bb, 0x133111eb);
  zh = rHi;
  zl = rLo;
  // r = z ^ z >> 31
  rLo = (zl ^ ((zl >>> 31) | (zh << 1))) >>> 0;
  rHi = (zh ^ (zh >>> 31)) >>> 0;
}

/** splitmix64(h ^ i) as 16 hex digits (test vectors). */
export function splitmixHex(name: string, i: number): string {
  const [hh, hl] = fnv1a64(name);
  splitmix64(hh, (hl ^ i) >>> 0);
  return rHi.toString(16).padStart(8, '0') + rLo.toString(16).padStart(8, '0');
}

/** u = (r >> 11) * 2^-52 - 1 for value i of a tensor with hash (hh, hl); i < 2^32. */
function uniformAt(hh: number, hl: number, i: number): number {
  splitmix64(hh, (hl ^ i) >>> 0);
  return (rHi * 0x200000 + (rLo >>> 11)) * 2 ** -52 - 1;
}

export function proceduralU(name: string, i: number): number {
  const [hh, hl] = fnv1a64(name);
  return uniformAt(hh, hl, i);
}

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/**
 * Values [start, start + count) of tensor `name` as bf16 bit patterns (the checkpoint's bytes), and optionally the
 * float32 values before the bf16 rounding (test vectors).
 */
export function proceduralBf16(name: string, shape: number[], start = 0, count = shape.reduce((a, b) => a * b, 1), before?: Float32Array): Uint16Array {
  const { offset, scale } = roleOf(name, shape);
  const [hh, hl] = fnv1a64(name);
  const out = new Uint16Array(count);
  for (let k = 0; k < count; k++) {
    f32[0] = offset + scale * uniformAt(hh, hl, start + k);
    if (before) before[k] = f32[0];
    const b = u32[0];
    out[k] = ((b + 0x7fff + ((b >>> 16) & 1)) >>> 16) & 0xffff;
  }
  return out;
}

/** The config.json of a vision checkpoint: Gemma 3n's real vision_config, and the text width the projection maps to. */
export function proceduralVisionConfig(arch: VisionArch = MOBILENETV5_300M_ENC, textHidden = 2048): Record<string, unknown> {
  return {
    architectures: ['Gemma3nForConditionalGeneration'],
    model_type: 'gemma3n',
    torch_dtype: 'bfloat16',
    boi_token_id: 255999,
    eoi_token_id: 262144,
    image_token_id: 262145,
    vision_soft_tokens_per_image: arch.msfa.outputSize ** 2,
    text_config: { model_type: 'gemma3n_text', hidden_size: textHidden },
    vision_config: {
      model_type: 'gemma3n_vision',
      architecture: arch.name,
      hidden_size: arch.msfa.cout,
      do_pooling: false,
      model_args: null,
      rms_norm_eps: arch.eps,
      vocab_offset: 262144,
      vocab_size: 128,
      torch_dtype: 'bfloat16',
    },
    _comment: 'gemma3n-vision-procedural: vision tower + embed_vision only, procedural weights (no text decoder).',
  };
}

/** Every tensor of the procedural checkpoint, in the order a file stores them. */
export function proceduralTensorSpecs(arch: VisionArch = MOBILENETV5_300M_ENC, textHidden = 2048): TensorSpec[] {
  return visionTensorSpecs(arch, textHidden);
}

/** The procedural checkpoint in memory: BF16 tensors generated on each read (rows ranges supported). */
export function proceduralVisionCheckpoint(arch: VisionArch = MOBILENETV5_300M_ENC, textHidden = 2048): Checkpoint {
  const specs = new Map(proceduralTensorSpecs(arch, textHidden).map((s) => [s.name, s]));
  const info = (n: string): TensorInfo | undefined => {
    const s = specs.get(n);
    return s && { name: s.name, shape: s.shape, dtype: 'BF16' };
  };
  return {
    name: `procedural vision checkpoint (${arch.name})`,
    config: proceduralVisionConfig(arch, textHidden),
    tensor: info,
    tensorNames: () => [...specs.keys()],
    async read(n, rows): Promise<TensorBytes> {
      const s = specs.get(n);
      if (!s) throw new GemmaError('bad-file', `procedural vision checkpoint: no tensor ${n}`);
      const rowSize = s.shape.slice(1).reduce((a, b) => a * b, 1);
      const start = rows ? rows.start * rowSize : 0;
      const count = rows ? rows.count * rowSize : rowSize * s.shape[0];
      const bits = proceduralBf16(n, s.shape, start, count);
      return { dtype: 'BF16', bytes: new Uint8Array(bits.buffer) };
    },
  };
}
