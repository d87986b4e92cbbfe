/**
 * Planned read-ahead over a checkpoint's files: the loader says which tensors it will read, in order
 * (`Checkpoint.willRead`), and their byte ranges are grouped into a few large windows, each fetched with one
 * request while the previous one is being consumed. A Gemma 3n layer's tensors sit together in the file (safetensors
 * sorts by name; GGUF by layer), so one or two windows hold a layer and a big tensor is a run of windows: an E2B load
 * is a few hundred requests instead of a thousand small ones, each a round trip (two on the hub: the redirect, then
 * the CDN). What is not planned (vision/audio towers, KV-shared layers' unused k/v) is never fetched, and the plan's
 * byte count is the download total.
 *
 * Windows: the planned ranges of a file, sorted by offset, are cut into runs with no gap over `gapBytes` and no run
 * over `windowBytes` (a longer range is split); windows are fetched in the order the plan first needs them, the next
 * `ahead` ones while one is being read.
 *
 * Memory: a window is dropped as soon as every planned byte of it was read; at most `ahead + 2` are held at once.
 * Over that, a window with little left to read keeps only those bytes (a layer's norms, read after its matrices) and
 * lets the rest go; otherwise the oldest is dropped and fetched again if still needed. So the host holds a few
 * windows (64 MiB each by default), never a whole tensor. Reads that are not part of the plan (headers, a table's
 * padding probe) go straight to the source.
 */
import type { ByteSource } from './byte-source.ts';
import type { Checkpoint, PlannedRead, StoredRange } from './checkpoint.ts';
import type { CheckpointFiles } from './safetensors.ts';

const MiB = 1024 * 1024;
/** A window with at most this much left unread keeps copies of those bytes instead of being fetched again. */
const KEEP_BYTES = 4 * MiB;

export interface ReadAheadOptions {
  /** Largest window, i.e. the largest single read the plan makes (default 64 MiB). */
  windowBytes?: number;
  /**
   * Gaps up to this many bytes between planned ranges are read through rather than starting a new window (default
   * 4 MiB: about what one more request costs on the hub, a redirect plus a CDN round trip; E2B's KV-shared layers
   * leave 2 MiB gaps, their unused k_proj / v_proj, which are cheaper to read than to skip).
   */
  gapBytes?: number;
  /** Windows fetched ahead of the one being read (default 1). */
  ahead?: number;
  /** Told the bytes the plan will fetch (the download total), once per plan. */
  onPlanned?: (bytes: number) => void;
}

interface Window {
  source: ByteSource;
  start: number;
  end: number;
  pieces: Piece[];
  /** Planned bytes of this window not yet read. */
  remaining: number;
  /** Fetching or fetched; undefined before the fetch and after the window was let go. */
  bytes: Promise<Uint8Array> | undefined;
  /** Every planned byte was read. */
  done: boolean;
}

/** A planned range (or the part of one inside a window), by position in its source. */
interface Piece {
  start: number;
  end: number;
  window: Window;
  unread: number;
  /** Its bytes, kept when the window was let go with this piece still unread. */
  copy?: Uint8Array;
}

/** See the header. One per load; wrap every file of the checkpoint with it before opening the checkpoint. */
export class ReadAhead {
  private readonly windowBytes: number;
  private readonly gapBytes: number;
  private readonly ahead: number;
  private readonly onPlanned: ((bytes: number) => void) | undefined;
  /** In the order the plan first needs them. */
  private windows: Window[] = [];
  /** Per source: its planned pieces sorted by start. */
  private pieces = new Map<ByteSource, Piece[]>();
  private live: Window[] = [];
  /** Wrapped source → the source it reads from. */
  private readonly unwrapped = new Map<ByteSource, ByteSource>();
  /** Bytes of the largest single read made from a source (for tests and memory reports). */
  largestRead = 0;
  /** Reads made from the sources (window fetches and reads outside the plan). */
  sourceReads = 0;
  /** Most window bytes held at once. */
  peakHeldBytes = 0;

  constructor(options: ReadAheadOptions = {}) {
    this.windowBytes = Math.max(1, options.windowBytes ?? 64 * MiB);
    this.gapBytes = Math.max(0, options.gapBytes ?? 4 * MiB);
    this.ahead = Math.max(0, options.ahead ?? 1);
    this.onPlanned = options.onPlanned;
  }

  /** `source` with its reads served from the plan's windows when they are planned. */
  wrap(source: ByteSource): ByteSource {
    const wrapped: ByteSource = {
      name: source.name,
      size: () => source.size(),
      read: (offset, length) => this.read(source, offset, length),
      // Strided reads (a MatFormer slice's columns) merge rows as over the source itself: planned bytes then come out
      // of the windows in a few reads instead of one per row.
      readGap: source.readGap,
    };
    if (source.readAll) wrapped.readAll = () => source.readAll!();
    this.unwrapped.set(wrapped, source);
    return wrapped;
  }

  /** Every file of `files` wrapped (for the safetensors reader, which opens its shards itself). */
  wrapFiles<F extends CheckpointFiles>(files: F): F {
    const opened = new Map<string, ByteSource>();
    return Object.assign(Object.create(files) as F, {
      open: (path: string) => {
        let s = opened.get(path);
        if (!s) opened.set(path, (s = this.wrap(files.open(path))));
        return s;
      },
    });
  }

  /**
   * Plans `ranges` (in the order they will be read; sources as the checkpoint holds them, i.e. wrapped) and returns
   * the bytes that will be fetched. Replaces an earlier plan.
   */
  plan(ranges: readonly StoredRange[]): number {
    this.release();
    this.pieces = new Map();
    const bySource = new Map<ByteSource, { offset: number; end: number; order: number }[]>();
    ranges.forEach((r, order) => {
      if (!(r.length > 0)) return;
      const source = this.unwrapped.get(r.source) ?? r.source;
      let list = bySource.get(source);
      if (!list) bySource.set(source, (list = []));
      list.push({ offset: r.offset, end: r.offset + r.length, order });
    });
    const firstUse = new Map<Window, number>();
    let total = 0;
    for (const [source, list] of bySource) {
      list.sort((a, b) => a.offset - b.offset || b.end - a.end);
      const pieces: Piece[] = [];
      let current: Window | undefined;
      let coveredTo = -1;
      for (const r of list) {
        if (r.end <= coveredTo) continue; // inside a range already planned: that read takes it
        const offset = Math.max(r.offset, coveredTo);
        coveredTo = r.end;
        for (let at = offset; at < r.end; ) {
          const fits = current !== undefined && at - current.end <= this.gapBytes && Math.min(r.end, at + this.windowBytes) - current.start <= this.windowBytes;
          if (!current || !fits) {
            current = { source, start: at, end: at, pieces: [], remaining: 0, bytes: undefined, done: false };
            this.windows.push(current);
          }
          const stop = Math.min(r.end, current.start + this.windowBytes);
          const piece: Piece = { start: at, end: stop, window: current, unread: stop - at };
          current.pieces.push(piece);
          current.remaining += stop - at;
          current.end = stop;
          pieces.push(piece);
          const seen = firstUse.get(current);
          if (seen === undefined || r.order < seen) firstUse.set(current, r.order);
          at = stop;
        }
      }
      this.pieces.set(source, pieces);
    }
    this.windows.sort((a, b) => firstUse.get(a)! - firstUse.get(b)!);
    for (const w of this.windows) total += w.end - w.start;
    this.onPlanned?.(total);
    return total;
  }

  /** Lets go of every window (after the load, or when it failed). */
  release(): void {
    for (const w of this.windows) {
      w.bytes = undefined;
      w.done = true;
      for (const p of w.pieces) p.copy = undefined;
    }
    this.windows = [];
    this.live = [];
  }

  private async read(source: ByteSource, offset: number, length: number): Promise<Uint8Array> {
    const list = this.pieces.get(source);
    const parts = list ? this.piecesFor(list, offset, offset + length) : undefined;
    if (!parts) return this.direct(source, offset, length);
    if (parts.length === 1) return this.take(parts[0], offset, offset + length);
    // A read across pieces (row chunks do not fall on window edges): assembled from each.
    const out = new Uint8Array(length);
    for (const p of parts) {
      const s = Math.max(p.start, offset), e = Math.min(p.end, offset + length);
      out.set(await this.take(p, s, e), s - offset);
    }
    return out;
  }

  /** The planned pieces covering [start, end) exactly, in order; undefined when any byte of it is unplanned. */
  private piecesFor(list: Piece[], start: number, end: number): Piece[] | undefined {
    let lo = 0, hi = list.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (list[mid].end <= start) lo = mid + 1;
      else hi = mid;
    }
    const out: Piece[] = [];
    let at = start;
    for (let i = lo; i < list.length && at < end; i++) {
      const p = list[i];
      if (p.start > at) return undefined;
      out.push(p);
      at = p.end;
    }
    return at >= end ? out : undefined;
  }

  /** Bytes [start, end) of a piece (fetching its window, and the next ones, if needed); counts them as read. */
  private async take(p: Piece, start: number, end: number): Promise<Uint8Array> {
    const w = p.window;
    let out: Uint8Array;
    if (p.copy) {
      out = p.copy.subarray(start - p.start, end - p.start);
    } else if (w.done) {
      return this.direct(w.source, start, end - start); // read again after the plan let it go: straight from the file
    } else {
      this.fetch(w, w);
      const pending = w.bytes!;
      const i = this.windows.indexOf(w);
      for (let k = i + 1; k <= i + this.ahead && k < this.windows.length; k++) this.fetch(this.windows[k], w);
      const bytes = await pending;
      const copy = p.copy as Uint8Array | undefined; // made while we waited (the window was let go)
      out = copy ? copy.subarray(start - p.start, end - p.start) : bytes.subarray(start - w.start, end - w.start);
    }
    const n = Math.min(p.unread, end - start);
    p.unread -= n;
    w.remaining -= n;
    if (p.unread <= 0) p.copy = undefined;
    if (w.remaining <= 0) this.finish(w);
    return out;
  }

  /** Starts fetching `w`, letting go of other windows (never `keep`) to stay within ahead + 2. */
  private fetch(w: Window, keep: Window): void {
    if (w.bytes || w.done) return;
    while (this.live.length >= this.ahead + 2) {
      const others = this.live.filter((x) => x !== keep);
      if (others.length === 0) break;
      this.evict(others);
    }
    this.sourceReads++;
    this.largestRead = Math.max(this.largestRead, w.end - w.start);
    const bytes = w.source.read(w.start, w.end - w.start);
    w.bytes = bytes;
    bytes.catch(() => {}); // a failed window is reported to the reads that await it
    this.live.push(w);
    this.peakHeldBytes = Math.max(this.peakHeldBytes, this.live.reduce((sum, x) => sum + (x.end - x.start), 0));
  }

  /**
   * Frees one of `candidates`: one that arrived with at most KEEP_BYTES left to read keeps copies of those pieces;
   * otherwise the oldest is let go and will be fetched again when needed.
   */
  private evict(candidates: Window[]): void {
    const small = candidates.find((x) => x.remaining <= KEEP_BYTES && x.bytes !== undefined);
    if (small) {
      this.unlive(small);
      // Reads that come before the copies exist await this promise, then find the copies; after it, the window's
      // buffer is unreferenced.
      const copied = small.bytes!.then((b) => {
        for (const p of small.pieces) if (p.unread > 0) p.copy = b.slice(p.start - small.start, p.end - small.start);
        if (small.bytes === copied) small.bytes = undefined;
        return b;
      });
      copied.catch(() => {});
      small.bytes = copied;
      return;
    }
    const oldest = candidates[0];
    this.unlive(oldest);
    oldest.bytes = undefined; // fetched again if still needed
  }

  private finish(w: Window): void {
    w.done = true;
    w.bytes = undefined;
    for (const p of w.pieces) p.copy = undefined;
    this.unlive(w);
  }

  private unlive(w: Window): void {
    const i = this.live.indexOf(w);
    if (i >= 0) this.live.splice(i, 1);
  }

  private direct(source: ByteSource, offset: number, length: number): Promise<Uint8Array> {
    this.sourceReads++;
    this.largestRead = Math.max(this.largestRead, length);
    return source.read(offset, length);
  }
}

/**
 * `ckpt` with `willRead` wired to `readAhead`: the loader's list of tensors becomes the plan (through
 * `ckpt.locate`). The returned object inherits everything else from `ckpt` (format-specific methods included).
 */
export function withReadAhead<C extends Checkpoint>(ckpt: C, readAhead: ReadAhead): C {
  if (!ckpt.locate) return ckpt;
  const locate = ckpt.locate.bind(ckpt);
  return Object.assign(Object.create(ckpt) as C, {
    willRead(reads: readonly PlannedRead[]): number {
      const ranges: StoredRange[] = [];
      for (const read of reads) {
        const r = typeof read === 'string' ? locate(read) : locate(read.name, read.rows);
        if (r) ranges.push(r);
      }
      return readAhead.plan(ranges);
    },
  });
}
