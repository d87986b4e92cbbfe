/**
 * Gemma 3n's image preprocessing, identical to Hugging Face's processor (fixture README, "Preprocessing"):
 * RGB, resize to 768 x 768 with Pillow's BILINEAR filter (no aspect-ratio preservation, no crop), then
 * pixel_values = u8 * float32(1/255) channels first, no normalisation.
 *
 * The resize is ours, not transformers.js's `RawImage.resize`: measured on the fixture's image C, transformers.js
 * 4.3.1 is up to 122 levels off Pillow in Node (sharp samples corner-aligned and blends the edge with black) and up to
 * 17 in Chromium with a software canvas (it uses drawImage), which moves the soft tokens by up to 0.43. This is a
 * transcription of Pillow's 8-bit two-pass resampler (facts from Pillow's Resample.c, not its code): a triangle
 * filter of support max(in / out, 1), pixel centres at +0.5, weights normalised per output pixel then rounded to
 * 22-bit fixed point, the horizontal pass first, each pass rounded (+ 2^21, >> 22) and clamped to 0..255. It
 * matches Pillow 9.4's `Image.resize((768, 768), Image.BILINEAR)` byte for byte on image C.
 *
 * Pure TypeScript with no DOM: runs in a worker on decoded pixels (decoding is separate: createImageBitmap /
 * OffscreenCanvas in the browser, transformers.js RawImage in Node).
 */
import { GemmaError } from '../../errors.ts';

/**
 * Names this preprocessing (resize filter, size, rescale): part of a media span's cache key next to the pixels'
 * content hash, so a change here never reuses soft tokens or KV entries computed the old way.
 */
export const PREPROCESSING_ID = 'gemma3n-vision/pillow-bilinear-768/rescale-f32-1-255/v1';

const PRECISION_BITS = 22; // 32 - 8 - 2, as Pillow's 8-bit path

/** Per output pixel: first input pixel, tap count, and fixed-point weights (ksize per pixel). */
interface Taps {
  first: Int32Array;
  count: Int32Array;
  weights: Int32Array;
  ksize: number;
}

/** Pillow's precompute_coeffs for the bilinear (triangle) filter over the whole input, then normalize_coeffs_8bpc. */
function bilinearTaps(inSize: number, outSize: number): Taps {
  const scale = inSize / outSize;
  const filterScale = Math.max(scale, 1);
  const support = 1 * filterScale;
  const ksize = Math.ceil(support) * 2 + 1;
  const first = new Int32Array(outSize);
  const count = new Int32Array(outSize);
  const weights = new Int32Array(outSize * ksize);
  const k = new Float64Array(ksize);
  for (let xx = 0; xx < outSize; xx++) {
    const center = (xx + 0.5) * scale;
    const ss = 1 / filterScale;
    let xmin = Math.trunc(center - support + 0.5); // C (int) cast: truncation
    if (xmin < 0) xmin = 0;
    let xmax = Math.trunc(center + support + 0.5);
    if (xmax > inSize) xmax = inSize;
    xmax -= xmin;
    let ww = 0;
    for (let x = 0; x < xmax; x++) {
      const t = Math.abs((x + xmin - center + 0.5) * ss);
      const w = t < 1 ? 1 - t : 0;
      k[x] = w;
      ww += w;
    }
    for (let x = 0; x < xmax; x++) {
      const v = ww !== 0 ? k[x] / ww : k[x];
      weights[xx * ksize + x] = v < 0 ? Math.trunc(-0.5 + v * (1 << PRECISION_BITS)) : Math.trunc(0.5 + v * (1 << PRECISION_BITS));
    }
    first[xx] = xmin;
    count[xx] = xmax;
  }
  return { first, count, weights, ksize };
}

const clip8 = (ss: number) => {
  const v = ss >> PRECISION_BITS;
  return v < 0 ? 0 : v > 255 ? 255 : v;
};

/**
 * Pillow-exact BILINEAR resize of 8-bit interleaved pixels (`channels` per pixel, row-major). Returns a new
 * outWidth x outHeight image with the same channels.
 */
export function resizeBilinearPillow(src: Uint8Array | Uint8ClampedArray, width: number, height: number, channels: number, outWidth: number, outHeight: number): Uint8Array {
  if (!(width > 0 && height > 0 && outWidth > 0 && outHeight > 0)) throw new GemmaError('invalid-argument', `cannot resize a ${width}x${height} image to ${outWidth}x${outHeight}`);
  if (src.length !== width * height * channels) throw new GemmaError('invalid-argument', `image data has ${src.length} bytes, ${width}x${height}x${channels} needs ${width * height * channels}`);
  const half = 1 << (PRECISION_BITS - 1);
  // Horizontal pass (every row: the vertical pass may read any of them).
  let tmp: Uint8Array | Uint8ClampedArray = src;
  if (outWidth !== width) {
    const h = bilinearTaps(width, outWidth);
    const out = new Uint8Array(outWidth * height * channels);
    for (let y = 0; y < height; y++) {
      const row = y * width * channels;
      for (let xx = 0; xx < outWidth; xx++) {
        const x0 = h.first[xx];
        const n = h.count[xx];
        const kb = xx * h.ksize;
        for (let c = 0; c < channels; c++) {
          let ss = half;
          for (let x = 0; x < n; x++) ss += src[row + (x0 + x) * channels + c] * h.weights[kb + x];
          out[(y * outWidth + xx) * channels + c] = clip8(ss);
        }
      }
    }
    tmp = out;
  }
  if (outHeight === height) return tmp === src ? Uint8Array.from(src) : (tmp as Uint8Array);
  // Vertical pass.
  const v = bilinearTaps(height, outHeight);
  const rowLen = outWidth * channels;
  const out = new Uint8Array(outHeight * rowLen);
  const acc = new Int32Array(rowLen);
  for (let yy = 0; yy < outHeight; yy++) {
    const y0 = v.first[yy];
    const n = v.count[yy];
    const kb = yy * v.ksize;
    acc.fill(half);
    for (let y = 0; y < n; y++) {
      const w = v.weights[kb + y];
      const row = (y0 + y) * rowLen;
      for (let i = 0; i < rowLen; i++) acc[i] += tmp[row + i] * w;
    }
    const o = yy * rowLen;
    for (let i = 0; i < rowLen; i++) out[o + i] = clip8(acc[i]);
  }
  return out;
}

/** float32(1/255), HF's rescale_factor 0.00392156862745098 as the float32 the fast processor multiplies by. */
export const RESCALE = Math.fround(0.00392156862745098);

/**
 * HF's pixel_values from an RGB image already at the model's size: float32 [3, H, W] channels first,
 * u8 * float32(1/255) rounded once to float32 (a float32 multiply). `channels` 4 (RGBA) drops alpha, as PIL's
 * convert('RGB') does.
 */
export function pixelValuesFromRgb(rgb: Uint8Array | Uint8ClampedArray, width: number, height: number, channels = 3): Float32Array {
  if (channels !== 3 && channels !== 4) throw new GemmaError('invalid-argument', `expected RGB or RGBA pixels, got ${channels} channels`);
  const plane = width * height;
  const out = new Float32Array(3 * plane);
  for (let i = 0; i < plane; i++) {
    out[i] = Math.fround(rgb[i * channels] * RESCALE);
    out[plane + i] = Math.fround(rgb[i * channels + 1] * RESCALE);
    out[2 * plane + i] = Math.fround(rgb[i * channels + 2] * RESCALE);
  }
  return out;
}

/** Decoded 8-bit pixels, row-major, interleaved. */
export interface RgbImage {
  data: Uint8Array | Uint8ClampedArray;
  width: number;
  height: number;
  /** 1 (grey), 3 (RGB) or 4 (RGBA). */
  channels: number;
}

/** The whole Gemma 3n image processor: to RGB, Pillow-BILINEAR resize to size x size, rescale, channels first. */
export function preprocessImage(image: RgbImage, size = 768): Float32Array {
  const { width, height, channels } = image;
  if (!(width > 0 && height > 0)) throw new GemmaError('invalid-argument', `the image is empty (${width}x${height}); send an image with at least one pixel.`);
  let rgb = image.data;
  if (channels === 1) {
    rgb = new Uint8Array(width * height * 3);
    for (let i = 0; i < width * height; i++) rgb[3 * i] = rgb[3 * i + 1] = rgb[3 * i + 2] = image.data[i];
  } else if (channels === 4) {
    rgb = new Uint8Array(width * height * 3);
    for (let i = 0; i < width * height; i++) for (let c = 0; c < 3; c++) rgb[3 * i + c] = image.data[4 * i + c];
  } else if (channels !== 3) throw new GemmaError('invalid-argument', `images must have 1, 3 or 4 channels, got ${channels}`);
  const resized = width === size && height === size ? rgb : resizeBilinearPillow(rgb, width, height, 3, size, size);
  return pixelValuesFromRgb(resized, size, size, 3);
}
