import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { CheckpointFiles } from '../io/safetensors.ts';
import { fileSource } from './file-source.ts';

/** A local checkpoint directory as CheckpointFiles (Node). */
export function directoryFiles(dir: string): CheckpointFiles {
  return {
    name: dir,
    exists: (path) => stat(join(dir, path)).then((s) => s.isFile(), () => false),
    open: (path) => fileSource(join(dir, path)),
  };
}
