/**
 * The demo app: pick a model (hub, URL, GGUF, local files or the built-in random-weight tiny model), watch it load,
 * chat with streamed, safely rendered Markdown, and see the numbers (tokens/s, time to first token, context, GPU).
 * Plain DOM + the library's public API (src/index.ts); the model runs in the library's Web Worker. Audio: record
 * (recordAudio) or upload / drop a clip; images: a button, the camera (`capture`), drop or paste, thumbnails in the
 * conversation; "Transcribe" and "Translate to …" fill the prompt; the clip's length and
 * the encoder's time show on the message. Tools (demo/tools.ts: a weather lookup and a calculator) show the call, its
 * result and the final answer; JSON mode constrains the reply to the schema in the editor.
 *
 * `document.body.dataset.state` is 'idle' | 'loading' | 'ready' | 'generating' (for styling and for the e2e test).
 */
import { loadGemma, GemmaError, recordAudio, decodeAudioSource, type AudioRecording, type ChatMessage, type ChatOptions, type ContentPart, type GemmaClient, type GenerationStats, type LoadProgress, type ModelInfo, type ToolCall } from '../src/index.ts';
import { cacheUsage, deleteCachedModel, listCachedModels, type CachedModelInfo } from '../src/index.ts';
import { checkWebGpu, type AdapterSummary } from './gpu-info.ts';
import { countOf, formatBytes, formatMs, formatRate } from './format.ts';
import { renderMarkdown } from './markdown.ts';
import { SOURCES, loadRequestFor, sourceLabel, type SourceForm, type SourceKind } from './model-sources.ts';
import { sizeOptions } from './model-sizes.ts';
import { registerOfflineSupport } from './offline.ts';
import { DEMO_TOOLS, EXAMPLE_SCHEMA, runTool } from './tools.ts';

const $ = <T extends HTMLElement = HTMLElement>(id: string): T => {
  const el = document.getElementById(id);
  if (!el) throw new Error(`demo: #${id} is missing from index.html`);
  return el as T;
};

const ui = {
  app: $('app'),
  side: $('side'),
  togglePanel: $<HTMLButtonElement>('toggle-panel'),
  badge: $('model-badge'),
  noWebGpu: $('no-webgpu'),
  noWebGpuReason: $('no-webgpu-reason'),
  loadForm: $<HTMLFormElement>('load-form'),
  source: $<HTMLSelectElement>('source'),
  sourceHelp: $('source-help'),
  sizeRow: $('size-row'),
  size: $<HTMLSelectElement>('model-size'),
  sizeHelp: $('size-help'),
  urlRow: $('url-row'),
  url: $<HTMLInputElement>('model-url'),
  tokenRow: $('token-row'),
  token: $<HTMLInputElement>('hf-token'),
  filesRow: $('files-row'),
  files: $<HTMLInputElement>('model-files'),
  load: $<HTMLButtonElement>('load'),
  cancelLoad: $<HTMLButtonElement>('cancel-load'),
  unload: $<HTMLButtonElement>('unload'),
  progress: $('progress'),
  loadError: $('load-error'),
  cacheList: $('cache-list'),
  storage: $('storage'),
  systemPrompt: $<HTMLTextAreaElement>('system-prompt'),
  temperature: $<HTMLInputElement>('temperature'),
  temperatureOut: $<HTMLOutputElement>('temperature-out'),
  topK: $<HTMLInputElement>('top-k'),
  topP: $<HTMLInputElement>('top-p'),
  topPOut: $<HTMLOutputElement>('top-p-out'),
  maxTokens: $<HTMLInputElement>('max-tokens'),
  toolsToggle: $<HTMLInputElement>('tools-toggle'),
  toolsRow: $('tools-row'),
  toolChoice: $<HTMLSelectElement>('tool-choice'),
  jsonToggle: $<HTMLInputElement>('json-toggle'),
  jsonRow: $('json-row'),
  jsonSchema: $<HTMLTextAreaElement>('json-schema'),
  jsonSchemaError: $('json-schema-error'),
  gpuInfo: $('gpu-info'),
  randomNotice: $('random-notice'),
  messages: $('messages'),
  empty: $('empty'),
  emptyText: $('empty-text'),
  statTps: $('stat-tps'),
  statTtft: $('stat-ttft'),
  statPrefill: $('stat-prefill'),
  statContext: $('stat-context'),
  statEncode: $('stat-encode'),
  composer: $<HTMLFormElement>('composer'),
  prompt: $<HTMLTextAreaElement>('prompt'),
  send: $<HTMLButtonElement>('send'),
  stop: $<HTMLButtonElement>('stop'),
  regenerate: $<HTMLButtonElement>('regenerate'),
  clear: $<HTMLButtonElement>('clear'),
  audioBar: $('audio-bar'),
  record: $<HTMLButtonElement>('record'),
  uploadAudio: $<HTMLButtonElement>('upload-audio'),
  audioFile: $<HTMLInputElement>('audio-file'),
  transcribe: $<HTMLButtonElement>('transcribe'),
  translate: $<HTMLButtonElement>('translate'),
  translateTo: $<HTMLSelectElement>('translate-to'),
  audioStatus: $('audio-status'),
  attachment: $('attachment'),
  attachmentLabel: $('attachment-label'),
  attachmentPlayer: $<HTMLAudioElement>('attachment-player'),
  attachmentRemove: $<HTMLButtonElement>('attachment-remove'),
  attachImage: $<HTMLButtonElement>('attach-image'),
  imageFile: $<HTMLInputElement>('image-file'),
  camera: $<HTMLButtonElement>('camera'),
  cameraFile: $<HTMLInputElement>('camera-file'),
  imageAttachments: $('image-attachments'),
};

/** An image waiting to be sent with the next message (its object URL stays alive for the thumbnail). */
interface ImageAttachment {
  file: Blob;
  url: string;
  name: string;
}

/** An audio clip waiting to be sent with the next message. */
interface Attachment {
  samples: Float32Array;
  sampleRate: number;
  duration: number;
  /** For playback. */
  url: string;
  name: string;
}

type AppState = 'idle' | 'loading' | 'ready' | 'generating';

interface Turn {
  message: ChatMessage;
  element: HTMLLIElement;
  /** Seconds of audio in the message (user turns with a clip). */
  audioSeconds?: number;
  /** Images in the message. */
  images?: number;
}

let state: AppState = 'idle';
let client: GemmaClient | undefined;
let worker: Worker | undefined;
let cancelLoading: (() => void) | undefined;
let generation: AbortController | undefined;
let adapter: AdapterSummary | undefined;
const turns: Turn[] = [];
/** Positions in the KV cache after the last generation (prompt + reply). */
let contextUsed = 0;
let attachment: Attachment | undefined;
let images: ImageAttachment[] = [];
let recording: AudioRecording | undefined;
/** The badge text of the loaded model (shown again when loading another one fails). */
let loadedLabel = 'No model loaded';

function setState(next: AppState): void {
  state = next;
  document.body.dataset.state = next;
  // The memory line changes after a generation (an encoder loaded on first use) and on unload.
  if (next === 'ready' || next === 'idle') showGpuFacts();
  const ready = next === 'ready';
  ui.prompt.disabled = !(ready || next === 'generating');
  ui.send.disabled = !ready;
  ui.stop.disabled = next !== 'generating';
  ui.regenerate.disabled = !ready || !turns.some((t) => t.message.role === 'user');
  ui.clear.disabled = !(ready || next === 'generating') || turns.length === 0;
  ui.load.disabled = next === 'loading' || next === 'generating';
  ui.source.disabled = next === 'loading';
  ui.cancelLoad.hidden = next !== 'loading';
  ui.unload.hidden = !(ready || next === 'generating');
  ui.empty.hidden = turns.length > 0;
  ui.emptyText.firstChild!.textContent = ready || next === 'generating' ? 'Type a message. ' : 'Load a model, then type a message. ';
  const audio = (ready || next === 'generating') && (client?.info.media ?? []).includes('audio');
  for (const el of [ui.record, ui.uploadAudio, ui.transcribe, ui.translate, ui.translateTo]) el.disabled = !audio;
  const vision = (ready || next === 'generating') && (client?.info.media ?? []).includes('image');
  for (const el of [ui.attachImage, ui.camera]) el.disabled = !vision;
  if (!audio && (ready || next === 'generating') && client) ui.audioStatus.textContent = 'This model has no audio encoder.';
  else if (!client) ui.audioStatus.textContent = '';
}

// ---------------------------------------------------------------- model source form

function readSourceForm(): SourceForm {
  return { kind: ui.source.value as SourceKind, url: ui.url.value, token: ui.token.value, files: [...(ui.files.files ?? [])], size: ui.size.value };
}

function showSourceFields(): void {
  const d = SOURCES[ui.source.value as SourceKind];
  ui.sourceHelp.textContent = d.help;
  ui.urlRow.hidden = !d.needsUrl;
  ui.tokenRow.hidden = !d.needsToken;
  ui.filesRow.hidden = !d.needsFiles;
  // A hidden field must not take part in the form's validation: an invalid URL left in it would block Load for
  // every other source, with no message the user can see.
  ui.url.disabled = !d.needsUrl;
  ui.token.disabled = !d.needsToken;
  ui.files.disabled = !d.needsFiles;
  ui.sizeRow.hidden = ui.source.value !== 'e4b';
  ui.size.disabled = ui.sizeRow.hidden;
}

/** The E4B sizes, marked where the offline cache serves them without a download; keeps the selection. */
function showSizes(cached: readonly CachedModelInfo[]): void {
  const selected = ui.size.value;
  const options = sizeOptions(cached);
  ui.size.replaceChildren(...options.map((o) => new Option(o.label, o.value, false, o.value === selected)));
  showSizeHelp();
}

function showSizeHelp(): void {
  ui.sizeHelp.textContent = sizeOptions([]).find((o) => o.value === ui.size.value)?.help ?? '';
}

// ---------------------------------------------------------------- loading

const PHASE_LABELS: Record<string, string> = {
  device: 'Opening the GPU',
  download: 'Downloading',
  'cache-read': 'Reading from the offline cache',
  quantize: 'Converting weights on the GPU',
  compile: 'Compiling GPU kernels',
  tokenizer: 'Loading the tokenizer',
};
// quantize counts tensors, not bytes (it follows the download, one tensor at a time).
const BYTE_PHASES = new Set(['download', 'cache-read']);

function showProgress(p: LoadProgress): void {
  if (p.component) {
    // A media encoder loading on first use: one line in the audio bar.
    const what = p.phase === 'compile' ? 'compiling' : p.phase === 'cache-read' ? 'reading from the offline cache' : 'converting weights';
    const amount = p.total > 0 && p.phase !== 'compile' ? ` ${BYTE_PHASES.has(p.phase) ? `${formatBytes(p.loaded)} / ${formatBytes(p.total)}` : `${p.loaded} / ${p.total}`}` : '';
    const name = p.component === 'image' ? 'vision' : p.component;
    ui.audioStatus.textContent = p.phase === 'compile' && p.loaded === 1 ? `${name === 'vision' ? 'Vision' : 'Audio'} encoder ready.` : `Loading the ${name} encoder: ${what}${amount}…`;
    return;
  }
  let row = ui.progress.querySelector<HTMLElement>(`[data-phase="${CSS.escape(p.phase)}"]`);
  if (!row) {
    row = document.createElement('div');
    row.className = 'progress-item';
    row.dataset.phase = p.phase;
    const label = document.createElement('div');
    label.className = 'label';
    label.append(document.createElement('span'), document.createElement('span'));
    const bar = document.createElement('progress');
    bar.max = 1;
    bar.setAttribute('aria-label', PHASE_LABELS[p.phase] ?? p.phase);
    row.append(label, bar);
    ui.progress.append(row);
  }
  const [what, amount] = row.querySelectorAll('span');
  const file = p.file && p.phase !== 'device' ? ` ${p.file}` : p.phase === 'device' && p.file ? ` (${p.file})` : '';
  what.textContent = (PHASE_LABELS[p.phase] ?? p.phase) + file;
  const bytes = BYTE_PHASES.has(p.phase);
  const done = p.total > 0 && p.loaded >= p.total;
  if (p.total > 0) {
    amount.textContent = bytes ? `${formatBytes(p.loaded)} / ${formatBytes(p.total)}` : done ? 'done' : `${p.loaded} / ${p.total}`;
  } else {
    amount.textContent = bytes ? formatBytes(p.loaded) : '';
  }
  const bar = row.querySelector('progress')!;
  if (p.total > 0) bar.value = Math.min(1, p.loaded / p.total);
  else bar.removeAttribute('value'); // indeterminate
}

/** After a successful load the phase bars are noise: one line says how long it took. */
function showLoadedSummary(ms: number): void {
  const line = document.createElement('p');
  line.className = 'help';
  line.textContent = `Loaded in ${formatMs(ms)}.`;
  ui.progress.replaceChildren(line);
}

function describeError(err: unknown): string {
  if (err instanceof GemmaError) return `${err.message} (${err.code})`;
  return err instanceof Error ? err.message : String(err);
}

async function loadModel(): Promise<void> {
  if (state === 'loading' || state === 'generating') return;
  const form = readSourceForm();
  ui.loadError.hidden = true;
  let request;
  try {
    request = loadRequestFor(form);
  } catch (err) {
    ui.loadError.textContent = (err as Error).message;
    ui.loadError.hidden = false;
    return;
  }
  // The model in use stays loaded (and usable after a failed or cancelled load) until the new one is ready.
  generation?.abort();
  const previous = client ? { client, worker } : undefined;
  ui.progress.replaceChildren();
  setState('loading');
  ui.badge.textContent = `Loading ${sourceLabel(form)}…`;
  const loadStarted = performance.now();
  const w = new Worker(new URL('../src/runtime/worker.ts', import.meta.url), { type: 'module', name: 'gemma3n-webgpu' });
  const abortLoad = new AbortController();
  cancelLoading = () => abortLoad.abort();
  try {
    const loaded = await loadGemma({ ...request, worker: w, onProgress: showProgress, signal: abortLoad.signal });
    if (previous) {
      await previous.client.dispose().catch(() => {});
      previous.worker?.terminate();
      clearChatView();
    }
    client = loaded;
    worker = w;
    const info = loaded.info;
    showLoadedSummary(performance.now() - loadStarted);
    const slice = info.slice ? ` (${info.slice.layers} layers, ${(info.slice.effectiveParams / 1e9).toFixed(2)} B effective)` : '';
    ui.badge.textContent = `${sourceLabel(form)}${slice} · ${countOf(info.maxContext, 'token')} of context`;
    loadedLabel = ui.badge.textContent;
    ui.randomNotice.hidden = form.kind !== 'tiny';
    contextUsed = 0;
    showGpuFacts();
    updateContextStat();
    setState('ready');
    ui.side.classList.remove('open');
    ui.togglePanel.setAttribute('aria-expanded', 'false');
    ui.prompt.focus();
  } catch (err) {
    w.terminate();
    const aborted = abortLoad.signal.aborted;
    ui.badge.textContent = previous ? loadedLabel : 'No model loaded';
    ui.loadError.textContent = aborted ? 'Loading was cancelled.' : `Could not load the model: ${describeError(err)}`;
    ui.loadError.hidden = false;
    setState(previous ? 'ready' : 'idle');
  } finally {
    cancelLoading = undefined;
    void refreshCacheList();
  }
}

async function unloadModel(): Promise<void> {
  generation?.abort();
  const c = client;
  client = undefined;
  if (c) await c.dispose().catch(() => {});
  worker?.terminate();
  worker = undefined;
  ui.randomNotice.hidden = true;
  ui.badge.textContent = 'No model loaded';
  if (state !== 'loading') setState('idle');
}

// ---------------------------------------------------------------- cache

async function refreshCacheList(): Promise<void> {
  ui.cacheList.setAttribute('aria-busy', 'true');
  try {
    await renderCacheList();
  } finally {
    ui.cacheList.setAttribute('aria-busy', 'false');
  }
}

async function renderCacheList(): Promise<void> {
  const usage = await cacheUsage().catch(() => undefined);
  ui.cacheList.replaceChildren();
  if (!usage || usage.backend === 'none') {
    ui.storage.textContent = 'This browser offers no persistent storage: models are downloaded on every visit.';
    return;
  }
  let entries: CachedModelInfo[] = [];
  try {
    entries = await listCachedModels();
  } catch (err) {
    ui.storage.textContent = `Could not read the cache: ${describeError(err)}`;
  }
  showSizes(entries);
  if (entries.length === 0) {
    const li = document.createElement('li');
    li.className = 'help';
    li.textContent = 'No models cached yet. Downloaded models are kept here for offline use.';
    ui.cacheList.append(li);
  }
  for (const entry of entries) {
    const li = document.createElement('li');
    const name = document.createElement('span');
    name.className = 'name';
    name.textContent = `${entry.modelId}${entry.slice ? ` → ${entry.slice}` : ''} (${entry.weightMode}${entry.revision !== 'main' ? `, ${entry.revision}` : ''})`;
    name.title = `cached ${new Date(entry.createdAt).toLocaleString()}, ${entry.files} files`;
    const size = document.createElement('span');
    size.className = 'size';
    size.textContent = formatBytes(entry.bytes);
    const del = document.createElement('button');
    del.type = 'button';
    del.className = 'danger';
    del.textContent = 'Delete';
    del.setAttribute('aria-label', `Delete ${entry.modelId} from the cache`);
    del.addEventListener('click', async () => {
      del.disabled = true;
      await deleteCachedModel(entry).catch((err) => alert(`Could not delete: ${describeError(err)}`));
      await refreshCacheList();
    });
    li.append(name, size, del);
    ui.cacheList.append(li);
  }
  const estimate = usage.storage;
  ui.storage.textContent = estimate
    ? `Storage (${usage.backend === 'opfs' ? 'origin private file system' : 'Cache Storage'}): ${formatBytes(estimate.usage)} used of ${formatBytes(estimate.quota)}.`
    : '';
}

// ---------------------------------------------------------------- GPU facts and stats

function fact(dl: HTMLElement, term: string, value: string): void {
  const dt = document.createElement('dt');
  dt.textContent = term;
  const dd = document.createElement('dd');
  dd.textContent = value;
  dl.append(dt, dd);
}

/** The adapter's facts and the loaded model's GPU memory (kept current: media encoders load on first use). */
function showGpuFacts(): void {
  ui.gpuInfo.replaceChildren();
  if (!adapter) return;
  const info = client?.info;
  const workerAdapter = info?.adapterName;
  fact(ui.gpuInfo, 'Adapter', workerAdapter && workerAdapter !== 'unknown' ? workerAdapter : adapter.name);
  fact(ui.gpuInfo, 'Details', adapter.details + (adapter.isFallback ? ' (software fallback)' : ''));
  const key = ['shader-f16', 'subgroups', 'timestamp-query'];
  fact(ui.gpuInfo, 'Features', key.map((f) => `${f} ${adapter!.features.includes(f) ? '✓' : '✗'}`).join(' · '));
  fact(ui.gpuInfo, 'Max buffer', formatBytes(adapter.maxBufferSize));
  fact(ui.gpuInfo, 'Max binding', formatBytes(adapter.maxStorageBufferBindingSize));
  fact(ui.gpuInfo, 'GPU memory in use', info ? gpuMemoryText(info) : 'no model loaded');
}

/** The decoder's GPU bytes plus each loaded media encoder's, e.g. "1.78 GB (text 0.88 GB, image 0.90 GB)". */
function gpuMemoryText(info: ModelInfo): string {
  const decoder = info.memory?.gpuBytes ?? info.gpuBytes;
  if (decoder === undefined) return 'not reported by this build';
  const encoders = Object.entries(info.memory?.encoders ?? {}).filter((e): e is [string, number] => (e[1] ?? 0) > 0);
  if (encoders.length === 0) return formatBytes(decoder);
  const total = encoders.reduce((s, [, bytes]) => s + bytes, decoder);
  return `${formatBytes(total)} (text ${formatBytes(decoder)}, ${encoders.map(([modality, bytes]) => `${modality} ${formatBytes(bytes)}`).join(', ')})`;
}

function updateContextStat(): void {
  const max = client?.info.maxContext;
  ui.statContext.textContent = max ? `${contextUsed.toLocaleString()} / ${max.toLocaleString()}` : '–';
}

function showFinalStats(s: GenerationStats): void {
  ui.statTps.textContent = formatRate(s.decodeTokensPerSecond);
  ui.statTtft.textContent = formatMs(s.timeToFirstTokenMs);
  ui.statEncode.textContent = s.encodeMs !== undefined ? formatMs(s.encodeMs) : '–';
  ui.statPrefill.textContent = s.prefillTokens > 0 ? `${countOf(s.prefillTokens, 'token')} · ${formatRate(s.prefillTokensPerSecond)}` : `0 (${s.reusedTokens} reused)`;
  contextUsed = s.promptTokens + s.newTokens;
  updateContextStat();
}

// ---------------------------------------------------------------- chat

function addMessageElement(role: 'user' | 'assistant', text: string, clip?: Attachment, pictures: readonly ImageAttachment[] = []): HTMLLIElement {
  const li = document.createElement('li');
  li.className = `message ${role}`;
  const who = document.createElement('span');
  who.className = 'role';
  who.textContent = role === 'user' ? 'You' : 'Gemma';
  const body = document.createElement('div');
  body.className = 'body';
  if (role === 'user') body.textContent = text;
  else body.append(renderMarkdown(text));
  li.append(who);
  if (clip) {
    const line = document.createElement('span');
    line.className = 'clip';
    line.textContent = `🎵 ${clip.name} · ${formatDuration(clip.duration)}`;
    li.append(line);
  }
  if (pictures.length) {
    const thumbs = document.createElement('div');
    thumbs.className = 'thumbs';
    for (const p of pictures) {
      const img = document.createElement('img');
      img.src = p.url;
      img.alt = p.name;
      thumbs.append(img);
    }
    li.append(thumbs);
  }
  li.append(body);
  ui.messages.append(li);
  ui.empty.hidden = true;
  return li;
}

function scrollToEnd(): void {
  ui.messages.scrollTop = ui.messages.scrollHeight;
}

function samplingOptions() {
  const int = (el: HTMLInputElement, fallback: number) => (Number.isFinite(el.valueAsNumber) ? Math.round(el.valueAsNumber) : fallback);
  return {
    temperature: ui.temperature.valueAsNumber,
    topK: Math.max(0, int(ui.topK, 64)),
    topP: ui.topP.valueAsNumber,
    maxNewTokens: Math.max(1, int(ui.maxTokens, 256)),
  };
}

/** A function call and its result, as one element. */
function addToolElement(call: ToolCall, result: string): HTMLLIElement {
  const li = document.createElement('li');
  li.className = 'message tool';
  const who = document.createElement('span');
  who.className = 'role';
  who.textContent = 'Function call';
  const callLine = document.createElement('div');
  callLine.className = 'call';
  callLine.textContent = `${call.name}(${JSON.stringify(call.arguments)})`;
  const resultLine = document.createElement('div');
  resultLine.className = 'result';
  resultLine.textContent = result;
  li.append(who, callLine, resultLine);
  ui.messages.append(li);
  return li;
}

type ReplyOptions = Pick<ChatOptions, 'tools' | 'toolChoice' | 'responseFormat'>;

/** Tools or JSON mode, from the panel; undefined (and the editor says why) when the schema is not JSON. */
function replyOptions(): ReplyOptions | undefined {
  ui.jsonSchemaError.hidden = true;
  if (ui.toolsToggle.checked) return { tools: DEMO_TOOLS, toolChoice: ui.toolChoice.value === 'required' ? 'required' : 'auto' };
  if (!ui.jsonToggle.checked) return {};
  try {
    return { responseFormat: { type: 'json_schema', schema: JSON.parse(ui.jsonSchema.value) } };
  } catch (err) {
    ui.jsonSchemaError.textContent = `The JSON schema is not valid JSON: ${(err as Error).message}`;
    ui.jsonSchemaError.hidden = false;
    return undefined;
  }
}

function formatDuration(seconds: number): string {
  const m = Math.floor(seconds / 60);
  const s = seconds - 60 * m;
  return m > 0 ? `${m}:${s.toFixed(0).padStart(2, '0')}` : `${s.toFixed(1)} s`;
}

/** Puts a clip on the next message (shown with a player and its length). */
function attach(clip: { samples: Float32Array; sampleRate: number; duration: number }, blob: Blob, name: string): void {
  if (attachment) URL.revokeObjectURL(attachment.url);
  attachment = { ...clip, url: URL.createObjectURL(blob), name };
  ui.attachmentLabel.textContent = `🎵 ${name} · ${formatDuration(clip.duration)} · ${(clip.sampleRate / 1000).toFixed(1)} kHz`;
  ui.attachmentPlayer.src = attachment.url;
  ui.attachment.hidden = false;
  ui.audioStatus.textContent = clip.duration > 30 ? `Longer than 30 s: sent as ${Math.ceil(clip.duration / 30)} consecutive 30 s segments.` : '';
}

function detach(): void {
  if (attachment) URL.revokeObjectURL(attachment.url);
  attachment = undefined;
  ui.attachment.hidden = true;
  ui.attachmentPlayer.removeAttribute('src');
}

/** Adds images to the next message (button, camera, drop, paste); anything that is not an image is ignored. */
function attachImages(files: Iterable<File>): void {
  for (const file of files) {
    if (!file.type.startsWith('image/')) continue;
    images.push({ file, url: URL.createObjectURL(file), name: file.name || 'pasted image' });
  }
  showImageAttachments();
}

function showImageAttachments(): void {
  ui.imageAttachments.replaceChildren(
    ...images.map((image, i) => {
      const figure = document.createElement('figure');
      const img = document.createElement('img');
      img.src = image.url;
      img.alt = image.name;
      const remove = document.createElement('button');
      remove.type = 'button';
      remove.textContent = '✕';
      remove.setAttribute('aria-label', `Remove ${image.name}`);
      remove.addEventListener('click', () => {
        URL.revokeObjectURL(image.url);
        images.splice(i, 1);
        showImageAttachments();
      });
      figure.append(img, remove);
      return figure;
    }),
  );
  ui.imageAttachments.hidden = images.length === 0;
  if (images.length) ui.audioStatus.textContent = `${images.length} image${images.length > 1 ? 's' : ''} attached (256 tokens each).`;
}

async function attachFile(file: File): Promise<void> {
  ui.audioStatus.textContent = `Decoding ${file.name}…`;
  try {
    const clip = await decodeAudioSource(file, { label: file.name });
    attach(clip, file, file.name);
  } catch (err) {
    ui.audioStatus.textContent = describeError(err);
  }
}

async function toggleRecording(): Promise<void> {
  if (recording) {
    const r = recording;
    recording = undefined;
    ui.record.textContent = '🎤 Record';
    ui.record.setAttribute('aria-pressed', 'false');
    try {
      const clip = await r.stop();
      attach(clip, clip.blob, 'recording');
    } catch (err) {
      ui.audioStatus.textContent = describeError(err);
    }
    return;
  }
  try {
    recording = await recordAudio({ maxSeconds: 300 });
  } catch (err) {
    ui.audioStatus.textContent = describeError(err);
    return;
  }
  const r = recording;
  ui.record.setAttribute('aria-pressed', 'true');
  const tick = () => {
    if (recording !== r) return;
    ui.record.textContent = `■ Stop (${formatDuration(r.elapsed)})`;
    setTimeout(tick, 250);
  };
  tick();
  // maxSeconds reached: attach what was recorded.
  r.done.then(
    (clip) => {
      if (recording !== r) return;
      recording = undefined;
      ui.record.textContent = '🎤 Record';
      ui.record.setAttribute('aria-pressed', 'false');
      attach(clip, clip.blob, 'recording');
    },
    () => {},
  );
}

/** The shortcuts fill the prompt as the Gemma docs phrase speech recognition and speech translation. */
function fillPrompt(kind: 'transcribe' | 'translate'): void {
  ui.prompt.value =
    kind === 'transcribe' ? 'Transcribe the following speech segment:' : `Transcribe the following speech segment, then translate it into ${ui.translateTo.value}:`;
  ui.prompt.focus();
}

function conversation(): ChatMessage[] {
  const system = ui.systemPrompt.value.trim();
  const history = turns.map((t) => t.message);
  return system ? [{ role: 'system', content: system }, ...history] : history;
}

/** Rounds of calls and results before the model must answer in text. */
const MAX_TOOL_ROUNDS = 3;

async function generateReply(): Promise<void> {
  if (!client || state !== 'ready') return;
  const extra = replyOptions();
  if (!extra) return;
  const controller = new AbortController();
  generation = controller;
  setState('generating');
  try {
    // With tools: each reply that calls a function gets its result, then the model goes on, up to MAX_TOOL_ROUNDS;
    // after a required call, the next round lets the model answer ('auto'), and the last round allows no calls.
    for (let round = 0; ; round++) {
      let options = extra;
      if (extra.tools && round > 0) options = { ...extra, toolChoice: round >= MAX_TOOL_ROUNDS ? 'none' : 'auto' };
      const calls = await streamReply(options, controller.signal);
      if (!calls?.length || controller.signal.aborted) break;
      turns.push({ message: { role: 'assistant', content: '', toolCalls: calls }, element: ui.messages.lastElementChild as HTMLLIElement });
      for (const call of calls) {
        const result = runTool(call);
        turns.push({ message: { role: 'tool', content: result, toolCallId: call.id, name: call.name }, element: addToolElement(call, result) });
      }
      scrollToEnd();
    }
  } finally {
    generation = undefined;
    setState(client ? 'ready' : 'idle');
    scrollToEnd();
  }
}

/** Streams one reply into a new message; returns the function calls it made (the element then shows them). */
async function streamReply(options: ReplyOptions, signal: AbortSignal): Promise<ToolCall[] | undefined> {
  if (!client) return undefined;
  const li = addMessageElement('assistant', '');
  li.classList.add('streaming');
  li.setAttribute('aria-busy', 'true');
  const body = li.querySelector<HTMLElement>('.body')!;
  scrollToEnd();
  const t0 = performance.now();
  let firstAt = 0;
  let tokens = 0;
  let text = '';
  let frame = 0;
  const calls: ToolCall[] = [];
  const render = () => {
    frame = 0;
    body.replaceChildren(renderMarkdown(text || (tokens > 0 && options.tools ? '…' : '')));
    const now = performance.now();
    if (firstAt) {
      ui.statTtft.textContent = formatMs(firstAt - t0);
      if (tokens > 1 && now > firstAt) ui.statTps.textContent = formatRate(((tokens - 1) * 1000) / (now - firstAt));
    }
    scrollToEnd();
  };
  ui.statTps.textContent = '…';
  ui.statTtft.textContent = '…';
  const lastUser = [...turns].reverse().find((t) => t.message.role === 'user');
  const stream = client.chat(conversation(), { ...samplingOptions(), ...options, signal });
  let promptTokens = 0;
  void stream.started.then((p) => {
    promptTokens = p.promptTokens;
    contextUsed = promptTokens;
    updateContextStat();
  }, () => {});
  try {
    for await (const delta of stream) {
      if (!firstAt) firstAt = performance.now();
      tokens += delta.tokenIds.length;
      if (promptTokens) {
        contextUsed = promptTokens + tokens;
        updateContextStat();
      }
      text += delta.text;
      calls.push(...(delta.toolCalls ?? []));
      frame ||= requestAnimationFrame(render);
    }
    const stats = await stream.stats;
    if (frame) cancelAnimationFrame(frame);
    render();
    showFinalStats(stats);
    if (lastUser?.audioSeconds !== undefined || lastUser?.images) {
      // The media and what encoding it cost (nothing when the KV cache already held it).
      let meta = lastUser.element.querySelector<HTMLElement>('.meta');
      if (!meta) {
        meta = document.createElement('span');
        meta.className = 'meta';
        lastUser.element.append(meta);
      }
      const what = [lastUser.images ? countOf(lastUser.images, 'image') : '', lastUser.audioSeconds !== undefined ? `audio ${formatDuration(lastUser.audioSeconds)}` : ''].filter(Boolean).join(' + ');
      meta.textContent = `${what} · ${stats.encodeMs !== undefined ? `encoded in ${formatMs(stats.encodeMs)}` : 'from the cache'}`;
    }
    const meta = document.createElement('span');
    meta.className = 'meta';
    const why = stats.finishReason === 'abort' ? 'stopped' : stats.finishReason === 'length' ? 'length limit' : stats.finishReason === 'tool_calls' ? 'function call' : 'done';
    meta.textContent = `${countOf(stats.newTokens, 'token')} · ${formatRate(stats.decodeTokensPerSecond)} · ${why}`;
    if (calls.length) {
      // The call is shown as a function-call element with its result; this message says that it made one.
      li.className = 'message assistant called';
      body.textContent = `Calling ${calls.map((c) => c.name).join(', ')}…`;
      li.append(meta);
      return calls;
    }
    if (options.responseFormat) showJson(li, body, text, stats);
    li.append(meta);
    turns.push({ message: { role: 'assistant', content: text }, element: li });
    return undefined;
  } catch (err) {
    if (frame) cancelAnimationFrame(frame);
    li.classList.add('error');
    body.textContent = `Generation failed: ${describeError(err)}`;
    li.dataset.failed = 'true';
    return undefined;
  } finally {
    li.classList.remove('streaming');
    li.removeAttribute('aria-busy');
  }
}

/** JSON mode: a complete reply (it validates against the schema) is shown pretty-printed; a cut one says so. */
function showJson(li: HTMLLIElement, body: HTMLElement, text: string, stats: GenerationStats): void {
  const status = document.createElement('span');
  status.className = 'json-status';
  if (stats.complete) {
    const pre = document.createElement('pre');
    const code = document.createElement('code');
    code.textContent = JSON.stringify(JSON.parse(text), null, 2);
    pre.append(code);
    body.replaceChildren(pre);
    status.textContent = 'valid JSON (follows the schema)';
  } else {
    status.textContent = 'incomplete JSON: cut off before the end';
  }
  li.append(status);
}

function dropFailedReplies(): void {
  for (const el of ui.messages.querySelectorAll('[data-failed]')) el.remove();
}

async function send(): Promise<void> {
  const text = ui.prompt.value.trim();
  if ((!text && !attachment && images.length === 0) || state !== 'ready' || !replyOptions()) return; // a schema that is not JSON: the message stays in the box
  dropFailedReplies();
  ui.prompt.value = '';
  const clip = attachment;
  const pictures = images;
  let content: ChatMessage['content'] = text;
  if (clip || pictures.length) {
    // Images first, then the clip, then the text (Gemma's documented order: media before the question).
    const parts: ContentPart[] = pictures.map((p) => ({ type: 'image', image: p.file }));
    if (clip) parts.push({ type: 'audio', audio: { samples: clip.samples, sampleRate: clip.sampleRate } });
    if (text) parts.push({ type: 'text', text });
    content = parts;
    attachment = undefined;
    images = [];
    ui.attachment.hidden = true;
    ui.attachmentPlayer.removeAttribute('src');
    ui.imageAttachments.replaceChildren();
    ui.imageAttachments.hidden = true;
    ui.audioStatus.textContent = '';
  }
  turns.push({ message: { role: 'user', content }, element: addMessageElement('user', text, clip, pictures), audioSeconds: clip?.duration, images: pictures.length || undefined });
  await generateReply();
}

function stop(): void {
  generation?.abort();
}

async function regenerate(): Promise<void> {
  if (state !== 'ready') return;
  dropFailedReplies();
  // Drop the last reply, with any function calls and results it made.
  while (turns.length > 0 && turns[turns.length - 1].message.role !== 'user') turns.pop()!.element.remove();
  if (turns[turns.length - 1]?.message.role !== 'user') return;
  await generateReply();
}

/** Empties the conversation on screen and its figures (the model's cache is the caller's business). */
function clearChatView(): void {
  turns.length = 0;
  ui.messages.replaceChildren();
  contextUsed = 0;
  updateContextStat();
  for (const el of [ui.statTps, ui.statTtft, ui.statPrefill]) el.textContent = '–';
}

async function clearChat(): Promise<void> {
  stop();
  clearChatView();
  if (client) await client.reset().catch(() => {});
  setState(client ? 'ready' : 'idle');
  ui.prompt.focus();
}

// ---------------------------------------------------------------- wiring

function wire(): void {
  ui.source.addEventListener('change', showSourceFields);
  ui.size.addEventListener('change', showSizeHelp);
  ui.loadForm.addEventListener('submit', (e) => {
    e.preventDefault();
    void loadModel();
  });
  ui.cancelLoad.addEventListener('click', () => cancelLoading?.());
  ui.unload.addEventListener('click', () => void unloadModel());
  ui.composer.addEventListener('submit', (e) => {
    e.preventDefault();
    void send();
  });
  ui.prompt.addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) {
      e.preventDefault();
      void send();
    }
  });
  document.addEventListener('keydown', (e) => {
    if (e.key !== 'Escape') return;
    if (state === 'generating') stop();
    else if (state === 'loading') cancelLoading?.();
  });
  ui.stop.addEventListener('click', stop);
  ui.regenerate.addEventListener('click', () => void regenerate());
  ui.clear.addEventListener('click', () => void clearChat());
  ui.temperature.addEventListener('input', () => (ui.temperatureOut.value = ui.temperature.valueAsNumber.toFixed(2)));
  ui.topP.addEventListener('input', () => (ui.topPOut.value = ui.topP.valueAsNumber.toFixed(2)));
  // Tools and JSON mode are one or the other (a reply is either a call or follows the schema).
  const showModes = () => {
    ui.toolsRow.hidden = !ui.toolsToggle.checked;
    ui.jsonRow.hidden = !ui.jsonToggle.checked;
  };
  ui.toolsToggle.addEventListener('change', () => {
    if (ui.toolsToggle.checked) ui.jsonToggle.checked = false;
    showModes();
  });
  ui.jsonToggle.addEventListener('change', () => {
    if (ui.jsonToggle.checked) ui.toolsToggle.checked = false;
    showModes();
  });
  ui.jsonSchema.value = JSON.stringify(EXAMPLE_SCHEMA, null, 2);
  ui.record.addEventListener('click', () => void toggleRecording());
  ui.uploadAudio.addEventListener('click', () => ui.audioFile.click());
  ui.audioFile.addEventListener('change', () => {
    const file = ui.audioFile.files?.[0];
    if (file) void attachFile(file);
    ui.audioFile.value = '';
  });
  ui.attachmentRemove.addEventListener('click', detach);
  ui.attachImage.addEventListener('click', () => ui.imageFile.click());
  ui.camera.addEventListener('click', () => ui.cameraFile.click());
  for (const input of [ui.imageFile, ui.cameraFile]) {
    input.addEventListener('change', () => {
      attachImages(input.files ?? []);
      input.value = '';
    });
  }
  // Paste an image (a screenshot, a copied picture) anywhere on the page.
  document.addEventListener('paste', (e) => {
    const files = [...(e.clipboardData?.files ?? [])].filter((f) => f.type.startsWith('image/'));
    if (!files.length || ui.attachImage.disabled) return;
    e.preventDefault();
    attachImages(files);
  });
  ui.transcribe.addEventListener('click', () => fillPrompt('transcribe'));
  ui.translate.addEventListener('click', () => fillPrompt('translate'));
  // Drop an audio file anywhere on the chat.
  const chat = ui.messages.parentElement!;
  chat.addEventListener('dragover', (e) => {
    if ((!ui.uploadAudio.disabled || !ui.attachImage.disabled) && e.dataTransfer?.types.includes('Files')) {
      e.preventDefault();
      ui.audioBar.classList.add('dragging');
    }
  });
  chat.addEventListener('dragleave', () => ui.audioBar.classList.remove('dragging'));
  chat.addEventListener('drop', (e) => {
    ui.audioBar.classList.remove('dragging');
    const pictures = [...(e.dataTransfer?.files ?? [])].filter((f) => f.type.startsWith('image/'));
    if (pictures.length && !ui.attachImage.disabled) {
      e.preventDefault();
      attachImages(pictures);
    }
    const file = [...(e.dataTransfer?.files ?? [])].find((f) => f.type.startsWith('audio/') || /\.(wav|mp3|ogg|opus|webm|m4a|flac)$/i.test(f.name));
    if (!file || ui.uploadAudio.disabled) return;
    e.preventDefault();
    void attachFile(file);
  });
  ui.togglePanel.addEventListener('click', () => {
    const open = ui.side.classList.toggle('open');
    ui.togglePanel.setAttribute('aria-expanded', String(open));
  });
}

async function main(): Promise<void> {
  void registerOfflineSupport();
  const check = await checkWebGpu();
  if (!check.ok) {
    ui.app.hidden = true;
    ui.togglePanel.hidden = true;
    ui.noWebGpu.hidden = false;
    ui.noWebGpuReason.textContent = `This page runs Gemma 3n on your GPU with WebGPU. ${check.reason}`;
    ui.badge.textContent = 'WebGPU unavailable';
    document.body.dataset.state = 'no-webgpu';
    return;
  }
  adapter = check.adapter;
  wire();
  showSizes([]);
  showSourceFields();
  showGpuFacts();
  // On a phone the settings panel covers the chat; show it first, while there is nothing to chat with.
  ui.side.classList.add('open');
  ui.togglePanel.setAttribute('aria-expanded', 'true');
  setState('idle');
  await refreshCacheList();
}

void main();
