/**
 * A decoder on the GPU as a LanguageModel (src/model/language-model.ts), for any family whose forward pass follows
 * the shape below (Gemma 3n, Gemma 4): the family builds its forward pass (buffers, KV caches, recorded dispatches)
 * and its weights; this class holds the write position, feeds chunks, samples on the GPU (only the id comes back) and
 * says how far back the caches can be rewound. Family-neutral: nothing here knows a model's math. It knows nothing of
 * workers, the DOM or the conversation either: the engine (src/runtime/engine.ts) owns the token history.
 */
import type { GpuContext } from '../gpu/device.ts';
import { readF32, readU32, writeBuffer } from '../gpu/buffers.ts';
import { GemmaError } from '../errors.ts';
import type { KvCache } from '../kernels/kv-cache.ts';
import type { GemvActivations } from '../kernels/matmul.ts';
import { MAX_TOP_K, type SampleDispatch } from '../kernels/sample.ts';
import type { FeedInput, LanguageModel, MemoryReport, SamplingParams } from './language-model.ts';
import type { ConvertedTensor } from './converted-tensor.ts';
import type { FamilyLoadOptions, WeightMode } from './family.ts';
import type { Checkpoint } from '../io/checkpoint.ts';

/** How a GPU decoder of any family loads (each family's `load(ctx, checkpoint, options)`). */
export interface DecoderLoadOptions {
  /**
   * 'float' (f32, f16 on shader-f16 adapters) or 'q4' (quantized on load by the family's quant-plan.ts: Gemma 3n
   * llama.cpp's Q4_K_M mix, Gemma 4 the same with attention int8). Default 'q4'.
   */
  weights?: WeightMode;
  /** Longest sequence (prompt + generated) the KV cache holds. Default 4096. */
  maxContext?: number;
  /** Prefill chunk size (tokens per step). Default 64. */
  chunk?: number;
  /** Called as tensors load: (done, total); ends with done === total. */
  onProgress?: (done: number, total: number) => void;
  /** Each converted tensor, as soon as it exists (the offline cache's writer; see converted-tensor.ts). */
  onConverted?: (t: ConvertedTensor) => Promise<void>;
  /** Pipeline compilation (after the weights): called with false when it starts and true when it is done. */
  onCompile?: (done: boolean) => void;
  /** Synthetic weights drawn on the GPU (memory accounting at real sizes; nothing is read from the checkpoint). */
  random?: boolean;
  /** Checked between tensors: an aborted load frees what it made and rejects with GemmaError('aborted'). */
  signal?: AbortSignal;
  /**
   * Keep the per-layer-embedding table on the GPU (Gemma 3n E2B q4: +1.08 GB of GPU memory) instead of in host memory
   * with per-step uploads of the current tokens' rows (the default, as Gemma 3n and 4 intend). Same logits either way.
   */
  pleOnGpu?: boolean;
  /**
   * Decode GEMV activations for quantized weights: 'f32' (exact), 'int8' (per-block int8, integer products; ~0.5 %
   * of a projection's output RMS added), 'auto' (default: per adapter, src/kernels/matmul.ts MatmulOptions).
   */
  activations?: GemvActivations;
}

/** Which logits the GPU sampler may choose from: the text vocabulary ('text'), or every id ('all'). */
export type SampleRange = 'text' | 'all';

/** What a family's forward pass provides (all buffers preallocated; `run` records and submits one step). */
export interface DecoderForward {
  readonly opts: { readonly chunk: number; readonly maxContext: number };
  /** Per layer: the KV cache it owns (undefined for KV-shared layers). */
  readonly caches: ReadonlyArray<KvCache | undefined>;
  /** Scratch GPU bytes (activations, logits). */
  readonly scratchBytes: number;
  /** GPU bytes of the buffers its kernels own (each kernel's gpuBytes: parameters, placeholders, kernel scratch). */
  readonly kernelBytes: number;
  /** Softcapped logits [V] of the last position of the last step. */
  readonly lastLogits: GPUBuffer;
  /** Softcapped logits [T, V] of every position (steps run with allLogits). */
  readonly allLogits: GPUBuffer;
  /** u32: the token the last sampling dispatch chose. */
  readonly nextToken: GPUBuffer;
  /** Both samplers are bound to `tokenMask` (SampleArgs.mask) and honour it while masked. */
  readonly samplers: Record<SampleRange, SampleDispatch>;
  /** Allowed ids of constrained decoding: a packed bitmask of ceil(V / 32) words (GpuDecoderModel uploads it). */
  readonly tokenMask: GPUBuffer;
  /** Runs `input` at positions p0.. (and, with `sample`, samples the next token) in one submission. */
  run(input: FeedInput, p0: number, opts: { allLogits?: boolean; sample?: SampleRange }): void;
  /** Samples from the current lastLogits into nextToken (one small submission). */
  sample(range: SampleRange): void;
  destroy(): void;
}

/**
 * Sampling of the next token on the GPU (src/kernels/sample.ts): only the id is read back. Defaults are Gemma's
 * generation_config (temperature 1, top-k 64, top-p 0.95).
 */
export interface SampleOptions {
  /** ≤ 0: greedy argmax (ties → lowest id). Default 1. */
  temperature?: number;
  /** Keep the k most likely ids; 0 = the kernel's maximum (1024). Default 64. */
  topK?: number;
  /** Nucleus mass in (0, 1]; 1 = off. Default 0.95. */
  topP?: number;
  /** RNG seed; with `step` it fixes the draw (counter-based: same seed + step + logits → same token). Default 0. */
  seed?: number;
  /** RNG counter; use a new one per generated token. Default: the number of cached tokens (the position sampled). */
  step?: number;
  /**
   * Allow ids outside the text vocabulary (the 'all' sampler): Gemma 3n's multimodal ids and the LM head's pad-row
   * copies (docs/gemma3n-formats.md §2.6, trap 12), masked by default. A family with no such ids (Gemma 4) samples
   * every id either way. `greedyToken()` is the unmasked argmax, as HF generate.
   */
  allowMultimodal?: boolean;
  /**
   * Allowed ids (constrained decoding): a packed bitmask, bit id & 31 of word id >> 5, ceil(vocabSize / 32) words.
   * Temperature, top-k and top-p then apply within the allowed set. Default: every id (the unmasked pipelines).
   */
  mask?: Uint32Array;
}

export interface GpuDecoderParts {
  vocabSize: number;
  /** Width of a soft-token row (the hidden size). */
  embeddingWidth: number;
  /** GPU bytes of the weights. */
  weightBytes: number;
  /** Host bytes held (the PLE table). */
  hostBytes: number;
  /** Frees the weights. */
  destroyWeights(): void;
}

export class GpuDecoderModel implements LanguageModel {
  readonly vocabSize: number;
  readonly maxContext: number;
  readonly maxChunk: number;
  readonly embeddingWidth: number;
  /** Positions written (the next feed starts here). */
  private written = 0;
  /** Tokens in the last fed chunk (the rows of `readLogits`). */
  private lastChunk = 0;
  private lastHadAllLogits = false;
  /** Whether the samplers currently run their masked pipelines. */
  private masked = false;
  private disposed = false;

  protected constructor(
    protected readonly ctx: GpuContext,
    protected readonly fwd: DecoderForward,
    private readonly parts: GpuDecoderParts,
  ) {
    this.vocabSize = parts.vocabSize;
    this.maxContext = fwd.opts.maxContext;
    this.maxChunk = fwd.opts.chunk;
    this.embeddingWidth = parts.embeddingWidth;
  }

  get length(): number {
    return this.written;
  }

  async feed(input: FeedInput, options: { allLogits?: boolean } = {}): Promise<void> {
    this.submit(input, options.allLogits ?? false);
    await this.ctx.device.queue.onSubmittedWorkDone();
  }

  async readLogits(): Promise<Float32Array[]> {
    this.check();
    if (!this.lastHadAllLogits) throw new GemmaError('internal', 'readLogits(): the last chunk was fed without allLogits');
    const V = this.vocabSize;
    const flat = await readF32(this.ctx.device, this.fwd.allLogits, this.lastChunk * V);
    return Array.from({ length: this.lastChunk }, (_, t) => flat.slice(t * V, (t + 1) * V));
  }

  async sample(params: SamplingParams): Promise<number> {
    const mask = typeof params.mask === 'function' ? await params.mask() : params.mask;
    return this.sampleNext({ ...samplingOptions(params, this.written), mask: mask ?? undefined });
  }

  async step(id: number, params: SamplingParams): Promise<number> {
    if (typeof params.mask !== 'function') return this.feedAndSample([id], { ...samplingOptions(params, this.written + 1), mask: params.mask });
    // A mask computed on demand: submit the layers first, compute the mask while the GPU runs them, then upload it
    // and sample in a second small submission (the queue orders it after the forward pass).
    this.submit({ ids: [id] }, false);
    const mask = await params.mask();
    const range = this.setSampling({ ...samplingOptions(params, this.written), mask: mask ?? undefined });
    this.fwd.sample(range);
    return this.readToken();
  }

  rewindableTo(n: number): number {
    if (!(Number.isInteger(n) && n >= 0)) throw new GemmaError('invalid-argument', `rewindableTo(${n}): expected a non-negative integer`);
    if (n >= this.written) return this.written;
    // A sliding layer's ring holds the last `capacity` positions; continuing at n needs the window before n intact.
    const ring = this.fwd.caches.find((c) => c?.kind === 'sliding');
    const clobbered = ring !== undefined && this.written - n > ring.capacity - ring.window;
    return clobbered ? 0 : n;
  }

  rewind(n: number): void {
    this.check();
    if (this.rewindableTo(n) !== n) {
      throw new GemmaError('internal', `rewind(${n}): the caches hold ${this.written} positions and can be rewound to ${this.rewindableTo(n)} at most`);
    }
    this.written = n;
  }

  /** Softcapped logits of the last fed position (read back). */
  async logits(): Promise<Float32Array> {
    this.check();
    return readF32(this.ctx.device, this.fwd.lastLogits, this.vocabSize);
  }

  /**
   * Feeds `ids` after the written positions in chunks (a convenience for tests and benchmarks; the engine feeds
   * chunk by chunk itself). With `allLogits`, returns the logits of every fed position.
   */
  async prefill(ids: readonly number[], opts: { allLogits?: boolean } = {}): Promise<Float32Array[] | undefined> {
    const out: Float32Array[] = [];
    for (let s = 0; s < ids.length; s += this.maxChunk) {
      await this.feed({ ids: ids.slice(s, s + this.maxChunk) }, opts);
      if (opts.allLogits) out.push(...(await this.readLogits()));
    }
    return opts.allLogits ? out : undefined;
  }

  /** Argmax over ALL ids of the last position's logits (as HF generate), on the GPU. */
  async greedyToken(): Promise<number> {
    return this.sampleNext({ temperature: 0, allowMultimodal: true });
  }

  /** Samples the token after the last fed position on the GPU (see SampleOptions); only the id comes back. */
  async sampleNext(opts: SampleOptions = {}): Promise<number> {
    this.check();
    if (this.written === 0) throw new GemmaError('invalid-argument', 'sampleNext: nothing was fed yet');
    this.fwd.sample(this.setSampling(opts));
    return this.readToken();
  }

  /**
   * Feeds `ids` (a decode step: usually one token; longer inputs are fed in chunks) and samples the next token in the
   * same submission as the last chunk: the fused decode step. Returns the sampled id; `step` defaults to the position
   * after feeding.
   */
  async feedAndSample(ids: readonly number[], opts: SampleOptions = {}): Promise<number> {
    const lastStart = Math.max(0, ids.length - 1 - ((ids.length - 1) % this.maxChunk));
    if (lastStart > 0) await this.prefill(ids.slice(0, lastStart));
    const range = this.setSampling({ ...opts, step: opts.step ?? this.written + ids.length - lastStart });
    this.submit({ ids: ids.slice(lastStart) }, false, range);
    return this.readToken();
  }

  memory(): MemoryReport {
    const kvCache = this.fwd.caches.reduce((s, c) => s + (c ? c.k.size + c.v.size : 0), 0);
    const weights = this.parts.weightBytes;
    const scratch = this.fwd.scratchBytes;
    const kernels = this.fwd.kernelBytes;
    return { gpu: { weights, kvCache, scratch, kernels, total: weights + kvCache + scratch + kernels }, host: { total: this.parts.hostBytes } };
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.fwd.destroy();
    this.parts.destroyWeights();
  }

  private check(): void {
    if (this.disposed) throw new GemmaError('disposed', 'this model was disposed');
  }

  /** A constraint's mask: one bit per logit row, and at least one id allowed (else the sampler has nothing to pick). */
  private checkMask(mask: Uint32Array | undefined): Uint32Array | null {
    if (!mask) return null;
    const words = Math.ceil(this.vocabSize / 32);
    if (mask.length !== words) throw new GemmaError('internal', `sampling mask of ${mask.length} words; the vocabulary of ${this.vocabSize} needs ${words}`);
    let any = 0;
    for (let i = 0; i < words; i++) any |= mask[i];
    if (any === 0) throw new GemmaError('internal', 'sampling mask allows no token');
    return mask;
  }

  /**
   * Uploads the allowed ids of the next sample, or (null) switches the samplers back to their unmasked pipelines:
   * unconstrained sampling uploads and reads nothing for the mask.
   */
  private setMask(mask: Uint32Array | null): void {
    if (mask) writeBuffer(this.ctx.device, this.fwd.tokenMask, mask);
    if (this.masked === (mask !== null)) return;
    this.masked = mask !== null;
    for (const s of new Set(Object.values(this.fwd.samplers))) s.setMasked(this.masked);
  }

  /** Records and submits one chunk at the write position (nothing is awaited). */
  private submit(input: FeedInput, allLogits: boolean, sample?: SampleRange): void {
    this.check();
    const n = input.ids.length;
    if (n < 1 || n > this.maxChunk) throw new GemmaError('internal', `feed: ${n} tokens in one chunk (1..${this.maxChunk})`);
    if (this.written + n > this.maxContext) {
      throw new GemmaError('context-overflow', `${this.written} cached + ${n} new tokens exceed the context of ${this.maxContext}`);
    }
    this.fwd.run(input, this.written, { allLogits, sample });
    this.written += n;
    this.lastChunk = n;
    this.lastHadAllLogits = allLogits;
  }

  private setSampling(opts: SampleOptions): SampleRange {
    const range: SampleRange = opts.allowMultimodal ? 'all' : 'text';
    const s = this.fwd.samplers[range];
    try {
      s.setSampling({ temperature: opts.temperature ?? 1, topK: opts.topK ?? 64, topP: opts.topP ?? 0.95 });
    } catch (err) {
      throw new GemmaError('invalid-argument', `sampling options ${JSON.stringify(opts)}: ${(err as Error).message}`);
    }
    s.setSeed(opts.seed ?? 0);
    s.setStep(opts.step ?? this.written);
    this.setMask(this.checkMask(opts.mask));
    return range;
  }

  private async readToken(): Promise<number> {
    return (await readU32(this.ctx.device, this.fwd.nextToken, 1))[0];
  }
}

/**
 * The engine's sampling parameters as GPU sampler options. Greedy (temperature 0) is the argmax over every id, as
 * HF generate; sampling stays in the text vocabulary. The engine's uniform random number becomes the sampler's seed
 * and the position its counter, so an engine seed reproduces its tokens.
 */
function samplingOptions(p: SamplingParams, position: number): SampleOptions {
  if (p.temperature <= 0) return { temperature: 0, allowMultimodal: true };
  return {
    temperature: p.temperature,
    topK: p.topK > 0 && p.topK <= MAX_TOP_K ? p.topK : 0,
    topP: p.topP,
    seed: Math.floor(p.random * 4294967296) >>> 0,
    step: position,
  };
}

/**
 * The shape of every family's `Model.load`: the weights, then the forward pass (pipeline compilation, reported through
 * `onCompile`); if building the forward pass fails, or the load is aborted meanwhile, the weights are freed.
 */
export async function buildDecoder<W, F extends DecoderForward>(
  checkpointName: string,
  opts: DecoderLoadOptions,
  loadWeights: () => Promise<W>,
  createForward: (weights: W) => Promise<F>,
  destroyWeights: (weights: W) => void,
): Promise<{ weights: W; fwd: F }> {
  const weights = await loadWeights();
  opts.onCompile?.(false);
  let fwd: F;
  try {
    fwd = await createForward(weights);
    if (opts.signal?.aborted) {
      fwd.destroy();
      throw new GemmaError('aborted', `Loading ${checkpointName} was aborted.`);
    }
  } catch (err) {
    destroyWeights(weights);
    throw err;
  }
  opts.onCompile?.(true);
  return { weights, fwd };
}

/** Tokens per prefill chunk of the families' default loads: sizes the sliding-window rings and the activations. */
export const PREFILL_CHUNK = 64;

/**
 * A family's `load()` body (src/model/family.ts): the registry's options as DecoderLoadOptions (context capped at the
 * checkpoint's `maxPositions`), and a failure that is not already a GemmaError (a GPU out-of-memory or validation
 * error while creating buffers) reported with what was being loaded.
 */
export async function loadFamilyDecoder<M>(checkpoint: Checkpoint, options: FamilyLoadOptions, maxPositions: number, load: (opts: DecoderLoadOptions) => Promise<M>): Promise<M> {
  try {
    return await load({
      weights: options.weights,
      maxContext: Math.min(options.maxContext, maxPositions),
      chunk: PREFILL_CHUNK,
      onProgress: options.onTensor,
      onConverted: options.onConverted,
      onCompile: options.onCompile,
      random: options.random,
      signal: options.signal,
    });
  } catch (err) {
    if (err instanceof GemmaError) throw err;
    throw new GemmaError('internal', `Loading ${checkpoint.name} onto the GPU failed: ${(err as Error)?.message ?? err}`, { cause: err });
  }
}
