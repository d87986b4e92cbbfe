/**
 * Gemma 3n's audio encoder in the model registry (src/model/registry.ts MEDIA_ENCODERS.audio): a family of its own,
 * loaded from the same checkpoint as the decoder when first needed (config.json's audio_config and the
 * model.audio_tower.* / model.embed_audio.* tensors), freed on its own. Callers outside src/model/audio/ reach it
 * through the registry only.
 */
import type { GpuContext } from '../../gpu/device.ts';
import type { Checkpoint } from '../../io/checkpoint.ts';
import type { WeightMode } from '../family.ts';
import { configTokenId, type MediaEncoderFamily, type MediaEncoderLoadOptions, type MediaSpanLayout } from '../media-encoder.ts';
import { AUDIO_TOWER_PROBE_TENSOR, audioLengths, hasAudioConfig, parseAudioTowerConfig, type AudioTowerConfig } from './config.ts';
import type { AudioEncoder, AudioEncoderOptions } from './encoder.ts';
import type { AudioWeightFormat } from './weights.ts';

export type { AudioEncoder, AudioEncoding, AudioEncoderOptions, AudioEncoderMemory, EncodeOptions } from './encoder.ts';
export type { AudioWeightFormat, AudioWeightPlan } from './weights.ts';
export type { AudioTowerConfig } from './config.ts';

const configId = (config: unknown, key: string): number => configTokenId(config, key, 'audio');

export const audioEncoderFamily = {
  name: 'gemma3n-audio',
  modality: 'audio' as const,
  /** Storage formats of the tower's matrices, the default (DEFAULT_AUDIO_WEIGHTS, measured in encoder.ts) first. */
  weightFormats: ['q8', 'q4', 'f32'] as readonly AudioWeightFormat[],
  /** Whether a checkpoint config describes an audio tower. */
  hasEncoder: (config: unknown): boolean => hasAudioConfig(config),
  hasWeights: (checkpoint: Checkpoint): boolean => checkpoint.tensor(AUDIO_TOWER_PROBE_TENSOR) !== undefined,
  /** The tower's config (and the text width and per-clip span it feeds). */
  towerConfig: (config: unknown): AudioTowerConfig => parseAudioTowerConfig(config),
  /** Soft tokens the tower makes from `frames` log-mel frames (188 for 30 s). */
  tokensForFrames: (tower: AudioTowerConfig, frames: number): number => audioLengths(tower, frames).tokens,
  /**
   * Per soft token of a clip of `frames` frames with a frame mask (1 = valid): whether it comes from valid audio
   * (the conformer's mask at every reduction-th step of the frame mask sampled at the sub-sampler's stride).
   */
  validTokens(tower: AudioTowerConfig, frames: number, mask?: Uint8Array): Uint8Array {
    const L = audioLengths(tower, frames);
    const stride = tower.sscpStrides[0][0] * tower.sscpStrides[1][0];
    return Uint8Array.from({ length: L.tokens }, (_, j) => (!mask || mask[Math.min(j * tower.reductionFactor * stride, frames - 1)] ? 1 : 0));
  },
  /**
   * HF's layout: `boa_token_id`, then `audio_soft_tokens_per_image` positions of `audio_token_id`, then
   * `eoa_token_id`; positions past the clip's soft tokens take embed_audio's last hard token (vocab_offset +
   * vocab_size - 1), as HF's merge pads them.
   */
  spanLayout(config: unknown): MediaSpanLayout {
    const tower = parseAudioTowerConfig(config);
    return {
      placeholderId: configId(config, 'audio_token_id'),
      beginId: configId(config, 'boa_token_id'),
      endId: configId(config, 'eoa_token_id'),
      span: tower.softTokensPerClip,
      padId: tower.vocabOffset + tower.vocabSize - 1,
    };
  },
  /** int8 matrices with the q4 decoder (measured, encoder.ts), f32 with float weights. */
  storageFor: (weights: WeightMode): AudioWeightFormat => (weights === 'float' ? 'f32' : 'q8'),
  /** The registry's loader: storage from the decoder's weight mode (storageFor). */
  load: (gpu: GpuContext, checkpoint: Checkpoint, o: MediaEncoderLoadOptions): Promise<AudioEncoder> =>
    import('./encoder.ts').then((m) => m.AudioEncoder.load(gpu, checkpoint, { weights: audioEncoderFamily.storageFor(o.weights), onProgress: o.onTensor, onConverted: o.onConverted, signal: o.signal })),
  /** Loads with the tower's own options (storage plan, random weights): the CLI, benchmarks and tests. */
  loadWith: (gpu: GpuContext, checkpoint: Checkpoint, options?: AudioEncoderOptions): Promise<AudioEncoder> => import('./encoder.ts').then((m) => m.AudioEncoder.load(gpu, checkpoint, options)),
} satisfies MediaEncoderFamily<AudioEncoder> & Record<string, unknown>;
