/**
 * MatFormer "Mix-n-Match" for Gemma 3n (docs/gemma3n-formats.md §5): a sub-model cut at load time from the original
 * files of a bigger one (E2B and the other published sizes from E4B), as a view of its Checkpoint
 * (src/io/checkpoint-view.ts), so the Gemma 3n loader reads it like any checkpoint and only the slice's bytes are
 * read, converted, cached and uploaded:
 * - kept layers are renumbered (`layers.{new}` reads `layers.{old}`), skipped layers' tensors are not in the view;
 * - FFN of kept layer i with width w: `gate_proj` / `up_proj` their first w rows, `down_proj` its first w columns
 *   (a strided read at the full row stride);
 * - the per-layer-embedding table keeps the column groups of kept layers (P = hidden_size_per_layer_input columns
 *   each) and `per_layer_model_projection` the matching row groups;
 * - the config is recomputed (§5.3): num_hidden_layers, intermediate_size, layer_types, activation sparsity (and a
 *   GGUF's κ) of the kept layers, num_kv_shared_layers = the kept KV-shared layers, so every consumer still reads
 *   its producer's cache; plus a `matformer_slice` record (the original layer count and widths, the kept layers),
 *   which lets a cached slice serve any smaller slice inside it.
 * Refused with GemmaError('invalid-argument'): skipping a layer whose K/V a kept layer reads (a KV producer), widths
 * off the quantization block (32: our q4/q8 groups and GGUF Q4_0/Q8_0/Q5_0 blocks; 256 where the file's ffn_down is
 * a K-quant), wider than the original, or a width count other than the kept-layer count.
 */
import { GemmaError } from '../../errors.ts';
import type { Checkpoint } from '../../io/checkpoint.ts';
import { checkpointView, type Run, type ViewTensor } from '../../io/checkpoint-view.ts';
import { GGML_TYPE, ggmlTypeInfo } from '../../io/gguf-types.ts';
import { GROUP } from '../../formats/weight-format.ts';
import type { ModelSize, SliceInfo, SlicedCheckpoint } from '../family.ts';
import { parseGemma3nConfig, type Gemma3nTextConfig } from './config.ts';
import { E4B_SLICING_CONFIGS, SLICED_MODEL, type PublishedSlice } from './matformer-configs.ts';
import { LM, PLE_TABLE } from './tensors.ts';

/** The text_config key of a sliced model's config: what it was cut from. */
export const SLICE_RECORD_KEY = 'matformer_slice';

interface SliceRecord {
  /** The original model's layers and FFN widths. */
  source_num_hidden_layers: number;
  source_intermediate_size: number[];
  /** Original indices of the layers this model holds, in order. */
  kept_layers: number[];
  /** The published configuration, when one was named. */
  name?: string;
}

/** A size in the original model's numbering. */
interface AbsoluteSlice {
  skipLayers: number[];
  ffnWidths: number[];
  published?: PublishedSlice;
}

type Json = Record<string, unknown>;

const bad = (message: string) => new GemmaError('invalid-argument', message);

/** The published configuration a name refers to (id or configs.csv name, case-insensitive), if any. */
export function publishedSlice(name: string): PublishedSlice | undefined {
  const key = name.trim().toLowerCase();
  return E4B_SLICING_CONFIGS.find((c) => c.id.toLowerCase() === key || c.name.toLowerCase() === key);
}

const listIds = () => E4B_SLICING_CONFIGS.map((c) => c.id).join(', ');

/** Resolves `size` against the original model (its layer count and widths), validating it. */
function resolveSize(size: ModelSize, source: { layers: number; widths: readonly number[] }): AbsoluteSlice {
  if (typeof size === 'string') {
    const p = publishedSlice(size);
    if (!p) throw bad(`size ${JSON.stringify(size)} is not a published Gemma 3n configuration (${listIds()}); or pass { skipLayers, ffnWidths }.`);
    if (source.layers !== SLICED_MODEL.layers || source.widths.some((w) => w < SLICED_MODEL.ffnWidth)) {
      throw bad(
        `size "${p.id}" is a slice of Gemma 3n E4B (${SLICED_MODEL.layers} layers, FFN ${SLICED_MODEL.ffnWidth}); this model has ${source.layers} layers with FFN widths up to ${Math.max(...source.widths)}. Load google/gemma-3n-E4B-it (or a GGUF of it), or pass { skipLayers, ffnWidths }.`,
      );
    }
    return { skipLayers: [...p.skipLayers], ffnWidths: [...p.ffnWidths], published: p };
  }
  if (typeof size !== 'object' || size === null || Array.isArray(size)) {
    throw bad(`size must be a published configuration's name (${listIds()}) or { skipLayers, ffnWidths }, got ${JSON.stringify(size)}.`);
  }
  const extra = Object.keys(size).filter((k) => k !== 'skipLayers' && k !== 'ffnWidths');
  if (extra.length) throw bad(`size: unknown key(s) ${extra.join(', ')}; a size is { skipLayers?, ffnWidths? }.`);
  const ints = (v: unknown, what: string): number[] => {
    if (!Array.isArray(v) || v.some((x) => !Number.isInteger(x))) throw bad(`size.${what} must be a list of integers, got ${JSON.stringify(v)}.`);
    return v as number[];
  };
  const skipLayers = size.skipLayers === undefined ? [] : ints(size.skipLayers, 'skipLayers');
  const kept = keptLayers(source.layers, skipLayers);
  const ffnWidths = size.ffnWidths === undefined ? kept.map((l) => source.widths[l]) : ints(size.ffnWidths, 'ffnWidths');
  return { skipLayers, ffnWidths };
}

/** The layers not skipped, in order; refuses out-of-range, repeated or all-skipping lists. */
function keptLayers(layers: number, skip: readonly number[]): number[] {
  for (const l of skip) if (l < 0 || l >= layers) throw bad(`size.skipLayers: layer ${l} does not exist (the model has layers 0-${layers - 1}).`);
  if (new Set(skip).size !== skip.length) throw bad(`size.skipLayers lists a layer twice: ${JSON.stringify(skip)}.`);
  const kept = Array.from({ length: layers }, (_, l) => l).filter((l) => !skip.includes(l));
  if (kept.length === 0) throw bad('size.skipLayers skips every layer.');
  return kept;
}

/** The text config object inside a config.json (top-level for gemma3n_text). */
function textConfigOf(config: Json): Json {
  return config.model_type === 'gemma3n' ? (config.text_config as Json) : config;
}

/** Elements per block of a stored dtype (1 for floats): the granularity a column cut must respect. */
function blockOf(dtype: string | undefined): number {
  const id = dtype === undefined ? undefined : (GGML_TYPE as Record<string, number>)[dtype];
  return (id !== undefined && ggmlTypeInfo(id)?.blockSize) || 1;
}

const isFloat = (dtype: string | undefined) => dtype === 'F32' || dtype === 'F16' || dtype === 'BF16';

/** Parameters of the text decoder without its two embedding tables: Google's "effective" count (§1.7). */
export function effectiveParams(c: Gemma3nTextConfig): number {
  const D = c.hiddenSize, P = c.pleDim, A = c.altupNumInputs, R = c.laurelRank, dh = c.headDim;
  // Every stored tensor of a layer, KV-shared layers' unused k/v included (the published counts include them).
  const perLayer = 2 * c.numHeads * dh * D + 2 * c.numKvHeads * dh * D + 2 * dh + 7 * D + 2 * R * D + 2 * P * D + A * A + A * A * A + A * D;
  const mlp = c.intermediateSize.reduce((s, F) => s + 3 * D * F, 0);
  const global = c.numLayers * P * D + P + 2 * (A - 1) * D * D + D;
  return c.numLayers * perLayer + mlp + global;
}

/** Merges touching runs. */
function runsOf(starts: readonly number[], width: number): Run[] {
  const out: Run[] = [];
  for (const s of starts) {
    const last = out.at(-1);
    if (last && last.start + last.count === s) last.count += width;
    else out.push({ start: s, count: width });
  }
  return out;
}

/** A short label of a slice for names and messages: the published id, else the skip list and widths. */
function label(skipped: readonly number[], widths: readonly number[], name?: string): string {
  if (name) return name;
  return `skip [${skipped.join(',')}], FFN [${widths.join(',')}]`;
}

/**
 * `base` cut to `size` (see the header). `base` may itself be a slice (its config carries a `matformer_slice`
 * record): the size stays in the original numbering and must lie inside it.
 */
export function sliceGemma3n(base: Checkpoint, size: ModelSize, options: { exact?: boolean } = {}): SlicedCheckpoint {
  const cfg = parseGemma3nConfig(base.config).text;
  const L = cfg.numLayers, P = cfg.pleDim;
  const tc = textConfigOf(base.config as Json);
  const record: SliceRecord = (tc[SLICE_RECORD_KEY] as SliceRecord | undefined) ?? {
    source_num_hidden_layers: L,
    source_intermediate_size: [...cfg.intermediateSize],
    kept_layers: Array.from({ length: L }, (_, l) => l),
  };
  const sourceL = record.source_num_hidden_layers;
  const abs = resolveSize(size, { layers: sourceL, widths: record.source_intermediate_size });
  const keptAbs = keptLayers(sourceL, abs.skipLayers);
  if (abs.ffnWidths.length !== keptAbs.length) {
    throw bad(
      `size.ffnWidths has ${abs.ffnWidths.length} widths for ${keptAbs.length} kept layers (${sourceL} layers, ${abs.skipLayers.length} skipped): give one width per kept layer, in order.`,
    );
  }

  // Where each kept original layer is in `base` (a cached slice holds only some of them).
  const baseIndex = keptAbs.map((l) => {
    const j = record.kept_layers.indexOf(l);
    if (j < 0) throw bad(`${base.name} holds layers [${record.kept_layers.join(',')}] of the original model, not layer ${l}: a size can only keep layers the model has.`);
    return j;
  });
  const kept = new Set(baseIndex);

  abs.ffnWidths.forEach((w, i) => {
    const l = keptAbs[i], j = baseIndex[i], F = cfg.intermediateSize[j];
    const where = `size.ffnWidths[${i}] = ${w} (layer ${l})`;
    if (!(w > 0)) throw bad(`${where} must be positive.`);
    if (w > record.source_intermediate_size[l]) throw bad(`${where} is wider than the original layer's ${record.source_intermediate_size[l]}.`);
    if (w > F) throw bad(`${where} is wider than the ${F} ${base.name} holds for it: this (cached) model was cut narrower.`);
    if (w === F) return; // nothing cut
    const down = base.tensor(`${LM}layers.${j}.mlp.down_proj.weight`)?.dtype;
    const block = Math.max(GROUP, blockOf(down));
    if (w % block !== 0) {
      throw bad(
        `${where} is not a multiple of ${block}: ${block === GROUP ? `a width must be a multiple of ${GROUP}, the quantization block of the q4/q8 weights (and of Q4_0/Q8_0 files)` : `this file stores that layer's ffn_down as ${down}, whose blocks hold ${block} values`}. The published widths are multiples of 2048.`,
      );
    }
  });

  // KV sharing: a kept layer must still find its own producer's cache.
  const skippedBase = Array.from({ length: L }, (_, j) => j).filter((j) => !kept.has(j));
  for (const j of skippedBase) {
    const reader = [...kept].find((c) => c !== j && cfg.kvSourceLayer[c] === j);
    if (reader !== undefined) {
      throw bad(
        `size skips layer ${record.kept_layers[j]}, whose K/V cache layer ${record.kept_layers[reader]} reads (KV sharing: it is the last ${cfg.layerTypes[j].replace('_attention', '')}-attention layer before the shared ones). A KV producer cannot be skipped.`,
      );
    }
  }

  // baseIndex is increasing: the record's kept layers and keptAbs are both in order.
  const pleRuns = skippedBase.length ? runsOf(baseIndex.map((j) => j * P), P) : undefined;
  if (options.exact && pleRuns) {
    const block = blockOf(base.tensor(PLE_TABLE)?.dtype);
    if (!isFloat(base.tensor(PLE_TABLE)?.dtype) && pleRuns.some((r) => r.start % block !== 0 || r.count % block !== 0)) {
      throw new GemmaError('unsupported-config', `${base.name}: its per-layer-embedding table is stored in blocks of ${block} and the kept layers' column groups (${P} columns each) do not fall on block boundaries, so this slice cannot be cut from it without requantizing.`);
    }
  }

  // The view's tensors.
  const tensors = new Map<string, ViewTensor>();
  const layerName = /^model\.language_model\.layers\.(\d+)\.(.+)$/;
  for (const name of base.tensorNames()) {
    const m = layerName.exec(name);
    if (!m) {
      if (name === PLE_TABLE && pleRuns) tensors.set(name, { base: name, columns: pleRuns });
      else if (name === `${LM}per_layer_model_projection.weight` && pleRuns) tensors.set(name, { base: name, rows: pleRuns });
      else tensors.set(name, { base: name });
      continue;
    }
    const j = Number(m[1]);
    const i = baseIndex.indexOf(j);
    if (i < 0) continue;
    const w = abs.ffnWidths[i];
    const cut = w < cfg.intermediateSize[j];
    const rest = m[2];
    const v: ViewTensor = { base: name };
    if (cut && (rest === 'mlp.gate_proj.weight' || rest === 'mlp.up_proj.weight')) v.rows = [{ start: 0, count: w }];
    if (cut && rest === 'mlp.down_proj.weight') v.columns = [{ start: 0, count: w }];
    tensors.set(`${LM}layers.${i}.${rest}`, v);
  }

  // The recomputed config.
  const config = structuredClone(base.config) as Json;
  const t = textConfigOf(config);
  const pick = <T>(list: T[]) => baseIndex.map((j) => list[j]);
  t.num_hidden_layers = keptAbs.length;
  t.intermediate_size = [...abs.ffnWidths];
  t.layer_types = pick(cfg.layerTypes);
  t.activation_sparsity_pattern = pick(cfg.activationSparsity);
  if (Array.isArray(t.activation_sparsity_kappa)) t.activation_sparsity_kappa = pick(t.activation_sparsity_kappa as unknown[]);
  t.num_kv_shared_layers = baseIndex.filter((j) => j >= cfg.firstKvSharedLayer).length;
  const name = abs.published?.id;
  t[SLICE_RECORD_KEY] = { source_num_hidden_layers: sourceL, source_intermediate_size: [...record.source_intermediate_size], kept_layers: keptAbs, ...(name ? { name } : {}) } satisfies SliceRecord;

  const skippedAbs = abs.skipLayers.slice().sort((a, b) => a - b);
  const checkpoint = checkpointView(base, { name: `${base.name} [${label(skippedAbs, abs.ffnWidths, name)}]`, config, tensors });
  const sliced = parseGemma3nConfig(config).text; // validates the recomputed config (KV sources, layer types)
  const slice: SliceInfo = {
    ...(name ? { name } : {}),
    layers: keptAbs.length,
    sourceLayers: sourceL,
    skippedLayers: skippedAbs,
    ffnWidths: [...abs.ffnWidths],
    effectiveParams: effectiveParams(sliced),
    ...(abs.published ? { published: { effectiveParamsB: abs.published.effectiveParamsB, mmluPt: abs.published.mmluPt } } : {}),
  };
  return { checkpoint, slice };
}
