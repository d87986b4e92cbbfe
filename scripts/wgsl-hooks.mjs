// Node module hooks so that `import src from '../../shaders/x.wgsl?raw'` works outside Vite (tests, CLI).
import { readFile } from 'node:fs/promises';

export async function resolve(specifier, context, next) {
  if (specifier.includes('.wgsl')) {
    const url = new URL(specifier, context.parentURL);
    return { url: url.href, shortCircuit: true, format: 'module' };
  }
  return next(specifier, context);
}

export async function load(url, context, next) {
  if (url.startsWith('file:') && new URL(url).pathname.endsWith('.wgsl')) {
    const path = new URL(url);
    path.search = '';
    const text = await readFile(path, 'utf8');
    return { format: 'module', shortCircuit: true, source: `export default ${JSON.stringify(text)};` };
  }
  return next(url, context);
}
