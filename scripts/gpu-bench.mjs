// `node scripts/gpu-bench.mjs [--out FILE] [--verify [--quick]]`: packs everything a bare x86-64 Linux machine
// with a GPU (NVIDIA; no network, no Node) needs to run the kernel and end-to-end benches at real E2B size, into
// one tar file under 64 MiB (default .bench/gpu-bench.tar):
//   node.xz                 the running Node binary (stripped, xz)
//   dawn.node.xz            Dawn for Node, from the `webgpu` package (its index.js and package.json beside it)
//   bench/*.js              bench/e2e.ts, bench/kernels.ts and bench/adapter-info.ts bundled with rolldown (the
//                           library's sources and WGSL inlined; only `webgpu` and node: builtins stay external)
//   debs/*.deb              the Vulkan loader (libvulkan1) and the GL/X client libraries NVIDIA's driver links
//                           against, from Debian (apt-get download); unpacked at run time, used only where missing
//   run.sh, run.mjs         unpack once, find the Vulkan driver, run the benches under a time budget, print JSON
//   manifest.json           what went in (versions, git commit, sizes)
// On the target: mkdir -p /tmp/gb && tar -xf gpu-bench.tar -C /tmp/gb && /tmp/gb/run.sh --out /tmp/gb/report.json
// --verify [--quick] [--budget S] [-- E2E-ARGS]: then unpacks the tar into an empty temporary folder and runs it there on SwiftShader (this machine's
// Chromium ICD) with --quick --allow-cpu, checking that JSON comes back. Documented in DEVELOPERS.md.
import { build } from 'rolldown';
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync, chmodSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { wgslRaw } from './rolldown-wgsl.mjs';

const root = fileURLToPath(new URL('..', import.meta.url));
const argv = process.argv.slice(2);
const out = argv.includes('--out') ? argv[argv.indexOf('--out') + 1] : join(root, '.bench/gpu-bench.tar');
/** What a device loan carries beside the working tree is small; the tar must stay well under this. */
export const MAX_BYTES = 64 * 2 ** 20;
/** Debian packages: the Vulkan loader, and the client libraries the NVIDIA driver's libGLX_nvidia links against. */
const DEBS = ['libvulkan1', 'libglvnd0', 'libglx0', 'libgl1', 'libegl1', 'libopengl0', 'libx11-6', 'libx11-xcb1', 'libxext6', 'libxcb1', 'libxau6', 'libxdmcp6', 'libbsd0', 'libmd0'];
const cache = join(root, '.bench/gpu-bench-cache');
const log = (s) => process.stderr.write(`[gpu-bench build] ${s}\n`);
const sh = (cmd, args, opts = {}) => execFileSync(cmd, args, { stdio: ['ignore', 'pipe', 'inherit'], ...opts });
if (process.platform !== 'linux' || process.arch !== 'x64') throw new Error(`gpu-bench packs this machine's Node binary: build it on x86-64 Linux (this is ${process.platform}-${process.arch})`);

const stage = mkdtempSync(join(tmpdir(), 'gpu-bench-stage-'));
mkdirSync(cache, { recursive: true });

// 1. Node: the running binary, stripped and xz-compressed (cached by its hash: compression takes minutes).
const nodeHash = createHash('sha256').update(readFileSync(process.execPath)).digest('hex').slice(0, 16);
const nodeXz = join(cache, `node-${process.version}-${nodeHash}.xz`);
if (!existsSync(nodeXz)) {
  log(`compressing ${process.execPath} (${process.version}); cached in ${nodeXz}`);
  const tmp = join(stage, 'node');
  copyFileSync(process.execPath, tmp);
  if (spawnSync('strip', [tmp]).status !== 0) log('strip not found: packing the unstripped binary');
  sh('xz', ['-T0', '-6', '-f', tmp]);
  copyFileSync(`${tmp}.xz`, nodeXz);
  rmSync(`${tmp}.xz`);
}
copyFileSync(nodeXz, join(stage, 'node.xz'));

// 2. Dawn: the webgpu package's loader and its linux-x64 dawn.node (xz).
const webgpu = join(root, 'node_modules/webgpu');
const webgpuVersion = JSON.parse(readFileSync(join(webgpu, 'package.json'), 'utf8')).version;
mkdirSync(join(stage, 'node_modules/webgpu/dist/linux-x64'), { recursive: true });
for (const f of ['index.js', 'package.json', 'LICENSE.md']) copyFileSync(join(webgpu, f), join(stage, 'node_modules/webgpu', f));
const dawnXz = join(cache, `dawn-${webgpuVersion}.node.xz`);
if (!existsSync(dawnXz)) {
  log(`compressing dawn.node of webgpu ${webgpuVersion}`);
  copyFileSync(join(webgpu, 'dist/linux-x64/dawn.node'), join(stage, 'dawn.node'));
  sh('xz', ['-T0', '-6', '-f', join(stage, 'dawn.node')]);
  copyFileSync(join(stage, 'dawn.node.xz'), dawnXz);
  rmSync(join(stage, 'dawn.node.xz'));
}
copyFileSync(dawnXz, join(stage, 'dawn.node.xz'));

// 3. The benches, bundled (no tsx at run time). The Chromium half of the e2e bench has no place on the target.
log('bundling the benches');
const noChromium = {
  name: 'no-chromium',
  resolveId: (source) => (source.endsWith('/chromium-decode.ts') ? '\0no-chromium' : null),
  load: (id) =>
    id === '\0no-chromium' ? "export const chromiumInstalled = () => false;\nexport async function profileDecodeInChromium() { throw new Error('the GPU bench bundle has no Chromium'); }\n" : null,
};
await build({
  cwd: root,
  input: { e2e: 'bench/e2e.ts', kernels: 'bench/kernels.ts', 'adapter-info': 'bench/adapter-info.ts' },
  platform: 'node',
  external: ['webgpu', /^node:/],
  plugins: [wgslRaw, noChromium],
  output: { dir: join(stage, 'bench'), format: 'es', entryFileNames: '[name].js', chunkFileNames: 'chunks/[name]-[hash].js', minify: false },
  write: true,
});
writeFileSync(join(stage, 'bench/package.json'), '{ "type": "module" }\n');
writeFileSync(join(stage, 'package.json'), '{ "type": "module", "private": true }\n');

// 4. Debian packages (cached).
const debDir = join(cache, 'debs');
mkdirSync(debDir, { recursive: true });
const missing = DEBS.filter((p) => !readdirSync(debDir).some((f) => f.startsWith(`${p}_`)));
if (missing.length) {
  log(`apt-get download ${missing.join(' ')}`);
  sh('apt-get', ['download', ...missing], { cwd: debDir });
}
mkdirSync(join(stage, 'debs'));
for (const f of readdirSync(debDir).filter((f) => f.endsWith('.deb') && DEBS.some((p) => f.startsWith(`${p}_`)))) copyFileSync(join(debDir, f), join(stage, 'debs', f));

// 5. Driver scripts and the manifest.
for (const f of ['run.sh', 'run.mjs']) copyFileSync(join(root, 'scripts/gpu-bench', f), join(stage, f));
chmodSync(join(stage, 'run.sh'), 0o755);
let commit = 'unknown';
try {
  commit = sh('git', ['rev-parse', 'HEAD'], { cwd: root }).toString().trim() + (sh('git', ['status', '--porcelain'], { cwd: root }).toString().trim() ? '+dirty' : '');
} catch {}
const manifest = {
  builtAt: new Date().toISOString(),
  commit,
  node: process.version,
  webgpu: webgpuVersion,
  debs: readdirSync(join(stage, 'debs')).sort(),
  benches: readdirSync(join(stage, 'bench')).filter((f) => f.endsWith('.js')),
};
writeFileSync(join(stage, 'manifest.json'), JSON.stringify(manifest, null, 2) + '\n');

// 6. The tar (members already compressed where it pays).
mkdirSync(join(out, '..'), { recursive: true });
sh('tar', ['-cf', out, '-C', stage, '.']);
rmSync(stage, { recursive: true, force: true });
const size = statSync(out).size;
log(`${out}: ${(size / 2 ** 20).toFixed(1)} MiB`);
if (size >= MAX_BYTES) throw new Error(`${out} is ${size} bytes, over the 64 MiB a bare machine's loan carries`);
console.log(JSON.stringify({ tar: out, bytes: size, ...manifest }));

if (argv.includes('--verify')) {
  const dir = mkdtempSync(join(tmpdir(), 'gpu-bench-verify-'));
  try {
    sh('tar', ['-xf', out, '-C', dir]);
    const icd = process.env.VK_ICD_FILENAMES ?? '/usr/lib/chromium/vk_swiftshader_icd.json';
    log(`verifying in ${dir} on ${icd}`);
    const budget = argv.includes('--budget') ? ['--budget', argv[argv.indexOf('--budget') + 1]] : [];
    const extra = [...(argv.includes('--quick') ? ['--quick'] : []), ...budget];
    const r = spawnSync(join(dir, 'run.sh'), [...extra, '--allow-cpu', '--out', join(dir, 'report.json'), ...argv.slice(argv.indexOf('--') >= 0 ? argv.indexOf('--') : argv.length)], {
      env: { ...process.env, VK_ICD_FILENAMES: icd, PATH: process.env.PATH },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const report = JSON.parse(readFileSync(join(dir, 'report.json'), 'utf8'));
    if (r.status !== 0) throw new Error(`run.sh exited ${r.status}: ${JSON.stringify(report).slice(0, 2000)}`);
    for (const k of ['adapter', 'kernels', 'e2e']) if (!report[k] || report[k].error) throw new Error(`report.${k}: ${JSON.stringify(report[k])?.slice(0, 500)}`);
    log(`verified: adapter ${report.adapter.name}, ${report.adapter.features.length} features, e2e decode ${report.e2e.decode.map((d) => d.tokensPerSecond.toFixed(2)).join(' / ')} tok/s, ${report.e2e.decodeStep?.perToken.dispatches} dispatches/token, ${report.totalSeconds.toFixed(0)} s`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
