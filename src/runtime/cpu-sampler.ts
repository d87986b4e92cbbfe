/**
 * Temperature / top-k / top-p sampling over logits on the CPU, driven by the engine's uniform random number
 * (inverse CDF over the kept tokens, most likely first), so a seed reproduces the same tokens. The fallback
 * while the model samples on the GPU only greedily; O(V log k) for the usual top-k.
 */
import type { SamplingParams } from './language-model.ts';

/** Tokens considered when top-k is off (0) — top-p alone keeps far fewer in practice. */
const MAX_CANDIDATES = 4096;

export function sampleLogits(logits: Float32Array, p: SamplingParams, vocabLimit = logits.length): number {
  const n = Math.min(vocabLimit, logits.length);
  if (p.temperature <= 0 || p.topK === 1) return argmax(logits, n);
  const k = Math.min(n, p.topK > 0 ? p.topK : MAX_CANDIDATES);
  const ids = topK(logits, n, k); // most likely first
  const top = logits[ids[0]];
  const weights = new Float64Array(ids.length);
  let sum = 0;
  for (let j = 0; j < ids.length; j++) sum += weights[j] = Math.exp((logits[ids[j]] - top) / p.temperature);
  let keep = ids.length;
  if (p.topP < 1) {
    let mass = 0;
    for (let j = 0; j < ids.length; j++) {
      mass += weights[j] / sum;
      if (mass >= p.topP) {
        keep = j + 1;
        break;
      }
    }
  }
  let kept = 0;
  for (let j = 0; j < keep; j++) kept += weights[j];
  let target = p.random * kept;
  for (let j = 0; j < keep; j++) {
    target -= weights[j];
    if (target < 0) return ids[j];
  }
  return ids[keep - 1];
}

export function argmax(v: ArrayLike<number>, n = v.length): number {
  let best = 0;
  for (let i = 1; i < n; i++) if (v[i] > v[best]) best = i;
  return best;
}

/** Indices of the k largest of v[0..n), largest first (a min-heap of size k; ties: lower id first). */
export function topK(v: ArrayLike<number>, n: number, k: number): number[] {
  const heap: number[] = [];
  const less = (a: number, b: number) => v[a] < v[b] || (v[a] === v[b] && a > b);
  const down = (i: number) => {
    for (;;) {
      const l = 2 * i + 1, r = l + 1;
      let m = i;
      if (l < heap.length && less(heap[l], heap[m])) m = l;
      if (r < heap.length && less(heap[r], heap[m])) m = r;
      if (m === i) return;
      [heap[i], heap[m]] = [heap[m], heap[i]];
      i = m;
    }
  };
  for (let i = 0; i < n; i++) {
    if (heap.length < k) {
      heap.push(i);
      for (let c = heap.length - 1; c > 0; ) {
        const parent = (c - 1) >> 1;
        if (!less(heap[c], heap[parent])) break;
        [heap[c], heap[parent]] = [heap[parent], heap[c]];
        c = parent;
      }
    } else if (less(heap[0], i)) {
      heap[0] = i;
      down(0);
    }
  }
  return heap.sort((a, b) => (v[b] - v[a]) || a - b);
}
