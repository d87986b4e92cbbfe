/**
 * Strided reads: the same byte runs out of every row of a row-major region of a file — a column prefix of a matrix
 * (a MatFormer FFN's `down_proj`), the column groups of a table (the kept layers' per-layer embeddings) — without
 * reading the bytes in between where skipping them is cheaper than reading them.
 *
 * Neighbouring runs (the end of one row's last run and the next row's first run included) closer than `gap` bytes
 * are read in one `source.read` (a window) and the gap is dropped afterwards; a window never grows past `maxWindow`
 * unless one run alone is longer. So `gap` is the cost of one more read, in bytes: 0 for memory, about the bytes one
 * round trip could have brought for HTTP (a source says so with `ByteSource.readGap`). Up to `concurrency` windows
 * are read at once (HTTP round trips overlap), and the result is assembled in order.
 */
import { GemmaError } from '../errors.ts';
import type { ByteSource } from './byte-source.ts';

/** Bytes [start, start + length) of a row. */
export interface ByteRun {
  start: number;
  length: number;
}

export interface StridedRegion {
  /** Byte offset of row 0 in the source. */
  offset: number;
  /** Bytes from the start of one row to the start of the next. */
  stride: number;
  rows: number;
  /** What to take from each row: sorted, non-overlapping, inside [0, stride). */
  runs: readonly ByteRun[];
}

export interface StridedReadOptions {
  /** Read through gaps of at most this many bytes (default `source.readGap`, else 0: only touching runs merge). */
  gap?: number;
  /** Largest merged window in bytes (default 16 MiB). */
  maxWindow?: number;
  /** Windows read at once (default 4). */
  concurrency?: number;
}

const MiB = 1024 * 1024;

/** One source read and where its pieces go in the output. */
interface Window {
  offset: number;
  length: number;
  /** Triples (offset in the window, offset in the output, length). */
  pieces: number[];
}

/** Merges the region's runs into windows, in file order. */
function* windows(region: StridedRegion, gap: number, maxWindow: number): Generator<Window> {
  const { offset, stride, rows, runs } = region;
  let current: Window | undefined;
  let dst = 0;
  for (let r = 0; r < rows; r++) {
    for (const run of runs) {
      const begin = offset + r * stride + run.start;
      if (current && begin - (current.offset + current.length) <= gap && begin + run.length - current.offset <= maxWindow) {
        current.pieces.push(begin - current.offset, dst, run.length);
        current.length = begin + run.length - current.offset;
      } else {
        if (current) yield current;
        current = { offset: begin, length: run.length, pieces: [0, dst, run.length] };
      }
      dst += run.length;
    }
  }
  if (current) yield current;
}

/** Checks a region's runs (sorted, disjoint, inside a row). */
function checkRegion(source: ByteSource, region: StridedRegion): void {
  let end = 0;
  for (const run of region.runs) {
    if (!(Number.isInteger(run.start) && Number.isInteger(run.length) && run.start >= end && run.length >= 0 && run.start + run.length <= region.stride)) {
      throw new GemmaError('internal', `${source.name}: bad strided read (runs ${JSON.stringify(region.runs)} in rows of ${region.stride} bytes)`);
    }
    end = run.start + run.length;
  }
}

/** The region's runs, row by row, concatenated (rows × Σ run lengths bytes). */
export async function readStrided(source: ByteSource, region: StridedRegion, options: StridedReadOptions = {}): Promise<Uint8Array> {
  checkRegion(source, region);
  const perRow = region.runs.reduce((s, r) => s + r.length, 0);
  const out = new Uint8Array(region.rows * perRow);
  if (out.length === 0) return out;
  const gap = Math.max(0, options.gap ?? source.readGap ?? 0);
  const maxWindow = Math.max(1, options.maxWindow ?? 16 * MiB);
  const pending = windows(region, gap, maxWindow);
  let failed = false;
  const worker = async (): Promise<void> => {
    for (let next = pending.next(); !next.done && !failed; next = pending.next()) {
      const w = next.value;
      let bytes: Uint8Array;
      try {
        bytes = await source.read(w.offset, w.length);
      } catch (err) {
        failed = true;
        throw err;
      }
      const p = w.pieces;
      for (let i = 0; i < p.length; i += 3) out.set(bytes.subarray(p[i], p[i] + p[i + 2]), p[i + 1]);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, options.concurrency ?? 4) }, worker));
  return out;
}
