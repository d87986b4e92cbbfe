/**
 * The pre-flight memory check: before any weight byte is downloaded, the family's estimate of what the load will
 * allocate (GPU buffers and host memory, model/<family>/memory-estimate.ts) is held against what this adapter and
 * platform allow, so a load that cannot fit fails in a second with a message instead of after a multi-GB download
 * (or the tab is killed).
 *
 * What can be known (WebGPU exposes no memory size):
 * - the adapter's maxBufferSize / maxStorageBufferBindingSize against the largest buffer that cannot be split;
 * - iOS / iPadOS (a user agent with iPhone/iPad, or a "Macintosh" with a touch screen: iPadOS's desktop mode):
 *   WebKit ends a page whose memory passes about 1.5 GB, and GPU buffers count (unified memory). Every Gemma 3n
 *   load needs more (E2B q4: 1.9 GB GPU + 1.1 GB host), so it is refused;
 * - `navigator.deviceMemory` (Chrome, Edge, Android; GiB rounded down to a power of two, capped at 8): a load that
 *   needs more than the device has is refused; more than 60 % of it gets a warning (with a browser, the OS and the
 *   GPU driver besides, a load that large is likely to be killed or to swap).
 * `memoryCheck: 'warn'` turns refusals into warnings, `'off'` skips the check.
 */
import { GemmaError } from '../../errors.ts';
import type { MemoryEstimate } from '../../model/family.ts';

/** What the page (or worker) can tell about the device. Plain data: it crosses to the worker with the request. */
export interface PlatformHints {
  /** navigator.deviceMemory: RAM in GiB, rounded down to a power of two, at most 8 (Chromium browsers only). */
  deviceMemoryGiB?: number;
  /** An iPhone / iPad (also an iPad in desktop mode, which presents itself as a Mac with a touch screen). */
  ios?: boolean;
  /** A phone or tablet. */
  mobile?: boolean;
}

export type MemoryCheck = 'refuse' | 'warn' | 'off';

/** WebKit's per-page memory limit on iOS is about 1.5 GB; leave room for the page itself. */
export const IOS_PAGE_BUDGET = 1.4e9;
/** Above this share of the device's RAM a load gets a warning. */
const WARN_SHARE = 0.6;
const GiB = 2 ** 30;

/** The hints this context can see (navigator in a page or a worker; a worker cannot see touch points). */
export function detectPlatform(): PlatformHints {
  const nav = (globalThis as { navigator?: Navigator & { deviceMemory?: number; userAgentData?: { mobile?: boolean } } }).navigator;
  if (!nav) return {};
  const ua = nav.userAgent ?? '';
  const touchMac = /Macintosh/.test(ua) && (nav.maxTouchPoints ?? 0) > 1;
  const ios = /iPhone|iPad|iPod/.test(ua) || touchMac;
  const mobile = nav.userAgentData?.mobile ?? (ios || /Android|Mobile/.test(ua));
  const hints: PlatformHints = { ios, mobile };
  if (typeof nav.deviceMemory === 'number' && nav.deviceMemory > 0) hints.deviceMemoryGiB = nav.deviceMemory;
  return hints;
}

/** The request with the page's platform hints (the worker cannot see an iPad's touch screen). */
export function withPlatformHints<R extends { platform?: PlatformHints }>(request: R): R {
  return { ...request, platform: { ...detectPlatform(), ...request.platform } };
}

export interface PreflightInput {
  estimate: MemoryEstimate;
  /** For messages: the model and the weight mode. */
  model: string;
  weights: string;
  platform: PlatformHints;
  limits: { maxBufferSize: number; maxStorageBufferBindingSize: number };
  check?: MemoryCheck;
}

/** Warnings to pass on; throws GemmaError('limit-too-small') when the load cannot fit (unless check is 'warn'). */
export function preflight(input: PreflightInput): string[] {
  const { estimate, platform, limits } = input;
  const check = input.check ?? 'refuse';
  if (check === 'off') return [];
  const total = estimate.gpuBytes + estimate.hostBytes;
  const needs = `${input.model} (${input.weights} weights) needs about ${gb(estimate.gpuBytes)} of GPU memory and ${gb(estimate.hostBytes)} of host memory`;
  const refusals: string[] = [];
  const warnings: string[] = [];
  const bufferLimit = Math.min(limits.maxBufferSize, limits.maxStorageBufferBindingSize);
  if (estimate.largestGpuBuffer > bufferLimit) {
    refusals.push(`${needs}, including one GPU buffer of ${mib(estimate.largestGpuBuffer)}, but this adapter allows at most ${mib(bufferLimit)} per buffer (maxBufferSize / maxStorageBufferBindingSize). Use another browser or GPU.`);
  }
  if (platform.ios && total > IOS_PAGE_BUDGET) {
    refusals.push(`${needs}; iOS and iPadOS end a web page that uses more than about 1.5 GB (GPU memory included), so it cannot run here. Use a desktop browser (Chrome, Edge or Safari on a Mac with 8 GB or more).`);
  }
  const ram = platform.deviceMemoryGiB;
  if (ram !== undefined) {
    // deviceMemory is capped at 8: "8" means "8 GiB or more", so only smaller values can refuse.
    if (ram < 8 && total > ram * GiB) {
      refusals.push(`${needs}, more than this device's ${ram} GB of memory. Use a device with more memory${input.weights === 'float' ? ", or weights: 'q4'" : ''}.`);
    } else if (total > WARN_SHARE * ram * GiB) {
      warnings.push(`${needs}, ${Math.round((100 * total) / (ram * GiB))} % of this device's ${ram}${ram >= 8 ? '+' : ''} GB of memory: the browser may slow down or end the page.`);
    }
  }
  if (refusals.length > 0 && check === 'refuse') {
    throw new GemmaError('limit-too-small', `${refusals.join(' ')} (Checked before downloading; pass memoryCheck: 'warn' to try anyway.)`);
  }
  return [...refusals, ...warnings];
}

function gb(bytes: number): string {
  return `${(bytes / 1e9).toFixed(2)} GB`;
}

function mib(bytes: number): string {
  return `${(bytes / 2 ** 20).toFixed(0)} MiB`;
}
