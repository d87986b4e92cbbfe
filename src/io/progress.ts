/**
 * Load progress: what the public API reports while a model loads. One event shape for every phase, so a UI can
 * draw one bar per phase (or one overall bar) without knowing where the bytes come from.
 */
import type { RetryNotice } from './http-source.ts';

/** The phases of a load, in order: 'device', then 'download' + 'quantize' (interleaved) or 'cache-read', then 'compile'. */
export type LoadPhase = 'device' | 'download' | 'quantize' | 'cache-read' | 'compile' | 'tokenizer';

/**
 * One progress event. Each phase on its own is monotonic and ends with exactly one event where loaded === total.
 * - 'device': opening the GPU (0/1, then 1/1 with the adapter's name as `file`);
 * - 'download': weight-file bytes from the network or picked files (total = the bytes that will be read);
 * - 'quantize': tensors converted on the GPU (int4/int8 with `weights: 'q4'`, f16/f32 with 'float'), each as soon
 *   as its bytes arrive, so it interleaves with 'download';
 * - 'cache-read': bytes of a converted model read from the offline cache (no network);
 * - 'compile': GPU pipelines (0/1, then 1/1).
 */
export interface LoadProgress {
  phase: LoadPhase;
  /** Units done so far in this phase: bytes (download, cache-read), tensors (quantize), steps (device, compile). */
  loaded: number;
  /** Units in the whole phase (0 = not known yet); `loaded` ends exactly here. */
  total: number;
  /** The file being worked on when this event was sent (for display), or the adapter name for 'device'. */
  file: string;
  /**
   * Set on an event that reports a pause, not progress ('download' only): a request failed and is retried after
   * `delayMs` — e.g. the server rate-limits (HTTP 429: a minute or more). It repeats the phase's last `loaded` and
   * `total` (0 while the total is not known yet, e.g. during the header reads) and is not part of the phase's
   * monotonic stream.
   */
  retry?: RetryNotice;
  /**
   * Absent for the model's own load; 'audio' / 'image' for a media encoder loaded later (on first use, or by
   * preload), whose phases ('cache-read' or 'quantize', then 'compile') run on their own.
   */
  component?: 'audio' | 'image';
}

export type ProgressCallback = (progress: LoadProgress) => void;

export interface ProgressAggregatorOptions {
  /**
   * Emit at most one event per this many units (default: total / 1000, at least 1), so a multi-gigabyte download
   * does not flood the worker boundary with hundreds of thousands of events. The final event is always sent.
   */
  minStep?: number;
}

/**
 * Turns many small, possibly overlapping reports (several files, retries, readers re-reading a header) into one
 * clean stream for a phase: `loaded` never goes backwards, never exceeds `total`, and the last event is exactly
 * `loaded === total`, sent once by `finish()`.
 */
export class ProgressAggregator {
  readonly phase: LoadPhase;
  readonly total: number;
  private readonly onProgress: ProgressCallback | undefined;
  private readonly minStep: number;
  private done = 0;
  private lastEmitted = -1;
  private lastFile = '';
  private finished = false;

  constructor(phase: LoadPhase, total: number, onProgress?: ProgressCallback, options: ProgressAggregatorOptions = {}) {
    if (!(total >= 0) || !Number.isFinite(total)) throw new RangeError(`progress total must be a finite number >= 0, got ${total}`);
    this.phase = phase;
    this.total = total;
    this.onProgress = onProgress;
    this.minStep = Math.max(1, options.minStep ?? Math.floor(total / 1000));
  }

  get loaded(): number {
    return this.done;
  }

  /** The `loaded` of the last event sent (0 before any): what an out-of-band event (a retry notice) may repeat. */
  get shownLoaded(): number {
    return Math.max(0, this.lastEmitted);
  }

  /** `units` more were done on `file`. Over-reporting is clamped at total (the final event comes from finish()). */
  advance(file: string, units: number): void {
    if (this.finished || !(units > 0)) return;
    this.lastFile = file;
    this.done = Math.min(this.total, this.done + units);
    // Never emit `total` from here: only finish() may say "done", so a phase that over-reports early still ends
    // with exactly one completion event, after the work really is complete.
    const shown = Math.min(this.done, Math.max(0, this.total - 1));
    if (shown - this.lastEmitted >= this.minStep) this.emit(shown, file);
  }

  /** Raise the count to at least `loaded` (for producers that report absolute positions). */
  advanceTo(file: string, loaded: number): void {
    if (loaded > this.done) this.advance(file, loaded - this.done);
  }

  /** The phase is complete: sends `loaded === total` exactly once. */
  finish(file = this.lastFile): void {
    if (this.finished) return;
    this.finished = true;
    this.done = this.total;
    this.emit(this.total, file);
  }

  private emit(loaded: number, file: string): void {
    if (loaded <= this.lastEmitted) return;
    this.lastEmitted = loaded;
    this.onProgress?.({ phase: this.phase, loaded, total: this.total, file });
  }
}
