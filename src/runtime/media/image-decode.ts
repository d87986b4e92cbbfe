/**
 * The worker's side of image input: an ImagePayload (src/runtime/content.ts) to 8-bit pixels, as Hugging Face's
 * processor sees them after PIL's decode. Compressed bytes go through createImageBitmap (in the worker: the page's
 * main thread does no decoding) with no colour-space conversion and unpremultiplied alpha, then an OffscreenCanvas
 * reads the pixels back 1:1 (no scaling, so no filtering: exact for opaque images; measured 0 levels from the
 * fixture's decoded image C in Chromium). The resize is the library's own, Pillow-exact (the vision family's
 * preprocess), never the canvas's.
 *
 * Alpha: PIL's convert('RGB') drops alpha without compositing; a canvas stores premultiplied pixels, so colours
 * under alpha < 255 can come back rounded (a fully transparent pixel comes back black). Opaque images are exact.
 */
import { GemmaError } from '../../errors.ts';
import type { ImagePayload } from '../content.ts';
import { EXACT_BITMAP_OPTIONS } from './image-input.ts';

export interface DecodedImage {
  data: Uint8Array | Uint8ClampedArray;
  width: number;
  height: number;
  channels: 1 | 3 | 4;
}

function invalid(label: string, why: string, cause?: unknown): GemmaError {
  return new GemmaError('invalid-argument', `${label}: ${why}`, { cause });
}

/** Reads a bitmap's pixels (RGBA) and closes it. */
function bitmapPixels(bitmap: ImageBitmap, label: string): DecodedImage {
  try {
    const { width, height } = bitmap;
    if (!(width > 0 && height > 0)) throw invalid(label, `the image is ${width}x${height} pixels (zero-size); send an image with at least one pixel.`);
    if (typeof OffscreenCanvas === 'undefined') throw new GemmaError('unsupported-input', `${label}: reading an ImageBitmap needs OffscreenCanvas, which this environment lacks; send pixels (ImageData) instead.`);
    const ctx = new OffscreenCanvas(width, height).getContext('2d', { willReadFrequently: true });
    if (!ctx) throw new GemmaError('unsupported-input', `${label}: no 2D canvas context here to read the image's pixels.`);
    ctx.drawImage(bitmap, 0, 0);
    return { data: ctx.getImageData(0, 0, width, height, { colorSpace: 'srgb' }).data, width, height, channels: 4 };
  } finally {
    bitmap.close();
  }
}

/** The payload's pixels (see the header). */
export async function decodeImagePayload(payload: ImagePayload, label: string): Promise<DecodedImage> {
  if (!payload || typeof payload !== 'object') throw invalid(label, `an image payload is ${JSON.stringify(payload)}`);
  if (payload.kind === 'pixels') {
    const { data, width, height, channels } = payload;
    if (!Number.isInteger(width) || !Number.isInteger(height) || width <= 0 || height <= 0) throw invalid(label, `the image is ${width}x${height} pixels (zero-size); send an image with at least one pixel.`);
    if (![1, 3, 4].includes(channels)) throw invalid(label, `pixels must have 1, 3 or 4 channels (got ${channels}).`);
    if (!(data instanceof Uint8Array || data instanceof Uint8ClampedArray) || data.length !== width * height * channels) {
      throw invalid(label, `${width}x${height} pixels of ${channels} channels need ${width * height * channels} bytes, got ${(data as { length?: number })?.length ?? typeof data}.`);
    }
    return { data, width, height, channels };
  }
  if (payload.kind === 'bitmap') return bitmapPixels(payload.bitmap, label);
  if (payload.kind === 'encoded') {
    const { bytes, mime } = payload;
    if (!(bytes instanceof Uint8Array) || bytes.byteLength === 0) throw invalid(label, 'the image file is empty (0 bytes).');
    if (typeof createImageBitmap === 'undefined') {
      throw new GemmaError('unsupported-input', `${label}: decoding compressed images uses createImageBitmap (browsers and their workers); here, send decoded pixels ({ kind: 'pixels' } or ImageData).`);
    }
    let bitmap: ImageBitmap;
    try {
      bitmap = await createImageBitmap(new Blob([bytes as Uint8Array<ArrayBuffer>], { type: mime }), EXACT_BITMAP_OPTIONS);
    } catch (err) {
      throw invalid(
        label,
        `the browser could not decode this image${mime ? ` (${mime})` : ''}, ${bytes.byteLength} bytes: ${(err as Error)?.message || 'unknown format'}. It may be truncated or not an image; send PNG, JPEG, WebP, GIF, BMP or AVIF.`,
        err,
      );
    }
    return bitmapPixels(bitmap, label);
  }
  throw invalid(label, `unknown image payload kind ${JSON.stringify((payload as { kind?: unknown }).kind)}`);
}
