/**
 * gemma3n-webgpu: Gemma 3n in the browser on WebGPU. The model runs in a dedicated Web Worker; this module is
 * the main-thread API.
 *
 * ```ts
 * import { loadGemma } from 'gemma3n-webgpu';
 * const gemma = await loadGemma({ model: 'https://example.com/gemma-3n-E2B-it/', onProgress: console.log });
 * const stream = gemma.chat([{ role: 'user', content: 'Hi!' }], { maxNewTokens: 256 });
 * for await (const { text } of stream) output.textContent += text;
 * console.log(await stream.stats); // { promptTokens, reusedTokens, newTokens, decodeTokensPerSecond, finishReason, ... }
 * ```
 */
import { GemmaError } from './errors.ts';
import { connectGemmaWorker, GemmaClient, type LoadOptions } from './runtime/client.ts';
import { defaultWorkerLoadError, workerRefusedError } from './runtime/worker-start-error.ts';

export interface LoadGemmaOptions extends LoadOptions {
  /**
   * A worker that calls `exposeGemmaWorker()` (from 'gemma3n-webgpu/core'), for custom models or bundlers that
   * cannot emit our worker. Default: the library's own worker, terminated by dispose().
   */
  worker?: Worker;
}

/** Starts the worker, opens the GPU, loads the model and tokenizer. Rejects with a GemmaError saying what to do. */
export async function loadGemma(options: LoadGemmaOptions): Promise<GemmaClient> {
  const { worker: given, ...rest } = options;
  if (!given && (typeof navigator === 'undefined' || !(navigator as Navigator & { gpu?: GPU }).gpu)) {
    throw new GemmaError(
      'no-webgpu',
      'WebGPU is not available here (navigator.gpu is undefined). Use a browser with WebGPU enabled ' +
        '(Chrome/Edge 113+, Safari 26+, Firefox 141+ on Windows) over https or localhost.',
    );
  }
  if (given) return connectGemmaWorker(given, rest);
  // The exact shape bundlers recognise as a worker entry (scripts/build-lib.mjs points it at the built worker).
  // No other use of import.meta.url here: bundlers would emit it as an asset (Vite) or inline a build path (webpack).
  let worker: Worker;
  try {
    worker = new Worker(new URL('./runtime/worker.ts', import.meta.url), { type: 'module', name: 'gemma3n-webgpu' });
  } catch (err) {
    throw workerRefusedError(err); // a SecurityError: the library was imported from another origin (a CDN)
  }
  try {
    return await connectGemmaWorker(worker, rest, true);
  } catch (err) {
    throw err instanceof GemmaError && err.code === 'worker-load-failed' ? defaultWorkerLoadError(err) : err;
  }
}

export { connectGemmaWorker, GemmaClient, type LoadOptions };
export { GenerationStream } from './runtime/generation-stream.ts';
export { recordAudio, type AudioRecording, type RecordAudioOptions, type RecordedClip } from './runtime/media/recorder.ts';
export { decodeAudioSource, type DecodedClip } from './runtime/media/audio-input.ts';
export { sampleVideoFrames, TOKENS_PER_FRAME, type SampleVideoOptions, type SampledVideo } from './runtime/media/video-frames.ts';
export { listCachedModels, deleteCachedModel, clearCache, cacheUsage, persistCache, type CacheUsage, type CacheKey, type CachedModelInfo } from './cache-api.ts';
export { GemmaError, type GemmaErrorCode } from './errors.ts';
export type {
  ChatMessage,
  Delta,
  FinishReason,
  GenerateOptions,
  GenerationStats,
  LoadProgress,
  LoadRequest,
  ModelInfo,
  ModelSpec,
  ModelSize,
  SliceInfo,
  CustomModelSpec,
  RandomCheckpointOptions,
  PromptInfo,
  PromptInput,
  StreamOptions,
} from './runtime/protocol.ts';
export type {
  AudioClip,
  AudioSource,
  AudioPart,
  AudioFeaturesPart,
  ContentPart,
  ImagePart,
  ImageSource,
  ImageUrlPart,
  InputAudioPart,
  MediaModality,
  MessageContent,
  TextPart,
  VideoPart,
} from './runtime/content.ts';
