import { test } from 'node:test';
import assert from 'node:assert/strict';
import Ajv2020 from 'ajv/dist/2020.js';
import { freshRng } from '../../helpers/random.ts';
import { responseFormatSpec } from '../../../src/runtime/constrained/grammar-constraint.ts';
import { GemmaError } from '../../../src/errors.ts';
import { RandomTokenModel, gemmaConstraintCompiler, gemmaGrammarVocabulary, generate } from './random-driver.ts';
import { TEST_SCHEMAS } from './schemas.ts';

const GENERATIONS = 50;
const MAX_NEW_TOKENS = 160;

// 50 seeded gibberish generations per schema over the real 262k Gemma vocabulary: every finished one parses and
// validates (ajv, strict); one cut by maxNewTokens ends 'length' and is never parsed. At least half must finish,
// or the test would prove little.
for (const [name, schema] of Object.entries(TEST_SCHEMAS)) {
  test(`json_schema ${name}: ${GENERATIONS} random-logit generations on the Gemma vocabulary parse and validate`, async () => {
    const { rng, tag } = freshRng();
    const [compiler, vocab] = await Promise.all([gemmaConstraintCompiler(), gemmaGrammarVocabulary()]);
    const validate = new Ajv2020({ strict: true, allErrors: true }).compile(schema as object);
    const spec = responseFormatSpec({ type: 'json_schema', schema })!;
    const compileMs = await compiler.compile(spec);
    assert.ok(compileMs < 5000, `compile took ${compileMs} ms`); // the bench reports it; this only catches a blow-up
    const model = new RandomTokenModel(vocab);
    let finished = 0;
    for (let i = 0; i < GENERATIONS; i++) {
      const c = await compiler.constraint(spec);
      const g = await generate(c, (m) => model.sample(m, rng), vocab, MAX_NEW_TOKENS);
      c.dispose();
      if (!g.complete) {
        assert.equal(g.finishReason, 'length', tag);
        assert.equal(g.ids.length, MAX_NEW_TOKENS, tag);
        continue;
      }
      finished++;
      let value: unknown;
      assert.doesNotThrow(() => (value = JSON.parse(g.text)), `not JSON: ${JSON.stringify(g.text)} ${tag}`);
      assert.ok(validate(value), `invalid: ${g.text}\n${JSON.stringify(validate.errors)} ${tag}`);
    }
    assert.ok(finished >= GENERATIONS / 2, `only ${finished}/${GENERATIONS} finished within ${MAX_NEW_TOKENS} tokens ${tag}`);
  });
}

test('json_object: random generations are JSON objects', async () => {
  const { rng, tag } = freshRng();
  const [compiler, vocab] = await Promise.all([gemmaConstraintCompiler(), gemmaGrammarVocabulary()]);
  const spec = responseFormatSpec({ type: 'json_object' })!;
  const model = new RandomTokenModel(vocab);
  let finished = 0;
  for (let i = 0; i < 20; i++) {
    const c = await compiler.constraint(spec);
    const g = await generate(c, (m) => model.sample(m, rng), vocab, MAX_NEW_TOKENS);
    if (!g.complete) continue;
    finished++;
    const v = JSON.parse(g.text);
    assert.ok(typeof v === 'object' && v !== null && !Array.isArray(v), `${g.text} ${tag}`);
  }
  assert.ok(finished >= 5, `${finished}/20 finished ${tag}`);
});

test('grammar: a user EBNF constrains the text; a bad grammar is a GemmaError', async () => {
  const { rng, tag } = freshRng();
  const [compiler, vocab] = await Promise.all([gemmaConstraintCompiler(), gemmaGrammarVocabulary()]);
  const spec = responseFormatSpec({ type: 'grammar', grammar: 'root ::= ("yes" | "no") " " [0-9]+' })!;
  const model = new RandomTokenModel(vocab);
  for (let i = 0; i < 10; i++) {
    const c = await compiler.constraint(spec);
    const g = await generate(c, (m) => model.sample(m, rng), vocab, 40);
    assert.match(g.text, /^(yes|no)( [0-9]*)?$/, tag);
    if (g.complete) assert.match(g.text, /^(yes|no) [0-9]+$/, tag);
  }
  await assert.rejects(compiler.constraint({ ebnf: 'root ::= undefined_rule' }), (e: unknown) => e instanceof GemmaError && e.code === 'invalid-argument');
});

test('unsupported schemas are rejected before any token, naming the construct', () => {
  const cases: [unknown, RegExp][] = [
    [{ type: 'string', format: 'email' }, /"format"/],
    [{ type: 'array', uniqueItems: true }, /uniqueItems/],
    [{ type: 'string', pattern: '(a)\\1' }, /backreferences/],
    [{ type: 'string', pattern: '^a$b' }, /'\$'/],
    [{ type: 'string', pattern: '[a-z]+', maxLength: 3 }, /pattern.*together/],
    [{ oneOf: [{ type: 'string' }, { type: 'string', maxLength: 2 }] }, /oneOf/],
    [{ anyOf: [{ type: 'string', maxLength: 2 }, { type: 'string', minLength: 5 }] }, /cannot tell apart/],
    [{ type: 'integer', minimum: 5, maximum: 4 }, /bounds no integer/],
    [{ $ref: 'http://x/y' }, /local refs/],
    [{ type: 'object', properties: {}, required: ['a'] }, /"a"/],
    [{ type: 'object', properties: { a: { type: 'number', multipleOf: 2 } } }, /multipleOf.*properties\/a/],
    [{ allOf: [{ type: 'string' }, { maxLength: 2 }] }, /allOf/],
  ];
  for (const [schema, message] of cases) {
    assert.throws(() => responseFormatSpec({ type: 'json_schema', schema }), (e: unknown) => e instanceof GemmaError && e.code === 'invalid-argument' && message.test(e.message), JSON.stringify(schema));
  }
});

test('vocabulary: control and unused ids are blanked, other ids keep the tokenizer\'s bytes', async () => {
  const vocab = await gemmaGrammarVocabulary();
  const { gemmaTokenizer } = await import('../gemma-tokenizer.ts');
  const tok = await gemmaTokenizer();
  for (const id of [0, 1, 2, 3, 4, 5, 6, 7, 105, 106, 255999, 256000]) assert.equal(vocab.pieces[id], '', `id ${id}`);
  const { rng, tag } = freshRng();
  for (let i = 0; i < 2000; i++) {
    const id = rng.int(0, vocab.pieces.length);
    if (vocab.pieces[id] === '') continue;
    assert.deepEqual(Array.from(vocab.tokenBytes(id)), Array.from(tok.tokenBytes(id)), `id ${id} ${JSON.stringify(vocab.pieces[id])} ${tag}`);
  }
});
