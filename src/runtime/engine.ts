/**
 * The host-independent engine: it owns the conversation. Prompt (segments) -> prefix reuse -> chunked prefill ->
 * sample/step loop -> streamed deltas, over a LanguageModel (src/model/language-model.ts) and an optional
 * TextTokenizer. No worker, no DOM: the browser worker (worker-host.ts), Node (the CLI) and tests drive the same
 * class, and all of them get the same GenerationStream the page gets.
 *
 * - The KV history is here and only here: `keys` holds one key per cached position (the token id, or a media span's
 *   content hash and index), so a new prompt reuses exactly the positions whose content is unchanged. Where a
 *   sliding-window ring has overwritten what the reuse point needs, the model says so (`rewindableTo`) and the
 *   prompt is prefilled from the start instead.
 * - Prefill runs in the model's chunks, each awaited: an abort is seen within one chunk of compute.
 * - One generation at a time: a second call while one runs fails with GemmaError('busy'), unless the running one was
 *   aborted (then the new one starts once it has wound down, at most one chunk or token later).
 */
import { GemmaError } from '../errors.ts';
import type { LanguageModel, SamplingParams } from '../model/language-model.ts';
import type { ToolTokens } from '../model/tool-tokens.ts';
import { IncrementalDetokenizer } from './detokenizer.ts';
import { GenerationStream } from './generation-stream.ts';
import { Prompt, commonPrefixLength, type PositionKey } from './prompt.ts';
import type { ChatMessage, ChatOptions, Delta, FinishReason, GenerateOptions, GenerationStats, PromptInfo, PromptInput, StreamOptions } from './protocol.ts';
import type { WireMessage, WirePromptItem } from './content.ts';
import { PromptBuilder } from './media/prompt-builder.ts';
import { SamplerRng, randomSeed } from './rng.ts';
import { StopStringMatcher } from './stop-strings.ts';
import type { TextTokenizer } from './tokenizer.ts';
import type { TokenConstraint } from './token-constraint.ts';

export interface EngineParts {
  model: LanguageModel;
  /** Without a tokenizer only token-id prompts work, and deltas carry token ids with empty text. */
  tokenizer?: TextTokenizer;
  /** Token ids that end generation (the checkpoint's eos ids); the tokenizer's eos is added. */
  stopTokenIds?: readonly number[];
  /** Builds prompts with media (default: text and token ids only). */
  prompts?: PromptBuilder;
  /** The family's native tool-call markers (LoadedModel.toolTokens): tools use them when the tokenizer has them. */
  toolTokens?: ToolTokens<string>;
}

/** What one generation needs beyond its options (the structured-output and tool layers add a constraint). */
export interface GenerationExtras {
  /**
   * Constrains sampling. A promise is awaited once the prompt is prefilled (a grammar compiles meanwhile); if it
   * rejects, the generation fails before its first token (within one prefill chunk). Disposed when it ends.
   */
  constraint?: TokenConstraint | Promise<TokenConstraint>;
  /** Rewrites the streamed deltas and the final stats (the tool layer turns a call's text into `toolCalls`). */
  output?: OutputFilter;
}

/** See GenerationExtras.output. */
export interface OutputFilter {
  delta(d: Delta): Delta;
  /** At the end: may change `stats` (e.g. finishReason 'tool_calls') and return a last delta. */
  end(stats: GenerationStats): Delta | undefined;
}

export const DEFAULT_OPTIONS = {
  maxNewTokens: 1024,
  temperature: 1.0,
  topK: 64,
  topP: 0.95,
} as const;

export class Engine {
  readonly model: LanguageModel;
  readonly tokenizer: TextTokenizer | undefined;
  readonly prompts: PromptBuilder;
  private readonly stopIds: Set<number>;
  private readonly toolTokens: ToolTokens<string> | undefined;
  /** One key per position the model's KV cache holds (positions 0..length-1). */
  private keys: PositionKey[] = [];
  private current: { done: Promise<void>; aborted: boolean } | undefined;
  private disposed = false;

  constructor(parts: EngineParts) {
    this.model = parts.model;
    this.tokenizer = parts.tokenizer;
    this.prompts = parts.prompts ?? new PromptBuilder({ tokenizer: parts.tokenizer, maxContext: parts.model.maxContext });
    this.stopIds = new Set([...(parts.stopTokenIds ?? []), ...(parts.tokenizer?.stopTokenIds ?? [])]);
    this.toolTokens = parts.toolTokens;
  }

  /** Positions currently held in the KV cache (reusable by the next prompt that starts with them). */
  get cachedTokens(): number {
    return this.keys.length;
  }

  get busy(): boolean {
    return this.current !== undefined;
  }

  /** The ids that end a reply (the checkpoint's and the tokenizer's eos ids). */
  get stopTokenIds(): readonly number[] {
    return [...this.stopIds];
  }

  /**
   * Streams the model's reply to a conversation rendered with the checkpoint's chat template; content may hold media
   * parts (laid out as Hugging Face's processor does: src/runtime/media/prompt-builder.ts). With `tools` or
   * `responseFormat` (or tool turns in `messages`), src/runtime/structured/ renders the tools into the conversation
   * and builds the constraint, loaded on first use.
   */
  chat(messages: readonly (ChatMessage | WireMessage)[], options: ChatOptions = {}, extras: GenerationExtras = {}): GenerationStream {
    const { tools, toolChoice, responseFormat, ...streamOptions } = options;
    if (!usesToolsOrFormat(messages, options)) return this.start(() => this.prompts.chat(messages), streamOptions, extras);
    return this.start(async () => {
      const tokenizer = this.requireTokenizer('chat()');
      const { planStructuredChat } = await import('./structured/plan.ts');
      const plan = planStructuredChat(tokenizer, messages, { tools, toolChoice, responseFormat }, { vocabSize: this.model.vocabSize, stopTokenIds: this.stopTokenIds, toolTokens: this.toolTokens });
      try {
        return { prompt: await this.prompts.chat(plan.messages), extras: { ...extras, ...plan.extras } };
      } catch (err) {
        // The constraint is compiling already: free it (the engine disposes it only for a generation that ran).
        Promise.resolve(plan.extras.constraint).then((c) => c?.dispose?.(), () => {});
        throw err;
      }
    }, streamOptions, extras);
  }

  /**
   * Streams the continuation of a text prompt (tokenized with BOS, no template), token ids, a raw prompt of ids,
   * text and media parts (token-exact: src/runtime/media/prompt-builder.ts), or a segmented Prompt.
   */
  generate(prompt: PromptInput | readonly WirePromptItem[] | Prompt, options: StreamOptions = {}, extras: GenerationExtras = {}): GenerationStream {
    return this.start(() => {
      if (prompt instanceof Prompt) return prompt;
      if (typeof prompt === 'string') return Prompt.fromIds(this.requireTokenizer('a text prompt').encode(prompt));
      if (!Array.isArray(prompt)) throw new GemmaError('invalid-argument', 'prompt must be a string, an array of token ids, or an array of ids and parts.');
      if (prompt.every((x) => typeof x === 'number')) return Prompt.fromIds(prompt as number[]);
      return this.prompts.raw(prompt as readonly WirePromptItem[]);
    }, options, extras);
  }

  /**
   * The logits [T][vocab] of every position of `ids` or of a segmented Prompt (media soft tokens included; scoring,
   * the CLI's `logits`). Recomputes from position 0.
   */
  async logits(ids: readonly number[] | Prompt): Promise<Float32Array[]> {
    this.checkUsable();
    if (this.current) throw busyError();
    const prompt = ids instanceof Prompt ? ids : Prompt.fromIds(Array.from(ids));
    this.validate(prompt);
    const done = this.claim(false);
    try {
      this.rewindTo(0);
      const out: Float32Array[] = [];
      for (let pos = 0; pos < prompt.length; pos += this.model.maxChunk) {
        const end = Math.min(prompt.length, pos + this.model.maxChunk);
        const soft = await prompt.softTokens(pos, end, this.model.embeddingWidth);
        await this.model.feed({ ids: prompt.ids.slice(pos, end), soft }, { allLogits: true });
        this.keys.push(...prompt.keys.slice(pos, end));
        out.push(...(await this.model.readLogits()));
      }
      return out;
    } catch (err) {
      this.forget();
      throw err;
    } finally {
      done();
    }
  }

  /** Forgets the KV cache: the next prompt is prefilled from scratch. */
  async resetCache(): Promise<void> {
    this.checkUsable();
    await this.current?.done;
    if (this.current) throw busyError();
    this.forget();
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.keys = [];
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

  /** Marks a generation as running; returns its `done` callback. */
  private claim(aborted: boolean): () => void {
    let settle!: () => void;
    const entry = { done: new Promise<void>((r) => (settle = r)), aborted };
    this.current = entry;
    return () => {
      if (this.current === entry) this.current = undefined;
      settle();
    };
  }

  private start(build: () => Prompt | Promise<Prompt | { prompt: Prompt; extras: GenerationExtras }>, options: StreamOptions, extras: GenerationExtras): GenerationStream {
    const stream = new GenerationStream();
    const t0 = performance.now();
    const { signal: external, ...genOptions } = options;
    const controller = new AbortController();
    const abort = () => controller.abort();
    stream.onAbort = abort;
    external?.addEventListener('abort', abort, { once: true });
    if (external?.aborted) abort();
    const previous = this.current;
    try {
      this.checkUsable();
      if (previous && !previous.aborted) throw busyError();
    } catch (err) {
      stream.fail(err as GemmaError);
      return stream;
    }
    const done = this.claim(false);
    const entry = this.current!;
    controller.signal.addEventListener('abort', () => (entry.aborted = true), { once: true });
    void (async () => {
      try {
        if (previous) await previous.done;
        const opts = resolveOptions(genOptions);
        const built = await build();
        const { prompt, extras: ex } = built instanceof Prompt ? { prompt: built, extras } : built;
        const output = ex.output;
        const stats = await this.run(prompt, opts, ex, controller.signal, (d) => stream.push([output ? output.delta(d) : d]), t0, (info) => stream.begin(info));
        const last = output?.end(stats);
        if (last) stream.push([last]);
        stream.finish(stats);
      } catch (err) {
        stream.fail(err instanceof GemmaError ? err : new GemmaError('internal', `generation failed: ${(err as Error)?.message ?? err}`, { cause: err }));
      } finally {
        external?.removeEventListener('abort', abort);
        done();
      }
    })();
    return stream;
  }

  private validate(prompt: Prompt): void {
    const { model } = this;
    if (prompt.length === 0) throw new GemmaError('invalid-argument', 'The prompt is empty: give at least one token.');
    for (const id of prompt.ids) {
      if (!Number.isInteger(id) || id < 0 || id >= model.vocabSize) {
        throw new GemmaError('invalid-argument', `Token id ${id} is not an integer in [0, ${model.vocabSize}).`);
      }
    }
    if (prompt.length >= model.maxContext) {
      throw new GemmaError(
        'context-overflow',
        `The prompt is ${prompt.length} tokens but the context holds ${model.maxContext} (including the reply), so there is no room to generate. ` +
          `Shorten the conversation (drop or summarise early turns) or load the model with a larger contextLength.`,
      );
    }
  }

  /** Moves the cache to `n` positions, or to fewer where the model cannot rewind that far; returns what is kept. */
  private rewindTo(n: number): number {
    const kept = this.model.rewindableTo(n);
    this.model.rewind(kept);
    this.keys.length = kept;
    return kept;
  }

  /** Drops the cache (after an error it may be half-written). */
  private forget(): void {
    this.keys = [];
    try {
      this.model.rewind(0);
    } catch {
      // the model is already broken; the original error says why
    }
  }

  private async run(
    prompt: Prompt,
    opts: ResolvedOptions,
    extras: GenerationExtras,
    signal: AbortSignal,
    emit: (d: Delta) => void,
    t0: number,
    onStart: (info: PromptInfo) => void,
  ): Promise<GenerationStats> {
    const { model } = this;
    // The constraint may still be compiling: prefill meanwhile, and stop at a chunk boundary if it fails.
    const pending = Promise.resolve(extras.constraint);
    let constraintFailed: { error: unknown } | undefined;
    pending.catch((error) => (constraintFailed = { error }));
    try {
      this.validate(prompt);
    } catch (err) {
      pending.then((c) => c?.dispose?.(), () => {});
      throw err;
    }
    const maxContext = model.maxContext;
    // Reuse the longest common prefix (by content key), but always recompute the last prompt position (its logits).
    const reused = this.rewindTo(Math.min(commonPrefixLength(this.keys, prompt.keys), prompt.length - 1));
    onStart({ promptTokens: prompt.length, reusedTokens: reused });

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
    let constraint: TokenConstraint | undefined;
    // The mask of the next token, computed once the model has submitted the forward pass (GPU and CPU overlap);
    // a complete output allows only the stop ids, so the sampler ends it.
    const nextMask = async (): Promise<Uint32Array | null> => {
      await constraint!.prepare?.();
      return constraint!.isComplete() ? this.stopMask() : constraint!.nextMask();
    };
    const params = (): SamplingParams => {
      const p: SamplingParams = { temperature: opts.temperature, topK: opts.topK, topP: opts.topP, random: rng.next() };
      if (constraint) p.mask = nextMask;
      return p;
    };
    const detok = this.tokenizer ? new IncrementalDetokenizer(this.tokenizer) : undefined;
    const stopper = new StopStringMatcher(opts.stop);
    const stopIds = opts.stopTokenIds.length ? new Set([...this.stopIds, ...opts.stopTokenIds]) : this.stopIds;

    try {
      // Prefill the uncached part of the prompt, chunk by chunk, so an abort is seen in between.
      const tPrefill = performance.now();
      const C = model.maxChunk;
      for (let pos = reused; pos < prompt.length; pos += C) {
        if (signal.aborted) return finish('abort');
        if (constraintFailed) throw constraintFailed.error;
        const end = Math.min(prompt.length, pos + C);
        // Media spans are encoded here, on first need (an abort stops the encoder within one of its stages).
        const soft = await prompt.softTokens(pos, end, model.embeddingWidth, signal).catch((err) => {
          if (signal.aborted) return null;
          throw err;
        });
        if (prompt.encodeMs > 0) stats.encodeMs = prompt.encodeMs;
        if (soft === null || signal.aborted) return finish('abort');
        await model.feed({ ids: prompt.ids.slice(pos, end), soft });
        this.keys.push(...prompt.keys.slice(pos, end));
        stats.prefillTokens += end - pos;
      }
      if (signal.aborted) return finish('abort');
      constraint = await pending;
      if (signal.aborted) return finish('abort');

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
        constraint?.accept(token);
        const text = detok ? detok.push(token) : '';
        const out = stopper.push(text);
        emit({ text: out.text, tokenIds: [token] });
        if (out.stopped) {
          reason = 'stop';
          stoppedByString = true;
          break;
        }
        if (constraint && this.stopIds.size === 0) {
          // No stop id that the sampler could pick to end a complete output (see nextMask): end it here.
          await constraint.prepare?.();
          if (constraint.isComplete()) {
            reason = 'stop';
            break;
          }
        }
        if (stats.newTokens >= opts.maxNewTokens || this.keys.length >= maxContext) {
          reason = 'length';
          break;
        }
        if (signal.aborted) {
          reason = 'abort';
          break;
        }
        const fed = token;
        if (model.step) {
          token = await model.step(fed, params());
        } else {
          await model.feed({ ids: [fed] });
          token = await model.sample(params());
        }
        this.keys.push(fed);
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
      if (constraint) {
        // Ended by a stop token: the constraint allowed it, so the output is whole. Otherwise ask the constraint.
        if (reason !== 'stop' || stoppedByString) {
          await constraint.prepare?.();
          stats.complete = constraint.isComplete();
          if (reason === 'length' && stats.complete) reason = 'stop';
        } else stats.complete = true;
      }
      return finish(reason);
    } catch (err) {
      this.forget();
      throw err;
    } finally {
      pending.then((c) => c?.dispose?.(), () => {});
    }
  }

  /** Only the stop ids (the mask of a complete constrained output). */
  private stopMask(): Uint32Array {
    const mask = new Uint32Array(Math.ceil(this.model.vocabSize / 32));
    for (const id of this.stopIds) if (id < this.model.vocabSize) mask[id >>> 5] |= 1 << (id & 31);
    return mask;
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

/** Whether chat() needs src/runtime/structured/: tools, a response format, or tool turns to render. */
function usesToolsOrFormat(messages: readonly (ChatMessage | WireMessage)[], o: ChatOptions): boolean {
  if (o.tools !== undefined || o.toolChoice !== undefined || (o.responseFormat !== undefined && o.responseFormat?.type !== 'text')) return true;
  return Array.isArray(messages) && messages.some((m) => m?.role === 'tool' || m?.toolCalls !== undefined);
}

function busyError(): GemmaError {
  return new GemmaError(
    'busy',
    'A generation is already running on this model. Wait for it to finish, or abort it (its stream ends at once) before starting another.',
  );
}
