/**
 * Gemma 3n's audio encoder in the model registry (src/model/registry.ts MEDIA_ENCODERS.audio): a family of its own,
 * loaded from the same checkpoint as the decoder when first needed (config.json's audio_config and the
 * model.audio_tower.* / model.embed_audio.* tensors), freed on its own. Callers outside src/model/audio/ reach it
 * through the registry only.
 */
import type { GpuContext } from '../../gpu/device.ts';
import type { Checkpoint } from '../../io/checkpoint.ts';
import { hasAudioConfig } from './config.ts';
import { AudioEncoder, type AudioEncoderOptions } from './encoder.ts';
import type { AudioWeightFormat } from './weights.ts';

export type { AudioEncoder, AudioEncoding, AudioEncoderOptions, AudioEncoderMemory } from './encoder.ts';
export type { AudioWeightFormat, AudioWeightPlan } from './weights.ts';
export { audioSpanRows } from './span.ts';

export const audioEncoderFamily = {
  name: 'gemma3n-audio',
  modality: 'audio' as const,
  /** Storage formats of the tower's matrices, the default (DEFAULT_AUDIO_WEIGHTS, measured in encoder.ts) first. */
  weightFormats: ['q8', 'q4', 'f32'] as readonly AudioWeightFormat[],
  /** Whether a checkpoint config describes an audio tower. */
  hasEncoder: (config: unknown): boolean => hasAudioConfig(config),
  load: (gpu: GpuContext, checkpoint: Checkpoint, options?: AudioEncoderOptions): Promise<AudioEncoder> => AudioEncoder.load(gpu, checkpoint, options),
};
