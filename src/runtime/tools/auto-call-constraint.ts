/**
 * toolChoice 'auto': the reply is free until it shows what it is. Its first non-blank character being `{` means
 * the model started a call (the documented format, tools.ts): from then on the rest of the call is constrained
 * by the call grammar (the tokens so far are replayed into it). Anything else is a text reply and stays free.
 */
import type { TokenConstraint } from '../token-constraint.ts';
import type { ConstraintCompiler, GrammarConstraint } from '../constrained/grammar-constraint.ts';
import type { GrammarVocabulary } from '../constrained/vocabulary.ts';
import { type ToolDeclaration, autoCallSpec } from './tools.ts';

export class AutoCallConstraint implements TokenConstraint {
  private state: 'undecided' | 'call' | 'text' = 'undecided';
  private readonly ids: number[] = [];
  private firstChar = '';

  private constructor(
    private readonly inner: GrammarConstraint,
    private readonly vocab: GrammarVocabulary,
  ) {}

  static async create(compiler: ConstraintCompiler, tools: readonly ToolDeclaration[]): Promise<AutoCallConstraint> {
    return new AutoCallConstraint(await compiler.constraint(autoCallSpec(tools)), compiler.vocab);
  }

  /** Whether the reply became a (constrained) call. */
  get inCall(): boolean {
    return this.state === 'call';
  }

  nextMask(): Uint32Array | null {
    return this.state === 'call' ? this.inner.nextMask() : null;
  }

  async prepare(): Promise<void> {
    if (this.state === 'call') await this.inner.prepare();
  }

  accept(id: number): void {
    if (this.state === 'call') return this.inner.accept(id);
    if (this.state === 'text') return;
    this.ids.push(id);
    const text = new TextDecoder().decode(Uint8Array.from(this.ids.flatMap((i) => Array.from(this.vocab.tokenBytes(i)))));
    const first = text.search(/\S/);
    if (first < 0) return;
    this.firstChar = text[first];
    if (this.firstChar !== '{') {
      this.state = 'text';
      return;
    }
    // Replay the reply so far into the call grammar; a start it cannot continue (e.g. `{}`) stays text.
    for (const prior of this.ids) {
      const mask = this.inner.nextMask();
      if (!((mask[prior >>> 5] >>> (prior & 31)) & 1)) {
        this.state = 'text';
        return;
      }
      this.inner.accept(prior);
    }
    this.state = 'call';
  }

  isComplete(): boolean {
    return this.state === 'call' && this.inner.isComplete();
  }

  dispose(): void {
    this.inner.dispose();
  }
}
