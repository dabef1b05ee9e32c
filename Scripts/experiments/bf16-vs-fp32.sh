#!/usr/bin/env bash
# Mixed precision against float32 on the built-in data: Deformable DETR's small preset trained from
# scratch with the demo's recipe in fp32 and in bf16 (bfloat16 autocast) for the same seeds, then each
# run's last checkpoint evaluated in its own precision. Prints AP50 after each epoch and the final AP,
# AP50 per run, and the wall time. The fp32 seeds' spread says what difference is noise.
#
# On a CPU without bfloat16 instructions bf16 is about 20x slower, so the default budget is small
# (BUDGET_IMAGES=600, BUDGET_EPOCHS=5); on a GPU use the demo's (2000, 7) and --device via DETR_FLAGS.
# Usage: Scripts/experiments/bf16-vs-fp32.sh [seeds...]   (default 42 43; BF16_SEEDS to limit bf16's)
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$root"
source Scripts/experiments/demo_budget_run.sh
export BUDGET_IMAGES=${BUDGET_IMAGES:-600} BUDGET_EPOCHS=${BUDGET_EPOCHS:-5}
seeds=("$@")
[[ ${#seeds[@]} -eq 0 ]] && seeds=(42 43)
read -r -a bf16_seeds <<<"${BF16_SEEDS:-${seeds[*]}}"
read -r -a extra <<<"${DETR_FLAGS:-}"
swift build -c release --product detr >&2
out=runs/bf16-vs-fp32
mkdir -p "$out"
data=$HOME/.cache/swift-detr/shapes-v2-$BUDGET_IMAGES-160-medium-large-0
echo "Deformable DETR small, ${BUDGET_IMAGES} images, ${BUDGET_EPOCHS} epochs, $(nproc) cores"
echo "| run | AP50 per epoch | AP | AP50 | seconds |"
echo "| --- | --- | --- | --- | --- |"
for precision in fp32 bf16; do
  list=("${seeds[@]}")
  [[ $precision == bf16 ]] && list=("${bf16_seeds[@]}")
  for seed in "${list[@]}"; do
    run=$out/$precision-seed$seed
    start=$SECONDS
    demo_budget_run "$run" deformable-detr "$seed" --precision "$precision" "${extra[@]}"
    evaluate_final "$run" "$data" --precision "$precision" "${extra[@]}"
    echo "| $precision seed $seed | $(python3 Scripts/experiments/run_summary.py "$run/metrics.jsonl" | cut -d'|' -f1)| $(coco_ap "$run" | cut -d'|' -f1-2) | $((SECONDS - start)) |"
  done
done
