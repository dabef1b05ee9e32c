"""Times transformers' Deformable DETR / DETR (random weights, ResNet-50 from transformers, no timm) at
the same settings as `detr benchmark`: inference (batch given) or a training step (forward, loss,
backward, AdamW). Prints one JSON line: latency p50/p95 in ms, images/s, peak RSS in MiB, and the
model FLOPs of one iteration as torch's FlopCounterMode counts them (matrix products and
convolutions; the deformable sampling itself is not counted), measured outside the timed iterations.

    python transformers_reference.py --model deformable-detr|deformable-detr-refine|detr --image-size 512 --batch-size 1 [--train]
        [--image-width W] [--device cuda] [--precision bf16]

On a GPU (--device cuda) TF32 stays at torch's defaults, as in `detr benchmark`, and bf16 is autocast as ours.
"""
import argparse
import json

import torch
from step_timing import print_timing
from transformers import (DeformableDetrConfig, DeformableDetrForObjectDetection, DetrConfig, DetrForObjectDetection,
                          ResNetConfig)

parser = argparse.ArgumentParser()
parser.add_argument("--model", required=True, choices=["deformable-detr", "deformable-detr-refine", "detr"])
parser.add_argument("--image-size", type=int, default=512)
parser.add_argument("--image-width", type=int)
parser.add_argument("--device", default="cpu")
parser.add_argument("--precision", choices=["fp32", "bf16"], default="fp32")
parser.add_argument("--batch-size", type=int, default=1)
parser.add_argument("--iterations", type=int, default=5)
parser.add_argument("--threads", type=int, default=2)
parser.add_argument("--train", action="store_true")
parser.add_argument("--flops-only", action="store_true", help="only count the FLOPs of one iteration (a separate run, so the "
                    "counting pass does not raise the timed run's peak memory)")
args = parser.parse_args()
torch.set_num_threads(args.threads)
torch.manual_seed(0)

if args.model == "detr":
    config = DetrConfig(use_timm_backbone=False, backbone_config=ResNetConfig(out_features=["stage4"]), num_labels=91)
    model = DetrForObjectDetection(config)
else:
    config = DeformableDetrConfig(use_timm_backbone=False, backbone_config=ResNetConfig(out_features=["stage2", "stage3", "stage4"]),
                                  num_labels=91, with_box_refine=args.model.endswith("refine"))
    model = DeformableDetrForObjectDetection(config)

device = torch.device(args.device)
width = args.image_width or args.image_size
model.to(device)
pixels = torch.randn(args.batch_size, 3, args.image_size, width).to(device)
mask = torch.ones(args.batch_size, args.image_size, width, dtype=torch.long, device=device)
labels = [{"class_labels": torch.tensor([0, 1], device=device),
           "boxes": torch.tensor([[0.3, 0.3, 0.2, 0.2], [0.6, 0.6, 0.3, 0.4]], device=device)}
          for _ in range(args.batch_size)]
autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=args.precision == "bf16")

if args.train:
    model.train()
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-5, weight_decay=1e-4)

    def step():
        with autocast:
            loss = model(pixel_values=pixels, pixel_mask=mask, labels=labels).loss
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 0.1)
        optimizer.step()
else:
    model.eval()

    def step():
        with torch.inference_mode(), autocast:
            model(pixel_values=pixels, pixel_mask=mask).logits.sum().item()

from torch.utils.flop_counter import FlopCounterMode

# Counted with autograd on (FlopCounterMode's module tracker fails under inference_mode); an
# inference forward does the same products either way.
if args.flops_only:
    with FlopCounterMode(display=False) as counter:
        if args.train:
            step()
        else:
            model(pixel_values=pixels, pixel_mask=mask)
    print(json.dumps({"flops": counter.get_total_flops()}))
    raise SystemExit(0)
print_timing(step, args.iterations, args.batch_size, torch.cuda.synchronize if device.type == "cuda" else lambda: None)
