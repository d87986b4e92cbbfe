// Compares two folders file by file (bytes): the lines say which files are new, changed or gone in `to`.
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';

function files(dir, only) {
  if (!existsSync(dir)) return [];
  const out = [];
  const walk = (d) => {
    for (const name of readdirSync(d)) {
      if (d === dir && only && !only.includes(name)) continue;
      const p = join(d, name);
      if (statSync(p).isDirectory()) walk(p);
      else out.push(relative(dir, p));
    }
  };
  walk(dir);
  return out.sort();
}

/** Differences that copying `from` over `to` would make: ['new x', 'changed y', 'gone z' (only in `to`)]. */
export function compareTrees(from, to, only) {
  const a = files(from, only), b = new Set(files(to, only));
  const out = [];
  for (const f of a) {
    if (!b.has(f)) out.push(`new ${f}`);
    else if (!readFileSync(join(from, f)).equals(readFileSync(join(to, f)))) out.push(`changed ${f}`);
    b.delete(f);
  }
  for (const f of b) out.push(`gone ${f}`);
  return out;
}
