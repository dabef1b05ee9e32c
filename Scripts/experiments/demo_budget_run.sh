# Sourced by the experiment scripts: `demo_budget_run RUN_FOLDER MODEL SEED [extra detr train flags...]`
# trains MODEL's small preset from scratch with the demo's budget (the built-in shapes: 2,000 images of
# 160x160, medium and large objects, flips, 7 epochs, batch 4, learning rate 5e-4) into RUN_FOLDER,
# logging to RUN_FOLDER.log. A finished run is kept; an interrupted one is resumed.
# BUDGET_IMAGES and BUDGET_EPOCHS change the dataset size and the epochs (the learning rate still drops
# after 4/5 of the epochs, or 2/3 and 11/12 with two drops), BUDGET_LEARNING_RATE the rate.
demo_budget_run() {
  local run=$1 model=$2 seed=$3 images=${BUDGET_IMAGES:-2000} epochs=${BUDGET_EPOCHS:-7} rate=${BUDGET_LEARNING_RATE:-5e-4}
  shift 3
  if [ -f "$run/last/trainer.json" ] &&
    python3 -c 'import json,sys; sys.exit(json.load(open(sys.argv[1]))["epoch"] != int(sys.argv[2]))' "$run/last/trainer.json" "$epochs"; then
    return 0
  fi
  local resume=()
  [ -d "$run/last" ] && resume=(--resume)
  .build/release/detr train --model "$model" --preset small "$@" --synthetic-images "$images" --synthetic-size 160 \
    --synthetic-objects medium-large --augmentation flip --epochs "$epochs" --batch-size 4 --learning-rate "$rate" --seed "$seed" \
    --output "$run" --log-every 50 --checkpoint-every 200 "${resume[@]}" > "$run.log" 2>&1
}

# `evaluate_final RUN_FOLDER DATA_FOLDER [detr evaluate flags...]`: COCO evaluation of the run's last
# checkpoint on the built-in validation images into RUN_FOLDER/evaluation.json (once).
evaluate_final() {
  local run=$1 data=$2
  shift 2
  [ -f "$run/evaluation.json" ] && return 0
  .build/release/detr evaluate --weights "$run/last" --annotations "$data/annotations/val.json" --images "$data/images" \
    --image-scale 0.2 --json "$run/evaluation.json" "$@" > "$run/evaluation.log"
}

# `coco_ap RUN_FOLDER`: "AP | AP50 | AP75" of evaluate_final's result.
coco_ap() {
  python3 -c 'import json,sys; s=json.load(open(sys.argv[1]))["stats"]; print(" | ".join(f"{v:.3f}" for v in s[:3]))' "$1/evaluation.json"
}

# `median_speed RUN_FOLDER`: the median of the training images/s the run logged.
median_speed() {
  python3 -c 'import json,sys
rates=[json.loads(l)["images_per_second"] for l in open(sys.argv[1]) if "images_per_second" in l]
print(round(sorted(rates)[len(rates)//2], 1))' "$1/metrics.jsonl"
}

# `epoch_means RUN_FOLDER TERM`: a logged loss term's mean over each epoch, space-separated.
epoch_means() {
  python3 -c 'import json,sys
epochs={}
for line in open(sys.argv[1]):
    r=json.loads(line)
    if sys.argv[2] in r and "loss" in r: epochs.setdefault(r["epoch"], []).append(r[sys.argv[2]])
print(" ".join(f"{sum(v)/len(v):.3f}" for _, v in sorted(epochs.items())))' "$1/metrics.jsonl" "$2"
}
