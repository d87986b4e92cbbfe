/**
 * bench:memory's counted-vs-measured table (both families): each group the sizing code counts against what
 * model.memory() reports, to the byte. The kernels' own buffers (dispatch parameters, placeholders, the kernels'
 * scratch) are measured only: the sizing code and the pre-flight estimate leave them out, so the total agrees when
 * the measured total less them equals the counted one.
 */
import type { MemoryReport } from '../src/model/language-model.ts';

export interface CountedMemory {
  weights: number;
  kv: number;
  kvLayers: number;
  scratch: number;
  pleHost: number;
}

const MiB = (b: number) => (b / 2 ** 20).toFixed(1) + ' MiB';
const GB = (b: number) => (b / 1e9).toFixed(3) + ' GB';

/** Prints the table; returns false when a counted group disagrees with the measured one. */
export function printMemoryTable(title: string, n: CountedMemory, pleLabel: string, m: MemoryReport | undefined): boolean {
  const countedTotal = n.weights + n.kv + n.scratch;
  const rows: Array<[string, number | undefined, number | undefined, number | undefined]> = [
    // [name, counted, measured, the measured bytes the counted ones are compared with]
    ['GPU weights', n.weights, m?.gpu.weights, m?.gpu.weights],
    [`GPU KV cache (${n.kvLayers} owner layers)`, n.kv, m?.gpu.kvCache, m?.gpu.kvCache],
    ['GPU scratch', n.scratch, m?.gpu.scratch, m?.gpu.scratch],
    ["GPU kernels' own buffers (parameters, placeholders, kernel scratch; not counted)", undefined, m?.gpu.kernels, undefined],
    ['GPU total', countedTotal, m?.gpu.total, m && m.gpu.total - m.gpu.kernels],
    [`host PLE table (${pleLabel})`, n.pleHost, m?.host.total, m?.host.total],
  ];
  console.log(`\n| ${title} | counted | measured (model.memory()) | bytes (measured) | agree |`);
  console.log('|---|---|---|---|---|');
  let ok = true;
  for (const [name, counted, measured, compared] of rows) {
    let agree = 'not measured';
    if (measured !== undefined) agree = counted === undefined ? '—' : compared === counted ? (compared === measured ? 'yes' : "yes (+ the kernels' buffers)") : `NO (${compared! - counted > 0 ? '+' : ''}${compared! - counted} B)`;
    if (counted !== undefined && compared !== undefined && compared !== counted) ok = false;
    console.log(`| ${name} | ${counted === undefined ? '—' : MiB(counted)} | ${measured === undefined ? '—' : MiB(measured)} | ${measured === undefined ? '—' : `${measured} (${GB(measured)})`} | ${agree} |`);
  }
  return ok;
}
