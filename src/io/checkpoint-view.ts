/**
 * A view of a Checkpoint: another config, and tensors that are renamed, row-run and/or column-run selections of the
 * base's tensors (row runs: any tensor; column runs: matrices), read straight from the base through its own row,
 * strided (`readColumns`) and packed reads, so a view moves only the bytes it exposes; a load's read plan
 * (`willRead`) reaches the base as the base rows it covers. Nothing is copied at creation; a view of a view composes. A model family builds sub-models this way (Gemma 3n MatFormer slices,
 * src/model/gemma3n/matformer.ts) and its loader reads the view like any checkpoint.
 */
import { GemmaError } from '../errors.ts';
import type { QuantFormat } from '../formats/weight-format.ts';
import { columnRunsWidth, readColumnRuns, requireTensor, type Checkpoint, type ColumnRun, type PackedTensor, type PlannedRead, type RowRange, type TensorBytes, type TensorInfo } from './checkpoint.ts';

/** Elements [start, start + count) along one dimension. */
export interface Run {
  start: number;
  count: number;
}

/** One tensor of a view. */
export interface ViewTensor {
  /** The tensor in the base checkpoint. */
  base: string;
  /** The base's rows that make up this tensor, in order (default: all). */
  rows?: readonly Run[];
  /** The base's column runs (matrices only; sorted, disjoint; default: all columns). */
  columns?: readonly ColumnRun[];
}

export interface ViewOptions {
  name: string;
  config: unknown;
  /** Every tensor of the view, by its name in the view. */
  tensors: ReadonlyMap<string, ViewTensor>;
}

/**
 * Maps runs given in a selection's coordinates (`wanted`, sorted) through the selection `segments` (runs of the
 * underlying dimension, in order) to runs of the underlying dimension, merging touching neighbours.
 */
export function mapRuns(segments: readonly Run[] | undefined, wanted: readonly Run[]): Run[] {
  if (!segments) return wanted.map((r) => ({ ...r }));
  const out: Run[] = [];
  const push = (start: number, count: number) => {
    const last = out.at(-1);
    if (last && last.start + last.count === start) last.count += count;
    else out.push({ start, count });
  };
  for (const w of wanted) {
    let at = 0; // where the current segment starts in selection coordinates
    let from = w.start;
    const end = w.start + w.count;
    for (const s of segments) {
      if (from >= end) break;
      const segEnd = at + s.count;
      if (from < segEnd) {
        const take = Math.min(end, segEnd) - from;
        push(s.start + (from - at), take);
        from += take;
      }
      at = segEnd;
    }
    if (from < end) throw new GemmaError('internal', `checkpoint view: run ${JSON.stringify(w)} lies outside its selection of ${at}`);
  }
  return out;
}

const total = (runs: readonly Run[]) => runs.reduce((s, r) => s + r.count, 0);

/** Concatenates byte arrays (one allocation). */
function concatBytes(parts: readonly Uint8Array[]): Uint8Array {
  if (parts.length === 1) return parts[0];
  const out = new Uint8Array(parts.reduce((s, p) => s + p.byteLength, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.byteLength;
  }
  return out;
}

/** A view of `base` (see the header). Tensors absent from `options.tensors` do not exist in the view. */
export function checkpointView(base: Checkpoint, options: ViewOptions): Checkpoint {
  const { name, tensors } = options;
  const infos = new Map<string, TensorInfo>();
  for (const [viewName, v] of tensors) {
    const b = requireTensor(base, v.base);
    const shape = [...b.shape];
    if (v.rows) shape[0] = total(v.rows);
    if (v.columns) {
      if (shape.length !== 2) throw new GemmaError('internal', `${name}: column runs of ${v.base} [${b.shape}], which is not a matrix`);
      shape[1] = columnRunsWidth(v.columns, b.shape[1], `${name}: ${v.base}`);
    }
    for (const r of v.rows ?? []) {
      if (!(r.start >= 0 && r.count > 0 && r.start + r.count <= b.shape[0])) throw new GemmaError('internal', `${name}: rows ${JSON.stringify(v.rows)} outside ${v.base} [${b.shape}]`);
    }
    infos.set(viewName, { name: viewName, shape, dtype: b.dtype });
  }
  const get = (n: string): { v: ViewTensor; info: TensorInfo } => {
    const v = tensors.get(n);
    const info = infos.get(n);
    if (!v || !info) throw new GemmaError('bad-file', `${name}: tensor ${n} is missing from the checkpoint.`);
    return { v, info };
  };
  /** The base row runs of view rows `rows` (all rows when absent); undefined = the base's whole tensor. */
  const baseRows = (v: ViewTensor, info: TensorInfo, rows?: RowRange): Run[] | undefined => {
    if (!rows && !v.rows) return undefined;
    const wanted = rows ?? { start: 0, count: info.shape[0] };
    if (!(Number.isInteger(wanted.start) && Number.isInteger(wanted.count) && wanted.start >= 0 && wanted.count >= 0 && wanted.start + wanted.count <= info.shape[0])) {
      throw new GemmaError('invalid-argument', `${name}: rows [${wanted.start}, ${wanted.start + wanted.count}) out of range for ${info.name} [${info.shape}].`);
    }
    return wanted.count === 0 ? [] : mapRuns(v.rows, [wanted]);
  };
  const baseColumns = (v: ViewTensor, columns?: readonly ColumnRun[]): ColumnRun[] | undefined =>
    columns ? mapRuns(v.columns, columns) : v.columns && mapRuns(undefined, v.columns);

  const read = async (n: string, rows: RowRange | undefined, columns: readonly ColumnRun[] | undefined): Promise<TensorBytes> => {
    const { v, info } = get(n);
    if (columns) columnRunsWidth(columns, info.shape[1], `${name}: ${n}`);
    const runs = baseRows(v, info, rows);
    const cols = baseColumns(v, columns);
    const one = (r?: Run) => (cols ? readColumnRuns(base, v.base, cols, r) : base.read(v.base, r));
    if (!runs) return one();
    const parts = await Promise.all(runs.map(one)); // each part is bounded by the caller's row range
    if (parts.some((p) => p.dtype !== parts[0].dtype)) throw new GemmaError('internal', `${name}: ${n} reads back in mixed dtypes`);
    return { dtype: parts[0]?.dtype ?? 'F32', bytes: concatBytes(parts.map((p) => p.bytes)) };
  };

  const view: Checkpoint = {
    name,
    config: options.config,
    tensor: (n) => {
      const info = infos.get(n);
      return info && { ...info, shape: [...info.shape] };
    },
    tensorNames: () => [...tensors.keys()],
    read: (n, rows) => read(n, rows, undefined),
    readColumns: (n, columns, rows) => read(n, rows, columns),
  };
  if (base.willRead) {
    // The plan in the base's terms: each tensor's base rows (all of them, or its row runs); a column selection plans
    // whole rows, which its strided reads read through where gaps are small (src/io/strided-read.ts).
    const willRead = base.willRead.bind(base);
    view.willRead = (reads: readonly PlannedRead[]): number =>
      willRead(
        reads.flatMap((r): PlannedRead[] => {
          const n = typeof r === 'string' ? r : r.name;
          const v = tensors.get(n);
          const info = infos.get(n);
          if (!v || !info) return [];
          const runs = baseRows(v, info, typeof r === 'string' ? undefined : r.rows);
          return runs ? runs.map((rows) => ({ name: v.base, rows })) : [v.base];
        }),
      );
  }
  if (base.readPackedAs) {
    const readPacked = base.readPackedAs.bind(base);
    view.readPackedAs = async (n: string, format: QuantFormat, rows?: RowRange, columns?: readonly ColumnRun[]): Promise<PackedTensor | null> => {
      const { v, info } = get(n);
      if (info.shape.length !== 2) return null;
      if (columns) columnRunsWidth(columns, info.shape[1], `${name}: ${n}`);
      const runs = baseRows(v, info, rows);
      const cols = baseColumns(v, columns);
      const parts: PackedTensor[] = [];
      for (const r of runs ?? [undefined]) {
        const p = await readPacked(v.base, format, r, cols);
        if (!p) return null;
        parts.push(p);
      }
      const count = rows?.count ?? info.shape[0];
      const width = columns ? total(columns) : info.shape[1];
      const out: PackedTensor = parts.length === 1 ? parts[0] : {
        format,
        rows: count,
        cols: width,
        data: new Uint32Array(concatBytes(parts.map((p) => new Uint8Array(p.data.buffer, p.data.byteOffset, p.data.byteLength))).buffer),
        scales: new Uint16Array(concatBytes(parts.map((p) => new Uint8Array(p.scales.buffer, p.scales.byteOffset, p.scales.byteLength))).buffer),
      };
      if (out.rows !== count || out.cols !== width) {
        throw new GemmaError('internal', `${name}: packed read of ${n} gave [${out.rows}, ${out.cols}], expected [${count}, ${width}]`);
      }
      return out;
    };
  }
  return view;
}
