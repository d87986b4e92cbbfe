/**
 * The published Gemma 3n MatFormer slicing configurations, as data: Google's `google/gemma3n-slicing-configs`
 * (`configs.csv`; docs/gemma3n-formats.md §5.2), 16 sub-models of E4B (35 layers, FFN 16384). Each row: the layers
 * it skips (E4B indices; only the official E2B block 20–24 appears) and one FFN width per kept layer, written in the
 * CSV as `2_048 * k` — here as the string of the k's, layer by layer. "Layer-level" configurations vary the width
 * per layer, "block-level" ones per 4-sliding + 1-full block. Effective parameters (billions) and MMLU (pretrained,
 * %) are the published figures; `src/model/gemma3n/matformer.ts` also counts the parameters itself (the text decoder
 * without the two embedding tables, the definition that reproduces 1.91 B / 3.98 B exactly; for the 35-layer
 * sub-models our count is 0.004–0.019 B below the published one, e.g. E2.54B counts 2.521 B).
 */

export type SliceLevel = 'main' | 'official' | 'layer' | 'block';

export interface PublishedSlice {
  /** What `loadGemma({ size })` accepts: 'E4B', 'E2B', 'E1.96B' … (layer-level), 'E2.49B-block' … (block-level). */
  readonly id: string;
  /** The row's name in configs.csv (also accepted as a size). */
  readonly name: string;
  readonly level: SliceLevel;
  /** As published, billions. */
  readonly effectiveParamsB: number;
  /** MMLU of the pretrained sub-model, %, as published. */
  readonly mmluPt: number;
  /** E4B layers skipped. */
  readonly skipLayers: readonly number[];
  /** FFN width per kept layer. */
  readonly ffnWidths: readonly number[];
}

/** Layers and FFN width of the model the configurations slice (Gemma 3n E4B). */
export const SLICED_MODEL = { layers: 35, ffnWidth: 16384 } as const;

function row(id: string, name: string, level: SliceLevel, effectiveParamsB: number, mmluPt: number, skipLayers: number[], k: string): PublishedSlice {
  return { id, name, level, effectiveParamsB, mmluPt, skipLayers, ffnWidths: [...k].map((d) => 2048 * Number(d)) };
}

/** configs.csv, in its order. */
export const E4B_SLICING_CONFIGS: readonly PublishedSlice[] = [
  row('E4B', 'Main model', 'main', 3.98, 62.30, [], '88888888888888888888888888888888888'),
  row('E2B', 'Config for official E2B Model', 'official', 1.91, 50.90, [20, 21, 22, 23, 24], '444444444444444444444444444444'),
  row('E1.96B', 'Config for E1.96B (layer-level)', 'layer', 1.96, 53.40, [20, 21, 22, 23, 24], '444484444444444444444444444444'),
  row('E2.54B', 'Config for E2.54B (layer-level)', 'layer', 2.54, 55.40, [], '44448444444444444444888884444444444'),
  row('E2.69B', 'Config for E2.69B (layer-level)', 'layer', 2.69, 57.70, [], '44448444484444844448888884444444444'),
  row('E2.98B', 'Config for E2.98B (layer-level)', 'layer', 2.98, 59.50, [], '44444444444444488888888884444488888'),
  row('E3.18B', 'Config for E3.18B (layer-level)', 'layer', 3.18, 61.80, [], '44448444488888888888888884444844448'),
  row('E3.39B', 'Config for E3.39B (layer-level)', 'layer', 3.39, 63.00, [], '44448444488888888888888888888844448'),
  row('E3.59B', 'Config for E3.59B (layer-level)', 'layer', 3.59, 63.40, [], '44448888888888888888888888888844448'),
  row('E3.79B', 'Config for E3.79B (layer-level)', 'layer', 3.79, 63.40, [], '44448888888888888888888888888888888'),
  row('E2.49B-block', 'Config for E2.49B (block-level)', 'block', 2.49, 54.50, [], '44444444444444444444888884444444444'),
  row('E2.73B-block', 'Config for E2.73B (block-level)', 'block', 2.73, 57.10, [], '44444444444444488888888884444444444'),
  row('E2.98B-block', 'Config for E2.98B (block-level)', 'block', 2.98, 59.50, [], '44444444448888888888888884444444444'),
  row('E3.24B-block', 'Config for E3.24B (block-level)', 'block', 3.24, 60.70, [], '44444444448888888888888888888844444'),
  row('E3.49B-block', 'Config for E3.49B (block-level)', 'block', 3.49, 61.40, [], '44444888888888888888888888888844444'),
  row('E3.79B-block', 'Config for E3.79B (block-level)', 'block', 3.74, 62.00, [], '44444888888888888888888888888888888'),
];
