#!/usr/bin/env bash
# Our RetinaNet and DSA-RetinaNet against the references on this machine, in one run: torchvision 0.28's
# retinanet_resnet50_fpn against `--model retinanet --preset r50-torchvision`, and the authors' DSANet fork
# (mmdet 2.4; DSA on P4-P7 with the object-confidence output) against `--model dsa-retinanet --preset
# r50-confidence`; R50, random weights, batch 1, THREADS threads (default 2), at the size given (default 512x512).
# Compared: the network (backbone, pyramid with DSA, head), which both sides compute alike; neither
# reference's compiled NMS runs here (their plain Python stand-in would time Python), so our
# post-processing (anchors, decoding, the shim's NMS) is shown on its own. Each case alternates the
# two sides for a number of rounds; the table has the median of each side's p50, the ratio (reference /
# ours: above 1 means swift-detr is faster), each round's ratio, peak memory, and the reference's GFLOP
# (all, and the pyramid's, where DSA's attention is).
# Usage: Scripts/benchmarks/retinanet-vs-reference.sh [iterations] [rounds] [height] [width]
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$root"
iterations=${1:-5}
rounds=${2:-3}
height=${3:-512}
width=${4:-$height}
threads=${THREADS:-2}
python=$("$root/Scripts/reference/dsa/env.sh")
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
swift build -c release --product detr >&2
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), torch $("$python" -c 'import torch; print(torch.__version__)'), $threads threads, ${height}x${width}"
printf '%-26s %12s %12s %8s %-17s %10s %10s %8s %10s %14s\n' case reference_ms ours_ms ratio "round ratios" ref_MiB ours_MiB GFLOP neck_GFLOP ours_post_ms
run() { # name, reference model, our model, our preset
  local name=$1 reference=$2 model=$3 preset=$4 theirs="[" ours="[" post="" round
  local flops
  flops=$("$python" Scripts/benchmarks/retinanet_reference.py --model "$reference" --image-size "$height" --image-width "$width" \
    --flops-only 2>/dev/null)
  for ((round = 1; round <= rounds; round++)); do
    theirs+=$("$python" Scripts/benchmarks/retinanet_reference.py --model "$reference" --image-size "$height" --image-width "$width" \
      --iterations "$iterations" --threads "$threads" 2>/dev/null)
    .build/release/detr benchmark --model "$model" --preset "$preset" --image-size "$height" --image-width "$width" \
      --iterations "$iterations" --threads "$threads" --json "$scratch/ours.json" >/dev/null
    # Our network time: the backbone-and-neck and head stages.
    ours+=$(python3 -c 'import json,sys
run=json.load(open(sys.argv[1])); phases=run["phases_ms_p50"]
run["latency_ms_p50"]=phases["backbone and neck"]+phases["head"]; print(json.dumps(run))' "$scratch/ours.json")
    post+=$(python3 -c 'import json,sys; print(round(json.load(open(sys.argv[1]))["phases_ms_p50"]["post-processing"], 1))' "$scratch/ours.json")" "
    if ((round < rounds)); then theirs+=","; ours+=","; fi
  done
  printf '%s %14s\n' "$(python3 Scripts/benchmarks/compare_runs.py "$name" "$theirs]" "$ours]" "$flops" neck_flops)" "$post"
}
run "RetinaNet network b1" retinanet retinanet r50-torchvision
run "DSA-RetinaNet network b1" dsa-retinanet dsa-retinanet r50-confidence
