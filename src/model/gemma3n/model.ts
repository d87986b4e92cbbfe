/**
 * Gemma3nModel: the engine core's model object. Takes a GpuContext and a Checkpoint, knows nothing of workers or
 * the DOM. Holds the token history of its KV cache, so callers can prefill, step, reuse a prefix (truncate) and
 * read logits only when they ask.
 */
import type { GpuContext } from '../../gpu/device.ts';
import { readF32, readU32 } from '../../gpu/buffers.ts';
import type { Checkpoint } from '../../io/checkpoint.ts';
import { GemmaError } from '../../errors.ts';
import { parseGemma3nConfig, type Gemma3nConfig } from './config.ts';
import { loadWeights, destroyWeights, type ConvertedTensor, type ModelWeights } from './weights.ts';
import { Gemma3nForward, type SampleRange } from './forward.ts';
import type { WeightMode } from './quant-plan.ts';

export interface LoadOptions {
  /** 'float' (f32, f16 on shader-f16 adapters) or 'q4' (llama.cpp's Q4_K_M mix, quantized on load: quant-plan.ts). Default 'q4'. */
  weights?: WeightMode;
  /** Longest sequence (prompt + generated) the KV cache holds. Default 4096. */
  maxContext?: number;
  /** Prefill chunk size (tokens per step). Default 64. */
  chunk?: number;
  /** Called as tensors load: (done, total); ends with done === total. */
  onProgress?: (done: number, total: number) => void;
  /** Each converted tensor, as soon as it exists (the offline cache's writer; see weights.ts ConvertedTensor). */
  onConverted?: (t: ConvertedTensor) => Promise<void>;
  /** Pipeline compilation (after the weights): called with false when it starts and true when it is done. */
  onCompile?: (done: boolean) => void;
  /** Synthetic weights drawn on the GPU (memory accounting at real sizes; nothing is read from the checkpoint). */
  random?: boolean;
  /**
   * Decode GEMV activations for quantized weights: 'f32' (exact), 'int8' (per-block int8, integer products; ~0.5 %
   * of a projection's output RMS added), 'auto' (default: per adapter, src/kernels/matmul.ts MatmulOptions).
   */
  activations?: 'auto' | 'f32' | 'int8';
  /**
   * Keep the per-layer-embedding table on the GPU (E2B q4: +1.08 GB of GPU memory) instead of in host memory with
   * per-step uploads of the current tokens' rows (the default, as Gemma 3n intends). Same logits either way.
   */
  pleOnGpu?: boolean;
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
   * Allow ids ≥ vocab_size_per_layer_input: multimodal (image/audio) tokens, and in real Gemma 3n checkpoints the
   * LM head's pad-row copies 262144..262399 (formats doc §2.6, trap 12). A text chat must never emit them, so the
   * default is false (they are masked before sampling). `greedyToken()` is the unmasked argmax, as HF generate.
   */
  allowMultimodal?: boolean;
}

export interface MemoryReport {
  /** GPU bytes by group. */
  gpu: { weights: number; kvCache: number; scratch: number; total: number };
  /** Bytes kept in host memory (the PLE table; it is also counted in gpu.weights when GPU-resident). */
  host: { pleTable: number };
}

export class Gemma3nModel {
  /** Tokens whose K/V are in the cache, in order (position = index). */
  private history: number[] = [];
  private disposed = false;

  private constructor(
    private readonly ctx: GpuContext,
    readonly config: Gemma3nConfig,
    readonly weightMode: WeightMode,
    private readonly weights: ModelWeights,
    private readonly fwd: Gemma3nForward,
  ) {}

  static async load(ctx: GpuContext, checkpoint: Checkpoint, opts: LoadOptions = {}): Promise<Gemma3nModel> {
    const config = parseGemma3nConfig(checkpoint.config);
    const mode = opts.weights ?? 'q4';
    const maxContext = opts.maxContext ?? 4096;
    const chunk = Math.min(opts.chunk ?? 64, maxContext);
    const weights = await loadWeights(ctx, checkpoint, config, { mode, onTensor: opts.onProgress, onConverted: opts.onConverted, random: opts.random, pleOnGpu: opts.pleOnGpu });
    opts.onCompile?.(false);
    let fwd: Gemma3nForward;
    try {
      fwd = await Gemma3nForward.create(ctx, config.text, weights, { chunk, maxContext, activations: opts.activations });
    } catch (err) {
      destroyWeights(weights);
      throw err;
    }
    opts.onCompile?.(true);
    return new Gemma3nModel(ctx, config, mode, weights, fwd);
  }

  /** Tokens currently cached. */
  get length(): number {
    return this.history.length;
  }

  get maxContext(): number {
    return this.fwd.opts.maxContext;
  }

  private check(): void {
    if (this.disposed) throw new GemmaError('disposed', 'this model was disposed');
  }

  /**
   * Feeds `ids` after the cached tokens, in chunks. With `allLogits`, returns the logits of every fed position
   * ([ids.length][V], read back per chunk); otherwise returns nothing and leaves the last position's logits on the
   * GPU (`logits()`, `sampleNext()`, `greedyToken()`).
   */
  async prefill(ids: number[], opts: { allLogits?: boolean } = {}): Promise<Float32Array[] | undefined> {
    return this.feed(ids, opts.allLogits ?? false);
  }

  private async feed(ids: number[], allLogits: boolean, sample?: SampleRange): Promise<Float32Array[] | undefined> {
    this.check();
    if (ids.length === 0) return allLogits ? [] : undefined;
    if (this.history.length + ids.length > this.maxContext) {
      throw new GemmaError('context-overflow', `${this.history.length} cached + ${ids.length} new tokens exceed the context of ${this.maxContext}`);
    }
    const V = this.config.text.vocabSize;
    const out: Float32Array[] = [];
    const C = this.fwd.opts.chunk;
    for (let s = 0; s < ids.length; s += C) {
      const part = ids.slice(s, s + C);
      const last = s + C >= ids.length;
      this.fwd.run(part, this.history.length, { allLogits, sample: last ? sample : undefined });
      this.history.push(...part);
      if (allLogits) {
        const flat = await readF32(this.ctx.device, this.fwd.allLogits, part.length * V);
        for (let t = 0; t < part.length; t++) out.push(flat.slice(t * V, (t + 1) * V));
      }
    }
    return allLogits ? out : undefined;
  }

  /** Feeds one token (decode). */
  async step(id: number): Promise<void> {
    await this.prefill([id]);
  }

  /** Softcapped logits of the last fed position (read back). */
  async logits(): Promise<Float32Array> {
    this.check();
    return readF32(this.ctx.device, this.fwd.lastLogits, this.config.text.vocabSize);
  }

  /** Argmax over ALL ids of the last position's logits (as HF generate; multimodal ids included), on the GPU. */
  async greedyToken(): Promise<number> {
    return this.sampleNext({ temperature: 0, allowMultimodal: true });
  }

  /** Samples the token after the last fed position on the GPU (see SampleOptions); only the id is read back. */
  async sampleNext(opts: SampleOptions = {}): Promise<number> {
    this.check();
    if (this.history.length === 0) throw new GemmaError('invalid-argument', 'sampleNext: nothing was fed yet');
    this.fwd.sample(this.setSampling(opts));
    return this.readToken();
  }

  /**
   * Feeds `ids` (a decode step: usually one token) and samples the next token in the same submission: the fused
   * decode step. Returns the sampled id; `step` defaults to the cache length after feeding.
   */
  async feedAndSample(ids: number[], opts: SampleOptions = {}): Promise<number> {
    this.check();
    if (ids.length === 0) return this.sampleNext(opts);
    const range = this.setSampling({ ...opts, step: opts.step ?? this.history.length + ids.length });
    await this.feed(ids, false, range);
    return this.readToken();
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
    s.setStep(opts.step ?? this.history.length);
    return range;
  }

  private async readToken(): Promise<number> {
    return (await readU32(this.ctx.device, this.fwd.nextToken, 1))[0];
  }

  /**
   * Generation after `prompt` (fed after whatever is cached), sampling on the GPU with `sampling` (default: greedy
   * over every id, as HF generate). Each decode step feeds the last token and samples the next in one submission.
   * Returns the new tokens.
   */
  async generate(prompt: number[], maxNewTokens: number, opts: { stopIds?: number[]; sampling?: SampleOptions } = {}): Promise<number[]> {
    const sampling = opts.sampling ?? { temperature: 0, allowMultimodal: true };
    const out: number[] = [];
    if (maxNewTokens <= 0) return out;
    let next = await this.feedAndSample(prompt, sampling);
    for (;;) {
      out.push(next);
      if (opts.stopIds?.includes(next) || out.length === maxNewTokens) return out;
      next = await this.feedAndSample([next], sampling);
    }
  }

  /** Greedy generation (argmax over every id) after `prompt`. Returns the new tokens. */
  async generateGreedy(prompt: number[], maxNewTokens: number, stopIds: number[] = []): Promise<number[]> {
    return this.generate(prompt, maxNewTokens, { stopIds });
  }

  /** Forgets every cached token. */
  reset(): void {
    this.history = [];
  }

  /**
   * Keeps the first `n` cached tokens (multi-turn reuse: then prefill only the new ones). Full-attention caches keep
   * every position; a sliding layer's ring still holds positions n−window..n−1 unless later tokens overwrote their
   * slots — then the first n tokens are re-run (correct, costs one prefill).
   */
  async truncate(n: number): Promise<void> {
    this.check();
    if (!(Number.isInteger(n) && n >= 0)) throw new GemmaError('invalid-argument', `truncate(${n}): expected a non-negative integer`);
    if (n >= this.history.length) return;
    const written = this.history.length;
    const kept = this.history.slice(0, n);
    const ring = this.fwd.caches.find((c) => c?.kind === 'sliding');
    const clobbered = ring !== undefined && written - n > ring.capacity - ring.window;
    this.history = kept;
    if (clobbered && n > 0) {
      this.history = [];
      await this.prefill(kept);
    }
  }

  /** Cached token ids (copy). */
  tokens(): number[] {
    return this.history.slice();
  }

  memory(): MemoryReport {
    const kvCache = this.fwd.caches.reduce((s, c) => s + (c ? c.k.size + c.v.size : 0), 0);
    const weights = this.weights.gpuBytes;
    const scratch = this.fwd.scratchBytes;
    return { gpu: { weights, kvCache, scratch, total: weights + kvCache + scratch }, host: { pleTable: this.weights.pleTable.bytes } };
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.fwd.destroy();
    destroyWeights(this.weights);
  }
}


