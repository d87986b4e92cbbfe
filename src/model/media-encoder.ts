/**
 * What a media encoder family (audio, vision) provides to the runtime, whatever its modality: whether a checkpoint
 * has it, how a prompt lays out its spans (placeholder, begin and end ids, positions per item: config.json's, never
 * hard-coded), and how to build it on the GPU from the decoder's Checkpoint (loaded on first use, cached like the
 * decoder, freed on its own). The registry (src/model/registry.ts MEDIA_ENCODERS) lists one family per modality;
 * what each encoder computes (encode) is the modality's own API.
 */
import { GemmaError } from '../errors.ts';
import type { GpuContext } from '../gpu/device.ts';
import type { Checkpoint } from '../io/checkpoint.ts';
import type { ConvertedTensor } from './converted-tensor.ts';
import type { WeightMode } from './family.ts';

/** How one media item sits in the prompt: begin id, `span` positions, end id. */
export interface MediaSpanLayout {
  /** The id the processor writes at each soft-token position (`audio_token_id`, `image_token_id`). */
  placeholderId: number;
  /** Begin / end of the span (`boa_token_id` / `eoa_token_id`, `boi_token_id` / `eoi_token_id`). */
  beginId: number;
  endId: number;
  /** Positions per item (`audio_soft_tokens_per_image` 188, `vision_soft_tokens_per_image` 256). */
  span: number;
  /**
   * Where an item makes fewer soft tokens than `span` (short audio), the remaining positions carry this id, whose
   * embedding the decoder takes from its hard-token table (HF pads with embed_audio's last hard token).
   */
  padId?: number;
}

export interface MediaEncoderLoadOptions {
  /** The decoder's weight mode; the family picks its own storage for it (storageFor). */
  weights: WeightMode;
  /** (tensors done, tensors total) while loading. */
  onTensor?: (done: number, total: number) => void;
  /** Each tensor as the family keeps it, for the offline cache. */
  onConverted?: (t: ConvertedTensor) => Promise<void>;
  /** Checked between tensors: an aborted load frees what it made and rejects with GemmaError('aborted'). */
  signal?: AbortSignal;
}

/**
 * A loaded encoder: its GPU memory, and freeing it. `kernels`: the buffers its kernels own (dispatch parameters,
 * placeholders, kernel scratch), as the decoder's MemoryReport counts them; `total` is the sum of the other three.
 */
export interface MediaEncoder {
  memory(): { gpu: { weights: number; scratch: number; kernels: number; total: number } };
  destroy(): void;
}

export interface MediaEncoderFamily<E extends MediaEncoder = MediaEncoder> {
  readonly name: string;
  readonly modality: 'audio' | 'image';
  /** Whether a checkpoint config describes this encoder. */
  hasEncoder(config: unknown): boolean;
  /** Whether the checkpoint holds the encoder's tensors (a text-only GGUF has the config but not the tower). */
  hasWeights(checkpoint: Checkpoint): boolean;
  /** The prompt layout of one item, from the checkpoint config. */
  spanLayout(config: unknown): MediaSpanLayout;
  /** The storage the family uses for a decoder weight mode (part of its offline-cache key: 'q8', 'f32', ...). */
  storageFor(weights: WeightMode): string;
  load(gpu: GpuContext, checkpoint: Checkpoint, options: MediaEncoderLoadOptions): Promise<E>;
}

/** A top-level config.json token id a media span needs (`image_token_id`, `boa_token_id`, ...), or a clear error. */
export function configTokenId(config: unknown, key: string, modality: string): number {
  const v = (config as Record<string, unknown> | null)?.[key];
  if (!Number.isInteger(v) || (v as number) < 0) {
    throw new GemmaError('unsupported-config', `config.json ${key} = ${JSON.stringify(v)}: ${modality} prompts need this token id (a full Gemma 3n config has it).`);
  }
  return v as number;
}
