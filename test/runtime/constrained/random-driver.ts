/**
 * Drives TokenConstraints with a random "model" over the real 262k Gemma vocabulary, on the CPU, through the
 * same path the engine uses (prepare/nextMask -> sample within the mask -> accept -> isComplete).
 *
 * The fake model's logits each step are iid noise plus a lift on one tier of ids (picked at random per step):
 * every id, the ids of at most 2 bytes, or the ids holding a closing character (`"`, `}`, `]`). Greedy over
 * (lift + iid noise) is a uniform draw among the allowed ids of the highest non-empty tier, so that is what
 * is drawn. Gibberish on purpose; the closing tier only makes most documents end inside the token budget.
 */
import { readFile } from 'node:fs/promises';
import { GEMMA_TOKENIZER_DIR } from '../gemma-tokenizer.ts';
import { byteFallbackVocabulary, type GrammarVocabulary } from '../../../src/runtime/constrained/vocabulary.ts';
import { ConstraintCompiler } from '../../../src/runtime/constrained/grammar-constraint.ts';
import { loadXGrammarForNode } from '../../../src/node/xgrammar.ts';
import type { TokenConstraint } from '../../../src/runtime/token-constraint.ts';
import type { Rng } from '../../helpers/random.ts';

export const GEMMA_LOGITS = 262400;
export const GEMMA_STOP_IDS = [1, 106];

let vocabPromise: Promise<GrammarVocabulary> | undefined;
let compilerPromise: Promise<ConstraintCompiler> | undefined;

export function gemmaGrammarVocabulary(): Promise<GrammarVocabulary> {
  vocabPromise ??= readFile(GEMMA_TOKENIZER_DIR + 'tokenizer.json', 'utf8').then((text) =>
    byteFallbackVocabulary(JSON.parse(text), { vocabSize: GEMMA_LOGITS, stopTokenIds: GEMMA_STOP_IDS }),
  );
  return vocabPromise;
}

export function gemmaConstraintCompiler(): Promise<ConstraintCompiler> {
  compilerPromise ??= (async () => {
    loadXGrammarForNode();
    return ConstraintCompiler.create(await gemmaGrammarVocabulary());
  })();
  return compilerPromise;
}

/** Tier masks of a vocabulary (see the header). */
export class RandomTokenModel {
  private readonly tiers: Uint32Array[];
  constructor(vocab: GrammarVocabulary) {
    const words = Math.ceil(vocab.vocabSize / 32);
    const short = new Uint32Array(words);
    const closing = new Uint32Array(words);
    for (let id = 0; id < vocab.pieces.length; id++) {
      const b = vocab.tokenBytes(id);
      if (b.length === 0) continue;
      if (b.length <= 2) short[id >>> 5] |= 1 << (id & 31);
      if (b.includes(0x22) || b.includes(0x7d) || b.includes(0x5d)) closing[id >>> 5] |= 1 << (id & 31);
    }
    this.tiers = [short, closing];
  }

  /** A random id allowed by `mask` (see the header). */
  sample(mask: Uint32Array, rng: Rng): number {
    const tier = rng.int(0, 3);
    if (tier > 0) {
      const id = pickUniform(mask, rng, this.tiers[tier - 1]);
      if (id >= 0) return id;
    }
    const id = pickUniform(mask, rng);
    if (id < 0) throw new Error('empty mask');
    return id;
  }
}

function popcount(x: number): number {
  x -= (x >>> 1) & 0x55555555;
  x = (x & 0x33333333) + ((x >>> 2) & 0x33333333);
  return (Math.imul((x + (x >>> 4)) & 0x0f0f0f0f, 0x01010101) >>> 24);
}

/** A uniform id among the set bits of mask (& and, if given); -1 if none. */
export function pickUniform(mask: Uint32Array, rng: Rng, and?: Uint32Array): number {
  let total = 0;
  for (let w = 0; w < mask.length; w++) total += popcount(and ? mask[w] & and[w] : mask[w]);
  if (total === 0) return -1;
  let k = rng.int(0, total);
  for (let w = 0; w < mask.length; w++) {
    let bits = and ? mask[w] & and[w] : mask[w];
    const c = popcount(bits);
    if (k >= c) {
      k -= c;
      continue;
    }
    for (; ; bits &= bits - 1) if (k-- === 0) return (w << 5) | (31 - Math.clz32(bits & -bits));
  }
  return -1;
}

export interface Generation {
  ids: number[];
  text: string;
  finishReason: 'stop' | 'length';
  /** The constraint reported the output complete (only then is it parsed). */
  complete: boolean;
}

/** The engine's loop over a constraint with a sampler; stop ids end it without being part of the text. */
export async function generate(c: TokenConstraint, sample: (mask: Uint32Array) => number | Promise<number>, vocab: GrammarVocabulary, maxNewTokens: number): Promise<Generation> {
  const ids: number[] = [];
  let finishReason: 'stop' | 'length' = 'length';
  while (ids.length < maxNewTokens) {
    await c.prepare?.();
    if (c.isComplete()) {
      finishReason = 'stop';
      break;
    }
    const mask = c.nextMask()!;
    const id = await sample(mask);
    c.accept(id);
    if (vocab.stopTokenIds.includes(id)) {
      finishReason = 'stop';
      break;
    }
    ids.push(id);
  }
  if (finishReason === 'length') {
    await c.prepare?.();
    if (c.isComplete()) finishReason = 'stop';
  }
  const bytes = ids.flatMap((id) => Array.from(vocab.tokenBytes(id)));
  return { ids, text: new TextDecoder().decode(Uint8Array.from(bytes)), finishReason, complete: finishReason === 'stop' };
}
