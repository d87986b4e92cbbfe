import { GemmaError } from '../errors.ts';
import { readIfExists, type CheckpointFiles } from './safetensors.ts';

/**
 * Which files make up a Gemma safetensors checkpoint, found in any CheckpointFiles (hub repo, base URL, picked
 * files). The loader uses the listing to size the download phase, to read the small files once (so they can be
 * cached next to the converted weights and a later load needs no network at all), and to name a missing file.
 */

/** Every Gemma checkpoint has these. */
export const REQUIRED_TEXT_FILES = ['config.json', 'tokenizer.json', 'tokenizer_config.json'] as const;
/** Read when present. */
/**
 * Read when present: where newer repos keep the chat template instead of in tokenizer_config.json (a template file
 * wins over tokenizer_config.json's, as in transformers). Nothing else is read: each file is a request (two on the
 * hub without a listing), and the loader uses nothing else.
 */
export const OPTIONAL_TEXT_FILES = ['chat_template.jinja', 'chat_template.json'] as const;

export const SAFETENSORS_SINGLE = 'model.safetensors';
export const SAFETENSORS_INDEX = 'model.safetensors.index.json';

export interface ListedFile {
  name: string;
  size: number;
}

export interface CheckpointListing {
  /** Contents of the small text files that exist (config, tokenizer, template, ...), by file name. */
  texts: Map<string, string>;
  /** model.safetensors.index.json when the checkpoint is sharded (its text is in `texts` too). */
  index: string | undefined;
  /** The safetensors files (index order, or the single model.safetensors) with their sizes. */
  weightFiles: ListedFile[];
  /** Sum of weightFiles sizes: the `total` of the download phase. */
  totalWeightBytes: number;
}

/** Lists a checkpoint and reads its small files; fails with a message naming the first missing required file. */
export async function listCheckpoint(files: CheckpointFiles): Promise<CheckpointListing> {
  const readText = async (name: string, required: boolean): Promise<string | undefined> => {
    const bytes = await readIfExists(files, name);
    if (bytes === undefined) {
      if (!required) return undefined;
      throw new GemmaError(
        'bad-file',
        `${files.name} has no ${name}, which every Gemma checkpoint needs (${REQUIRED_TEXT_FILES.join(', ')} and the safetensors weights). Check the repository id and revision, or the folder you picked.`,
      );
    }
    return new TextDecoder().decode(bytes);
  };
  const wanted: [string, boolean][] = [
    ...REQUIRED_TEXT_FILES.map((n): [string, boolean] => [n, true]),
    ...OPTIONAL_TEXT_FILES.map((n): [string, boolean] => [n, false]),
    [SAFETENSORS_INDEX, false],
  ];
  const contents = await Promise.all(wanted.map(([name, required]) => readText(name, required)));
  const texts = new Map<string, string>();
  wanted.forEach(([name], i) => {
    const text = contents[i];
    if (text !== undefined) texts.set(name, text);
  });

  const index = texts.get(SAFETENSORS_INDEX);
  const weightFiles = await listWeightFiles(files, index);
  return { texts, index, weightFiles, totalWeightBytes: weightFiles.reduce((sum, f) => sum + f.size, 0) };
}

/**
 * The safetensors files with their sizes (the index's shards, or the single model.safetensors): the download
 * total, also for loads that bring their own tokenizer. `indexText` is read here when not given.
 */
export async function listWeightFiles(files: CheckpointFiles, indexText?: string): Promise<ListedFile[]> {
  let index = indexText;
  if (index === undefined) {
    const bytes = await readIfExists(files, SAFETENSORS_INDEX);
    if (bytes !== undefined) index = new TextDecoder().decode(bytes);
  }
  const shardNames = index === undefined ? [SAFETENSORS_SINGLE] : shardsOf(files.name, index);
  return Promise.all(
    shardNames.map(async (name): Promise<ListedFile> => {
      if (!(await files.exists(name))) {
        const why = index === undefined ? `and there is no ${SAFETENSORS_INDEX} either` : `but ${SAFETENSORS_INDEX} lists it`;
        throw new GemmaError('bad-file', `${files.name} has no ${name} ${why}. Check the repository / folder (an incomplete upload or a wrong revision).`);
      }
      return { name, size: await files.open(name).size() };
    }),
  );
}

function shardsOf(where: string, indexText: string): string[] {
  let map: unknown;
  try {
    map = (JSON.parse(indexText) as { weight_map?: unknown } | null)?.weight_map;
  } catch (err) {
    throw new GemmaError('bad-file', `${where}/${SAFETENSORS_INDEX} is not valid JSON (${(err as Error).message}). Download it again.`, { cause: err });
  }
  if (!map || typeof map !== 'object' || Array.isArray(map)) throw new GemmaError('bad-file', `${where}/${SAFETENSORS_INDEX} has no weight_map.`);
  const names = new Set<string>();
  for (const [tensor, file] of Object.entries(map)) {
    // Shard names become URL paths and file names: refuse anything that could point outside the checkpoint.
    if (typeof file !== 'string' || !/^[\w-][\w.-]*\.safetensors$/.test(file)) {
      throw new GemmaError('bad-file', `${where}/${SAFETENSORS_INDEX} maps ${tensor} to ${JSON.stringify(file)}, which is not a plain .safetensors file name.`);
    }
    names.add(file);
  }
  return [...names].sort();
}
