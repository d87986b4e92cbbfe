/**
 * Small text files (tokenizer.json, tokenizer_config.json, chat templates) fetched whole with plain GETs: no range
 * requests and no size probes, so they are served by any static host and by a service worker's precache (offline
 * apps), which answers GETs of the exact URL only.
 */
import { GemmaError } from '../errors.ts';

export interface FetchTextsOptions {
  signal?: AbortSignal;
  headers?: Record<string, string>;
  fetch?: typeof fetch;
}

/**
 * The files of `names` under the folder URL `base` that exist (404 = absent), by name. A network failure on one of
 * `optional` counts as absent too: offline, a service worker answers only what it precached, and a missing optional
 * file must not fail a load that has everything it needs.
 */
export async function fetchTexts(base: string, names: readonly string[], options: FetchTextsOptions & { optional?: readonly string[] } = {}): Promise<Map<string, string>> {
  const folder = base.endsWith('/') ? base : base + '/';
  const doFetch = options.fetch ?? fetch;
  const texts = new Map<string, string>();
  await Promise.all(
    names.map(async (name) => {
      const url = folder + name;
      let response: Response;
      try {
        response = await doFetch(url, { signal: options.signal, headers: options.headers });
      } catch (err) {
        if (options.signal?.aborted) throw new GemmaError('aborted', `Fetching ${url} was aborted.`, { cause: err });
        if (options.optional?.includes(name)) return;
        throw new GemmaError('network', `Could not fetch ${url}: ${(err as Error).message}. Check the URL and your connection.`, { cause: err });
      }
      if (response.status === 404 || response.status === 410) return;
      if (!response.ok) {
        throw new GemmaError('network', `Fetching ${url} failed with HTTP ${response.status}${response.status === 401 || response.status === 403 ? ' (a gated or private folder: pass an access token)' : ''}.`);
      }
      texts.set(name, await response.text());
    }),
  );
  return texts;
}
