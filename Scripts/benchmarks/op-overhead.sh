#!/usr/bin/env bash
# Per-op overhead: the Swift shim against Python torch on the same libtorch, one thread, in one run.
# Prints a table with both times and the ratio (Python / Swift: above 1 means Swift is faster).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$root"
iterations=${1:-20000}
python=$("$root/Scripts/reference-env.sh")
swift build -c release --product torch-overhead-benchmark >&2
swift_csv=$(.build/release/torch-overhead-benchmark "$iterations")
python_csv=$("$python" Scripts/benchmarks/op_overhead.py "$iterations")
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), torch $("$python" -c 'import torch; print(torch.__version__)')"
printf '%-16s %12s %12s %8s\n' op swift_us python_us ratio
join -t, <(echo "$swift_csv" | tail -n +2 | sort) <(echo "$python_csv" | tail -n +2 | sort) |
  awk -F, '{ printf "%-16s %12.3f %12.3f %8.2f\n", $1, $2, $3, $3 / $2 }'
