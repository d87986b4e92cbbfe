/**
 * gemma3n-webgpu/core: the host-independent engine, for Node (with the `webgpu` package), for your own worker
 * (`exposeGemmaWorker`) and for tests. No DOM, no worker of its own.
 */
export { Engine, DEFAULT_OPTIONS, commonPrefixLength, type EngineParts, type EngineRunOptions } from './runtime/engine.ts';
export type { LanguageModel, SamplingParams } from './runtime/language-model.ts';
export { createTokenizer, fetchTokenizer, tokenizerFromTexts, type TextTokenizer, type TokenizerFiles } from './runtime/tokenizer.ts';
export { IncrementalDetokenizer } from './runtime/detokenizer.ts';
export { StopStringMatcher } from './runtime/stop-strings.ts';
export {
  createWorkerApi,
  exposeGemmaWorker,
  type LoadedModel,
  type ModelFactory,
  type ModelFactoryContext,
  type WorkerHostOptions,
} from './runtime/worker-host.ts';
export { gemma3nFactory, loadGemma3n } from './runtime/gemma3n-factory.ts';
export { Gemma3nLanguageModel } from './runtime/gemma3n-model.ts';
export { createGpuContext, type GpuContext, type DeviceOptions } from './gpu/device.ts';
export { GemmaError, serializeError, deserializeError, type GemmaErrorCode, type SerializedGemmaError } from './errors.ts';
export type * from './runtime/protocol.ts';
