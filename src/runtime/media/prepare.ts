/**
 * The page's side of message content: turns the parts a caller writes (ContentPart) into the parts that cross to the
 * worker (WirePart: decoded media in typed arrays), and lists those arrays' buffers for transfer, so the samples
 * move to the worker without a structured-clone copy. One preparer per part type (PART_PREPARERS): the audio ones
 * are here; the vision work adds 'image', 'image_url' and 'video'. Every error names the part.
 */
import { GemmaError } from '../../errors.ts';
import type { ChatMessage, PromptInput } from '../protocol.ts';
import type { ContentPart, WireMessage, WirePart, WirePromptItem } from '../content.ts';
import { decodeAudioSource, decodeBase64Audio } from './audio-input.ts';

/** What a preparer gets besides the part. */
export interface PrepareContext {
  /** 'message 2, part 1' (or 'prompt item 3'), for error messages. */
  where: string;
  signal?: AbortSignal;
  /** Buffers to transfer to the worker. */
  transfer: Transferable[];
}

export type PartPreparer = (part: ContentPart, ctx: PrepareContext) => Promise<WirePart>;

const audioPart = async (part: ContentPart, ctx: PrepareContext): Promise<WirePart> => {
  const label = `${ctx.where} (audio)`;
  let decoded;
  let truncate = false;
  if (part.type === 'audio') {
    decoded = await decodeAudioSource(part.audio, { sampleRate: part.sampleRate, label, signal: ctx.signal });
    truncate = part.truncate === true;
  } else if (part.type === 'input_audio') {
    decoded = await decodeBase64Audio(part.input_audio?.data, part.input_audio?.format, label);
    truncate = part.truncate === true;
  } else throw new GemmaError('internal', `audio preparer got a ${part.type} part`);
  ctx.transfer.push(decoded.samples.buffer);
  return { type: 'media', modality: 'audio', label, payload: { kind: 'samples', samples: decoded.samples, sampleRate: decoded.sampleRate, truncate } };
};

const audioFeaturesPart = async (part: ContentPart, ctx: PrepareContext): Promise<WirePart> => {
  const label = `${ctx.where} (audio features)`;
  if (part.type !== 'audio_features') throw new GemmaError('internal', `features preparer got a ${part.type} part`);
  if (!(part.features instanceof Float32Array)) throw new GemmaError('invalid-argument', `${label}: features must be a Float32Array of [frames, 128] log-mel values.`);
  if (part.mask !== undefined && !(part.mask instanceof Uint8Array)) throw new GemmaError('invalid-argument', `${label}: mask must be a Uint8Array (1 = valid frame).`);
  const features = part.features.slice();
  const mask = part.mask?.slice();
  ctx.transfer.push(features.buffer, ...(mask ? [mask.buffer] : []));
  return { type: 'media', modality: 'audio', label, payload: { kind: 'features', features, mask } };
};

const notYet = (what: string) => async (_part: ContentPart, ctx: PrepareContext): Promise<WirePart> => {
  throw new GemmaError('unsupported-input', `${ctx.where} (${what}): image and video input comes with the vision encoder; this build takes text and audio.`);
};

/** How each part type is prepared on the page. */
export const PART_PREPARERS: Record<string, PartPreparer> = {
  audio: audioPart,
  input_audio: audioPart,
  audio_features: audioFeaturesPart,
  image: notYet('image'),
  image_url: notYet('image'),
  video: notYet('video'),
};

async function preparePart(part: ContentPart | WirePart, ctx: PrepareContext): Promise<WirePart> {
  if (part?.type === 'media') return part; // already prepared (a worker-side caller)
  if (part?.type === 'text') {
    if (typeof part.text !== 'string') throw new GemmaError('invalid-argument', `${ctx.where}: a text part needs a string \`text\`.`);
    return { type: 'text', text: part.text };
  }
  const prepare = part && typeof part === 'object' ? PART_PREPARERS[(part as { type?: string }).type ?? ''] : undefined;
  if (!prepare) {
    throw new GemmaError('invalid-argument', `${ctx.where}: unknown part ${JSON.stringify((part as { type?: unknown })?.type ?? part)}; parts are { type: 'text' | 'audio' | 'input_audio' | 'audio_features' | 'image' | 'image_url' | 'video', ... }.`);
  }
  return prepare(part, ctx);
}

/**
 * Chat messages for the worker, and the buffers to transfer with them. Parts already prepared pass through, so the
 * engine can take either form (Node callers give samples or WAV bytes; compressed audio needs a page).
 */
export async function prepareMessages(messages: readonly (ChatMessage | WireMessage)[], signal?: AbortSignal): Promise<{ messages: WireMessage[]; transfer: Transferable[] }> {
  if (!Array.isArray(messages)) throw new GemmaError('invalid-argument', 'chat() takes an array of messages.');
  const transfer: Transferable[] = [];
  const out: WireMessage[] = [];
  for (const [i, m] of messages.entries()) {
    if (!m || typeof m !== 'object') throw new GemmaError('invalid-argument', `message ${i + 1} is ${JSON.stringify(m)}: pass { role, content }.`);
    if (typeof m.content === 'string' || !Array.isArray(m.content)) {
      out.push({ role: m.role, content: m.content as string }); // the worker validates role and content
      continue;
    }
    const content: WirePart[] = [];
    for (const [j, part] of (m.content as readonly (ContentPart | WirePart)[]).entries()) content.push(await preparePart(part, { where: `message ${i + 1}, part ${j + 1}`, signal, transfer }));
    out.push({ role: m.role, content });
  }
  return { messages: out, transfer };
}

/** A generate() prompt for the worker: strings and id arrays as they are; parts prepared. */
export async function preparePrompt(prompt: PromptInput | readonly WirePromptItem[], signal?: AbortSignal): Promise<{ prompt: string | WirePromptItem[]; transfer: Transferable[] }> {
  const transfer: Transferable[] = [];
  if (typeof prompt === 'string' || !Array.isArray(prompt)) return { prompt: prompt as string, transfer };
  const out: WirePromptItem[] = [];
  for (const [i, item] of (prompt as readonly (number | ContentPart | WirePart)[]).entries()) {
    out.push(typeof item === 'number' ? item : await preparePart(item, { where: `prompt item ${i + 1}`, signal, transfer }));
  }
  return { prompt: out, transfer };
}
