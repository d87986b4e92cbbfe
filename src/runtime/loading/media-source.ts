/**
 * Media encoders (src/model/media-encoder.ts) loaded from the model's source after the decoder: the checkpoint that
 * holds their tensors (opened again, without its tokenizer, when the decoder came from the offline cache), and the
 * offline cache of their converted weights, one entry per encoder beside the decoder's (the same key with weight
 * mode `<modality>-<storage>`: e.g. `audio-q8`), written and read by the same converted-cache code as the decoder.
 * Progress events carry `component` = the modality.
 */
import { GemmaError } from '../../errors.ts';
import type { GpuContext } from '../../gpu/device.ts';
import type { CacheKey } from '../../io/cache.ts';
import type { Checkpoint } from '../../io/checkpoint.ts';
import type { WeightMode } from '../../model/family.ts';
import type { MediaEncoder, MediaEncoderFamily } from '../../model/media-encoder.ts';
import type { LoadProgress, ModelInfo } from '../protocol.ts';
import { readFromCache, startCaching } from './model-cache.ts';

/** Where a loaded model's media encoders come from (LoadedModel.media). */
export interface MediaSource {
  /** The checkpoint's config.json (audio_config, vision_config, token ids). */
  config: unknown;
  /** The decoder's weight mode; each family picks its storage for it. */
  weights: WeightMode;
  /** The checkpoint with the encoders' tensors (opened on first need). */
  checkpoint(signal?: AbortSignal): Promise<Checkpoint>;
  /** The offline-cache key of the decoder's entry (undefined: nothing is cached). */
  cacheKey?: CacheKey;
}

export interface MediaEncoderLoad<E extends MediaEncoder> {
  encoder: E;
  cache: NonNullable<ModelInfo['cache']>;
  warnings: string[];
}

/** Loads `family`'s encoder from the offline cache, or from the source (caching it), reporting progress. */
export async function loadMediaEncoder<E extends MediaEncoder>(
  gpu: GpuContext,
  family: MediaEncoderFamily<E>,
  source: MediaSource,
  options: { onProgress?: (p: LoadProgress) => void; signal?: AbortSignal } = {},
): Promise<MediaEncoderLoad<E>> {
  const component = family.modality;
  const report = options.onProgress ?? (() => {});
  const onProgress = (p: LoadProgress) => report({ ...p, component });
  const label = `${family.name} encoder`;
  const key = source.cacheKey && { ...source.cacheKey, weightMode: `${family.modality}-${family.storageFor(source.weights)}` };
  const compile = (done: boolean) => onProgress({ phase: 'compile', loaded: done ? 1 : 0, total: 1, file: label });
  const load = async (checkpoint: Checkpoint, hooks: { tensors: boolean; onConverted?: Parameters<MediaEncoderFamily['load']>[2]['onConverted'] }) => {
    const encoder = await family.load(gpu, checkpoint, {
      weights: source.weights,
      signal: options.signal,
      onConverted: hooks.onConverted,
      onTensor: (done, total) => {
        if (hooks.tensors) onProgress({ phase: 'quantize', loaded: done, total, file: label });
        if (done === total) compile(false);
      },
    });
    compile(true);
    return encoder;
  };

  const cached = key && (await readFromCache(key, undefined, onProgress));
  if (cached) {
    const encoder = await load(cached.checkpoint, { tensors: false });
    cached.finish();
    return { encoder, cache: 'hit', warnings: [] };
  }
  const checkpoint = await source.checkpoint(options.signal);
  if (!family.hasWeights(checkpoint)) {
    throw new GemmaError('unsupported-input', `${checkpoint.name} has no ${family.modality} encoder weights (a text-only checkpoint?): load a full Gemma 3n checkpoint (safetensors) to send ${family.modality}.`);
  }
  const session = key && (await startCaching(key, gpu.device, checkpoint, undefined, undefined));
  let encoder: E;
  try {
    encoder = await load(checkpoint, { tensors: true, onConverted: session?.onConverted });
  } catch (err) {
    await session?.abort();
    throw err;
  }
  const outcome = session ? await session.commit() : { cache: 'off' as const, warnings: [] };
  return { encoder, ...outcome };
}
