/**
 * The architecture of Gemma 3n's vision tower, timm's MobileNet-V5 `mobilenetv5_300m_enc`, as data: the stem, the
 * 84 blocks of its 4 stages and the multi-scale fusion adapter (MSFA), plus the `embed_vision` soft path. The
 * forward pass (tower.ts) walks this table, the weight loader (weights.ts) derives every tensor name and shape from
 * it, and the procedural checkpoint (procedural.ts) generates exactly these tensors. Source: the fixture README
 * (test/fixtures/gemma3n-vision-procedural, "Architecture"), checked against its tensors.tsv and golden.json block
 * list by test/model/vision-arch.test.ts.
 *
 * Block kinds (every norm is an RMSNorm over channels, eps 1e-6; GELU is the tanh approximation):
 * - `er` (edge residual): GELU(norm(conv k x k, stride)) -> norm(conv 1x1) (+ x when stride 1 and cin == cout).
 * - `uir` (universal inverted residual): [depthwise dwStart, norm] -> 1x1 expand, norm, GELU -> [depthwise dwMid
 *   (carries the stride), norm, GELU] -> 1x1 project, norm -> * layer_scale -> (+ x when stride 1, cin == cout).
 * - `mqa` (mobile multi-query attention): x + layer_scale * out(attn(q(norm x), k, v)) with one shared K/V head,
 *   K/V from a depthwise stride-2 downsample (own norms) when kvStride is 2.
 */
import { samePad } from '../../kernels/same-pad.ts';

export interface ErBlock {
  kind: 'er';
  kernel: number;
  stride: number;
  cin: number;
  mid: number;
  cout: number;
}

export interface UirBlock {
  kind: 'uir';
  /** Depthwise kernel before the expansion (0 = none). */
  dwStart: number;
  /** Depthwise kernel after the expansion (0 = none); it carries the stride when present. */
  dwMid: number;
  stride: number;
  cin: number;
  mid: number;
  cout: number;
}

export interface MqaBlock {
  kind: 'mqa';
  channels: number;
  heads: number;
  keyDim: number;
  /** 2: keys and values from a depthwise stride-2 downsample of the normed input; 1: from the input itself. */
  kvStride: number;
  /** Kernel of the K/V downsampling depthwise convolutions. */
  dwKernel: number;
}

export type Block = ErBlock | UirBlock | MqaBlock;

export interface VisionArch {
  name: string;
  inChannels: number;
  /** Input height = width (the processor resizes to this). */
  imageSize: number;
  stem: { cout: number; kernel: number; stride: number };
  /** stages[s][i] is `blocks.s.i`. */
  stages: Block[][];
  /** MSFA: fuses the outputs of the last two stages. */
  msfa: { mid: number; cout: number; outputSize: number };
  eps: number;
}

export const MOBILENETV5_300M_ENC: VisionArch = (() => {
  const er = (cin: number, mid: number, cout: number, stride: number): ErBlock => ({ kind: 'er', kernel: 3, stride, cin, mid, cout });
  const uir = (dwStart: number, dwMid: number, stride: number, cin: number, mid: number, cout: number): UirBlock => ({ kind: 'uir', dwStart, dwMid, stride, cin, mid, cout });
  const mqa = (channels: number, heads: number, keyDim: number, kvStride: number): MqaBlock => ({ kind: 'mqa', channels, heads, keyDim, kvStride, dwKernel: 3 });
  const repeat = <T>(n: number, f: () => T[]): T[] => Array.from({ length: n }, f).flat();
  return {
    name: 'mobilenetv5_300m_enc',
    inChannels: 3,
    imageSize: 768,
    stem: { cout: 64, kernel: 3, stride: 2 },
    stages: [
      [er(64, 256, 128, 2), ...repeat(2, () => [er(128, 512, 128, 1)])],
      [uir(3, 5, 2, 128, 768, 256), ...repeat(2, () => [uir(5, 0, 1, 256, 1024, 256), uir(3, 0, 1, 256, 1024, 256)])],
      [
        uir(5, 5, 2, 256, 1536, 640),
        ...repeat(7, () => [uir(5, 0, 1, 640, 2560, 640)]),
        uir(0, 0, 1, 640, 640, 640),
        ...repeat(14, () => [mqa(640, 12, 64, 2), uir(0, 0, 1, 640, 1280, 640)]),
      ],
      [uir(5, 5, 2, 640, 3840, 1280), ...repeat(19, () => [mqa(1280, 16, 96, 1), uir(0, 0, 1, 1280, 2560, 1280)])],
    ],
    msfa: { mid: 3840, cout: 2048, outputSize: 16 },
    eps: 1e-6,
  };
})();

/**
 * The random Gemma 3n checkpoints' small tower (`random:tiny`): every block kind of MobileNet-V5 at the real input
 * size, strides and 16 x 16 output grid (so prompts hold the real 256 soft tokens per image), with narrow channels
 * (~0.3 GMAC per image instead of 436): seconds on SwiftShader. Not a published architecture; its name says so.
 */
export const MOBILENETV5_TINY_RANDOM: VisionArch = {
  name: 'gemma3n_webgpu_tiny_random',
  inChannels: 3,
  imageSize: 768,
  stem: { cout: 8, kernel: 3, stride: 2 },
  stages: [
    [{ kind: 'er', kernel: 3, stride: 2, cin: 8, mid: 16, cout: 8 }],
    [{ kind: 'uir', dwStart: 3, dwMid: 5, stride: 2, cin: 8, mid: 16, cout: 12 }],
    [
      { kind: 'uir', dwStart: 5, dwMid: 5, stride: 2, cin: 12, mid: 24, cout: 16 },
      { kind: 'mqa', channels: 16, heads: 2, keyDim: 8, kvStride: 2, dwKernel: 3 },
    ],
    [
      { kind: 'uir', dwStart: 5, dwMid: 5, stride: 2, cin: 16, mid: 32, cout: 24 },
      { kind: 'mqa', channels: 24, heads: 3, keyDim: 8, kvStride: 1, dwKernel: 3 },
      { kind: 'uir', dwStart: 0, dwMid: 0, stride: 1, cin: 24, mid: 32, cout: 24 },
    ],
  ],
  msfa: { mid: 48, cout: 64, outputSize: 16 },
  eps: 1e-6,
};

/** Architectures by timm name (`vision_config.architecture`). */
export const VISION_ARCHS: Record<string, VisionArch> = { [MOBILENETV5_300M_ENC.name]: MOBILENETV5_300M_ENC, [MOBILENETV5_TINY_RANDOM.name]: MOBILENETV5_TINY_RANDOM };

export const TOWER_PREFIX = 'model.vision_tower.timm_model.';
export const EMBED_PREFIX = 'model.embed_vision.';

/** Output channels of a block. */
export function blockOut(b: Block): number {
  return b.kind === 'mqa' ? b.channels : b.cout;
}

/** Channels of the MSFA input: the last two stages' outputs, concatenated. */
export function msfaIn(arch: VisionArch): number {
  const last = (s: Block[]) => blockOut(s[s.length - 1]);
  return last(arch.stages[arch.stages.length - 2]) + last(arch.stages[arch.stages.length - 1]);
}

export interface TensorSpec {
  /** Full checkpoint name. */
  name: string;
  /** PyTorch shape. */
  shape: number[];
}

/**
 * Every tensor of the tower (in timm's state_dict order, `model.vision_tower.timm_model.` prefix), then the four
 * `model.embed_vision.*` tensors for a text width `textHidden`.
 */
export function visionTensorSpecs(arch: VisionArch, textHidden: number, embedVocab = 128): TensorSpec[] {
  const out: TensorSpec[] = [];
  const t = (name: string, ...shape: number[]) => out.push({ name: TOWER_PREFIX + name, shape });
  const conv = (name: string, cout: number, cin: number, k: number) => t(`${name}.weight`, cout, cin, k, k);
  const norm = (name: string, c: number) => t(`${name}.weight`, c);
  conv('conv_stem.conv', arch.stem.cout, arch.inChannels, arch.stem.kernel);
  t('conv_stem.conv.bias', arch.stem.cout);
  norm('conv_stem.bn', arch.stem.cout);
  arch.stages.forEach((stage, s) =>
    stage.forEach((b, i) => {
      const p = `blocks.${s}.${i}.`;
      if (b.kind === 'er') {
        conv(p + 'conv_exp', b.mid, b.cin, b.kernel);
        norm(p + 'bn1', b.mid);
        conv(p + 'conv_pwl', b.cout, b.mid, 1);
        norm(p + 'bn2', b.cout);
      } else if (b.kind === 'uir') {
        if (b.dwStart) {
          conv(p + 'dw_start.conv', b.cin, 1, b.dwStart);
          norm(p + 'dw_start.bn', b.cin);
        }
        conv(p + 'pw_exp.conv', b.mid, b.cin, 1);
        norm(p + 'pw_exp.bn', b.mid);
        if (b.dwMid) {
          conv(p + 'dw_mid.conv', b.mid, 1, b.dwMid);
          norm(p + 'dw_mid.bn', b.mid);
        }
        conv(p + 'pw_proj.conv', b.cout, b.mid, 1);
        norm(p + 'pw_proj.bn', b.cout);
        t(p + 'layer_scale.gamma', b.cout);
      } else {
        const c = b.channels;
        norm(p + 'norm', c);
        conv(p + 'attn.query.proj', b.heads * b.keyDim, c, 1);
        for (const kv of ['key', 'value']) {
          if (b.kvStride > 1) {
            conv(p + `attn.${kv}.down_conv`, c, 1, b.dwKernel);
            norm(p + `attn.${kv}.norm`, c);
          }
          conv(p + `attn.${kv}.proj`, b.keyDim, c, 1);
        }
        conv(p + 'attn.output.proj', c, b.heads * b.keyDim, 1);
        t(p + 'layer_scale.gamma', c);
      }
    }),
  );
  conv('msfa.ffn.pw_exp.conv', arch.msfa.mid, msfaIn(arch), 1);
  norm('msfa.ffn.pw_exp.bn', arch.msfa.mid);
  conv('msfa.ffn.pw_proj.conv', arch.msfa.cout, arch.msfa.mid, 1);
  norm('msfa.ffn.pw_proj.bn', arch.msfa.cout);
  norm('msfa.norm', arch.msfa.cout);
  const vision = arch.msfa.cout;
  out.push({ name: EMBED_PREFIX + 'embedding.weight', shape: [embedVocab, vision] });
  out.push({ name: EMBED_PREFIX + 'hard_embedding_norm.weight', shape: [vision] });
  out.push({ name: EMBED_PREFIX + 'soft_embedding_norm.weight', shape: [vision] });
  out.push({ name: EMBED_PREFIX + 'embedding_projection.weight', shape: [textHidden, vision] });
  return out;
}

/** Multiply-accumulates of one image through the tower (convolutions and attention matmuls), for benchmarks. */
export function towerMacs(arch: VisionArch): number {
  let macs = 0;
  let size = arch.imageSize;
  const conv = (cin: number, cout: number, k: number, outSize: number, groups = 1) => {
    macs += (cin / groups) * cout * k * k * outSize * outSize;
  };
  const stem = samePad(size, arch.stem.kernel, arch.stem.stride);
  conv(arch.inChannels, arch.stem.cout, arch.stem.kernel, stem.out);
  size = stem.out;
  const stageSizes: number[] = [];
  for (const stage of arch.stages) {
    for (const b of stage) {
      if (b.kind === 'er') {
        const o = samePad(size, b.kernel, b.stride).out;
        conv(b.cin, b.mid, b.kernel, o);
        conv(b.mid, b.cout, 1, o);
        size = o;
      } else if (b.kind === 'uir') {
        if (b.dwStart) conv(b.cin, b.cin, b.dwStart, size, b.cin);
        conv(b.cin, b.mid, 1, size);
        const o = b.dwMid ? samePad(size, b.dwMid, b.stride).out : size;
        if (b.dwMid) conv(b.mid, b.mid, b.dwMid, o, b.mid);
        conv(b.mid, b.cout, 1, o);
        size = o;
      } else {
        const kv = b.kvStride > 1 ? samePad(size, b.dwKernel, b.kvStride).out : size;
        const hd = b.heads * b.keyDim;
        conv(b.channels, hd, 1, size);
        if (b.kvStride > 1) conv(b.channels, b.channels, b.dwKernel, kv, b.channels), conv(b.channels, b.channels, b.dwKernel, kv, b.channels);
        conv(b.channels, b.keyDim, 1, kv);
        conv(b.channels, b.keyDim, 1, kv);
        macs += 2 * b.heads * size * size * kv * kv * b.keyDim; // q.k and p.v
        conv(hd, b.channels, 1, size);
      }
    }
    stageSizes.push(size);
  }
  const fused = stageSizes[stageSizes.length - 2];
  conv(msfaIn(arch), arch.msfa.mid, 1, fused);
  conv(arch.msfa.mid, arch.msfa.cout, 1, fused);
  return macs;
}
