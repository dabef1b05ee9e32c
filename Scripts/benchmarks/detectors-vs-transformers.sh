#!/usr/bin/env bash
# Our detectors against transformers' on the same machine, configuration, image size, batch and
# threads, in one run: inference (batch 1) and a training step (batch 2) at 512x512, ResNet-50, random
# weights. Prints both latencies (p50), the ratio (reference / ours: above 1 means we are faster) and
# peak memory. transformers freezes its whole ResNet when it is not a timm backbone, so our training
# step freezes the backbone too (--freeze-backbone): the same work on both sides. The model FLOPs of
# an iteration (torch's FlopCounterMode on the reference, the same architecture as ours) divided by
# each latency gives the rate each side reaches, against this CPU's best (machine_peak.py).
# Usage: Scripts/benchmarks/detectors-vs-transformers.sh [iterations]
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$root"
iterations=${1:-5}
python=$("$root/Scripts/reference-env.sh")
swift build -c release --product detr >&2
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), torch $("$python" -c 'import torch; print(torch.__version__)'), 2 threads, 512x512"
echo "this CPU at best: $("$python" Scripts/benchmarks/machine_peak.py --threads 2)"
printf '%-34s %12s %12s %8s %12s %12s %8s %10s %10s\n' case reference_ms ours_ms ratio ref_MiB ours_MiB GFLOP ref_GFLOPs ours_GFLOPs
run() { # name, reference model, our preset, batch, extra flag
  local name=$1 reference=$2 kind=$3 preset=$4 batch=$5 flag=${6:-}
  local ours theirs flops
  flops=$("$python" Scripts/benchmarks/transformers_reference.py --model "$reference" --image-size 512 --batch-size "$batch" \
    --threads 2 --flops-only $flag)
  theirs=$("$python" Scripts/benchmarks/transformers_reference.py --model "$reference" --image-size 512 --batch-size "$batch" \
    --iterations "$iterations" --threads 2 $flag)
  .build/release/detr benchmark --model "$kind" --preset "$preset" --image-size 512 --batch-size "$batch" --iterations "$iterations" \
    --threads 2 $flag ${flag:+--freeze-backbone} --json /tmp/swift-detr-bench.json >/dev/null
  ours=$(cat /tmp/swift-detr-bench.json)
  "$python" - "$name" "$theirs" "$ours" "$flops" <<'PY'
import json, sys
name, theirs, ours = sys.argv[1], json.loads(sys.argv[2]), json.loads(sys.argv[3])
gflop = json.loads(sys.argv[4])['flops'] / 1e9
print(f"{name:34s} {theirs['latency_ms_p50']:12.0f} {ours['latency_ms_p50']:12.0f} {theirs['latency_ms_p50'] / ours['latency_ms_p50']:8.2f} "
      f"{theirs['peak_rss_mib']:12.0f} {ours['peak_rss_mib']:12.0f} {gflop:8.1f} {gflop / theirs['latency_ms_p50'] * 1000:10.1f} "
      f"{gflop / ours['latency_ms_p50'] * 1000:10.1f}")
PY
}
run "Deformable DETR inference b1" deformable-detr deformable-detr r50 1
run "Deformable DETR +refine inf. b1" deformable-detr-refine deformable-detr r50-box-refinement 1
run "DETR inference b1" detr detr r50 1
run "Deformable DETR train step b2" deformable-detr deformable-detr r50 2 --train
run "DETR train step b2" detr detr r50 2 --train
