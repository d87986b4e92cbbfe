/**
 * A tiny deterministic LanguageModel for engine tests. Its "KV cache" is the list of ids fed so far, and by
 * default the next token is a hash of the whole cache, so any mistake in the engine's cache bookkeeping
 * (reuse, truncation, positions) changes the output. `reply` scripts the tokens it samples instead.
 */
import type { FeedInput, LanguageModel, SamplingParams } from '../../src/model/language-model.ts';

function check(ok: boolean, message: string): void {
  if (!ok) throw new Error(`FakeModel: ${message}`);
}

export interface FakeModelOptions {
  vocabSize?: number;
  maxContext?: number;
  /** Tokens to sample in each generation, in order (then `after`, default 106 = end_of_turn). */
  reply?: number[];
  after?: number;
  /** Ids the hash-based sampler never returns (default: 0..3 and 105, 106). */
  avoid?: number[];
  /** Simulated GPU time per model call, in ms (a timer: the thread stays free). */
  delayMs?: number;
  /** Simulated compute per model call, in ms (a busy loop: the thread is blocked, as by real work). */
  spinMs?: number;
  /** Fixed compute per model call: this many iterations of an integer hash loop (same cost on any thread). */
  work?: number;
  /** The most a rewind keeps (simulates sliding-window ring buffers that cannot rewind far); 0 = recompute all. */
  keepLimit?: (requested: number, length: number) => number;
  /** Tokens per feed (default 512). */
  maxChunk?: number;
  /** Implement the fused step() (default true). */
  fusedStep?: boolean;
}

export class FakeModel implements LanguageModel {
  readonly vocabSize: number;
  readonly maxContext: number;
  readonly maxChunk: number;
  readonly embeddingWidth = 8;
  /** The ids in the cache. */
  cache: number[] = [];
  /** Every token ever run through the model (prefill or step). */
  processed = 0;
  /** Feed calls seen (their sizes), in order. */
  feeds: number[] = [];
  /** Soft-token rows fed, by absolute position. */
  softRows = new Map<number, Float32Array>();
  /** Sampling params seen, in order. */
  samples: SamplingParams[] = [];
  disposed = false;
  /** Keeps the `work` loop from being optimised away. */
  sink = 0;
  private k = 0;
  step?: (id: number, params: SamplingParams) => Promise<number>;

  constructor(private readonly opts: FakeModelOptions = {}) {
    this.vocabSize = opts.vocabSize ?? 262400;
    this.maxContext = opts.maxContext ?? 4096;
    this.maxChunk = opts.maxChunk ?? 512;
    if (opts.fusedStep ?? true) {
      this.step = async (id, params) => {
        await this.run([id]);
        return this.sample(params);
      };
    }
  }

  get length(): number {
    return this.cache.length;
  }

  async feed(input: FeedInput): Promise<void> {
    check(input.ids.length >= 1 && input.ids.length <= this.maxChunk, `feed of ${input.ids.length} tokens (chunk ${this.maxChunk})`);
    this.feeds.push(input.ids.length);
    for (const s of input.soft ?? []) {
      for (let i = 0; i < s.rows.length / this.embeddingWidth; i++) this.softRows.set(this.cache.length + s.offset + i, s.rows.slice(i * this.embeddingWidth, (i + 1) * this.embeddingWidth));
    }
    await this.run(input.ids);
  }

  async readLogits(): Promise<Float32Array[]> {
    throw new Error('FakeModel has no logits');
  }

  async sample(params: SamplingParams): Promise<number> {
    check(this.cache.length > 0, 'sample() before any prefill');
    check(params.random >= 0 && params.random < 1, `random ${params.random} not in [0, 1)`);
    this.samples.push(params);
    if (this.opts.reply) {
      const r = this.opts.reply;
      return this.k < r.length ? r[this.k++] : (this.opts.after ?? 106);
    }
    return this.hashNext(params);
  }

  rewindableTo(length: number): number {
    if (length >= this.cache.length) return this.cache.length;
    return this.opts.keepLimit ? Math.min(length, this.opts.keepLimit(length, this.cache.length)) : length;
  }

  rewind(length: number): void {
    check(length <= this.cache.length && this.rewindableTo(length) === length, `rewind(${length}) with ${this.cache.length} cached`);
    this.cache.length = length;
    for (const pos of [...this.softRows.keys()]) if (pos >= length) this.softRows.delete(pos);
    this.k = 0; // every generation starts with a rewind: the scripted reply restarts
  }

  dispose(): void {
    this.disposed = true;
  }

  private async run(ids: readonly number[]): Promise<void> {
    const startPos = this.cache.length;
    check(startPos + ids.length <= this.maxContext, `feeding past the context (${startPos + ids.length} > ${this.maxContext})`);
    if (this.opts.delayMs) await new Promise((r) => setTimeout(r, this.opts.delayMs));
    if (this.opts.spinMs) {
      const until = performance.now() + this.opts.spinMs;
      while (performance.now() < until);
    }
    if (this.opts.work) {
      let x = this.cache.length | 1;
      for (let i = 0; i < this.opts.work; i++) x = Math.imul(x ^ (x >>> 13), 0x5bd1e995) + i;
      this.sink ^= x;
    }
    this.cache.push(...ids);
    this.processed += ids.length;
  }

  /** Greedy: a hash of the cache; sampled: the hash shifted by a function of the random number. */
  private hashNext(params: SamplingParams): number {
    let h = 2166136261;
    for (const id of this.cache) h = Math.imul(h ^ id, 16777619) >>> 0;
    if (params.temperature > 0) h = (h + Math.floor(params.random * 1000)) >>> 0;
    const avoid = new Set(this.opts.avoid ?? [0, 1, 2, 3, 105, 106]);
    let id = 1000 + (h % 20000);
    while (avoid.has(id)) id++;
    return id;
  }
}
