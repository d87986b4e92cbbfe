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
import { loadWeights, destroyWeights, type ModelWeights } from './weights.ts';
import { Gemma3nForward } from './forward.ts';
import type { WeightMode } from './quant-plan.ts';

export interface LoadOptions {
  /** 'float' (f32, f16 on shader-f16 adapters) or 'q4' (int4 + int8 by family, quant-plan.ts). Default 'q4'. */
  weights?: WeightMode;
  /** Longest sequence (prompt + generated) the KV cache holds. Default 4096. */
  maxContext?: number;
  /** Prefill chunk size (tokens per step). Default 64. */
  chunk?: number;
  /** Called as tensors load: (done, total). */
  onProgress?: (done: number, total: number) => void;
  /** Synthetic weights drawn on the GPU (memory accounting at real sizes; nothing is read from the checkpoint). */
  random?: boolean;
}

export interface MemoryReport {
  /** GPU bytes by group. */
  gpu: { weights: number; kvCache: number; scratch: number; total: number };
  /** Bytes kept off the GPU (the PLE table in host memory). */
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
    const weights = await loadWeights(ctx, checkpoint, config, { mode, onTensor: opts.onProgress, random: opts.random });
    const fwd = await Gemma3nForward.create(ctx, config.text, weights, { chunk, maxContext });
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
   * ([ids.length][V], read back per chunk); otherwise returns nothing and leaves the last position's logits and
   * greedy token on the GPU (`logits()`, `greedyToken()`).
   */
  async prefill(ids: number[], opts: { allLogits?: boolean } = {}): Promise<Float32Array[] | undefined> {
    this.check();
    if (ids.length === 0) return opts.allLogits ? [] : undefined;
    if (this.history.length + ids.length > this.maxContext) {
      throw new GemmaError('context-overflow', `${this.history.length} cached + ${ids.length} new tokens exceed the context of ${this.maxContext}`);
    }
    const V = this.config.text.vocabSize;
    const out: Float32Array[] = [];
    const C = this.fwd.opts.chunk;
    for (let s = 0; s < ids.length; s += C) {
      const part = ids.slice(s, s + C);
      this.fwd.run(part, this.history.length, opts.allLogits);
      this.history.push(...part);
      if (opts.allLogits) {
        const flat = await readF32(this.ctx.device, this.fwd.allLogits, part.length * V);
        for (let t = 0; t < part.length; t++) out.push(flat.slice(t * V, (t + 1) * V));
      }
    }
    return opts.allLogits ? out : undefined;
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

  /** Argmax of the last position's logits, computed on the GPU (only the id is read back). */
  async greedyToken(): Promise<number> {
    this.check();
    return (await readU32(this.ctx.device, this.fwd.nextToken, 1))[0];
  }

  /** Greedy generation after `prompt` (fed after whatever is cached). Returns the new tokens. */
  async generateGreedy(prompt: number[], maxNewTokens: number, stopIds: number[] = []): Promise<number[]> {
    await this.prefill(prompt);
    const out: number[] = [];
    for (let i = 0; i < maxNewTokens; i++) {
      const next = await this.greedyToken();
      out.push(next);
      if (stopIds.includes(next) || i === maxNewTokens - 1) break;
      await this.step(next);
    }
    return out;
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


