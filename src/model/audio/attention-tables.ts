/**
 * The two input-independent tables of the audio attention, computed once at load on the CPU:
 * - the relative-position term: HF recomputes pos_proj(timing_signal(position)) for positions P, P-1, ..., -R on
 *   every forward; it depends only on the weights, so rel[f] = pos_proj · timing(P - f) is one [P + R + 1, D] table
 *   per layer and pos_proj itself never reaches the GPU;
 * - the query scale head_dim^-0.5 / softplus(0) * softplus(per_dim_scale), per head dimension.
 * HF builds the sinusoid in float32 (inverse timescales, position products, sin / cos); Math.fround reproduces
 * those roundings (the arguments reach |12| where an f32 rounding moves sin by 5e-7); the projection sums in float64.
 */
import type { AudioTowerConfig } from './config.ts';
import { attentionPast } from './config.ts';

const f = Math.fround;

/** HF's sinusoid for one relative position: [sin(pos / timescale_k) ..., cos(pos / timescale_k) ...], D values. */
export function timingSignal(position: number, channels: number): Float64Array {
  const n = channels >> 1;
  const increment = f(-(Math.log(1.0e4 / 1.0) / Math.max(n - 1, 1)));
  const out = new Float64Array(channels);
  for (let k = 0; k < n; k++) {
    const invTimescale = f(Math.exp(f(k * increment)));
    const scaled = f(f(position) * invTimescale);
    out[k] = f(Math.sin(scaled));
    out[n + k] = f(Math.cos(scaled));
  }
  return out;
}

/**
 * rel [P + R + 1, D] (f32): row f = posProj · timingSignal(P - f), posProj the [D, D] `pos_proj` weight (row-major
 * [out, in]).
 */
export function relativePositionTable(cfg: AudioTowerConfig, posProj: Float32Array): Float32Array {
  const D = cfg.hiddenSize;
  if (posProj.length !== D * D) throw new Error(`pos_proj has ${posProj.length} values, expected ${D * D}`);
  const P = attentionPast(cfg);
  const F = P + cfg.contextRight + 1;
  const rel = new Float32Array(F * D);
  for (let row = 0; row < F; row++) {
    const signal = timingSignal(P - row, D);
    for (let o = 0; o < D; o++) {
      let acc = 0;
      const base = o * D;
      for (let i = 0; i < D; i++) acc += posProj[base + i] * signal[i];
      rel[row * D + o] = acc;
    }
  }
  return rel;
}

/** torch softplus (beta 1, threshold 20) in float32. */
function softplus32(x: number): number {
  return x > 20 ? f(x) : f(Math.log1p(Math.exp(x)));
}

/** The per-dimension query scale, f32 [head_dim]: f32(head_dim^-0.5 / softplus(0)) * softplus(per_dim_scale). */
export function queryScale(cfg: AudioTowerConfig, perDimScale: Float32Array): Float32Array {
  if (perDimScale.length !== cfg.headDim) throw new Error(`per_dim_scale has ${perDimScale.length} values, expected ${cfg.headDim}`);
  const qScale = f(f(cfg.headDim ** -0.5) * f(1 / softplus32(0)));
  return Float32Array.from(perDimScale, (s) => qScale * softplus32(s));
}
