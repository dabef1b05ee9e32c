#!/usr/bin/env bash
# Our SMCA-DETR against the official code (gaopengcuhk/SMCA-DETR e4df3ab, single scale, type3; R50,
# 300 queries, 91 classes, random weights) on this machine, in one run: inference (batch 1) and a
# training step (batch 2, backbone frozen on both sides) at 512x512 with 2 threads. Each case
# alternates the two sides for a number of rounds and reports the median of each side's p50, the
# ratio (reference / ours: above 1 means we are faster), each round's ratio, the largest peak memory,
# and the official model's GFLOP (all, and the decoder's, where the spatial prior is).
# Usage: Scripts/benchmarks/smca-vs-official.sh [iterations] [rounds]
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$root"
iterations=${1:-5}
rounds=${2:-3}
python=$("$root/Scripts/reference/smca/env.sh")
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
swift build -c release --product detr >&2
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), torch $("$python" -c 'import torch; print(torch.__version__)'), SMCA-DETR e4df3ab, 2 threads, 512x512"
echo "GFLOP: one inference as torch's FlopCounterMode counts it on the official model (matrix products and convolutions)"
printf '%-26s %12s %12s %8s %-17s %10s %10s %8s %10s\n' case official_ms ours_ms ratio "round ratios" official_MiB ours_MiB GFLOP dec_GFLOP
flops=$("$python" Scripts/benchmarks/smca_reference.py --image-size 512 --flops-only 2>/dev/null)
run() { # name, batch, extra flag
  local name=$1 batch=$2 flag=${3:-} theirs="[" ours="[" round
  for ((round = 1; round <= rounds; round++)); do
    theirs+=$("$python" Scripts/benchmarks/smca_reference.py --image-size 512 --batch-size "$batch" --iterations "$iterations" \
      --threads 2 $flag 2>/dev/null)
    .build/release/detr benchmark --model smca-detr --preset r50 --image-size 512 --batch-size "$batch" \
      --iterations "$iterations" --threads 2 $flag ${flag:+--freeze-backbone} --json "$scratch/ours.json" >/dev/null
    ours+=$(cat "$scratch/ours.json")
    if ((round < rounds)); then theirs+=","; ours+=","; fi
  done
  python3 Scripts/benchmarks/compare_runs.py "$name" "$theirs]" "$ours]" "$flops" decoder_flops
}
run "SMCA-DETR inference b1" 1
run "SMCA-DETR train step b2" 2 --train
