#!/bin/sh
# gpu-bench: unpacks the bundled Node, Dawn and loader libraries next to this script (once), finds the Vulkan driver
# and runs the benches (run.mjs). Usage: ./run.sh [--quick] [--allow-cpu] [--out FILE] [--budget SECONDS] [-- e2e flags]
# Built by scripts/gpu-bench.mjs; see DEVELOPERS.md ("Benchmarks on a real GPU").
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
cd "$HERE"
unxz_to() { # $1: .xz file, $2: output
  if command -v xz >/dev/null 2>&1; then xz -dc "$1" >"$2"
  else python3 -c 'import lzma,shutil,sys; shutil.copyfileobj(lzma.open(sys.argv[1]), open(sys.argv[2],"wb"))' "$1" "$2"; fi
}
if [ ! -x bin/node ]; then
  mkdir -p bin
  unxz_to node.xz bin/node.part && chmod +x bin/node.part && mv bin/node.part bin/node
fi
if [ ! -f node_modules/webgpu/dist/linux-x64/dawn.node ]; then
  unxz_to dawn.node.xz node_modules/webgpu/dist/linux-x64/dawn.node.part
  mv node_modules/webgpu/dist/linux-x64/dawn.node.part node_modules/webgpu/dist/linux-x64/dawn.node
fi
# Debian packages: unpacked into sysroot/, and only the libraries the system lacks are linked into lib/ (the
# system's own loader and driver libraries win).
if [ ! -d lib ]; then
  mkdir -p sysroot lib.part
  for deb in debs/*.deb; do
    if command -v dpkg-deb >/dev/null 2>&1; then dpkg-deb -x "$deb" sysroot
    else python3 - "$deb" sysroot <<'PY'
import io, sys, tarfile
data = open(sys.argv[1], 'rb').read()
pos = 8
while pos < len(data):
    name = data[pos:pos + 16].decode().strip().rstrip('/')
    size = int(data[pos + 48:pos + 58])
    body = data[pos + 60:pos + 60 + size]
    if name.startswith('data.tar'):
        tarfile.open(fileobj=io.BytesIO(body)).extractall(sys.argv[2])
    pos += 60 + size + (size & 1)
PY
    fi
  done
  known=$( (ldconfig -p 2>/dev/null || true) | awk '{print $1}')
  for so in sysroot/usr/lib/x86_64-linux-gnu/*.so.*; do
    [ -e "$so" ] || continue
    base=$(basename "$so")
    case "$base" in *.so.[0-9]) ;; *) continue ;; esac # sonames only (libfoo.so.1), not libfoo.so.1.2.3
    if ! printf '%s\n' "$known" | grep -qx "$base"; then ln -sf "$HERE/$so" "lib.part/$base"; fi
  done
  mv lib.part lib
fi
LD_LIBRARY_PATH="$HERE/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
# The NVIDIA driver's libraries where containers mount them.
for d in /usr/local/nvidia/lib64 /usr/local/nvidia/lib /usr/lib/x86_64-linux-gnu/nvidia; do
  [ -d "$d" ] && LD_LIBRARY_PATH="$LD_LIBRARY_PATH:$d"
done
export LD_LIBRARY_PATH
# The Vulkan driver (ICD): the caller's choice, else the NVIDIA ICD file where drivers install it, else one written
# here for libGLX_nvidia.so.0 (NVIDIA's Vulkan driver lives in that library).
if [ -z "${VK_ICD_FILENAMES:-}" ] && [ -z "${VK_DRIVER_FILES:-}" ]; then
  for f in /usr/share/vulkan/icd.d/nvidia_icd.json /etc/vulkan/icd.d/nvidia_icd.json /usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json /usr/share/vulkan/icd.d/nvidia_icd.x86_64.json /usr/local/share/vulkan/icd.d/nvidia_icd.json; do
    if [ -f "$f" ]; then export VK_DRIVER_FILES="$f"; break; fi
  done
  if [ -z "${VK_DRIVER_FILES:-}" ]; then
    glx=$( (ldconfig -p 2>/dev/null || true) | awk '/libGLX_nvidia\.so\.0/ {print $NF; exit}')
    for d in /usr/local/nvidia/lib64 /usr/lib/x86_64-linux-gnu/nvidia; do
      [ -z "$glx" ] && [ -f "$d/libGLX_nvidia.so.0" ] && glx="$d/libGLX_nvidia.so.0"
    done
    if [ -n "$glx" ]; then
      printf '{"file_format_version":"1.0.0","ICD":{"library_path":"%s","api_version":"1.3.0"}}\n' "$glx" >nvidia_icd.json
      export VK_DRIVER_FILES="$HERE/nvidia_icd.json"
    fi
  fi
fi
export GEMMA_WEBGPU_NATIVE_VULKAN=1 XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-/tmp}"
exec "$HERE/bin/node" "$HERE/run.mjs" "$@"
