#!/usr/bin/env bash
# Our detectors against transformers' on the same machine, configuration, image size, batch and
# threads, in one run: inference (batch 1) and a training step (batch 2) at 512x512, ResNet-50, random
# weights. Prints both latencies (p50), the ratio (reference / ours: above 1 means we are faster) and
# peak memory. transformers freezes its whole ResNet when it is not a timm backbone, so our training
# step freezes the backbone too (--freeze-backbone): the same work on both sides. The model FLOPs of
# an iteration (torch's FlopCounterMode on the reference, the same architecture as ours) divided by
# each latency gives the rate each side reaches, against this CPU's best (machine_peak.py).
#
# A shared machine's speed drifts by tens of percent over minutes, so each case alternates the two
# sides for a number of rounds and reports the median of each side's p50 (and the largest peak
# memory); the spread column gives the ratios of the single rounds.
# Usage: Scripts/benchmarks/detectors-vs-transformers.sh [iterations] [rounds]
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$root"
iterations=${1:-5}
rounds=${2:-3}
python=$("$root/Scripts/reference-env.sh")
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
swift build -c release --product detr >&2
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), torch $("$python" -c 'import torch; print(torch.__version__)'), 2 threads, 512x512"
echo "this CPU at best: $("$python" Scripts/benchmarks/machine_peak.py --threads 2)"
echo "each case: $rounds alternating rounds of $iterations timed iterations per side; medians of the rounds' p50"
printf '%-34s %12s %12s %8s %-17s %10s %10s %8s %10s %10s\n' case reference_ms ours_ms ratio "round ratios" ref_MiB ours_MiB GFLOP ref_GFLOPs ours_GFLOPs
run() { # name, reference model, our kind, our preset, batch, extra flag
  local name=$1 reference=$2 kind=$3 preset=$4 batch=$5 flag=${6:-}
  local flops theirs="[" ours="[" round
  flops=$("$python" Scripts/benchmarks/transformers_reference.py --model "$reference" --image-size 512 --batch-size "$batch" \
    --threads 2 --flops-only $flag)
  for ((round = 1; round <= rounds; round++)); do
    theirs+=$("$python" Scripts/benchmarks/transformers_reference.py --model "$reference" --image-size 512 --batch-size "$batch" \
      --iterations "$iterations" --threads 2 $flag)
    .build/release/detr benchmark --model "$kind" --preset "$preset" --image-size 512 --batch-size "$batch" \
      --iterations "$iterations" --threads 2 $flag ${flag:+--freeze-backbone} --json "$scratch/ours.json" >/dev/null
    ours+=$(cat "$scratch/ours.json")
    if ((round < rounds)); then theirs+=","; ours+=","; fi
  done
  "$python" - "$name" "$theirs]" "$ours]" "$flops" <<'PY'
import json, statistics, sys
name, theirs, ours = sys.argv[1], json.loads(sys.argv[2]), json.loads(sys.argv[3])
gflop = json.loads(sys.argv[4])['flops'] / 1e9
reference_ms = statistics.median(run['latency_ms_p50'] for run in theirs)
ours_ms = statistics.median(run['latency_ms_p50'] for run in ours)
rounds = "/".join(f"{a['latency_ms_p50'] / b['latency_ms_p50']:.2f}" for a, b in zip(theirs, ours))
print(f"{name:34s} {reference_ms:12.0f} {ours_ms:12.0f} {reference_ms / ours_ms:8.2f} {rounds:17s} "
      f"{max(run['peak_rss_mib'] for run in theirs):10.0f} {max(run['peak_rss_mib'] for run in ours):10.0f} {gflop:8.1f} "
      f"{gflop / reference_ms * 1000:10.1f} {gflop / ours_ms * 1000:10.1f}")
PY
}
run "Deformable DETR inference b1" deformable-detr deformable-detr r50 1
run "Deformable DETR +refine inf. b1" deformable-detr-refine deformable-detr r50-box-refinement 1
run "DETR inference b1" detr detr r50 1
run "Deformable DETR train step b2" deformable-detr deformable-detr r50 2 --train
run "DETR train step b2" detr detr r50 2 --train
