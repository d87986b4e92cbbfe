/** Drains a GenerationStream (engine or client) into its deltas, token ids, text and stats. */
import type { GenerationStream } from '../../src/runtime/generation-stream.ts';
import type { Delta } from '../../src/runtime/protocol.ts';

export async function collect(stream: GenerationStream) {
  const deltas: Delta[] = [];
  for await (const d of stream) deltas.push(d);
  const stats = await stream.stats;
  return { deltas, stats, text: deltas.map((d) => d.text).join(''), ids: deltas.flatMap((d) => d.tokenIds) };
}
