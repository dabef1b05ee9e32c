#!/usr/bin/env bash
# Our DINO and Focus-DETR against the official code (detrex's DINO and Focus-DETR; R50, 4 scales, 900
# queries, 80 classes, random weights) on this machine, in one run: inference (batch 1) and a training
# step (batch 2, backbone frozen on both sides) at 512x512 with 2 threads. The official code runs on
# the CPU through Scripts/reference/detrex (its deformable attention falls back to PyTorch's grid_sample). Each case alternates the two
# sides for a number of rounds and reports the median of each side's p50, the ratio (reference /
# ours: above 1 means we are faster), each round's ratio and the largest peak memory.
# Usage: Scripts/benchmarks/detectors-vs-detrex.sh [iterations] [rounds]
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$root"
iterations=${1:-5}
rounds=${2:-3}
python=$("$root/Scripts/reference/detrex/env.sh")
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
swift build -c release --product detr >&2
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), torch $("$python" -c 'import torch; print(torch.__version__)'), detrex e244e6c, 2 threads, 512x512"
echo "GFLOP: one inference as torch's FlopCounterMode counts it on the official model (matrix products and convolutions)"
printf '%-26s %12s %12s %8s %-17s %10s %10s %8s %10s\n' case official_ms ours_ms ratio "round ratios" official_MiB ours_MiB GFLOP enc_GFLOP
run() { # name, family, batch, extra flag
  local name=$1 family=$2 batch=$3 flag=${4:-} theirs="[" ours="[" round flops='{"flops": 0, "encoder_flops": 0}'
  if [ -z "$flag" ]; then
    flops=$(PYTHONPATH=Scripts/reference/detrex "$python" Scripts/benchmarks/detrex_reference.py --arch "${family//-/_}" \
      --image-size 512 --flops-only 2>/dev/null)
  fi
  for ((round = 1; round <= rounds; round++)); do
    theirs+=$(PYTHONPATH=Scripts/reference/detrex "$python" Scripts/benchmarks/detrex_reference.py --arch "${family//-/_}" --image-size 512 \
      --batch-size "$batch" --iterations "$iterations" --threads 2 $flag 2>/dev/null)
    .build/release/detr benchmark --model "$family" --preset r50-4scale --image-size 512 --batch-size "$batch" \
      --iterations "$iterations" --threads 2 $flag ${flag:+--freeze-backbone} --json "$scratch/ours.json" >/dev/null
    ours+=$(cat "$scratch/ours.json")
    if ((round < rounds)); then theirs+=","; ours+=","; fi
  done
  python3 Scripts/benchmarks/compare_runs.py "$name" "$theirs]" "$ours]" "$flops" encoder_flops
}
run "DINO inference b1" dino 1
run "Focus-DETR inference b1" focus-detr 1
run "DINO train step b2" dino 2 --train
run "Focus-DETR train step b2" focus-detr 2 --train
