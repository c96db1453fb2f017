#!/usr/bin/env bash
# The whole GPU session in one command (benchmarks/gpu_session.py says what it runs):
#   bash benchmarks/gpu.sh             # on a CUDA machine (H100/H200: fits 8 minutes with the build)
#   bash benchmarks/gpu.sh --dry-run   # anywhere: the steps that need no GPU; prints the GPU-only ones
# Results: benchmarks/results/gpu-<date>-<commit>/ (and at most 8 files in $OUT if set).
set -euo pipefail
cd "$(dirname "$0")/.."
exec "${PYTHON:-python}" benchmarks/gpu_session.py "$@"
