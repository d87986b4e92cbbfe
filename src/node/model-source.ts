/**
 * A CLI `--model` argument as a ModelSource: a local checkpoint directory or .gguf file (opened here, with Node's
 * file system), `random:PRESET[:SEED]`, or anything loadGemma() accepts as a string (an http(s) URL of a folder or
 * .gguf, a Hugging Face repo id).
 */
import { stat } from 'node:fs/promises';
import { GemmaError } from '../errors.ts';
import { isGgufName, parseModelSource, type ModelSource } from '../runtime/loading/model-source.ts';
import { directoryFiles } from './checkpoint-files.ts';
import { fileSource } from './file-source.ts';

export async function nodeModelSource(arg: string, token?: string): Promise<ModelSource> {
  const random = /^random:(tiny|e2b|e4b)(?::(\d+))?$/.exec(arg);
  if (random) return { kind: 'random', options: { preset: random[1], seed: random[2] === undefined ? 1 : Number(random[2]) } };
  if (/^https?:\/\//.test(arg)) return parseModelSource({ model: arg, token }, undefined);
  const s = await stat(arg).catch(() => undefined);
  if (s?.isDirectory()) return { kind: 'folder', files: directoryFiles(arg) };
  if (s?.isFile()) {
    if (isGgufName(arg)) return { kind: 'gguf-file', source: fileSource(arg) };
    throw new GemmaError('invalid-argument', `--model ${arg}: expected a checkpoint directory or a .gguf file`);
  }
  if (/^[A-Za-z0-9][\w.-]*\/[\w.-]+$/.test(arg) && !arg.includes('..')) return parseModelSource({ model: arg, token }, undefined);
  throw new GemmaError('bad-file', `--model ${arg}: no such file or directory (or a URL, a Hugging Face repo id, random:tiny[:SEED])`);
}
