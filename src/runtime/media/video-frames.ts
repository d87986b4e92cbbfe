/**
 * Frames of a video for a `{ type: 'video', frames }` part, sampled on the page's main thread (a `<video>` element
 * decodes; workers have none): `fps` frames per second from `start`, at most `maxFrames`, each an ImageBitmap
 * (transferred to the worker, decoded and resized there like any image). Gemma 3n sees each frame as one image: 256
 * soft tokens plus its begin/end tokens, so a 10-frame clip takes ~2600 tokens of context; the result says how many.
 *
 * ```ts
 * const video = await sampleVideoFrames(file, { fps: 1, maxFrames: 8 });
 * gemma.chat([{ role: 'user', content: [{ type: 'video', frames: video.frames }, { type: 'text', text: 'What happens?' }] }]);
 * ```
 */
import { GemmaError } from '../../errors.ts';
import { videoElementBitmap } from './image-input.ts';

/** Prompt positions one frame takes: its 256 soft tokens, begin and end (Gemma 3n's vision_soft_tokens_per_image). */
export const TOKENS_PER_FRAME = 258;

export interface SampleVideoOptions {
  /** Frames per second to take (default 1). */
  fps?: number;
  /** At most this many frames (default 8); a longer clip is sampled over its first maxFrames / fps seconds. */
  maxFrames?: number;
  /** Seconds into the video to start (default 0). */
  start?: number;
  signal?: AbortSignal;
}

export interface SampledVideo {
  frames: ImageBitmap[];
  /** Each frame's time in seconds. */
  times: number[];
  /** The video's duration in seconds. */
  duration: number;
  /** Context positions the frames take in a prompt (TOKENS_PER_FRAME each, plus the newlines around each span). */
  tokens: number;
}

function invalid(why: string, cause?: unknown): GemmaError {
  return new GemmaError('invalid-argument', `sampleVideoFrames: ${why}`, { cause });
}

function once(target: EventTarget, ok: string, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const done = (f: () => void) => () => {
      target.removeEventListener(ok, onOk);
      target.removeEventListener('error', onError);
      signal?.removeEventListener('abort', onAbort);
      f();
    };
    const onOk = done(resolve);
    const onError = done(() => reject(invalid(`the video could not be decoded (${(target as HTMLVideoElement).error?.message || 'unsupported format'}).`)));
    const onAbort = done(() => reject(new GemmaError('aborted', 'sampleVideoFrames was aborted.')));
    target.addEventListener(ok, onOk);
    target.addEventListener('error', onError);
    signal?.addEventListener('abort', onAbort);
  });
}

/** The frame shown after a seek; right after 'seeked' a software decoder may not have handed it over yet. */
async function currentFrame(video: HTMLVideoElement): Promise<ImageBitmap> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await videoElementBitmap(video);
    } catch (err) {
      if (attempt >= 20) throw invalid(`the video's frame at ${video.currentTime.toFixed(2)} s could not be read (${(err as Error)?.message ?? err}).`, err);
      await new Promise((r) => setTimeout(r, 25));
    }
  }
}

/** Samples frames from a `<video>` (it is seeked; its playback state is restored) or a video Blob/File. */
export async function sampleVideoFrames(source: HTMLVideoElement | Blob, options: SampleVideoOptions = {}): Promise<SampledVideo> {
  const fps = options.fps ?? 1;
  const maxFrames = options.maxFrames ?? 8;
  const start = options.start ?? 0;
  if (!(fps > 0 && Number.isFinite(fps))) throw invalid(`fps ${fps} must be a positive number.`);
  if (!Number.isInteger(maxFrames) || maxFrames < 1) throw invalid(`maxFrames ${maxFrames} must be a positive integer.`);
  if (typeof document === 'undefined') throw new GemmaError('unsupported-input', 'sampleVideoFrames runs on a page (it needs a <video> element to decode); pass frames from here instead.');
  const own = !(source instanceof HTMLVideoElement);
  let video: HTMLVideoElement;
  let url: string | undefined;
  if (source instanceof HTMLVideoElement) video = source;
  else if (source instanceof Blob) {
    if (source.size === 0) throw invalid('the video file is empty (0 bytes).');
    video = document.createElement('video');
    video.muted = true;
    video.playsInline = true;
    video.preload = 'auto';
    url = URL.createObjectURL(source);
    video.src = url;
  } else throw invalid(`the source must be an HTMLVideoElement or a video Blob/File (got ${(source as object)?.constructor?.name ?? typeof source}).`);
  const wasPaused = video.paused;
  const wasTime = video.currentTime;
  try {
    if (video.readyState < 2) await once(video, 'loadeddata', options.signal);
    // MediaRecorder's WebM has no duration in its header (Infinity until the browser has seen its end): then the
    // frames are planned from maxFrames / fps and the plan stops at the end once the duration is known.
    const duration = video.duration;
    if (!(video.videoWidth > 0 && video.videoHeight > 0)) throw invalid('the video has no picture (0x0 frames).');
    if (!own) video.pause();
    const end = Number.isFinite(duration) ? duration : start + maxFrames / fps;
    const times: number[] = [];
    for (let t = start; t < end && times.length < maxFrames; t += 1 / fps) times.push(t);
    if (times.length === 0) throw invalid(`start ${start} s is past the video's end (${duration.toFixed(2)} s).`);
    const frames: ImageBitmap[] = [];
    try {
      for (const t of times) {
        if (options.signal?.aborted) throw new GemmaError('aborted', 'sampleVideoFrames was aborted.');
        if (Number.isFinite(video.duration) && t >= video.duration && frames.length > 0) break;
        const seeked = once(video, 'seeked', options.signal);
        video.currentTime = t;
        await seeked;
        if (video.readyState < 2) await once(video, 'canplay', options.signal);
        frames.push(await currentFrame(video));
      }
      times.length = frames.length;
    } catch (err) {
      for (const f of frames) f.close();
      throw err;
    }
    return { frames, times, duration: video.duration, tokens: frames.length * (TOKENS_PER_FRAME + 4) };
  } finally {
    if (url) {
      video.removeAttribute('src');
      video.load();
      URL.revokeObjectURL(url);
    } else {
      video.currentTime = wasTime;
      if (!wasPaused) void video.play().catch(() => {});
    }
  }
}
