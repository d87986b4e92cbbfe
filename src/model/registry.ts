/**
 * The model registry: which family reads a checkpoint, by its config's `model_type` or its GGUF architecture.
 * Adding a family is a folder under src/model/ (config, tensor table, forward, family.ts) plus one line below; the
 * loader, the worker, the CLI and the cache never name a family.
 */
import { GemmaError } from '../errors.ts';
import type { ByteSource } from '../io/byte-source.ts';
import type { Checkpoint } from '../io/checkpoint.ts';
import { readGgufHeader, type GgufFile } from '../io/gguf.ts';
import type { ModelFamily, RandomCheckpointOptions } from './family.ts';
import type { MediaEncoderFamily } from './media-encoder.ts';
import { gemma3nFamily } from './gemma3n/family.ts';
import { gemma4Family } from './gemma4/family.ts';
import { audioEncoderFamily } from './audio/family.ts';
import { visionEncoderFamily } from './vision/family.ts';
import { overlayCheckpoint } from '../io/checkpoint-overlay.ts';

/** Every family this library runs. */
export const MODEL_FAMILIES: readonly ModelFamily[] = [gemma3nFamily, gemma4Family];

/**
 * Media encoders by modality (soft tokens for a prompt's media spans), loaded from the decoder's checkpoint when
 * first needed (src/model/media-encoder.ts is their common contract).
 */
export const MEDIA_ENCODERS = { audio: audioEncoderFamily, image: visionEncoderFamily } as const;

/** The encoder family of a modality, or undefined when this build has none. */
export function mediaEncoderFamily(modality: string): MediaEncoderFamily | undefined {
  return (MEDIA_ENCODERS as Record<string, MediaEncoderFamily | undefined>)[modality];
}

function modelTypeOf(config: unknown): string | undefined {
  const c = config as { model_type?: unknown; text_config?: { model_type?: unknown } } | null;
  const t = c?.model_type ?? c?.text_config?.model_type;
  return typeof t === 'string' ? t : undefined;
}

/** The family of a checkpoint config; a clear error for any other model. */
export function familyForConfig(config: unknown, where = 'config.json'): ModelFamily {
  const type = modelTypeOf(config);
  const family = MODEL_FAMILIES.find((f) => type !== undefined && f.modelTypes.includes(type));
  if (!family) {
    const known = MODEL_FAMILIES.flatMap((f) => f.modelTypes).join(', ');
    throw new GemmaError('unsupported-config', `${where}: model_type ${JSON.stringify(type)} is not supported (this library runs: ${known}).`);
  }
  return family;
}

/** Opens a GGUF file with the family of its architecture. Reads the header only. */
export async function openGgufCheckpoint(source: ByteSource): Promise<Checkpoint> {
  return openGgufFile(await readGgufHeader(source));
}

/** A GGUF whose header is already read (the loader reads its tokenizer from it first) with its family. */
export async function openGgufFile(gguf: GgufFile): Promise<Checkpoint> {
  const { source } = gguf;
  const arch = gguf.metadata.get('general.architecture');
  const family = MODEL_FAMILIES.find((f) => typeof arch === 'string' && f.ggufArchitectures.includes(arch));
  if (!family) {
    const known = MODEL_FAMILIES.flatMap((f) => f.ggufArchitectures).map((a) => `"${a}"`).join(', ');
    throw new GemmaError('unsupported-config', `${source.name} is a GGUF of architecture "${String(arch)}"; supported: ${known}.`);
  }
  return family.openGguf(gguf);
}

/** A random-weight checkpoint of a registered family (default Gemma 3n). */
export function randomCheckpoint(options: RandomCheckpointOptions): Checkpoint {
  const name = options.family ?? 'gemma3n';
  const family = MODEL_FAMILIES.find((f) => f.name === name && f.randomCheckpoint);
  if (!family?.randomCheckpoint) {
    const known = MODEL_FAMILIES.filter((f) => f.randomCheckpoint).map((f) => f.name).join(', ');
    throw new GemmaError('invalid-argument', `randomCheckpoint: no random checkpoints for family ${JSON.stringify(name)} (available: ${known}).`);
  }
  const checkpoint = family.randomCheckpoint(options);
  // A tower family that draws its own random weights (the vision tower: the procedural fixture's generator) adds
  // them beside the decoder's when the config names its architecture.
  const tower = visionEncoderFamily.randomTower(checkpoint.config);
  return tower ? overlayCheckpoint(checkpoint, tower) : checkpoint;
}
