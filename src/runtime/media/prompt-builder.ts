/**
 * Prompts with media, laid out exactly as Hugging Face's Gemma3nProcessor does (transformers.js has the same code):
 * the chat template writes one placeholder token per media part (Gemma 3n's template: `<audio_soft_token>`,
 * `<image_soft_token>`), and each placeholder is replaced by
 *     "\n\n" + begin + placeholder x span + end + "\n\n"
 * before the whole text is tokenized at once (so the newlines merge with their neighbours as in HF). The ids come
 * from config.json (`audio_token_id`, `boa_token_id`, `eoa_token_id`, `audio_soft_tokens_per_image`; the vision ones
 * likewise) and the strings from the checkpoint's tokenizer (the vocabulary's text of those ids), never hard-coded.
 * The span's positions then become a media segment of the Prompt (content hash + lazy soft tokens), so prefix
 * reuse knows the content (src/runtime/prompt.ts).
 *
 * An audio part longer than 30 s becomes several clips (audio-clips.ts), laid out as that many consecutive audio
 * parts would be. An image is one span (image-spans.ts); a video part arrives as one image part per frame. Raw prompts (`generate([...])`) are token-exact: ids as given, text parts tokenized without BOS,
 * each media clip as begin + span + end with no added text.
 */
import { GemmaError } from '../../errors.ts';
import type { MediaSpanLayout } from '../../model/media-encoder.ts';
import type { ContentPart, MediaModality, WireMessage, WirePart, WirePromptItem } from '../content.ts';
import type { ChatMessage, PromptInput } from '../protocol.ts';
import { prepareMessages, preparePrompt } from './prepare.ts';
import { Prompt, type MediaSegment, type PromptSegment } from '../prompt.ts';
import type { TemplateMessage, TextTokenizer } from '../tokenizer.ts';
import { audioClips, CLIP_SAMPLES, type AudioEncoderHandle } from './audio-clips.ts';
import { imageSpan, type VisionEncoderHandle } from './image-spans.ts';
import type { MediaEncoders } from './encoders.ts';
import { MEDIA_ENCODERS } from '../../model/registry.ts';

export interface PromptBuilderParts {
  tokenizer?: TextTokenizer;
  /** Absent: text only (media parts get GemmaError('unsupported-input')). */
  encoders?: MediaEncoders;
  /** The context the prompt must fit (for the "how much audio fits" message). */
  maxContext: number;
}

interface Layout extends MediaSpanLayout {
  modality: MediaModality;
  /** The tokenizer's text of the ids (chat prompts only). */
  text?: { placeholder: string; begin: string; end: string };
}

const ROLES = new Set(['system', 'user', 'assistant']);

export class PromptBuilder {
  private readonly layouts = new Map<MediaModality, Layout>();

  constructor(private readonly parts: PromptBuilderParts) {}

  /** A conversation (chat template + the processor's media expansion). Page-side parts are prepared first. */
  async chat(given: readonly (ChatMessage | WireMessage)[]): Promise<Prompt> {
    if (!Array.isArray(given) || given.length === 0) throw new GemmaError('invalid-argument', 'chat() needs at least one message.');
    const messages = given.every((m) => typeof m?.content === 'string') ? (given as WireMessage[]) : (await prepareMessages(given)).messages;
    validateMessages(messages);
    const tokenizer = this.requireTokenizer('chat()');
    if (messages.every((m) => typeof m.content === 'string')) return Prompt.fromIds(tokenizer.applyChatTemplate(messages as TemplateMessage[]));
    // Each media part becomes its clips; the template sees one placeholder entry per clip.
    const clips: MediaSegment[] = [];
    const templated: TemplateMessage[] = [];
    for (const [i, m] of messages.entries()) {
      if (typeof m.content === 'string') {
        templated.push({ role: m.role, content: m.content });
        continue;
      }
      const content: Array<{ type: string; text?: string }> = [];
      for (const [j, part] of m.content.entries()) {
        if (part.type === 'text') content.push({ type: 'text', text: part.text });
        else {
          const label = part.label || `message ${i + 1}, part ${j + 1} (${part.modality})`;
          const made = await this.clips(part, label, true);
          clips.push(...made);
          for (let k = 0; k < made.length; k++) content.push({ type: part.modality });
        }
      }
      templated.push({ role: m.role, content });
    }
    const rendered = tokenizer.renderChatTemplate(templated);
    // Expand each placeholder as the processor does, then tokenize the whole text once.
    let text = rendered;
    for (const layout of this.layouts.values()) {
      const t = layout.text!;
      const expected = clips.filter((c) => c.modality === layout.modality).length;
      const found = rendered.split(t.placeholder).length - 1;
      if (found !== expected) {
        throw new GemmaError(
          found === 0 ? 'unsupported-input' : 'invalid-argument',
          found === 0
            ? `The chat template wrote no ${t.placeholder} for the ${layout.modality} parts: this checkpoint's template does not take ${layout.modality} (Gemma 3n's does).`
            : `The rendered conversation has ${found} ${t.placeholder} tokens for ${expected} ${layout.modality} clips: do not write ${t.placeholder} in message text.`,
        );
      }
      text = text.split(t.placeholder).join(`\n\n${t.begin}${t.placeholder.repeat(layout.span)}${t.end}\n\n`);
    }
    return this.assemble(tokenizer.encodeRendered(text), clips);
  }

  /** A raw prompt: ids as given, text without BOS, media as begin + span + end. Page-side parts are prepared first. */
  async raw(given: readonly (WirePromptItem | ContentPart)[]): Promise<Prompt> {
    const items = (await preparePrompt(given as PromptInput)).prompt as WirePromptItem[];
    const segments: PromptSegment[] = [];
    let ids: number[] = [];
    const flush = () => {
      if (ids.length) segments.push({ type: 'text', ids });
      ids = [];
    };
    for (const [i, item] of items.entries()) {
      if (typeof item === 'number') ids.push(item);
      else if (item && item.type === 'text') {
        if (typeof item.text !== 'string') throw new GemmaError('invalid-argument', `prompt item ${i + 1}: a text part needs a string \`text\`.`);
        ids.push(...this.requireTokenizer('a text part').encodeRendered(item.text));
      } else if (item && item.type === 'media') {
        const label = item.label || `prompt item ${i + 1} (${item.modality})`;
        const layout = await this.layout(item.modality, label, false);
        for (const clip of await this.clips(item, label, false)) {
          ids.push(layout.beginId);
          flush();
          segments.push(clip);
          ids.push(layout.endId);
        }
      } else {
        throw new GemmaError('invalid-argument', `prompt item ${i + 1} is ${JSON.stringify(item)}: pass token ids, { type: 'text', text } or media parts.`);
      }
    }
    flush();
    const prompt = new Prompt(segments);
    this.checkFits(prompt);
    return prompt;
  }

  /** Splits tokenized chat ids at each media span (begin, span placeholders, end) and puts the clips there. */
  private assemble(ids: number[], clips: MediaSegment[]): Prompt {
    const byModality = new Map<MediaModality, MediaSegment[]>();
    for (const c of clips) byModality.set(c.modality, [...(byModality.get(c.modality) ?? []), c]);
    const segments: PromptSegment[] = [];
    let text: number[] = [];
    for (let i = 0; i < ids.length; i++) {
      text.push(ids[i]);
      const layout = [...this.layouts.values()].find((l) => l.beginId === ids[i]);
      if (!layout) continue;
      const clip = byModality.get(layout.modality)?.shift();
      const span = ids.slice(i + 1, i + 1 + layout.span);
      if (!clip || span.length !== layout.span || span.some((id) => id !== layout.placeholderId) || ids[i + 1 + layout.span] !== layout.endId) {
        throw new GemmaError('invalid-argument', `The conversation's text holds a ${layout.text?.begin ?? layout.beginId} token outside a ${layout.modality} part: do not write it in message text.`);
      }
      segments.push({ type: 'text', ids: text });
      text = [];
      segments.push(clip);
      i += layout.span;
    }
    if (text.length) segments.push({ type: 'text', ids: text });
    const prompt = new Prompt(segments);
    this.checkFits(prompt);
    return prompt;
  }

  /** The clips of one media part (audio: one per 30 s), with the layout checked first. */
  private async clips(part: Extract<WirePart, { type: 'media' }>, label: string, chat: boolean): Promise<MediaSegment[]> {
    const layout = await this.layout(part.modality, label, chat);
    if (part.modality === 'audio') {
      const encoders = this.parts.encoders!;
      const family = MEDIA_ENCODERS.audio;
      const tower = family.towerConfig(encoders.source!.config);
      const ctx = { tower, span: layout.span, encoder: (signal?: AbortSignal) => encoders.get('audio', signal) as Promise<AudioEncoderHandle> };
      return audioClips(part.payload, label, ctx, layout);
    }
    if (part.modality === 'image') {
      const encoders = this.parts.encoders!;
      const ctx = { span: layout.span, imageSize: MEDIA_ENCODERS.image.imageSize(encoders.source!.config), encoder: (signal?: AbortSignal) => encoders.get('image', signal) as Promise<VisionEncoderHandle> };
      return [await imageSpan(part.payload, label, ctx, layout.placeholderId)];
    }
    throw new GemmaError('unsupported-input', `${label}: ${(part as { modality: string }).modality} parts are not handled by this build of the library yet.`);
  }

  private async layout(modality: MediaModality, label: string, chat: boolean): Promise<Layout> {
    let layout = this.layouts.get(modality);
    if (!layout) {
      const encoders = this.parts.encoders;
      if (!encoders) throw new GemmaError('unsupported-input', `${label}: this model takes text only (it was loaded without media encoders).`);
      const family = encoders.require(modality, label);
      layout = { modality, ...family.spanLayout(encoders.source!.config) };
      this.layouts.set(modality, layout);
    }
    if (chat && !layout.text) {
      const tok = this.requireTokenizer('chat()');
      const text = (id: number, what: string) => {
        const t = tok.tokenText(id);
        if (!t) throw new GemmaError('bad-file', `The tokenizer has no token for ${what} ${id} (config.json): is it this checkpoint's tokenizer?`);
        if (tok.encodeRendered(t).length !== 1 || tok.encodeRendered(t)[0] !== id) {
          throw new GemmaError('bad-file', `The tokenizer does not read "${t}" back as one token ${id} (${what}): it is not a special token of this tokenizer; is it this checkpoint's tokenizer?`);
        }
        return t;
      };
      layout.text = { placeholder: text(layout.placeholderId, `the ${modality} placeholder`), begin: text(layout.beginId, `the begin-of-${modality} token`), end: text(layout.endId, `the end-of-${modality} token`) };
    }
    return layout;
  }

  /** A prompt that leaves no room to generate fails here, saying how much media would fit. */
  private checkFits(prompt: Prompt): void {
    const max = this.parts.maxContext;
    if (prompt.length < max) return;
    const spans = prompt.mediaSpans;
    const mediaTokens = spans.reduce((s, m) => s + m.segment.ids.length + 2, 0);
    const audio = spans.filter((m) => m.segment.modality === 'audio');
    let detail = '';
    if (audio.length) {
      const span = audio[0].segment.ids.length + 2;
      const room = max - 1 - (prompt.length - mediaTokens);
      const seconds = Math.max(0, Math.floor(room / span)) * (CLIP_SAMPLES / 16000);
      const given = audio.reduce((s, m) => s + ((m.segment as { seconds?: number }).seconds ?? 0), 0);
      detail =
        ` The audio (${given.toFixed(1)} s in ${audio.length} clip${audio.length > 1 ? 's' : ''} of up to 30 s, ${span} tokens each) takes ${audio.length * span} of them;` +
        ` with this text at most ${seconds} s of audio fit. Send a shorter clip (or fewer), ask for \`truncate: true\`, or load the model with a larger contextLength.`;
    }
    const images = spans.filter((m) => m.segment.modality === 'image');
    if (images.length) {
      const span = images[0].segment.ids.length + 2;
      const room = max - 1 - (prompt.length - mediaTokens) - audio.reduce((s, m) => s + m.segment.ids.length + 2, 0);
      const fit = Math.max(0, Math.floor(room / span));
      detail +=
        ` The ${images.length} image${images.length > 1 ? 's' : ''} (video frames count one each) take ${images.length * span} of them (${span - 2} soft tokens + begin/end per image);` +
        ` with this text at most ${fit} image${fit === 1 ? '' : 's'} fit. Send fewer images or frames (sampleVideoFrames: lower fps or maxFrames), or load the model with a larger contextLength.`;
    }
    throw new GemmaError('context-overflow', `The prompt is ${prompt.length} tokens but the context holds ${max} (including the reply), so there is no room to generate.${detail}`);
  }

  private requireTokenizer(what: string): TextTokenizer {
    if (!this.parts.tokenizer) {
      throw new GemmaError('invalid-argument', `${what} needs a tokenizer, and this model was loaded without one: pass token ids (with media parts), or load with tokenizer files.`);
    }
    return this.parts.tokenizer;
  }
}

function validateMessages(messages: readonly WireMessage[]): void {
  if (!Array.isArray(messages) || messages.length === 0) throw new GemmaError('invalid-argument', 'chat() needs at least one message.');
  for (const [i, m] of messages.entries()) {
    const okContent =
      typeof m?.content === 'string' ||
      (Array.isArray(m?.content) && (m.content as WirePart[]).every((p) => (p?.type === 'text' && typeof p.text === 'string') || (p?.type === 'media' && typeof p.modality === 'string')));
    if (!m || !ROLES.has(m.role) || !okContent) {
      throw new GemmaError(
        'invalid-argument',
        `Message ${i + 1} needs role 'system' | 'user' | 'assistant' and a content that is a string or an array of parts ({ type: 'text', text }, { type: 'audio', audio }, ...) (got ${describe(m)}).`,
      );
    }
  }
}

function describe(m: unknown): string {
  try {
    return JSON.stringify(m, (_k, v) => (ArrayBuffer.isView(v) ? `<${v.constructor.name}>` : v))?.slice(0, 200) ?? String(m);
  } catch {
    return String(m);
  }
}
