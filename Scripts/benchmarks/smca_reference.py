"""Times the official single-scale SMCA-DETR R50 (gaopengcuhk/SMCA-DETR e4df3ab through
Scripts/reference/smca: type3 scales, 300 queries, 91 classes, random weights) at the settings of
`detr benchmark --model smca-detr --preset r50`: inference (with the official post-processing) or a
training step (forward, the loss terms of every layer, backward, gradient clipping, AdamW) with the
backbone frozen. Prints one JSON line: latency p50/p95 in ms, images/s, peak RSS in MiB; or, with
--flops-only, the FLOPs of one inference as torch's FlopCounterMode counts them (matrix products and
convolutions), in all and in the decoder.

    "$(Scripts/reference/smca/env.sh)" Scripts/benchmarks/smca_reference.py --image-size 512 [--train]
"""
import pathlib
import sys
import types

ROOT = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "Scripts/reference/detrex"))
sys.path.insert(0, str(ROOT / "Scripts/benchmarks"))
import tv_cpu_shim  # noqa: F401,E402  (must precede torchvision)

import torch  # noqa: E402
from step_timing import parse_benchmark_arguments, print_flops, print_timing, training_step  # noqa: E402

sys.path.insert(0, str(ROOT / ".venv-smca/src/SMCA-DETR"))
from models.backbone import build_backbone  # noqa: E402
from models.detr import DETR, PostProcess, SetCriterion  # noqa: E402
from models.matcher import build_matcher  # noqa: E402
from models.transformer import build_transformer  # noqa: E402

args = parse_benchmark_arguments()

options = types.SimpleNamespace(
    hidden_dim=256, nheads=8, enc_layers=6, dec_layers=6, dim_feedforward=2048, dropout=0.1, pre_norm=False, smooth=8.0,
    dynamic_scale="type3", backbone="resnet50", dilation=False, position_embedding="sine", lr_backbone=1e-5, masks=False,
    set_cost_class=2.0, set_cost_bbox=5.0, set_cost_giou=2.0)
model = DETR(build_backbone(options), build_transformer(options), num_classes=91, num_queries=300, aux_loss=True)
height, width = args.image_size, args.image_width or args.image_size
images = [torch.randn(3, height, width) for _ in range(args.batch_size)]
targets = [{"size": torch.tensor([height, width]), "labels": torch.tensor([1, 2]),
            "boxes": torch.tensor([[0.3, 0.3, 0.2, 0.2], [0.6, 0.6, 0.3, 0.4]])} for _ in range(args.batch_size)]
sizes = torch.tensor([[height, width]] * args.batch_size)

if args.train:
    model.train()
    for parameter in model.backbone.parameters():
        parameter.requires_grad_(False)
    weights = {"loss_ce": 2, "loss_bbox": 5, "loss_giou": 2}
    weights.update({f"{k}_{i}": v for i in range(5) for k, v in list(weights.items())})
    criterion = SetCriterion(91, matcher=build_matcher(options), weight_dict=weights, eos_coef=0.1, losses=["labels", "boxes"])

    def loss():
        losses = criterion(model([list(images), targets]), targets)
        return sum(losses[k] * w for k, w in weights.items())

    step = training_step(model.parameters(), loss, 1e-4)
else:
    model.eval()

    def step():
        with torch.inference_mode():
            PostProcess()(model([list(images), targets]), sizes)

if args.flops_only:
    print_flops(model, lambda: model([list(images), targets]), "decoder_flops", (".transformer.decoder",))
    raise SystemExit(0)
print_timing(step, args.iterations, args.batch_size)
