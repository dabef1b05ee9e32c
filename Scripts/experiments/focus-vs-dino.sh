#!/usr/bin/env bash
# Focus-DETR's claim (Zheng et al., ICCV 2023): about DINO's accuracy for much less encoder
# compute. Checked in direction at small scale: DINO and Focus-DETR (small presets, the same
# decoder, recipe and steps: the demo's budget of 7 epochs on the built-in shapes) trained from
# scratch with each seed, AP and AP50 after every epoch, then the inference latency of both trained
# models on the validation size, and of the R50 4-scale presets at 512x512 and 800x1216 (random
# weights: the encoder's work does not depend on them). Writes runs/focus-vs-dino/results.md.
# Usage: Scripts/experiments/focus-vs-dino.sh [seeds...]   (default: 42 43)
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$root"
seeds=("$@")
[ ${#seeds[@]} -eq 0 ] && seeds=(42 43)
out=runs/focus-vs-dino
mkdir -p "$out"
swift build -c release --product detr >&2
for seed in "${seeds[@]}"; do
  for model in dino focus-detr; do
    run=$out/$model-seed$seed
    if [ -f "$run/last/trainer.json" ] &&
      python3 -c 'import json,sys; sys.exit(json.load(open(sys.argv[1]))["epoch"] != 7)' "$run/last/trainer.json"; then
      continue
    fi
    resume=()
    [ -d "$run/last" ] && resume=(--resume)
    .build/release/detr train --model "$model" --preset small --synthetic-images 2000 --synthetic-size 160 \
      --synthetic-objects medium-large --augmentation flip --epochs 7 --batch-size 4 --learning-rate 5e-4 --seed "$seed" \
      --output "$run" --log-every 50 --checkpoint-every 200 "${resume[@]}" > "$run.log" 2>&1
  done
done
bench() { # weights or preset args..., prints p50 ms
  .build/release/detr benchmark "$@" --iterations 20 --threads 2 --json "$out/bench.json" > /dev/null
  python3 -c 'import json,sys; print(round(json.load(open(sys.argv[1]))["latency_ms_p50"], 1))' "$out/bench.json"
}
{
  echo "# DINO vs Focus-DETR, small presets on the built-in shapes ($(date -u +%F), $(nproc) cores)"
  echo
  echo "| model | seed | AP50 after each epoch | final AP | final AP50 | inference ms (160x160, b1) |"
  echo "| --- | --- | --- | --- | --- | --- |"
  for seed in "${seeds[@]}"; do
    for model in dino focus-detr; do
      run=$out/$model-seed$seed
      curve=$(python3 -c 'import json,sys; print(" ".join(f"{json.loads(l)["ap50"]:.3f}" for l in open(sys.argv[1]) if "\"ap50\"" in l))' "$run/metrics.jsonl")
      final=$(python3 -c 'import json,sys; r=[json.loads(l) for l in open(sys.argv[1]) if "\"ap50\"" in l][-1]; print(f"{r["ap"]:.3f} | {r["ap50"]:.3f}")' "$run/metrics.jsonl")
      echo "| $model | $seed | $curve | $final | $(bench --weights "$run/last" --image-size 160) |"
    done
  done
  echo
  echo "| R50 4-scale, random weights, batch 1 | DINO ms | Focus-DETR ms | ratio |"
  echo "| --- | --- | --- | --- |"
  for size in 512 800; do
    d=$(bench --model dino --preset r50-4scale --image-size "$size")
    f=$(bench --model focus-detr --preset r50-4scale --image-size "$size")
    echo "| ${size}x${size} | $d | $f | $(python3 -c "print(round($d / $f, 2))") |"
  done
} | tee "$out/results.md"
