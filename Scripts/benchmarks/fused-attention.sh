#!/usr/bin/env bash
# The fused multi-scale deformable attention against the same attention composed of libtorch ops, on
# the encoder of a ResNet-50 Deformable DETR at 512x512 (5,440 queries, 4 levels, 8 heads, 4 points),
# forward and backward, in one run. Builds the benchmark next to the shim (after Scripts/setup.sh).
# Usage: Scripts/benchmarks/fused-attention.sh [threads] [iterations]
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
build=$root/.build-shim
[ -f "$build/CMakeCache.txt" ] || { echo "fused-attention.sh: run Scripts/setup.sh first (it configures the shim's build)" >&2; exit 1; }
cmake --build "$build" --target ctorch_attention_benchmark >/dev/null
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
"$build/ctorch_attention_benchmark" "${1:-2}" "${2:-20}"
