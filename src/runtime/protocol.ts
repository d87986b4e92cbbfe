/**
 * The types shared by the public API (main thread), the worker and the host-independent engine core:
 * messages, options, stream deltas, stats and the wire messages of one generation. Types only.
 */
import type { SerializedGemmaError } from '../errors.ts';
import type { LoadProgress } from '../io/progress.ts';
import type { ModelSize, RandomCheckpointOptions, SliceInfo } from '../model/family.ts';
import type { PlatformHints } from './loading/preflight.ts';
import type { ContentPart, MediaModality, MessageContent, WireMessage, WirePromptItem } from './content.ts';

export type { LoadProgress, LoadPhase } from '../io/progress.ts';
export type { ModelSize, RandomCheckpointOptions, SliceInfo } from '../model/family.ts';
export type * from './content.ts';

/**
 * One chat turn. `assistant` is written as Gemma's `model` role by the chat template. `content` is text, or parts in
 * any order: `{ type: 'text', text }`, `{ type: 'audio', audio }`, `{ type: 'input_audio', input_audio }`, ... (see
 * ContentPart; media is laid out as Hugging Face's Gemma3nProcessor does). With function calling, an assistant turn
 * may carry the calls it made (`toolCalls`) and a `tool` turn carries one call's result as text (its `toolCallId`
 * and the function's `name` are optional); both are rendered the documented way (src/runtime/tools/).
 */
export interface ChatMessage<Content extends MessageContent = MessageContent> {
  role: 'system' | 'user' | 'assistant' | 'tool';
  content: Content;
  /** assistant turns: the calls the model made (as the stream yielded them). */
  toolCalls?: ToolCall[];
  /** tool turns: the id of the call this is the result of. */
  toolCallId?: string;
  /** tool turns: the function's name. */
  name?: string;
}

/** A function the model may call (OpenAI's shape): `parameters` is a JSON schema of its arguments object. */
export interface ToolDeclaration {
  type: 'function';
  function: { name: string; description?: string; parameters?: unknown };
}

/**
 * 'auto': the model decides (once it starts a call, the rest is constrained to a valid call); 'none': no call
 * (the tools are not even declared); 'required': exactly one call to one of the tools; `{ name }`: exactly one call
 * to that tool. 'required' and `{ name }` are decoded under the call's grammar: the arguments always validate.
 */
export type ToolChoice = 'auto' | 'none' | 'required' | { name: string };

/** A call the model made, with its arguments parsed (they validate against the tool's `parameters`). */
export interface ToolCall {
  id: string;
  name: string;
  arguments: Record<string, unknown>;
}

/**
 * Constrained output: 'json_object' (any JSON object), 'json_schema' (JSON valid against `schema`; unsupported
 * keywords are refused with a GemmaError naming them, before any token), 'grammar' (an EBNF grammar in XGrammar's
 * dialect, `root ::= ...`), 'text' (no constraint).
 */
export type ResponseFormat = { type: 'text' } | { type: 'json_object' } | { type: 'json_schema'; schema: unknown } | { type: 'grammar'; grammar: string };

/** What `chat()` takes beyond sampling: function calling and structured output. Plain data (crosses to the worker). */
export interface ChatExtensions {
  /** Functions the model may call (see ToolDeclaration); calls arrive as `Delta.toolCalls`. */
  tools?: ToolDeclaration[];
  /** Default 'auto' (with tools). */
  toolChoice?: ToolChoice;
  /** Constrain the reply to JSON, a JSON schema or a grammar (see ResponseFormat). */
  responseFormat?: ResponseFormat;
}

/**
 * What to continue: a plain text prompt (tokenized with BOS, no chat template), token ids as-is, or a raw prompt of
 * token ids and parts (token-exact: text parts tokenized without BOS, each media clip as its begin token, soft-token
 * span and end token, nothing added around it).
 */
export type PromptInput = string | readonly number[] | readonly (number | ContentPart)[];

/** Sampling and stopping options of one generation. Every field is optional; the defaults are Gemma's. */
export interface GenerateOptions {
  /** Most tokens to generate (default 1024). Generation also stops at the end of the context. */
  maxNewTokens?: number;
  /** Softmax temperature; 0 = greedy (default 1.0, Gemma's generation_config). */
  temperature?: number;
  /** Sample from the k most likely tokens (default 64); 0 or more than 1024 = the GPU sampler's maximum, 1024. */
  topK?: number;
  /** Nucleus sampling mass (default 0.95); 1 = off. */
  topP?: number;
  /** Seed of the sampler's random stream; same seed + same prompt + same options = same tokens. Default: random. */
  seed?: number;
  /** Stop as soon as the text contains one of these strings; the string itself is not emitted. */
  stop?: string[];
  /**
   * Also stop at these token ids (added to the model's own stop ids: `<eos>` 1 and `<end_of_turn>` 106 for Gemma).
   * The stop token is not emitted.
   */
  stopTokenIds?: number[];
}

/** Options of `chat()` / `generate()` on the main thread: GenerateOptions plus cancellation. */
export interface StreamOptions extends GenerateOptions {
  /** Aborting stops generation within one token; the stream then ends with finishReason 'abort'. */
  signal?: AbortSignal;
}

/** Options of `chat()`: sampling, cancellation, function calling and structured output. */
export interface ChatOptions extends StreamOptions, ChatExtensions {}

/** A piece of the streamed reply. `text` is always whole characters (never half of a UTF-8 sequence). */
export interface Delta {
  /** New text (may be '' when the tokens so far end inside a character or may start a stop string). */
  text: string;
  /** The token ids generated since the previous delta (stop tokens excluded). */
  tokenIds: number[];
  /** Function calls completed in this delta (chat with `tools`), each as soon as its JSON closed. */
  toolCalls?: ToolCall[];
}

/** 'tool_calls': the reply is one or more function calls (see Delta.toolCalls). */
export type FinishReason = 'stop' | 'length' | 'abort' | 'tool_calls';

/** What a generation knows once its prompt is tokenized, before prefill. */
export interface PromptInfo {
  /** Tokens of the prompt (the whole conversation for chat). */
  promptTokens: number;
  /** Of those, the ones whose KV cache is reused from the previous turn. */
  reusedTokens: number;
}

/** Numbers about one finished generation. */
export interface GenerationStats {
  /** Tokens of the prompt (the whole conversation for chat). */
  promptTokens: number;
  /** Prompt tokens whose KV cache was reused from the previous turn (not recomputed). */
  reusedTokens: number;
  /** Prompt tokens actually run through the model (= promptTokens - reusedTokens). */
  prefillTokens: number;
  /** Tokens sampled, including a final stop token. */
  newTokens: number;
  /** From the call to the first sampled token (tokenization + prefill + first sample), in ms. */
  timeToFirstTokenMs: number;
  /** Prefill throughput, tokens/s (0 when nothing was prefilled). */
  prefillTokensPerSecond: number;
  /** Decode throughput after the first token: (newTokens - 1) / time from first to last token. */
  decodeTokensPerSecond: number;
  /** Whole generation, in ms. */
  totalMs: number;
  /** ms the media encoders spent on this prompt's audio / images (feature extraction + tower; absent when none ran). */
  encodeMs?: number;
  /**
   * 'stop': a stop token or string; 'length': maxNewTokens or the context end; 'abort': the caller aborted;
   * 'tool_calls': the reply was function calls.
   */
  finishReason: FinishReason;
  /**
   * Only with `responseFormat` or `tools`: whether the constrained output is whole. true: the JSON parses and
   * validates (the grammar reached its end) and every call closed. false: it was cut off (by maxNewTokens, the
   * context, a stop string or an abort): the text is a prefix, never parse it as the answer; a cut-off call is
   * not yielded.
   */
  complete?: boolean;
}

/** What a loaded model reports about itself. */
export interface ModelInfo {
  /** Vocabulary size of the LM head. */
  vocabSize: number;
  /** Positions the KV cache holds (prompt + reply). */
  maxContext: number;
  /** The GPU adapter, for logs. */
  adapterName: string;
  /** Whether text (tokenizer + chat template) is available; without it only token-id prompts work. */
  hasTokenizer: boolean;
  /**
   * Memory the model holds: GPU buffers (weights, KV cache, scratch, the buffers its kernels own) and host memory
   * (PLE table) of the decoder, and the GPU bytes of each media encoder while it is loaded (`encoders.audio`: weights,
   * activations and its kernels' buffers, the encoder's memory().gpu.total), kept current by the client.
   */
  memory?: { gpuBytes: number; hostBytes: number; encoders?: Partial<Record<MediaModality, number>> };
  /**
   * The media this model can take ('audio', 'image'): its config.json declares the encoder. (A checkpoint that
   * declares one without its tensors, e.g. a test checkpoint with a text + audio subset, fails with
   * 'unsupported-input' when such a part is sent.)
   */
  media?: MediaModality[];
  /** GPU bytes in use (= memory.gpuBytes), when the model reports it. */
  gpuBytes?: number;
  /**
   * The offline cache: 'hit' (loaded from it, no network), 'stored' (downloaded and now cached), 'not-stored'
   * (downloaded, but it could not be cached: see `warnings`), 'off' (not cached: `cache: false`, picked files,
   * random checkpoints, or no storage in this context).
   */
  cache?: 'hit' | 'stored' | 'not-stored' | 'off';
  /** Things that did not stop the load but you may want to tell the user (e.g. the cache quota was full). */
  warnings?: string[];
  /** The sub-model loaded when the request asked for a `size` (layers, FFN widths, effective parameters). */
  slice?: SliceInfo;
  /**
   * Set when the GPU device was lost after loading (driver reset, out of memory, a mobile tab in the background):
   * every generation then fails with GemmaError('device-lost') until `client.reload()`.
   */
  deviceLost?: { message: string };
}

/** What the worker tells the page outside any generation. */
export type WorkerEvent = { type: 'device-lost'; message: string };

/**
 * Which model to load:
 * - a Hugging Face repo id ('google/gemma-3n-E2B-it'; gated repos need `token`), or `{ hub, revision?, token? }`;
 * - a URL of a checkpoint folder (config.json, *.safetensors, tokenizer files) or of a `.gguf` file;
 * - `{ files }`: picked or dropped files (a checkpoint folder, or one .gguf plus tokenizer files);
 * - `{ randomCheckpoint }`: random weights at real shapes, generated on the spot (gibberish by design);
 * - anything else a custom worker's model factory understands (`CustomModelSpec`).
 */
export type ModelSpec =
  | string
  | { hub: string; revision?: string; token?: string }
  | { files: File[] }
  | { randomCheckpoint: RandomCheckpointOptions }
  | CustomModelSpec;

/** A model description for a custom model factory (exposeGemmaWorker(factory)); the default factory rejects it. */
export interface CustomModelSpec {
  [key: string]: unknown;
}

/** The main thread -> worker request to load a model. Plain data (structured-clonable). */
export interface LoadRequest {
  /** The checkpoint (see ModelSpec); parsed once by src/runtime/loading/model-source.ts. */
  model: ModelSpec;
  /**
   * Where tokenizer.json and tokenizer_config.json are: a folder URL, a Hugging Face repo id or
   * `{ hub, revision?, token? }` (gets `token` unless it has its own). Default: the model's own files, or for a .gguf
   * its own vocabulary and chat template. `false`: no tokenizer (token-id prompts only).
   */
  tokenizer?: string | false | { hub: string; revision?: string; token?: string };
  /** KV-cache length to allocate (default 4096, at most the checkpoint's limit). */
  contextLength?: number;
  /**
   * Weight format on the GPU: 'q4' (int4/int8 by tensor family, default), 'q8' (int8 where q4 has int4) or 'float'
   * (f32, f16 where supported). A converted model (`gemma3n-webgpu convert`) holds one mode: leave this out, or ask
   * for the mode it holds.
   */
  weights?: 'q4' | 'q8' | 'float';
  /**
   * MatFormer "Mix-n-Match" (Gemma 3n E4B): load a smaller model cut from the same files — a published
   * configuration ('E2B', 'E2.54B', …, 'E3.79B-block'; `google/gemma3n-slicing-configs`) or `{ skipLayers,
   * ffnWidths }` in E4B's layer numbering. Only the slice's bytes are downloaded, converted, cached and put on the
   * GPU; each size is its own cache entry, and a size inside a cached bigger one is served from it.
   */
  size?: ModelSize;
  /** A Hugging Face access token, for gated repos (`model: 'google/gemma-3n-E2B-it'` or `{ hub }`). */
  token?: string;
  /** Use f16 kernels where the adapter has shader-f16 (default true). */
  allowF16?: boolean;
  powerPreference?: GPUPowerPreference;
  /** Media encoders to load with the model instead of on first use (e.g. ['audio']). */
  preload?: MediaModality[];
  /**
   * Keep the converted model in the browser's offline cache (OPFS) and load it from there next time (default true
   * for URLs and Hugging Face repos; picked files and random checkpoints are never cached). The key is the model
   * id or URL, the revision and the weight mode. `false` neither reads nor writes the cache.
   */
  cache?: boolean;
  /**
   * The pre-flight memory check, before anything is downloaded (src/runtime/loading/preflight.ts): 'refuse'
   * (default) fails with `limit-too-small` when the model cannot fit this adapter or device (e.g. any Gemma 3n on
   * iOS); 'warn' loads anyway and puts the reason in ModelInfo.warnings; 'off' skips it.
   */
  memoryCheck?: 'refuse' | 'warn' | 'off';
  /** Filled in by loadGemma on the page: what the page can tell about the device (a worker sees less). */
  platform?: PlatformHints;
}

/** Messages the worker posts on a generation's MessagePort (worker -> main). */
export type StreamMessage =
  | { type: 'start'; prompt: PromptInfo }
  | { type: 'delta'; deltas: Delta[] }
  /**
   * A media encoder loading on first use, and the memory once it is in (and again before 'done' or 'error' when an
   * encoder grew: the audio tower allocates its activations on its first clip).
   */
  | { type: 'progress'; progress: LoadProgress }
  | { type: 'memory'; memory: NonNullable<ModelInfo['memory']> }
  | { type: 'done'; stats: GenerationStats }
  | { type: 'error'; error: SerializedGemmaError };

/** Messages the main thread posts on a generation's MessagePort (main -> worker). */
export type StreamControl = { type: 'abort' };

/** What a generation request carries across the boundary. */
export type GenerateRequest =
  | { kind: 'chat'; messages: WireMessage[]; options: GenerateOptions & ChatExtensions }
  | { kind: 'prompt'; prompt: string | WirePromptItem[]; options: GenerateOptions };

/** The API the worker exposes through comlink (see worker-host.ts). */
export interface WorkerApi {
  /** `onEvent` stays subscribed until dispose() (device loss is reported through it). */
  load(request: LoadRequest, onProgress?: (p: LoadProgress) => void, onEvent?: (e: WorkerEvent) => void): Promise<ModelInfo>;
  /** Aborts the load in progress (it then rejects with GemmaError('aborted'); nothing half-written is cached). */
  cancelLoad(): Promise<void>;
  /** Runs one generation; deltas, the final stats or the error arrive on `port` (see StreamMessage). */
  generate(port: MessagePort, request: GenerateRequest): Promise<void>;
  /** Forgets the KV cache (the next turn prefills everything). */
  reset(): Promise<void>;
  /** Loads a media encoder now (progress as at load); resolves with the memory after it. */
  preload(modality: MediaModality, onProgress?: (p: LoadProgress) => void): Promise<NonNullable<ModelInfo['memory']>>;
  /** Frees a media encoder's GPU memory (it loads again on next use); resolves with the memory after it. */
  unload(modality: MediaModality): Promise<NonNullable<ModelInfo['memory']>>;
  dispose(): Promise<void>;
}
