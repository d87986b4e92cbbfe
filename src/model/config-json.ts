/**
 * Reading a model's config.json (family-neutral): typed numbers with the key named when one is missing or wrong, the
 * one error every family raises for a setting it does not implement, and id lists (`eos_token_id` may be a number or
 * a list).
 */
import { GemmaError } from '../errors.ts';

export type Json = Record<string, unknown>;

/** GemmaError('unsupported-config') naming the key, its value and why. */
export function unsupported(key: string, value: unknown, why: string): GemmaError {
  return new GemmaError('unsupported-config', `config.json: ${key} = ${JSON.stringify(value)} is not supported (${why}).`);
}

/** obj[key] (or the default) as a finite number, an integer ≥ min when asked; `prefix` is the key's path for messages. */
export function num(obj: Json, key: string, prefix: string, opts: { int?: boolean; min?: number; default?: number } = {}): number {
  const v = obj[key] ?? opts.default;
  if (typeof v !== 'number' || !Number.isFinite(v) || (opts.int && !Number.isInteger(v)) || (opts.min !== undefined && v < opts.min)) {
    throw unsupported(prefix + key, v, opts.int ? `expected an integer ≥ ${opts.min ?? 0}` : 'expected a number');
  }
  return v;
}

/** A token id or a list of them; `fallback` when absent or malformed. */
export function idList(v: unknown, fallback: number[]): number[] {
  if (typeof v === 'number') return [v];
  if (Array.isArray(v) && v.every((x) => typeof x === 'number')) return v as number[];
  return fallback;
}
