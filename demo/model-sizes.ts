/**
 * The sizes the demo offers for Gemma 3n E4B (MatFormer "Mix-n-Match": `loadGemma({ model, size })`): E4B whole and
 * the 16 published configurations (src/model/gemma3n/matformer-configs.ts), each with its memory and whether the
 * offline cache can serve it without a download.
 *
 * Memory: what bench/memory.ts measures loading random weights at the real size (q4, 4,096-token context, PLE table
 * in host memory): `npm run bench:memory -- --preset e4b --size all`. Cache: a size is served offline when its own
 * entry is cached, or when E4B itself is (any size is cut from a cached whole E4B without downloading).
 */
import type { CachedModelInfo } from '../src/index.ts';
import { E4B_SLICING_CONFIGS, type PublishedSlice } from '../src/model/gemma3n/matformer-configs.ts';

/** GPU bytes (weights + KV cache + scratch) and host bytes (PLE table, int4 rows) by size id, q4, context 4096. */
const MEASURED_Q4: Record<string, { gpu: number; host: number }> = {
  'E4B': { gpu: 3.045e9, host: 1.321e9 },
  'E2B': { gpu: 1.872e9, host: 1.132e9 },
  'E1.96B': { gpu: 1.906e9, host: 1.132e9 },
  'E2.54B': { gpu: 2.224e9, host: 1.321e9 },
  'E2.69B': { gpu: 2.309e9, host: 1.321e9 },
  'E2.98B': { gpu: 2.479e9, host: 1.321e9 },
  'E3.18B': { gpu: 2.592e9, host: 1.321e9 },
  'E3.39B': { gpu: 2.705e9, host: 1.321e9 },
  'E3.59B': { gpu: 2.819e9, host: 1.321e9 },
  'E3.79B': { gpu: 2.932e9, host: 1.321e9 },
  'E2.49B-block': { gpu: 2.196e9, host: 1.321e9 },
  'E2.73B-block': { gpu: 2.337e9, host: 1.321e9 },
  'E2.98B-block': { gpu: 2.479e9, host: 1.321e9 },
  'E3.24B-block': { gpu: 2.620e9, host: 1.321e9 },
  'E3.49B-block': { gpu: 2.762e9, host: 1.321e9 },
  'E3.79B-block': { gpu: 2.904e9, host: 1.321e9 },
};

export const E4B_REPO = 'google/gemma-3n-E4B-it';
/** The select's value for E4B loaded whole (no `size` in the request: the entry every size can be cut from). */
export const WHOLE = '';

export interface SizeOption {
  /** The `size` to request ('' = whole). */
  value: string;
  label: string;
  /** A line under the select. */
  help: string;
}

function describe(c: PublishedSlice): string {
  const m = MEASURED_Q4[c.id];
  const memory = m ? `, ≈ ${(m.gpu / 1e9).toFixed(1)} GB GPU + ${(m.host / 1e9).toFixed(1)} GB RAM` : '';
  return `${c.ffnWidths.length} layers, ${c.effectiveParamsB.toFixed(2)} B effective, MMLU ${c.mmluPt.toFixed(1)} %${memory}`;
}

/** The tag loadGemma keys a named size's cache entry with (src/runtime/loading/model-source.ts sliceCacheTag). */
const tagOf = (id: string) => id.toLowerCase();

/** Whether the cache serves `size` of E4B (q4) without a download. */
export function servedFromCache(size: string, cached: readonly CachedModelInfo[]): boolean {
  const e4b = cached.filter((e) => e.modelId === E4B_REPO && e.weightMode === 'q4');
  return e4b.some((e) => e.slice === undefined || (size !== WHOLE && e.slice === tagOf(size)));
}

/** The select's options: E4B whole first, then the published sizes from small to large. */
export function sizeOptions(cached: readonly CachedModelInfo[]): SizeOption[] {
  const main = E4B_SLICING_CONFIGS.find((c) => c.level === 'main')!;
  const mark = (value: string) => (servedFromCache(value, cached) ? ' · cached' : '');
  const whole: SizeOption = {
    value: WHOLE,
    label: `E4B, whole (${main.effectiveParamsB} B)${mark(WHOLE)}`,
    help: `${describe(main)}. Cached whole, every smaller size is then cut from the cache without downloading.`,
  };
  const rest = E4B_SLICING_CONFIGS.filter((c) => c.level !== 'main')
    .slice()
    .sort((a, b) => a.effectiveParamsB - b.effectiveParamsB)
    .map((c) => ({
      value: c.id,
      label: `${c.id} (${c.level === 'official' ? 'the E2B configuration' : `${c.level}-level`})${mark(c.id)}`,
      help: `${describe(c)}. Downloads only its own part of E4B unless E4B is cached; cached as its own entry.`,
    }));
  return [whole, ...rest];
}
