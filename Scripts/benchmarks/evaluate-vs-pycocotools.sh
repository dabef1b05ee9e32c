#!/usr/bin/env bash
# `detr evaluate` against pycocotools on the same random 5,000-image problem, in one run.
# Both read the same two files and print the same 12 numbers; the table shows both times and the ratio.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$root"
images=${1:-5000}
python=$("$root/Scripts/reference-env.sh")
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$python" - "$work" "$images" <<'PY'
import json, sys
sys.path.insert(0, "Scripts/goldens")
from make_cocoeval_goldens import problem
gt, dt = problem(7, int(sys.argv[2]), 80, many=True)
json.dump(gt, open(f"{sys.argv[1]}/gt.json", "w"))
json.dump(dt, open(f"{sys.argv[1]}/dt.json", "w"))
print(f"problem: {len(gt['images'])} images, {len(gt['annotations'])} ground-truth boxes, {len(dt)} detections, 80 categories", file=sys.stderr)
PY
swift build -c release --product detr >&2
reference=$("$python" Scripts/benchmarks/evaluate_pycocotools.py "$work/gt.json" "$work/dt.json")
start=$(date +%s%N)
.build/release/detr evaluate --annotations "$work/gt.json" --detections "$work/dt.json" --json "$work/ours.json" >/dev/null
ours_seconds=$(( ($(date +%s%N) - start) / 1000000 ))e-3
"$python" - "$reference" "$work/ours.json" "$ours_seconds" <<'PY'
import json, sys
reference = json.loads(sys.argv[1])
ours = json.load(open(sys.argv[2]))
seconds = float(sys.argv[3])
worst = max(abs(a - b) for a, b in zip(reference["stats"], ours["stats"]))
print(f"{'':14}{'seconds':>10}")
print(f"{'pycocotools':14}{reference['seconds']:10.2f}")
print(f"{'detr evaluate':14}{seconds:10.2f}")
print(f"speed-up: {reference['seconds'] / seconds:.1f}x; largest difference in the 12 stats: {worst:.2e}")
PY
