#!/usr/bin/env bash
# Focus-DETR's claim (Zheng et al., ICCV 2023): about DINO's accuracy for much less encoder
# compute. Checked in direction at small scale: DINO and Focus-DETR (small presets, the same
# decoder, recipe and steps: the demo's budget of 7 epochs on the built-in shapes) trained from
# scratch with each seed, AP and AP50 after every epoch, then the inference latency of both trained
# models on the validation size (with the encoder's share), and of the R50 4-scale presets at 512x512
# and 800x1333 (random weights: the encoder's work does not depend on them) with the official models'
# FLOPs (Scripts/reference/detrex). Writes runs/focus-vs-dino/results.md.
# Usage: Scripts/experiments/focus-vs-dino.sh [seeds...]   (default: 42 43)
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$root"
source Scripts/experiments/demo_budget_run.sh
seeds=("$@")
[ ${#seeds[@]} -eq 0 ] && seeds=(42 43)
out=runs/focus-vs-dino
mkdir -p "$out"
swift build -c release --product detr >&2
for seed in "${seeds[@]}"; do
  for model in dino focus-detr; do
    run=$out/$model-seed$seed
    demo_budget_run "$run" "$model" "$seed"
  done
done
# p50 of a `detr benchmark` run (arguments as given) and of its encoder phases, "total encoder".
bench() {
  .build/release/detr benchmark "$@" --threads 2 --json "$out/bench.json" > /dev/null
  python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); p=r["phases_ms_p50"]
print(round(r["latency_ms_p50"], 1), round(p.get("encoder", 0) + p.get("foreground scoring", 0), 1))' "$out/bench.json"
}
gflops() { # family, height, width: "total encoder" GFLOP of the official model
  PYTHONPATH=Scripts/reference/detrex "$("$root/Scripts/reference/detrex/env.sh")" Scripts/benchmarks/detrex_reference.py \
    --arch "${1//-/_}" --image-size "$2" --image-width "$3" --flops-only 2>/dev/null |
    python3 -c 'import json,sys; r=json.load(sys.stdin); print(round(r["flops"] / 1e9, 1), round(r["encoder_flops"] / 1e9, 1))'
}
{
  echo "# DINO vs Focus-DETR ($(date -u +%F), $(nproc) cores, 2 threads)"
  echo
  echo "Small presets on the built-in shapes, 7 epochs (the demo's budget), inference on 160x160 (median of 20):"
  echo
  echo "| model | seed | AP50 after each epoch | final AP | final AP50 | inference ms | encoder ms |"
  echo "| --- | --- | --- | --- | --- | --- | --- |"
  for seed in "${seeds[@]}"; do
    for model in dino focus-detr; do
      run=$out/$model-seed$seed
      results=$(python3 Scripts/experiments/run_summary.py "$run/metrics.jsonl")
      read -r total encoder < <(bench --weights "$run/last" --image-size 160 --iterations 20)
      echo "| $model | $seed | $results | $total | $encoder |"
    done
  done
  echo
  echo "R50 4-scale presets, random weights, batch 1 (median of 5; encoder = Focus-DETR's foreground scoring + sparse encoder):"
  echo
  echo "| size (h x w) | DINO ms | Focus-DETR ms | speed-up | DINO encoder ms | Focus-DETR encoder ms | encoder ratio | GFLOP DINO (encoder) | GFLOP Focus-DETR (encoder) |"
  echo "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"
  for size in "512 512" "800 1333"; do
    read -r height width <<< "$size"
    read -r dino_total dino_encoder < <(bench --model dino --preset r50-4scale --image-size "$height" --image-width "$width" --iterations 5)
    read -r focus_total focus_encoder < <(bench --model focus-detr --preset r50-4scale --image-size "$height" --image-width "$width" --iterations 5)
    read -r dino_flops dino_encoder_flops < <(gflops dino "$height" "$width")
    read -r focus_flops focus_encoder_flops < <(gflops focus-detr "$height" "$width")
    echo "| ${height}x${width} | $dino_total | $focus_total | $(python3 -c "print(round($dino_total / $focus_total, 2))") |" \
      "$dino_encoder | $focus_encoder | $(python3 -c "print(round($focus_encoder / $dino_encoder, 2))") |" \
      "$dino_flops ($dino_encoder_flops) | $focus_flops ($focus_encoder_flops) |"
  done
} | tee "$out/results.md"
