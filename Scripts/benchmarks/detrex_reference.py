"""Times the official DINO (detrex) or Focus-DETR R50 4-scale (random weights, 80 classes, 900 queries,
run on the CPU through Scripts/reference/detrex, where the deformable attention is the PyTorch
grid_sample version) at the same settings as `detr benchmark --model dino|focus-detr --preset
r50-4scale`: inference (with the official post-processing) or a training step (forward with
denoising, all loss terms, backward, gradient clipping, AdamW) with the backbone frozen. Prints one
JSON line: latency p50/p95 in ms, images/s, peak RSS in MiB; or, with --flops-only, the model FLOPs
of one inference as torch's FlopCounterMode counts them (matrix products and convolutions; the
deformable sampling itself is not counted), in all and in the encoder (with Focus-DETR's foreground
scorer).

    PYTHONPATH=Scripts/reference/detrex "$(Scripts/reference/detrex/env.sh)" Scripts/benchmarks/detrex_reference.py --arch dino --image-size 512 [--train]
"""
import argparse
import pathlib

import detrex_cpu  # noqa: F401  (must come first)

import torch
from detectron2.config import LazyConfig, instantiate
from detectron2.structures import Boxes, Instances
from step_timing import parse_benchmark_arguments, print_flops, print_timing, training_step

parser = argparse.ArgumentParser()
parser.add_argument("--arch", choices=["dino", "focus_detr"], default="dino")
args = parse_benchmark_arguments(parser)

cfg = LazyConfig.load(str(pathlib.Path(detrex_cpu.SRC) / f"detrex/projects/{args.arch}/configs/models/{args.arch}_r50.py"))
cfg.model.device = "cpu"
model = instantiate(cfg.model)
height, width = args.image_size, args.image_width or args.image_size
batch = []
for _ in range(args.batch_size):
    item = {"image": torch.rand(3, height, width) * 255, "height": height, "width": width}
    instances = Instances((height, width))
    instances.gt_boxes = Boxes(torch.tensor([[0.2, 0.2, 0.4, 0.4], [0.45, 0.4, 0.75, 0.8]]) * torch.tensor([width, height] * 2))
    instances.gt_classes = torch.tensor([0, 1])
    item["instances"] = instances
    batch.append(item)

if args.train:
    model.train()
    for parameter in model.backbone.parameters():
        parameter.requires_grad_(False)
    step = training_step(model.parameters(), lambda: sum(model(batch).values()), 1e-5)
else:
    model.eval()

    def step():
        with torch.inference_mode():
            model(batch)

if args.flops_only:
    print_flops(model, lambda: model(batch), "encoder_flops", (".transformer.encoder", ".transformer.enc_mask_predictor"))
    raise SystemExit(0)
print_timing(step, args.iterations, args.batch_size)
