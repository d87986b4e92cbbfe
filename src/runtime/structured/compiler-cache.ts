/**
 * One grammar compiler per loaded tokenizer (and logits size and stop ids), made on first use: building XGrammar's
 * tokenizer info over Gemma's 262k pieces costs ~0.2 s, so it is done once, and its compiled grammars are cached
 * in it (grammar-constraint.ts), so a schema used again starts without compiling.
 */
import { GemmaError } from '../../errors.ts';
import type { TextTokenizer } from '../tokenizer.ts';
import { ConstraintCompiler } from '../constrained/grammar-constraint.ts';
import { type ControlSpelling, grammarVocabulary } from '../constrained/vocabulary.ts';

const compilers = new WeakMap<TextTokenizer, Map<string, Promise<ConstraintCompiler>>>();

/** `controls`: control tokens the grammars may write (a native tool format's markers); another vocabulary, another compiler. */
export function compilerFor(tokenizer: TextTokenizer, vocabSize: number, stopTokenIds: readonly number[], controls?: ControlSpelling): Promise<ConstraintCompiler> {
  let byModel = compilers.get(tokenizer);
  if (!byModel) compilers.set(tokenizer, (byModel = new Map()));
  const key = `${vocabSize}:${stopTokenIds.join(',')}:${[...(controls ?? [])].map(([id, s]) => `${id}=${s.codePointAt(0)}`).join(',')}`;
  let compiler = byModel.get(key);
  if (!compiler) {
    const vocabulary = tokenizer.vocabulary?.();
    if (!vocabulary) {
      throw new GemmaError('unsupported-config', 'This tokenizer does not expose its vocabulary (TextTokenizer.vocabulary()), so decoding cannot be constrained: no tools or responseFormat with it.');
    }
    const made = ConstraintCompiler.create(grammarVocabulary(vocabulary, { vocabSize, stopTokenIds, controls }));
    made.catch(() => byModel!.delete(key));
    byModel.set(key, (compiler = made));
  }
  return compiler;
}
