/**
 * Gemma 3n's vision encoder in the model registry (src/model/registry.ts MEDIA_ENCODERS.image): a family of its own,
 * loaded from the same checkpoint as the decoder when first needed (config.json's vision_config and the
 * model.vision_tower.timm_model.* / model.embed_vision.* tensors), freed on its own. Callers outside
 * src/model/vision/ (the runtime's image spans, the CLI, the fixture writer, benchmarks) reach it through the
 * registry only.
 */
import { GemmaError } from '../../errors.ts';
import type { GpuContext } from '../../gpu/device.ts';
import type { Checkpoint } from '../../io/checkpoint.ts';
import type { WeightMode } from '../family.ts';
import { configTokenId, type MediaEncoderFamily, type MediaEncoderLoadOptions, type MediaSpanLayout } from '../media-encoder.ts';
import { MOBILENETV5_300M_ENC, VISION_ARCHS, type VisionArch } from './arch.ts';
import { hasVisionTower } from './config.ts';
import type { VisionEncoder, VisionEncoderOptions } from './encoder.ts';
import { PREPROCESSING_ID, preprocessImage, resizeBilinearPillow, pixelValuesFromRgb } from './preprocess.ts';
import { proceduralBf16, proceduralTensorSpecs, proceduralVisionCheckpoint, proceduralVisionConfig } from './procedural.ts';
import type { VisionWeightFormat } from './weights.ts';

export type { VisionEncoder, VisionEncoderOptions, EncodeOptions as VisionEncodeOptions, EncodeResult as VisionEncodeResult, VisionMemory } from './encoder.ts';
export type { VisionWeightFormat } from './weights.ts';
export type { RgbImage } from './preprocess.ts';
export type { VisionArch } from './arch.ts';

const configId = (config: unknown, key: string): number => configTokenId(config, key, 'image');

function visionConfigOf(config: unknown): Record<string, unknown> | undefined {
  const vc = (config as { vision_config?: unknown } | null)?.vision_config;
  return vc && typeof vc === 'object' ? (vc as Record<string, unknown>) : undefined;
}

export const visionEncoderFamily = {
  name: 'gemma3n-vision',
  modality: 'image' as const,
  /** GPU storage formats of the convolution weights, the default first (bf16: lossless for bf16 checkpoints). */
  weightFormats: ['bf16', 'f16', 'f32'] as readonly VisionWeightFormat[],
  /** Gemma 3n's MobileNet-V5 vision_config (Gemma 4's vision config is another model type). */
  hasEncoder: (config: unknown): boolean => visionConfigOf(config)?.model_type === 'gemma3n_vision',
  hasWeights: (checkpoint: Checkpoint): boolean => hasVisionTower(checkpoint),
  /**
   * HF's layout: `boi_token_id`, then `vision_soft_tokens_per_image` positions of `image_token_id`, then
   * `eoi_token_id` (every position takes a soft token: images have no padding).
   */
  spanLayout(config: unknown): MediaSpanLayout {
    const span = (config as Record<string, unknown> | null)?.vision_soft_tokens_per_image ?? 256;
    if (!Number.isInteger(span) || (span as number) <= 0) throw new GemmaError('unsupported-config', `config.json vision_soft_tokens_per_image = ${JSON.stringify(span)} is not a positive integer.`);
    return { placeholderId: configId(config, 'image_token_id'), beginId: configId(config, 'boi_token_id'), endId: configId(config, 'eoi_token_id'), span: span as number };
  },
  /**
   * bf16 for every weight mode: lossless for the published (bf16) checkpoints, half of f32's bytes, and the fastest
   * to decode on SwiftShader (docs/vision.md, "Weight storage"). int8 moves the soft tokens past the goldens' bounds.
   */
  storageFor: (_weights: WeightMode): VisionWeightFormat => 'bf16',
  /** The registry's loader: storage from storageFor. */
  load: (gpu: GpuContext, checkpoint: Checkpoint, o: MediaEncoderLoadOptions): Promise<VisionEncoder> =>
    visionEncoderFamily.loadWith(gpu, checkpoint, { weights: visionEncoderFamily.storageFor(o.weights), onProgress: o.onTensor, onConverted: o.onConverted, signal: o.signal }),
  /**
   * Loads with the tower's own options (storage format, architecture override): the CLI, benchmarks and tests. The
   * encoder, its kernels and their WGSL are a chunk of their own, imported here on first use: a text-only app never
   * downloads them.
   */
  loadWith: async (gpu: GpuContext, checkpoint: Checkpoint, options?: VisionEncoderOptions): Promise<VisionEncoder> => (await import('./encoder.ts')).VisionEncoder.load(gpu, checkpoint, options),

  /** Identifies the preprocessing (part of every image's content hash). */
  preprocessingId: PREPROCESSING_ID,
  /** The processor's input size (768): pixels are resized to size x size. */
  imageSize: (config: unknown): number => VISION_ARCHS[String(visionConfigOf(config)?.architecture ?? '')]?.imageSize ?? MOBILENETV5_300M_ENC.imageSize,
  /** Decoded 8-bit pixels (RGB or RGBA, any size) to HF's pixel_values [3, S, S] (Pillow-exact resize, u8 / 255). */
  preprocess: preprocessImage,
  /** Pillow's BILINEAR resize of 8-bit pixels (exact), for checks of the preprocessing alone. */
  resize: resizeBilinearPillow,
  pixelValuesFromRgb,

  /**
   * The random checkpoints' vision tower (the registry's randomCheckpoint adds it to a random decoder whose config
   * names a vision architecture): the gemma3n-vision-procedural fixture's generator at that architecture, with
   * embed_vision projecting to the decoder's width. Undefined when the config has no known vision architecture.
   */
  randomTower(config: unknown): Checkpoint | undefined {
    const arch = VISION_ARCHS[String(visionConfigOf(config)?.architecture ?? '')];
    const textHidden = (config as { text_config?: { hidden_size?: unknown } } | null)?.text_config?.hidden_size;
    return arch && typeof textHidden === 'number' ? proceduralVisionCheckpoint(arch, textHidden) : undefined;
  },

  /** The gemma3n-vision-procedural fixture's generator (what `npm run fixture:vision` writes). */
  procedural: {
    arch: MOBILENETV5_300M_ENC as VisionArch,
    tensorSpecs: proceduralTensorSpecs,
    bf16: proceduralBf16,
    config: proceduralVisionConfig,
    checkpoint: proceduralVisionCheckpoint,
  },
} satisfies MediaEncoderFamily<VisionEncoder> & Record<string, unknown>;
