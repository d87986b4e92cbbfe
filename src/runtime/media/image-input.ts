/**
 * The page's side of image input: any ImageSource to what crosses to the worker (ImagePayload), with the buffers /
 * bitmaps to transfer. Nothing is decoded or resized here: compressed files cross as their bytes and are decoded in
 * the worker (src/runtime/media/image-decode.ts), so the page's main thread only reads files and fetches URLs.
 * Sources that hold decoded pixels on the page (an `<img>`, a canvas, a VideoFrame) become an ImageBitmap
 * (createImageBitmap, no colour-space conversion, unpremultiplied), which transfers without a copy. The caller's own
 * objects are never detached or closed: an ImageBitmap or ImageData given is copied first.
 *
 * Every error names the part: an empty file, a zero-size image, an `<img>` that has not loaded, a URL that cannot
 * be fetched, an unsupported source type.
 */
import { GemmaError } from '../../errors.ts';
import type { ImagePayload, ImageSource } from '../content.ts';

export interface PreparedImage {
  payload: ImagePayload;
  transfer: Transferable[];
}

/** How createImageBitmap must read pixels to match Hugging Face's decoding (PIL: no colour management). */
export const EXACT_BITMAP_OPTIONS: ImageBitmapOptions = { premultiplyAlpha: 'none', colorSpaceConversion: 'none' };

const URL_PROTOCOLS = ['http:', 'https:', 'blob:', 'data:'];

function invalid(label: string, why: string, cause?: unknown): GemmaError {
  return new GemmaError('invalid-argument', `${label}: ${why}`, { cause });
}

const has = (name: string) => typeof (globalThis as Record<string, unknown>)[name] !== 'undefined';
const isA = <T>(name: string, v: unknown): v is T => has(name) && v instanceof ((globalThis as Record<string, unknown>)[name] as new () => T);

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (typeof v !== 'object') return typeof v;
  return (v as object).constructor?.name ?? 'an object';
}

function checkSize(width: number, height: number, label: string, what: string): void {
  if (!(width > 0 && height > 0)) throw invalid(label, `the ${what} is ${width}x${height} pixels (zero-size); send an image with at least one pixel.`);
}

async function bitmapOf(source: ImageBitmapSource, label: string): Promise<PreparedImage> {
  let bitmap: ImageBitmap;
  try {
    bitmap = await createImageBitmap(source, EXACT_BITMAP_OPTIONS);
  } catch (err) {
    throw invalid(label, `the browser could not read this image's pixels (${(err as Error)?.message ?? err}).`, err);
  }
  return { payload: { kind: 'bitmap', bitmap }, transfer: [bitmap] };
}

function encoded(bytes: Uint8Array, mime: string, label: string): PreparedImage {
  if (bytes.byteLength === 0) throw invalid(label, 'the image file is empty (0 bytes).');
  return { payload: { kind: 'encoded', bytes, mime }, transfer: [bytes.buffer] };
}

/**
 * The current frame of a `<video>` as an ImageBitmap: through a VideoFrame where WebCodecs exists (Chromium's
 * createImageBitmap(video) and drawImage(video) fail or draw nothing for some software-decoded streams, e.g.
 * MediaRecorder's WebM; a VideoFrame of the element works), else createImageBitmap(video).
 */
export async function videoElementBitmap(video: HTMLVideoElement): Promise<ImageBitmap> {
  if (typeof VideoFrame === 'undefined') return createImageBitmap(video, EXACT_BITMAP_OPTIONS);
  const frame = new VideoFrame(video, { timestamp: Math.round(video.currentTime * 1e6) });
  try {
    return await createImageBitmap(frame, EXACT_BITMAP_OPTIONS);
  } finally {
    frame.close();
  }
}

/** Reads `source` into a payload for the worker (see the header). */
export async function prepareImageSource(given: ImageSource, label: string, signal?: AbortSignal): Promise<PreparedImage> {
  const source: unknown = given; // checked at run time: callers in plain JS pass anything
  if (isA<Blob>('Blob', source)) return encoded(new Uint8Array(await source.arrayBuffer()), source.type, label);
  if (typeof source === 'string' || source instanceof URL) {
    let url: URL;
    try {
      url = new URL(String(source), has('location') ? (globalThis as { location?: Location }).location?.href : undefined);
    } catch (err) {
      throw invalid(label, `${String(source).slice(0, 120)} is not a URL; pass an http(s), blob: or data: URL, or a Blob/File.`, err);
    }
    if (!URL_PROTOCOLS.includes(url.protocol)) throw invalid(label, `${url.protocol} URLs are not supported; pass an http(s), blob: or data: URL, or a Blob/File.`);
    let response: Response;
    try {
      response = await fetch(url, { signal });
    } catch (err) {
      if (signal?.aborted) throw new GemmaError('aborted', `${label}: fetching the image was aborted.`);
      throw new GemmaError('network', `${label}: could not fetch ${String(source).slice(0, 120)}: ${(err as Error).message}`, { cause: err });
    }
    if (!response.ok) throw new GemmaError('network', `${label}: fetching ${String(source).slice(0, 120)} failed with HTTP ${response.status}.`);
    return encoded(new Uint8Array(await response.arrayBuffer()), response.headers.get('content-type') ?? '', label);
  }
  if (isA<ImageData>('ImageData', source)) {
    checkSize(source.width, source.height, label, 'ImageData');
    const data = new Uint8ClampedArray(source.data); // a copy: the caller keeps theirs
    return { payload: { kind: 'pixels', data, width: source.width, height: source.height, channels: 4 }, transfer: [data.buffer] };
  }
  if (isA<ImageBitmap>('ImageBitmap', source)) {
    checkSize(source.width, source.height, label, 'ImageBitmap');
    return bitmapOf(source, label); // a copy: transferring the caller's bitmap would detach it
  }
  if (isA<HTMLImageElement>('HTMLImageElement', source)) {
    if (!source.complete || source.naturalWidth === 0) {
      throw invalid(label, `the <img> (${(source.currentSrc || source.src).slice(0, 120) || 'no src'}) has not loaded or could not be decoded; await img.decode() before sending it.`);
    }
    return bitmapOf(source, label);
  }
  if (isA<HTMLCanvasElement>('HTMLCanvasElement', source) || isA<OffscreenCanvas>('OffscreenCanvas', source)) {
    checkSize(source.width, source.height, label, 'canvas');
    return bitmapOf(source, label);
  }
  if (isA<VideoFrame>('VideoFrame', source)) {
    checkSize(source.displayWidth, source.displayHeight, label, 'VideoFrame');
    return bitmapOf(source, label);
  }
  if (isA<HTMLVideoElement>('HTMLVideoElement', source)) {
    if (source.readyState < 2) throw invalid(label, 'the <video> has no current frame yet (readyState < HAVE_CURRENT_DATA); wait for "loadeddata", or sample it with sampleVideoFrames().');
    checkSize(source.videoWidth, source.videoHeight, label, 'video frame');
    try {
      const bitmap = await videoElementBitmap(source);
      return { payload: { kind: 'bitmap', bitmap }, transfer: [bitmap] };
    } catch (err) {
      throw invalid(label, `the browser could not read the video's current frame (${(err as Error)?.message ?? err}).`, err);
    }
  }
  throw invalid(
    label,
    `an image must be a Blob/File, ImageBitmap, ImageData, HTMLImageElement, HTMLCanvasElement, OffscreenCanvas, VideoFrame or a URL string (http(s), blob:, data:); got ${describe(source)}.`,
  );
}
