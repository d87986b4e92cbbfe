/** The CLI behind bin/gemma3n-webgpu.mjs (see its header for the interface). Errors: message on stderr, exit 1. */
import { stat } from 'node:fs/promises';
import { GemmaError } from '../errors.ts';
import type { Checkpoint } from '../io/checkpoint.ts';
import { openSafetensorsCheckpoint } from '../io/safetensors.ts';
import { openGemma3nGguf } from '../io/gguf-gemma3n.ts';
import { Gemma3nModel } from '../model/gemma3n/model.ts';
import { directoryFiles } from './checkpoint-files.ts';
import { fileSource } from './file-source.ts';
import { createNodeGpuContext } from './gpu.ts';
import { EMBED_IMAGE_USAGE, runEmbedImage } from './cli-vision.ts';

const USAGE = `usage:
  gemma3n-webgpu logits   --model DIR|FILE.gguf --tokens 2,105,2364 [--weights float|q4]
  gemma3n-webgpu generate --model DIR|FILE.gguf --tokens 2,105 --max-new-tokens 12 [--weights float|q4]
${EMBED_IMAGE_USAGE}`;

function parseArgs(argv: string[]): { command: string; flags: Map<string, string> } {
  const [command, ...rest] = argv;
  const flags = new Map<string, string>();
  for (let i = 0; i < rest.length; i++) {
    const a = rest[i];
    if (!a.startsWith('--')) throw new GemmaError('invalid-argument', `unexpected argument ${a}\n${USAGE}`);
    const eq = a.indexOf('=');
    if (eq > 0) flags.set(a.slice(2, eq), a.slice(eq + 1));
    else {
      const v = rest[i + 1];
      if (v === undefined || v.startsWith('--')) throw new GemmaError('invalid-argument', `${a} needs a value\n${USAGE}`);
      flags.set(a.slice(2), v);
      i++;
    }
  }
  if (!command || !['logits', 'generate'].includes(command)) throw new GemmaError('invalid-argument', `unknown command ${command ?? '(none)'}\n${USAGE}`);
  return { command, flags };
}

/** A checkpoint directory (config.json + safetensors) or a .gguf file. */
export async function openCheckpoint(model: string): Promise<Checkpoint> {
  if (/^https?:\/\//.test(model)) throw new GemmaError('invalid-argument', `--model ${model}: URLs are not supported by the CLI yet; download the checkpoint and pass its directory.`);
  const s = await stat(model).catch(() => undefined);
  if (!s) throw new GemmaError('bad-file', `--model ${model}: no such file or directory`);
  if (s.isDirectory()) return openSafetensorsCheckpoint(directoryFiles(model));
  if (model.endsWith('.gguf')) return openGemma3nGguf(fileSource(model));
  throw new GemmaError('invalid-argument', `--model ${model}: expected a checkpoint directory or a .gguf file`);
}

function parseTokens(s: string | undefined): number[] {
  if (!s) throw new GemmaError('invalid-argument', `--tokens is required\n${USAGE}`);
  const ids = s.split(',').map((x) => Number(x.trim()));
  if (ids.length === 0 || ids.some((x) => !Number.isInteger(x) || x < 0)) throw new GemmaError('invalid-argument', `--tokens ${s}: expected comma-separated non-negative integers`);
  return ids;
}

async function run(argv: string[]): Promise<unknown> {
  if (argv[0] === 'embed-image') return runEmbedImage(argv.slice(1));
  const { command, flags } = parseArgs(argv);
  const modelPath = flags.get('model');
  if (!modelPath) throw new GemmaError('invalid-argument', `--model is required\n${USAGE}`);
  const weights = flags.get('weights') ?? 'float';
  if (weights !== 'float' && weights !== 'q4') throw new GemmaError('invalid-argument', `--weights ${weights}: expected float or q4`);
  const tokens = parseTokens(flags.get('tokens'));
  const maxNew = command === 'generate' ? Number(flags.get('max-new-tokens') ?? 16) : 0;
  if (!Number.isInteger(maxNew) || maxNew < 0) throw new GemmaError('invalid-argument', `--max-new-tokens ${flags.get('max-new-tokens')}: expected a non-negative integer`);

  const checkpoint = await openCheckpoint(modelPath);
  const ctx = await createNodeGpuContext();
  const model = await Gemma3nModel.load(ctx, checkpoint, { weights, maxContext: Math.max(16, tokens.length + maxNew + 1), chunk: 64 });
  const V = model.config.text.vocabSize;
  for (const id of tokens) if (id >= V) throw new GemmaError('invalid-argument', `token id ${id} is outside the vocabulary (0..${V - 1})`);
  try {
    if (command === 'logits') {
      const logits = (await model.prefill(tokens, { allLogits: true }))!;
      return { logits: logits.map((row) => Array.from(row)) };
    }
    return { tokens: maxNew === 0 ? [] : await model.generateGreedy(tokens, maxNew) };
  } finally {
    model.dispose();
  }
}

export async function main(argv: string[]): Promise<void> {
  let code = 0;
  try {
    const result = await run(argv);
    await new Promise<void>((resolve) => process.stdout.write(JSON.stringify(result) + '\n', () => resolve()));
  } catch (err) {
    const msg = err instanceof GemmaError ? `error (${err.code}): ${err.message}` : `error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`;
    process.stderr.write(msg + '\n');
    code = 1;
  }
  // Dawn keeps handles open; exit explicitly once output is flushed.
  process.exit(code);
}
