/**
 * The host-independent engine: prompt -> token ids -> prefill -> sample/step loop -> streamed deltas, over a
 * LanguageModel and an optional TextTokenizer. No worker, no DOM: the browser worker (worker-host.ts), Node
 * and tests drive the same class.
 *
 * - Multi-turn KV reuse: the engine remembers the ids whose K/V are in the model's cache; a new prompt
 *   prefills only what follows their longest common prefix (an edited history invalidates from the edit on).
 * - One generation at a time: a second call while one runs fails with GemmaError('busy').
 * - Abort (an AbortSignal) is checked before every model call: generation stops within one token and
 *   finishes with reason 'abort'; the tokens generated so far stay cached.
 */
import { GemmaError } from '../errors.ts';
import { IncrementalDetokenizer } from './detokenizer.ts';
import type { LanguageModel, SamplingParams } from './language-model.ts';
import type { ChatMessage, Delta, FinishReason, GenerateOptions, GenerationStats, PromptInput } from './protocol.ts';
import { SamplerRng, randomSeed } from './rng.ts';
import { StopStringMatcher } from './stop-strings.ts';
import type { TextTokenizer } from './tokenizer.ts';

export interface EngineParts {
  model: LanguageModel;
  /** Without a tokenizer only token-id prompts work, and deltas carry token ids with empty text. */
  tokenizer?: TextTokenizer;
  /** Token ids that end generation (the checkpoint's eos ids); the tokenizer's eos is added. */
  stopTokenIds?: readonly number[];
}

export interface EngineRunOptions {
  /** Called for every sampled token (and once more at the end if held-back text remains). */
  onDelta?: (delta: Delta) => void;
  /** Stops generation within one token (finishReason 'abort'). */
  signal?: AbortSignal;
}

export const DEFAULT_OPTIONS = {
  maxNewTokens: 1024,
  temperature: 1.0,
  topK: 64,
  topP: 0.95,
} as const;

/** Prefill is split into chunks of this many tokens so that an abort is seen between them. */
const PREFILL_CHUNK = 512;

export class Engine {
  readonly model: LanguageModel;
  readonly tokenizer: TextTokenizer | undefined;
  private readonly stopIds: Set<number>;
  /** Ids whose K/V the model's cache holds, in order (positions 0..length-1). */
  private cached: number[] = [];
  private running = false;
  private disposed = false;

  constructor(parts: EngineParts) {
    this.model = parts.model;
    this.tokenizer = parts.tokenizer;
    this.stopIds = new Set([...(parts.stopTokenIds ?? []), ...(parts.tokenizer?.stopTokenIds ?? [])]);
  }

  /** Tokens currently held in the KV cache (reusable by the next prompt that starts with them). */
  get cachedTokens(): number {
    return this.cached.length;
  }

  get busy(): boolean {
    return this.running;
  }

  /** Renders `messages` with the checkpoint's chat template and generates the model's reply. */
  async chat(messages: readonly ChatMessage[], options: GenerateOptions = {}, run: EngineRunOptions = {}): Promise<GenerationStats> {
    this.checkUsable();
    validateMessages(messages);
    const tokenizer = this.requireTokenizer('chat()');
    const t0 = performance.now();
    return this.runExclusive(() => tokenizer.applyChatTemplate(messages), options, run, t0);
  }

  /** Continues a text prompt (tokenized with BOS, no template) or token ids as given. */
  async generate(prompt: PromptInput, options: GenerateOptions = {}, run: EngineRunOptions = {}): Promise<GenerationStats> {
    this.checkUsable();
    const t0 = performance.now();
    if (typeof prompt === 'string') {
      const tokenizer = this.requireTokenizer('a text prompt');
      return this.runExclusive(() => tokenizer.encode(prompt), options, run, t0);
    }
    if (!Array.isArray(prompt)) throw new GemmaError('invalid-argument', 'prompt must be a string or an array of token ids.');
    return this.runExclusive(() => Array.from(prompt), options, run, t0);
  }

  /** Forgets the KV cache: the next prompt is prefilled from scratch. */
  async resetCache(): Promise<void> {
    this.checkUsable();
    if (this.running) throw busyError();
    this.cached = [];
    await this.model.truncate(0);
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.cached = [];
    this.model.dispose();
  }

  private checkUsable(): void {
    if (this.disposed) throw new GemmaError('disposed', 'This engine was disposed; load the model again to keep generating.');
  }

  private requireTokenizer(what: string): TextTokenizer {
    if (!this.tokenizer) {
      throw new GemmaError('invalid-argument', `${what} needs a tokenizer, and this model was loaded without one: pass token ids, or load with tokenizer files.`);
    }
    return this.tokenizer;
  }

  private async runExclusive(tokenize: () => number[], options: GenerateOptions, run: EngineRunOptions, t0: number): Promise<GenerationStats> {
    if (this.running) throw busyError();
    this.running = true;
    try {
      const opts = resolveOptions(options);
      const ids = tokenize();
      return await this.run(ids, opts, run, t0);
    } finally {
      this.running = false;
    }
  }

  private async run(prompt: number[], opts: ResolvedOptions, run: EngineRunOptions, t0: number): Promise<GenerationStats> {
    const { model } = this;
    const maxContext = model.maxContext;
    if (prompt.length === 0) throw new GemmaError('invalid-argument', 'The prompt is empty: give at least one token.');
    for (const id of prompt) {
      if (!Number.isInteger(id) || id < 0 || id >= model.vocabSize) {
        throw new GemmaError('invalid-argument', `Token id ${id} is not an integer in [0, ${model.vocabSize}).`);
      }
    }
    if (prompt.length >= maxContext) {
      throw new GemmaError(
        'context-overflow',
        `The prompt is ${prompt.length} tokens but the context holds ${maxContext} (including the reply), so there is no room to generate. ` +
          `Shorten the conversation (drop or summarise early turns) or load the model with a larger contextLength.`,
      );
    }
    const signal = run.signal;
    const emit = run.onDelta ?? (() => {});

    // KV reuse: keep the longest common prefix, but always recompute at least the last prompt token (its logits).
    let common = commonPrefixLength(this.cached, prompt);
    common = Math.min(common, prompt.length - 1);
    let reused: number;
    try {
      reused = Math.max(0, Math.min(common, await model.truncate(common)));
    } catch (err) {
      this.cached = [];
      throw err;
    }
    this.cached.length = reused;

    const stats: GenerationStats = {
      promptTokens: prompt.length,
      reusedTokens: reused,
      prefillTokens: 0,
      newTokens: 0,
      timeToFirstTokenMs: 0,
      prefillTokensPerSecond: 0,
      decodeTokensPerSecond: 0,
      totalMs: 0,
      finishReason: 'abort',
    };
    const finish = (reason: FinishReason): GenerationStats => {
      stats.finishReason = reason;
      stats.totalMs = performance.now() - t0;
      return stats;
    };

    const rng = new SamplerRng(opts.seed);
    const params = (): SamplingParams => ({ temperature: opts.temperature, topK: opts.topK, topP: opts.topP, random: rng.next() });
    const detok = this.tokenizer ? new IncrementalDetokenizer(this.tokenizer) : undefined;
    const stopper = new StopStringMatcher(opts.stop);
    const stopIds = opts.stopTokenIds.length ? new Set([...this.stopIds, ...opts.stopTokenIds]) : this.stopIds;

    try {
      // Prefill the uncached part of the prompt, in chunks so an abort is seen in between.
      const tPrefill = performance.now();
      for (let pos = reused; pos < prompt.length; pos += PREFILL_CHUNK) {
        if (signal?.aborted) return finish('abort');
        const chunk = prompt.slice(pos, Math.min(prompt.length, pos + PREFILL_CHUNK));
        await model.prefill(chunk, pos);
        this.cached.push(...chunk);
        stats.prefillTokens += chunk.length;
      }
      if (signal?.aborted) return finish('abort');

      let token = await model.sample(params());
      const tFirst = performance.now();
      stats.prefillTokensPerSecond = stats.prefillTokens > 0 ? stats.prefillTokens / ((tFirst - tPrefill) / 1000) : 0;
      stats.timeToFirstTokenMs = tFirst - t0;
      let tLast = tFirst;
      let reason: FinishReason;
      let stoppedByString = false;
      for (;;) {
        stats.newTokens++;
        if (stopIds.has(token)) {
          reason = 'stop';
          break;
        }
        const text = detok ? detok.push(token) : '';
        const out = stopper.push(text);
        emit({ text: out.text, tokenIds: [token] });
        if (out.stopped) {
          reason = 'stop';
          stoppedByString = true;
          break;
        }
        if (stats.newTokens >= opts.maxNewTokens || this.cached.length >= maxContext) {
          reason = 'length';
          break;
        }
        if (signal?.aborted) {
          reason = 'abort';
          break;
        }
        const pos = this.cached.length;
        const fed = token;
        if (model.step) {
          token = await model.step(fed, pos, params());
        } else {
          await model.prefill([fed], pos);
          token = await model.sample(params());
        }
        this.cached.push(fed);
        tLast = performance.now();
      }
      if (!stoppedByString) {
        // Release what was held back: an unfinished character (as U+FFFD) and a partial stop-string match.
        const out = stopper.push(detok ? detok.flush() : '');
        const rest = out.stopped ? out.text : out.text + stopper.flush();
        if (out.stopped) reason = 'stop';
        if (rest) emit({ text: rest, tokenIds: [] });
      }
      stats.decodeTokensPerSecond = stats.newTokens > 1 && tLast > tFirst ? (stats.newTokens - 1) / ((tLast - tFirst) / 1000) : 0;
      return finish(reason);
    } catch (err) {
      // The cache may be half-written: forget it so the next turn starts clean.
      this.cached = [];
      try {
        await model.truncate(0);
      } catch {
        // the model is already broken; the original error says why
      }
      throw err;
    }
  }
}

interface ResolvedOptions {
  maxNewTokens: number;
  temperature: number;
  topK: number;
  topP: number;
  seed: number;
  stop: string[];
  stopTokenIds: number[];
}

function resolveOptions(o: GenerateOptions): ResolvedOptions {
  const bad = (what: string): never => {
    throw new GemmaError('invalid-argument', what);
  };
  const maxNewTokens = o.maxNewTokens ?? DEFAULT_OPTIONS.maxNewTokens;
  if (!(Number.isInteger(maxNewTokens) || maxNewTokens === Infinity) || maxNewTokens < 1) bad(`maxNewTokens must be a positive integer (got ${maxNewTokens}).`);
  const temperature = o.temperature ?? DEFAULT_OPTIONS.temperature;
  if (!Number.isFinite(temperature) || temperature < 0) bad(`temperature must be a finite number >= 0 (got ${temperature}); 0 means greedy.`);
  const topK = o.topK ?? DEFAULT_OPTIONS.topK;
  if (!Number.isInteger(topK) || topK < 0) bad(`topK must be an integer >= 0 (got ${topK}); 0 means no limit.`);
  const topP = o.topP ?? DEFAULT_OPTIONS.topP;
  if (!(topP > 0 && topP <= 1)) bad(`topP must be in (0, 1] (got ${topP}); 1 means off.`);
  const seed = o.seed ?? randomSeed();
  if (!Number.isFinite(seed)) bad(`seed must be a finite number (got ${seed}).`);
  const stop = o.stop ?? [];
  if (!Array.isArray(stop) || stop.some((s) => typeof s !== 'string' || s.length === 0)) bad('stop must be an array of non-empty strings.');
  const stopTokenIds = o.stopTokenIds ?? [];
  if (!Array.isArray(stopTokenIds) || stopTokenIds.some((id) => !Number.isInteger(id))) bad('stopTokenIds must be an array of integers.');
  return { maxNewTokens, temperature, topK, topP, seed, stop, stopTokenIds };
}

function validateMessages(messages: readonly ChatMessage[]): void {
  if (!Array.isArray(messages) || messages.length === 0) throw new GemmaError('invalid-argument', 'chat() needs at least one message.');
  for (const m of messages) {
    if (!m || (m.role !== 'system' && m.role !== 'user' && m.role !== 'assistant') || typeof m.content !== 'string') {
      throw new GemmaError('invalid-argument', `Each message needs role 'system' | 'user' | 'assistant' and a string content (got ${JSON.stringify(m)}).`);
    }
  }
}

export function commonPrefixLength(a: readonly number[], b: readonly number[]): number {
  const n = Math.min(a.length, b.length);
  let i = 0;
  while (i < n && a[i] === b[i]) i++;
  return i;
}

function busyError(): GemmaError {
  return new GemmaError(
    'busy',
    'A generation is already running on this model. Wait for it to finish, or abort it (its stream ends at once) before starting another.',
  );
}
