/**
 * The worker's media encoders: one per modality the checkpoint has (MEDIA_ENCODERS), loaded on first use (or by
 * preload) from the model's source or the offline cache (src/runtime/loading/media-source.ts), reported on their
 * own memory line, freed by unload(). Loads are shared: two clips needing the tower wait for one load. A generation
 * aborted while the tower loads stops waiting at once; the load itself goes on and is kept for the next request.
 */
import { GemmaError } from '../../errors.ts';
import type { GpuContext } from '../../gpu/device.ts';
import type { MediaEncoder, MediaEncoderFamily } from '../../model/media-encoder.ts';
import { mediaEncoderFamily } from '../../model/registry.ts';
import type { MediaModality } from '../content.ts';
import type { LoadProgress } from '../protocol.ts';
import { loadMediaEncoder, type MediaSource } from '../loading/media-source.ts';

const MODALITY_WORD: Record<MediaModality, string> = { audio: 'audio', image: 'images' };

export class MediaEncoders {
  private readonly loaded = new Map<MediaModality, MediaEncoder>();
  private readonly loading = new Map<MediaModality, Promise<MediaEncoder>>();
  private disposed = false;
  /** Where encoder load progress goes (the worker host points it at the page). */
  onProgress: (p: LoadProgress) => void = () => {};
  /** Called after an encoder was loaded or freed (the host refreshes ModelInfo.memory). */
  onChange: () => void = () => {};
  /** Warnings of encoder loads (e.g. the cache quota was full). */
  readonly warnings: string[] = [];

  constructor(
    private readonly gpu: GpuContext | undefined,
    readonly source: MediaSource | undefined,
  ) {}

  /** The family for `modality` when this model has that encoder, else undefined. */
  family(modality: MediaModality): MediaEncoderFamily | undefined {
    const family = mediaEncoderFamily(modality);
    return family && this.source && this.gpu && family.hasEncoder(this.source.config) ? family : undefined;
  }

  /** The family, or GemmaError('unsupported-input') saying why this model cannot take `modality`. */
  require(modality: MediaModality, label?: string): MediaEncoderFamily {
    const family = this.family(modality);
    if (family) return family;
    const where = label ? `${label}: ` : '';
    const why = !mediaEncoderFamily(modality)
      ? `this build of the library has no ${modality} encoder yet`
      : !this.source
        ? 'this model was loaded without a checkpoint the library can read encoders from (a custom model factory)'
        : `this checkpoint has no ${modality} encoder this library runs (its config.json has no Gemma 3n ${modality === 'audio' ? 'audio_config' : 'vision_config'}: a text-only model, a GGUF, or another family such as Gemma 4)`;
    throw new GemmaError('unsupported-input', `${where}this model cannot take ${MODALITY_WORD[modality]}: ${why}. Load a full Gemma 3n checkpoint (safetensors) for ${MODALITY_WORD[modality]}, or send text only.`);
  }

  /** The loaded encoder of `modality` (loading it first when needed). */
  async get(modality: MediaModality, signal?: AbortSignal): Promise<MediaEncoder> {
    if (this.disposed) throw new GemmaError('disposed', 'The model was disposed.');
    const ready = this.loaded.get(modality);
    if (ready) return ready;
    const family = this.require(modality);
    let pending = this.loading.get(modality);
    if (!pending) {
      pending = (async () => {
        try {
          const r = await loadMediaEncoder(this.gpu!, family, this.source!, { onProgress: (p) => this.onProgress(p) });
          this.warnings.push(...r.warnings);
          if (this.disposed) {
            r.encoder.destroy();
            throw new GemmaError('disposed', 'The model was disposed while its encoder loaded.');
          }
          this.loaded.set(modality, r.encoder);
          this.onChange();
          return r.encoder;
        } finally {
          this.loading.delete(modality);
        }
      })();
      this.loading.set(modality, pending);
    }
    if (!signal) return pending;
    if (signal.aborted) throw new GemmaError('aborted', `Loading the ${modality} encoder was aborted.`);
    return new Promise<MediaEncoder>((resolve, reject) => {
      const onAbort = () => reject(new GemmaError('aborted', `Waiting for the ${modality} encoder was aborted (it goes on loading for the next request).`));
      signal.addEventListener('abort', onAbort, { once: true });
      pending!.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
    });
  }

  /** Frees the encoder's GPU memory (a later request loads it again). False when it was not loaded. */
  async unload(modality: MediaModality): Promise<boolean> {
    await this.loading.get(modality)?.catch(() => {});
    const encoder = this.loaded.get(modality);
    if (!encoder) return false;
    this.loaded.delete(modality);
    encoder.destroy();
    this.onChange();
    return true;
  }

  /** GPU bytes of each loaded encoder. */
  memory(): Partial<Record<MediaModality, number>> {
    const out: Partial<Record<MediaModality, number>> = {};
    for (const [m, e] of this.loaded) out[m] = e.memory().gpu.total;
    return out;
  }

  dispose(): void {
    this.disposed = true;
    for (const e of this.loaded.values()) e.destroy();
    this.loaded.clear();
  }
}
