/**
 * The main-thread side of one generation: an async iterable of deltas fed by the worker's messages, plus a
 * `stats` promise. Generation starts when the stream is created, whether or not anyone iterates; leaving a
 * `for await` early (break, return, throw) aborts it.
 */
import { GemmaError } from '../errors.ts';
import type { Delta, GenerationStats, PromptInfo } from './protocol.ts';

export class GenerationStream implements AsyncIterable<Delta> {
  /** Resolves when generation ends (finishReason 'stop' | 'length' | 'abort'); rejects with a GemmaError. */
  readonly stats: Promise<GenerationStats>;
  /**
   * Resolves as soon as the prompt is known, before prefill: its length and how much of it the KV cache reuses (a
   * UI can show the context in use while tokens stream). Rejects if the generation fails before that.
   */
  readonly started: Promise<PromptInfo>;
  private resolveStarted!: (p: PromptInfo) => void;
  private rejectStarted!: (e: GemmaError) => void;
  private readonly queue: Delta[] = [];
  private ended = false;
  private error: GemmaError | undefined;
  private wake: (() => void) | undefined;
  private resolveStats!: (s: GenerationStats) => void;
  private rejectStats!: (e: GemmaError) => void;
  /** Set by the client: asks the worker to stop. */
  onAbort: () => void = () => {};

  constructor() {
    this.stats = new Promise<GenerationStats>((resolve, reject) => {
      this.resolveStats = resolve;
      this.rejectStats = reject;
    });
    this.started = new Promise<PromptInfo>((resolve, reject) => {
      this.resolveStarted = resolve;
      this.rejectStarted = reject;
    });
    // An error is reported through iteration too; don't let an unobserved `stats` crash the page.
    this.stats.catch(() => {});
    this.started.catch(() => {});
  }

  /** Stops generation within one token; the stream then ends normally with finishReason 'abort'. */
  abort(): void {
    if (!this.ended) this.onAbort();
  }

  /** Consumes the whole stream and returns the text. */
  async text(): Promise<string> {
    let text = '';
    for await (const d of this) text += d.text;
    return text;
  }

  [Symbol.asyncIterator](): AsyncIterator<Delta> {
    return {
      next: async (): Promise<IteratorResult<Delta>> => {
        for (;;) {
          const d = this.queue.shift();
          if (d) return { value: d, done: false };
          if (this.error) throw this.error;
          if (this.ended) return { value: undefined, done: true };
          await new Promise<void>((resolve) => (this.wake = resolve));
        }
      },
      return: async (): Promise<IteratorResult<Delta>> => {
        this.abort();
        return { value: undefined, done: true };
      },
    };
  }

  /** @internal */
  begin(info: PromptInfo): void {
    this.resolveStarted(info);
  }

  /** @internal */
  push(deltas: Delta[]): void {
    if (this.ended) return;
    this.queue.push(...deltas);
    this.notify();
  }

  /** @internal */
  finish(stats: GenerationStats): void {
    if (this.ended) return;
    this.ended = true;
    this.resolveStats(stats);
    this.notify();
  }

  /** @internal */
  fail(error: GemmaError): void {
    if (this.ended) return;
    this.ended = true;
    this.error = error;
    this.rejectStats(error);
    this.rejectStarted(error);
    this.notify();
  }

  get settled(): boolean {
    return this.ended;
  }

  private notify(): void {
    const w = this.wake;
    this.wake = undefined;
    w?.();
  }
}
