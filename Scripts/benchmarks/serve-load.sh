#!/usr/bin/env bash
# `detr serve` under load against transformers behind a minimal Python HTTP server, same detector,
# same image, same machine, alternating rounds (serve_load.py says how). Prints throughput and
# p50/p99 latency at 1, 4 and 16 concurrent clients for the small DETR and DETR-R50.
# Usage: Scripts/benchmarks/serve-load.sh [extra serve_load.py flags, e.g. --models small --requests 48]
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$root"
python=$("$root/Scripts/reference-env.sh")
swift build -c release --product detr >&2
"$python" Scripts/benchmarks/serve_load.py --detr .build/release/detr "$@"
