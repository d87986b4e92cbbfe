/** The Gemma 4 tiny golden fixture (test/fixtures/gemma4-tiny-a; its README gives the math, traps and tolerances). */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fixtureDir } from './fixtures.ts';

export const GEMMA4_FIXTURE = 'gemma4-tiny-a';

export interface Gemma4GoldenCase {
  name: string;
  T: number;
  input_ids: number[];
  logits: number[][];
  argmax: number[];
  top2_margin: number[];
  debug_f32?: {
    inputs_embeds: number[][];
    /** [L][T][P] */
    per_layer_inputs: number[][][];
    /** [L][T][D] */
    layer_out: number[][][];
    final_norm: number[][];
  };
}

export interface Gemma4Golden {
  cases: Gemma4GoldenCase[];
  greedy: { prompt_ids: number[]; generated_ids: number[]; min_top2_margin: number };
  tolerance: { recommended_atol: number; measured_max_abs_f32_vs_f64: number };
}

let cached: { name: string; dir: string; golden: Gemma4Golden } | undefined;

/** The fixture (its folder and golden.json); a missing fixture throws, failing the suite. */
export function gemma4Fixture(): { name: string; dir: string; golden: Gemma4Golden } {
  if (!cached) {
    const dir = fixtureDir(GEMMA4_FIXTURE, ['README.md', 'config.json', 'model.safetensors', 'golden.json']);
    cached = { name: GEMMA4_FIXTURE, dir, golden: JSON.parse(readFileSync(join(dir, 'golden.json'), 'utf8')) as Gemma4Golden };
  }
  return cached;
}
