/**
 * An image part (as it crossed to the worker) to its span in the prompt: `span` positions (256) that all take the
 * vision encoder's soft tokens. The pixels are decoded here, at layout time, because the content hash (what prefix
 * reuse compares: two different images at the same position must not share a KV cache) is taken over the decoded
 * pixels and the preprocessing's id; the resize, the rescale and the tower run in `embed()`, only when the KV cache
 * does not already hold the span.
 */
import { GemmaError } from '../../errors.ts';
import { MEDIA_ENCODERS } from '../../model/registry.ts';
import type { ImagePayload } from '../content.ts';
import type { MediaSegment } from '../prompt.ts';
import { contentHash, MEDIA_PREPROCESSING_VERSION } from './content-hash.ts';
import { decodeImagePayload } from './image-decode.ts';

type VisionFamily = typeof MEDIA_ENCODERS.image;
export type VisionEncoderHandle = Awaited<ReturnType<VisionFamily['load']>>;

export interface ImageSpanContext {
  /** Positions per image in the prompt (vision_soft_tokens_per_image). */
  span: number;
  /** The processor's input size (768). */
  imageSize: number;
  /** The loaded encoder (loads it on first use). */
  encoder(signal?: AbortSignal): Promise<VisionEncoderHandle>;
}

/** One image's span. */
export interface ImageSegment extends MediaSegment {
  /** The image as decoded (before the resize). */
  width: number;
  height: number;
  /** ms the last embed() spent in the resize and the tower (not loading it). */
  encodeMs?: number;
}

/** Decodes the image and lays out its span (every position the placeholder id; all take soft tokens). */
export async function imageSpan(payload: ImagePayload, label: string, ctx: ImageSpanContext, placeholderId: number): Promise<ImageSegment> {
  const family = MEDIA_ENCODERS.image;
  const image = await decodeImagePayload(payload, label);
  const { width, height, channels } = image;
  const hash = await contentHash(`${MEDIA_PREPROCESSING_VERSION.image}|${family.preprocessingId}|${ctx.imageSize}|${width}x${height}x${channels}`, image.data);
  const segment: ImageSegment = {
    type: 'media',
    modality: 'image',
    hash,
    ids: new Array<number>(ctx.span).fill(placeholderId),
    label,
    width,
    height,
    async embed(signal) {
      const encoder = await ctx.encoder(signal);
      const t0 = performance.now();
      const values = family.preprocess(image, ctx.imageSize);
      const e = await encoder.encode(values, { signal });
      segment.encodeMs = performance.now() - t0;
      const rows = e.softTokens.length / encoder.config.textHidden;
      if (rows !== ctx.span) throw new GemmaError('unsupported-config', `${label}: the vision tower makes ${rows} soft tokens per image, but config.json's vision_soft_tokens_per_image is ${ctx.span}`);
      return e.softTokens;
    },
  };
  return segment;
}
