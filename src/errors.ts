/**
 * Every error the library throws on purpose is a GemmaError with a stable `code`, so callers (and the
 * worker boundary, which can only carry plain data) can tell them apart. Messages say what is wrong and
 * what to do about it.
 */
export type GemmaErrorCode =
  | 'no-webgpu' // navigator.gpu (or the Node `webgpu` package) is missing
  | 'no-adapter' // requestAdapter() returned null
  | 'missing-feature' // a GPU feature we need is absent
  | 'limit-too-small' // an adapter limit is below what the model needs
  | 'unsupported-config' // config.json names something we do not implement
  | 'bad-file' // a checkpoint file is missing, truncated or malformed
  | 'unsupported-dtype' // a tensor dtype / quantization type we cannot read
  | 'context-overflow' // the prompt does not fit the context
  | 'network' // an HTTP error while fetching weights
  | 'quota' // the browser refused to store the cache
  | 'aborted' // the caller aborted
  | 'busy' // a generation is already running on this engine
  | 'disposed' // the engine was disposed
  | 'invalid-argument' // a caller passed something the API does not accept
  | 'worker-load-failed' // the worker script could not be loaded (not emitted or not served by the app)
  | 'unsupported-input' // input this model cannot take (e.g. an image for a checkpoint without a vision tower)
  | 'device-lost' // the GPU device was lost (driver reset, out of memory, tab in the background): load again
  | 'internal'; // a bug: please report it

export class GemmaError extends Error {
  readonly code: GemmaErrorCode;
  constructor(code: GemmaErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'GemmaError';
    this.code = code;
  }
}

/** Plain-data form of an error, for crossing the worker boundary. */
export interface SerializedGemmaError {
  code: GemmaErrorCode;
  message: string;
}

export function serializeError(err: unknown): SerializedGemmaError {
  if (err instanceof GemmaError) return { code: err.code, message: err.message };
  if (err instanceof DOMException && err.name === 'AbortError') return { code: 'aborted', message: err.message };
  const message = err instanceof Error ? err.message : String(err);
  return { code: 'internal', message };
}

export function deserializeError(e: SerializedGemmaError): GemmaError {
  return new GemmaError(e.code, e.message);
}
