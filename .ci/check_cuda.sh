#!/usr/bin/env bash
# Compile-check the CUDA sources on a machine without a CUDA torch:
# every .cu with nvcc for sm_90 (they include no torch headers), and every CUDA
# binding .cpp with g++ -fsyntax-only against torch's and CUDA's headers.
set -euo pipefail
cd "$(dirname "$0")/.."
NVCC=${NVCC:-nvcc}
if ! command -v "$NVCC" >/dev/null; then
  echo "check_cuda: nvcc not found; install the CUDA toolkit or set NVCC" >&2
  exit 1
fi
CUDA_ROOT=${CUDA_HOME:-/usr/local/cuda}
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
shopt -s nullglob
count=0
for cu in csrc/cuda/*.cu; do
  echo "nvcc sm_90: $cu"
  "$NVCC" -std=c++17 -O3 -arch=sm_90 -Icsrc -c "$cu" -o "$tmp/$(basename "$cu").o"
  count=$((count + 1))
done
torch_includes=$(python -c "from torch.utils.cpp_extension import include_paths; print(' '.join('-I'+p for p in include_paths()))")
for cpp in csrc/cuda/*.cpp; do
  echo "g++ -fsyntax-only (CUDA binding): $cpp"
  g++ -std=c++17 -fsyntax-only -DDANCE_EXT_WITH_CUDA -DC10_CUDA_NO_CMAKE_CONFIGURE_FILE \
    -Icsrc $torch_includes -I"$CUDA_ROOT/include" "$cpp"
  count=$((count + 1))
done
echo "check_cuda: $count CUDA source(s) compiled"
