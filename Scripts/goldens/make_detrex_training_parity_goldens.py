"""Training parity over many steps with detrex (IDEA-Research/detrex e244e6c, detectron2 70f4543):
DINO and Focus-DETR trained for 60 steps from the weights of Tests/DetectorsTests/Fixtures/<arch>_detrex
(make_detrex_goldens.py's small models) on fixed batches with detrex's own recipe, for
Tests/TrainingTests/Fixtures/training_parity/<arch>/.

The recipe is the project's `dino_r50_4scale_12ep.py` (Focus-DETR's `focus_detr_r50_4scale_12ep.py`, the
same optimizer settings) as detrex's train_net.py runs it: the optimizer the config instantiates (AdamW, lr 1e-4, weight decay
1e-4 except on normalization layers, the backbone at 0.1×), the model's own weighted loss sum, and
`clip_grad_norm_` 0.1 over all parameters. The only randomness of a training forward pass is the
denoising noise: each step's noised labels and boxes are recorded, and the Swift test injects them.
Dropout 0, no augmentation. Batches: 6 of two images of raw pixels (uint8, as detrex takes them),
sizes up to 128×160, 1–3 boxes each, cycled in order. Losses are recorded unweighted.

Run: PYTHONPATH=Scripts/reference/detrex "$(Scripts/reference/detrex/env.sh)" Scripts/goldens/make_detrex_training_parity_goldens.py
"""
import copy
import json
import pathlib
import sys
import types

import detrex_cpu  # noqa: F401  (must come first)

import torch
from detectron2.config import LazyConfig, instantiate
from detectron2.structures import Boxes, Instances
from safetensors.torch import load_file, save_file

ROOT = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "Scripts/goldens"))
import make_detrex_goldens as small  # noqa: E402

OUT = ROOT / "Tests/TrainingTests/Fixtures/training_parity"
STEPS, BATCHES = 60, 6
SIZES = [[(128, 160), (96, 128)], [(128, 128), (128, 160)], [(112, 160), (128, 144)]]


def batches():
    generator = torch.Generator().manual_seed(21)
    made = []
    for index in range(BATCHES):
        batch = []
        for h, w in SIZES[index % len(SIZES)]:
            count = int(torch.randint(1, 4, (1,), generator=generator))
            x0, y0 = torch.rand(count, generator=generator) * w * 0.6, torch.rand(count, generator=generator) * h * 0.6
            bw, bh = 8 + torch.rand(count, generator=generator) * (w * 0.4 - 8), 8 + torch.rand(count, generator=generator) * (h * 0.4 - 8)
            instances = Instances((h, w))
            instances.gt_boxes = Boxes(torch.stack([x0, y0, x0 + bw, y0 + bh], 1))
            instances.gt_classes = torch.randint(0, 5, (count,), generator=generator)
            batch.append({"image": torch.randint(0, 256, (3, h, w), generator=generator).float(), "height": h, "width": w,
                          "instances": instances})
        made.append(batch)
    return made


def train(model, recipe, data, threads, model_class):
    torch.set_num_threads(threads)
    model = copy.deepcopy(model)
    model.train()
    recipe.optimizer.params.model = model
    optimizer = instantiate(recipe.optimizer)
    weights = model.criterion.weight_dict
    history, noise = [], []
    for step in range(STEPS):
        torch.manual_seed(1000 + step)
        with small.Capture([model_class.prepare_for_cdn]) as capture:
            losses = model(copy.deepcopy(data[step % len(data)]))
        denoising = capture.last(model_class.prepare_for_cdn)
        noise.append((denoising["known_labels_expaned"], denoising["known_bbox_expand"]))
        total = sum(losses.values())
        history.append({**{k: float(v / weights[k]) for k, v in losses.items()}, "total": float(total)})
        optimizer.zero_grad()
        total.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm=0.1, norm_type=2)
        optimizer.step()
    return history, noise


def main(arch):
    if arch == "dino":
        from projects.dino.modeling import DINO as model_class
    else:
        from projects.focus_detr.modeling import FOCUS_DETR as model_class
    model = small.build(arch)
    fixture = ROOT / f"Tests/DetectorsTests/Fixtures/{arch}_detrex/model.safetensors"
    state = {k: v.float() / 64 for k, v in load_file(str(fixture)).items()}
    missing, unexpected = model.load_state_dict(state, strict=False)
    assert not unexpected and all(k.startswith(small.ALIASES) for k in missing), (missing, unexpected)
    # The projects' 12-epoch configs (dino_r50_4scale_12ep.py, focus_detr_r50_4scale_12ep.py) set these on
    # configs/common/optim.py's AdamW; their `get_config` needs an installed detrex, so they are applied here.
    recipe = types.SimpleNamespace(optimizer=LazyConfig.load(str(pathlib.Path(detrex_cpu.SRC) / "detrex/configs/common/optim.py")).AdamW)
    recipe.optimizer.lr = 1e-4
    recipe.optimizer.betas = (0.9, 0.999)
    recipe.optimizer.weight_decay = 1e-4
    recipe.optimizer.params.lr_factor_func = lambda module_name: 0.1 if "backbone" in module_name else 1
    data = batches()
    one, noise = train(model, recipe, data, 1, model_class)
    two, _ = train(model, recipe, data, 2, model_class)
    folder = OUT / arch
    folder.mkdir(parents=True, exist_ok=True)
    stored = {}
    for index, batch in enumerate(data):
        images = torch.zeros(2, 3, max(b["height"] for b in batch), max(b["width"] for b in batch), dtype=torch.uint8)
        for image, item in enumerate(batch):
            images[image, :, :item["height"], :item["width"]] = item["image"].to(torch.uint8)
            stored[f"batch{index}.size{image}"] = torch.tensor([item["height"], item["width"]])
            h, w = item["height"], item["width"]
            boxes = item["instances"].gt_boxes.tensor
            # detrex's targets: cx, cy, w, h normalized by the image's size.
            scale = torch.tensor([w, h, w, h], dtype=torch.float32)
            corners = boxes / scale
            stored[f"batch{index}.targets{image}.boxes"] = torch.stack(
                [(corners[:, 0] + corners[:, 2]) / 2, (corners[:, 1] + corners[:, 3]) / 2, corners[:, 2] - corners[:, 0], corners[:, 3] - corners[:, 1]], 1)
            stored[f"batch{index}.targets{image}.labels"] = item["instances"].gt_classes
        stored[f"batch{index}.pixels"] = images
    for step, (labels, boxes) in enumerate(noise):
        stored[f"step{step}.noised_labels"], stored[f"step{step}.noised_boxes"] = labels, boxes
    save_file({k: v.contiguous() for k, v in stored.items()}, str(folder / "batches.safetensors"))
    meta = {"script": "Scripts/goldens/make_detrex_training_parity_goldens.py", "reference": "IDEA-Research/detrex e244e6c",
            "torch": torch.__version__, "steps": STEPS, "batches": BATCHES, "one_thread": one, "two_threads": two}
    (folder / "losses.json").write_text(json.dumps(meta, indent=0) + "\n")
    spread = max(abs(a["total"] - b["total"]) for a, b in zip(one, two))
    print(f"{arch}: total {one[0]['total']:.4f} → {one[-1]['total']:.4f}, 1 vs 2 threads at most {spread:.2e}")


if __name__ == "__main__":
    for name in sys.argv[1:] or ["dino", "focus_detr"]:
        main(name)
