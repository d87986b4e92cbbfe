/**
 * gemma3n-webgpu/core: the host-independent engine, for Node (with the `webgpu` package), for your own worker
 * (`exposeGemmaWorker`) and for tests. No DOM, no worker of its own. The engine streams the same GenerationStream the
 * page gets from `loadGemma()`.
 */
export { Engine, DEFAULT_OPTIONS, type EngineParts, type GenerationExtras } from './runtime/engine.ts';
export { GenerationStream } from './runtime/generation-stream.ts';
export { Prompt, commonPrefixLength, type PromptSegment, type TextSegment, type MediaSegment, type PositionKey } from './runtime/prompt.ts';
export type { TokenConstraint } from './runtime/token-constraint.ts';
export type { LanguageModel, SamplingParams, FeedInput, SoftTokens, MemoryReport } from './model/language-model.ts';
export { createTokenizer, tokenizerFromTexts, type TextTokenizer, type TokenizerFiles } from './runtime/tokenizer.ts';
export { IncrementalDetokenizer } from './runtime/detokenizer.ts';
export { StopStringMatcher } from './runtime/stop-strings.ts';
export { createWorkerApi, exposeGemmaWorker, type WorkerHostOptions } from './runtime/worker-host.ts';
export {
  defaultModelFactory,
  loadFromSource,
  loadModel,
  type LoadedModel,
  type ModelFactory,
  type ModelFactoryContext,
  type SourceLoadOptions,
} from './runtime/loading/model-factory.ts';
export { parseModelSource, parseTokenizerSource, type ModelSource, type TokenizerSource } from './runtime/loading/model-source.ts';
export { MODEL_FAMILIES, familyForConfig, openGgufCheckpoint } from './model/registry.ts';
export type { ModelFamily, WeightMode } from './model/family.ts';
export { createGpuContext, type GpuContext, type DeviceOptions } from './gpu/device.ts';
export { GemmaError, serializeError, deserializeError, type GemmaErrorCode, type SerializedGemmaError } from './errors.ts';
export type * from './runtime/protocol.ts';
