/**
 * The page's side of message content: turns the parts a caller writes (ContentPart) into the parts that cross to the
 * worker (WirePart: decoded media in typed arrays), and lists those arrays' buffers for transfer, so the samples
 * move to the worker without a structured-clone copy. One preparer per part type (PART_PREPARERS): audio is decoded
 * here (Web Audio lives on the page); images only read (image-input.ts) and are decoded in the worker; a video is one
 * image part per frame. Every error names the part.
 */
import { GemmaError } from '../../errors.ts';
import type { ChatMessage, PromptInput } from '../protocol.ts';
import type { ContentPart, ImageSource, WireMessage, WirePart, WirePromptItem } from '../content.ts';
import { decodeAudioSource, decodeBase64Audio } from './audio-input.ts';
import { prepareImageSource } from './image-input.ts';

/** What a preparer gets besides the part. */
export interface PrepareContext {
  /** 'message 2, part 1' (or 'prompt item 3'), for error messages. */
  where: string;
  signal?: AbortSignal;
  /** Buffers to transfer to the worker. */
  transfer: Transferable[];
}

export type PartPreparer = (part: ContentPart, ctx: PrepareContext) => Promise<WirePart | WirePart[]>;

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

const imagePart = async (part: ContentPart, ctx: PrepareContext): Promise<WirePart> => {
  const label = `${ctx.where} (image)`;
  let source: ImageSource;
  if (part.type === 'image') source = part.image;
  else if (part.type === 'image_url') {
    const url = (part.image_url as { url?: unknown } | undefined)?.url;
    if (typeof url !== 'string' || url.length === 0) throw new GemmaError('invalid-argument', `${label}: image_url.url must be a non-empty URL string (http(s), blob: or data:).`);
    source = url;
  } else throw new GemmaError('internal', `image preparer got a ${part.type} part`);
  const { payload, transfer } = await prepareImageSource(source, label, ctx.signal);
  ctx.transfer.push(...transfer);
  return { type: 'media', modality: 'image', label, payload };
};

/** A video part: one image part per frame (each its own span), labelled with the frame's number. */
const videoPart = async (part: ContentPart, ctx: PrepareContext): Promise<WirePart[]> => {
  if (part.type !== 'video') throw new GemmaError('internal', `video preparer got a ${part.type} part`);
  const frames = part.frames as unknown;
  if (!Array.isArray(frames) || frames.length === 0) {
    throw new GemmaError('invalid-argument', `${ctx.where} (video): frames must be a non-empty array of images (sampleVideoFrames() makes one from a <video> or a video file).`);
  }
  const out: WirePart[] = [];
  for (const [k, frame] of (frames as ImageSource[]).entries()) {
    const label = `${ctx.where} (video frame ${k + 1} of ${frames.length})`;
    const { payload, transfer } = await prepareImageSource(frame, label, ctx.signal);
    ctx.transfer.push(...transfer);
    out.push({ type: 'media', modality: 'image', label, payload });
  }
  return out;
};

/** How each part type is prepared on the page (a video gives one wire part per frame). */
export const PART_PREPARERS: Record<string, PartPreparer> = {
  audio: audioPart,
  input_audio: audioPart,
  audio_features: audioFeaturesPart,
  image: imagePart,
  image_url: imagePart,
  video: videoPart,
};

async function preparePart(part: ContentPart | WirePart, ctx: PrepareContext): Promise<WirePart | WirePart[]> {
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
    for (const [j, part] of (m.content as readonly (ContentPart | WirePart)[]).entries()) content.push(...[await preparePart(part, { where: `message ${i + 1}, part ${j + 1}`, signal, transfer })].flat());
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
    if (typeof item === 'number') out.push(item);
    else out.push(...[await preparePart(item, { where: `prompt item ${i + 1}`, signal, transfer })].flat());
  }
  return { prompt: out, transfer };
}
