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
