/**
 * Recording from the microphone on the page, for audio messages: getUserMedia + MediaRecorder (every browser with
 * WebGPU has both; the compressed recording is small enough to keep for playback), decoded on stop with the same
 * path as an uploaded file (src/runtime/media/audio-input.ts). The clip it returns goes straight into a message:
 *
 * ```ts
 * const recording = await recordAudio({ maxSeconds: 120 });
 * // ... later (a button):
 * const clip = await recording.stop();
 * gemma.chat([{ role: 'user', content: [{ type: 'audio', audio: clip }, { type: 'text', text: 'Transcribe this.' }] }]);
 * ```
 * `stream` records any MediaStream instead of the microphone (a WebRTC call, an <audio> element's captureStream(),
 * an AudioContext's MediaStreamAudioDestinationNode).
 */
import { GemmaError } from '../../errors.ts';
import { decodeAudioBytes, type DecodedClip } from './audio-input.ts';

export interface RecordAudioOptions {
  /** Record this stream instead of asking for the microphone (its tracks are left running). */
  stream?: MediaStream;
  /** Stop by itself after this many seconds (the stop() promise then resolves with the clip). */
  maxSeconds?: number;
  /** A MediaRecorder type to prefer (default: Opus in WebM or Ogg, else the browser's choice). */
  mimeType?: string;
}

/** A finished recording: mono samples at the recording's rate, ready for `{ type: 'audio', audio: clip }`. */
export interface RecordedClip extends DecodedClip {
  /** The compressed recording (for playback or saving). */
  blob: Blob;
}

export interface AudioRecording {
  /** The stream being recorded. */
  readonly stream: MediaStream;
  /** Seconds since recording started. */
  readonly elapsed: number;
  /** Resolves once recording has stopped (by stop(), maxSeconds or the stream ending) with the decoded clip. */
  readonly done: Promise<RecordedClip>;
  /** Stops recording; resolves with the clip. */
  stop(): Promise<RecordedClip>;
  /** Stops and discards the recording (done rejects with GemmaError('aborted')). */
  cancel(): void;
}

const PREFERRED_TYPES = ['audio/webm;codecs=opus', 'audio/ogg;codecs=opus', 'audio/mp4', 'audio/webm'];

/** Starts recording (asking for the microphone unless `stream` is given). */
export async function recordAudio(options: RecordAudioOptions = {}): Promise<AudioRecording> {
  if (typeof MediaRecorder === 'undefined') {
    throw new GemmaError('unsupported-input', 'This browser has no MediaRecorder: record with another browser, or upload an audio file.');
  }
  let stream = options.stream;
  const ownStream = !stream;
  if (!stream) {
    if (!navigator.mediaDevices?.getUserMedia) {
      throw new GemmaError('unsupported-input', 'The microphone is not available here (navigator.mediaDevices is missing: the page must be served over https or from localhost).');
    }
    try {
      stream = await navigator.mediaDevices.getUserMedia({ audio: { channelCount: 1, echoCancellation: true, noiseSuppression: true } });
    } catch (err) {
      const name = (err as DOMException)?.name;
      throw new GemmaError(
        'unsupported-input',
        name === 'NotAllowedError'
          ? 'Microphone access was denied: allow it in the browser (the address bar) to record, or upload an audio file.'
          : `No microphone could be opened (${name ?? 'error'}: ${(err as Error)?.message ?? err}).`,
        { cause: err },
      );
    }
  }
  const mimeType = [options.mimeType, ...PREFERRED_TYPES].find((t) => t && MediaRecorder.isTypeSupported(t));
  const recorder = new MediaRecorder(stream, mimeType ? { mimeType } : undefined);
  const chunks: Blob[] = [];
  const started = performance.now();
  let stoppedAt: number | undefined;
  let cancelled = false;
  let timer: ReturnType<typeof setTimeout> | undefined;
  recorder.ondataavailable = (e) => {
    if (e.data.size > 0) chunks.push(e.data);
  };
  const done = new Promise<RecordedClip>((resolve, reject) => {
    recorder.onstop = () => {
      stoppedAt ??= performance.now();
      if (timer) clearTimeout(timer);
      if (ownStream) stream!.getTracks().forEach((t) => t.stop());
      if (cancelled) return reject(new GemmaError('aborted', 'The recording was cancelled.'));
      const blob = new Blob(chunks, { type: recorder.mimeType || mimeType || 'audio/webm' });
      blob
        .arrayBuffer()
        .then((b) => decodeAudioBytes(new Uint8Array(b), 'the recording', blob.type))
        .then((clip) => resolve({ ...clip, blob }), reject);
    };
    recorder.onerror = (e) => reject(new GemmaError('internal', `Recording failed: ${(e as ErrorEvent).message ?? 'MediaRecorder error'}`));
  });
  done.catch(() => {});
  recorder.start(250);
  if (options.maxSeconds !== undefined) {
    if (!(options.maxSeconds > 0)) throw new GemmaError('invalid-argument', `maxSeconds must be a positive number (got ${options.maxSeconds}).`);
    timer = setTimeout(() => recorder.state !== 'inactive' && recorder.stop(), options.maxSeconds * 1000);
  }
  const stop = () => {
    if (recorder.state !== 'inactive') {
      stoppedAt = performance.now();
      recorder.stop();
    }
    return done;
  };
  return {
    stream,
    get elapsed() {
      return ((stoppedAt ?? performance.now()) - started) / 1000;
    },
    done,
    stop,
    cancel() {
      cancelled = true;
      void stop();
    },
  };
}
