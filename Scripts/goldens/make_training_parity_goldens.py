"""Training parity over many steps: the official DETR, Conditional DETR, Deformable DETR and SMCA-DETR code trained
for 60 steps from fixed weights on fixed batches with each repository's own recipe, for
Tests/TrainingTests/Fixtures/training_parity/. The Swift test trains swift-detr's model from the same
weights on the same batches in the same order with its reference recipe and compares every loss term
after every step (unweighted, and the weighted total), within the reference's own spread between 1 and 2 threads (recorded here too).

The recipe is each repository's main.py and engine.py, as they are: AdamW over the parameter groups
main.py makes (backbone at lr_backbone; Deformable DETR: the sampling offsets and reference points at
a tenth of the rate), weight decay 1e-4 on every parameter, clip_grad_norm_ 0.1 over all parameters,
the loss the sum of the criterion's terms times its weight_dict (auxiliary layers and, for two-stage
Deformable DETR, the encoder proposals included), normalized by the batch's boxes. No augmentation,
dropout 0; the learning rate is constant within these steps (StepLR drops per epoch).

The models: the small architecture of make_official_pth_fixtures.py (ResNet of BasicBlocks 8/16/32/64
with frozen batch norm; transformer 32 wide, 4 heads, 1 encoder and 2 decoder layers, feed-forward 64;
5 classes, 20 queries; Deformable DETR with 4 levels, 2 points, box refinement and two stages), each at
its fresh official initialization (seed 0); SMCA-DETR: make_smca_goldens.py's single-scale model (width 256,
type3 scales) from the weights of Tests/DetectorsTests/Fixtures/smca_official, its SetCriterion (labels and boxes). Batches: 8 of two images (96×128 and a smaller one,
padded), 1–3 boxes each, cycled in order; pixels stored in float16 and used as float32 by both sides.

Run: "$(Scripts/reference/official/env.sh)" Scripts/goldens/make_training_parity_goldens.py
"""
import copy
import json
import pathlib
import sys
import types

ROOT = pathlib.Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT / "Scripts/goldens"), str(ROOT / "Scripts/reference/detrex")]
import make_official_pth_fixtures as small  # noqa: E402  (tv_cpu_shim, the tiny backbone, the repositories)

import torch  # noqa: E402
from safetensors.torch import save_file  # noqa: E402

OUT = ROOT / "Tests/TrainingTests/Fixtures/training_parity"
STEPS, BATCHES = 60, 8
SIZES = [[(96, 128), (80, 112)], [(96, 128), (96, 96)], [(80, 128), (96, 112)], [(96, 128), (64, 128)]]


def batches():
    """The fixed batches: (images [2, 3, h, w] float16-valued, mask [2, h, w], targets) each."""
    generator = torch.Generator().manual_seed(11)
    made = []
    for index in range(BATCHES):
        sizes = SIZES[index % len(SIZES)]
        height, width = max(h for h, _ in sizes), max(w for _, w in sizes)
        images = torch.zeros(2, 3, height, width)
        mask = torch.ones(2, height, width, dtype=torch.bool)
        targets = []
        for image, (h, w) in enumerate(sizes):
            images[image, :, :h, :w] = torch.randn(3, h, w, generator=generator).half().float()
            mask[image, :h, :w] = False
            count = int(torch.randint(1, 4, (1,), generator=generator))
            centres = torch.rand(count, 2, generator=generator) * 0.6 + 0.2
            sides = torch.rand(count, 2, generator=generator) * 0.3 + 0.1
            targets.append({"labels": torch.randint(0, small.CLASSES, (count,), generator=generator),
                            "boxes": torch.cat([centres, sides], dim=1)})
        made.append((images, mask, sizes, targets))
    return made


def nested(images, mask):
    from util.misc import NestedTensor
    return NestedTensor(images, mask)


def train(model, criterion, parameter_groups, data, threads, max_norm=0.1, forward=None):
    torch.set_num_threads(threads)
    model = copy.deepcopy(model)
    model.train()
    criterion.train()
    optimizer = torch.optim.AdamW(parameter_groups(model), lr=parameter_groups.lr, weight_decay=1e-4)
    history = []
    for step in range(STEPS):
        images, mask, _, targets = data[step % len(data)]
        outputs = forward(model, images, mask, data[step % len(data)][2], targets) if forward else model(nested(images, mask))
        terms = criterion(outputs, copy.deepcopy(targets))
        weights = criterion.weight_dict
        total = sum(terms[k] * weights[k] for k in terms if k in weights)
        history.append({**{k: float(terms[k]) for k in terms if k in weights}, "total": float(total)})
        optimizer.zero_grad()
        total.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm)
        optimizer.step()
    return history


class Groups:
    """main.py's parameter groups: `backbone` names at lr_backbone, `linear_proj` names at lr × 0.1."""

    def __init__(self, lr, lr_backbone, backbone_names=("backbone",), linear_proj_names=()):
        self.lr, self.lr_backbone = lr, lr_backbone
        self.backbone_names, self.linear_proj_names = backbone_names, linear_proj_names

    def __call__(self, model):
        def matches(name, keys):
            return any(key in name for key in keys)
        named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
        groups = [{"params": [p for n, p in named if not matches(n, self.backbone_names) and not matches(n, self.linear_proj_names)],
                   "lr": self.lr},
                  {"params": [p for n, p in named if matches(n, self.backbone_names)], "lr": self.lr_backbone}]
        if self.linear_proj_names:
            groups.append({"params": [p for n, p in named if matches(n, self.linear_proj_names)], "lr": self.lr * 0.1})
        return groups


def frozen_stem(backbone_base):
    """The official backbones train layer2–4 only (BackboneBase with train_backbone)."""
    for name, parameter in backbone_base.body.named_parameters():
        if "layer2" not in name and "layer3" not in name and "layer4" not in name:
            parameter.requires_grad_(False)


def detr():
    small.use_repository("detr")
    from models.backbone import BackboneBase, FrozenBatchNorm2d, Joiner
    from models.detr import DETR, SetCriterion
    from models.matcher import HungarianMatcher
    from models.position_encoding import PositionEmbeddingSine
    from models.transformer import build_transformer
    torch.manual_seed(0)
    args = small.arguments()
    base = BackboneBase(small.tiny_resnet(FrozenBatchNorm2d), True, 64, False)
    backbone = Joiner(base, PositionEmbeddingSine(small.HIDDEN // 2, normalize=True))
    backbone.num_channels = 64
    model = DETR(backbone, build_transformer(args), num_classes=small.CLASSES, num_queries=small.QUERIES, aux_loss=True)
    weights = {"loss_ce": 1, "loss_bbox": 5, "loss_giou": 2}
    weights.update({f"{k}_{i}": v for i in range(args.dec_layers - 1) for k, v in list(weights.items())})
    criterion = SetCriterion(small.CLASSES, HungarianMatcher(1, 5, 2), weights, eos_coef=0.1, losses=["labels", "boxes", "cardinality"])
    return model, criterion, Groups(1e-4, 1e-5), "facebookresearch/detr 29901c5"


def conditional_detr():
    small.use_repository("ConditionalDETR")
    from models.backbone import BackboneBase, FrozenBatchNorm2d, Joiner
    from models.conditional_detr import ConditionalDETR, SetCriterion
    from models.matcher import HungarianMatcher
    from models.position_encoding import PositionEmbeddingSine
    import models.transformer
    from models.transformer import build_transformer
    models.transformer.SINE_FEATURES_PER_AXIS = small.HIDDEN // 2
    torch.manual_seed(0)
    args = small.arguments()
    base = BackboneBase(small.tiny_resnet(FrozenBatchNorm2d), True, 64, False)
    backbone = Joiner(base, PositionEmbeddingSine(small.HIDDEN // 2, normalize=True))
    backbone.num_channels = 64
    model = ConditionalDETR(backbone, build_transformer(args), num_classes=small.CLASSES, num_queries=small.QUERIES, aux_loss=True)
    weights = {"loss_ce": 2, "loss_bbox": 5, "loss_giou": 2}
    weights.update({f"{k}_{i}": v for i in range(args.dec_layers - 1) for k, v in list(weights.items())})
    criterion = SetCriterion(small.CLASSES, HungarianMatcher(2, 5, 2), weights, focal_alpha=0.25, losses=["labels", "boxes", "cardinality"])
    return model, criterion, Groups(1e-4, 1e-5), "Atten4Vis/ConditionalDETR 8ea7c3f"


def deformable_detr():
    small.use_repository("Deformable-DETR")
    sys.modules["MultiScaleDeformableAttention"] = types.ModuleType("MultiScaleDeformableAttention")
    from models.ops.functions.ms_deform_attn_func import ms_deform_attn_core_pytorch
    import models.ops.modules.ms_deform_attn as attention_module

    class PurePyTorch:  # the repository's own reference implementation in place of the compiled op
        @staticmethod
        def apply(value, shapes, level_start, locations, weights, step):
            return ms_deform_attn_core_pytorch(value, shapes, locations, weights)

    attention_module.MSDeformAttnFunction = PurePyTorch
    from models.backbone import BackboneBase, FrozenBatchNorm2d, Joiner
    from models.deformable_detr import DeformableDETR, SetCriterion
    from models.matcher import HungarianMatcher
    import models.deformable_transformer
    from models.deformable_transformer import build_deforamble_transformer
    from models.position_encoding import PositionEmbeddingSine
    models.deformable_transformer.PROPOSAL_FEATURES_PER_COORDINATE = small.HIDDEN // 2
    torch.manual_seed(0)
    args = small.arguments(num_feature_levels=4, dec_n_points=2, enc_n_points=2, two_stage=True, with_box_refine=True)
    base = BackboneBase(small.tiny_resnet(FrozenBatchNorm2d), True, True)
    base.num_channels = [16, 32, 64]
    backbone = Joiner(base, PositionEmbeddingSine(small.HIDDEN // 2, normalize=True))
    model = DeformableDETR(backbone, build_deforamble_transformer(args), num_classes=small.CLASSES, num_queries=small.QUERIES,
                           num_feature_levels=4, aux_loss=True, with_box_refine=True, two_stage=True)
    weights = {"loss_ce": 2, "loss_bbox": 5, "loss_giou": 2}
    aux = {f"{k}_{i}": v for i in range(args.dec_layers - 1) for k, v in weights.items()}
    aux.update({f"{k}_enc": v for k, v in weights.items()})
    weights.update(aux)
    criterion = SetCriterion(small.CLASSES, HungarianMatcher(2, 5, 2), weights, losses=["labels", "boxes", "cardinality"], focal_alpha=0.25)
    groups = Groups(2e-4, 2e-5, backbone_names=("backbone.0",), linear_proj_names=("reference_points", "sampling_offsets"))
    return model, criterion, groups, "fundamentalvision/Deformable-DETR 11169a6"


def smca():
    """SMCA-DETR's single-scale model (type3 scales) of make_smca_goldens.py, from its fixture's weights."""
    import importlib
    from safetensors.torch import load_file
    sys.path = [p for p in sys.path if not p.startswith(str(small.SOURCES))]
    for module in [m for m in sys.modules if m.split(".")[0] in ("models", "util")]:
        del sys.modules[module]
    sys.argv = [sys.argv[0]]
    smca_goldens = importlib.import_module("make_smca_goldens")  # puts SMCA's sources on sys.path
    from models.detr import SetCriterion
    from models.matcher import build_matcher
    model = smca_goldens.build("type3")
    state = load_file(str(ROOT / "Tests/DetectorsTests/Fixtures/smca_official/model.safetensors"))
    model.load_state_dict({k: v.float() / 64 for k, v in state.items()})
    weights = dict(smca_goldens.WEIGHTS)
    weights.update({f"{k}_0": v for k, v in smca_goldens.WEIGHTS.items()})
    criterion = SetCriterion(smca_goldens.CLASSES, matcher=build_matcher(smca_goldens.arguments("type3")), weight_dict=weights,
                             eos_coef=0.1, losses=["labels", "boxes"])

    def forward(model, images, mask, sizes, targets):  # SMCA's model takes the images unpadded, with their sizes
        unpadded = [images[i, :, :h, :w].clone() for i, (h, w) in enumerate(sizes)]
        return model([unpadded, [{**t, "size": torch.tensor(s)} for t, s in zip(targets, sizes)]])
    return model, criterion, Groups(1e-4, 1e-5), "gaopengcuhk/SMCA-DETR e4df3ab", forward


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    data = batches()
    stored = {}
    for index, (images, mask, sizes, targets) in enumerate(data):
        stored[f"batch{index}.images"] = images.half()
        stored[f"batch{index}.mask"] = mask
        stored[f"batch{index}.sizes"] = torch.tensor(sizes)
        for image, target in enumerate(targets):
            stored[f"batch{index}.targets{image}.labels"] = target["labels"]
            stored[f"batch{index}.targets{image}.boxes"] = target["boxes"]
    save_file(stored, str(OUT / "batches.safetensors"))
    for name, build in [("detr", detr), ("conditional_detr", conditional_detr), ("deformable_detr", deformable_detr), ("smca", smca)]:
        model, criterion, groups, reference, *forward = build()
        forward = forward[0] if forward else None
        frozen_stem(model.backbone[0])
        folder = OUT / name
        folder.mkdir(parents=True, exist_ok=True)
        if name != "smca":  # SMCA starts from its fixture's int8 weights (Tests/DetectorsTests/Fixtures/smca_official)
            save_file({k: v.clone().contiguous() for k, v in model.state_dict().items()}, str(folder / "initial.safetensors"))
        one, two = train(model, criterion, groups, data, 1, forward=forward), train(model, criterion, groups, data, 2, forward=forward)
        meta = {"script": "Scripts/goldens/make_training_parity_goldens.py", "reference": reference, "torch": torch.__version__,
                "steps": STEPS, "batches": BATCHES, "one_thread": one, "two_threads": two}
        (folder / "losses.json").write_text(json.dumps(meta, indent=0) + "\n")
        spread = max(abs(a["total"] - b["total"]) for a, b in zip(one, two))
        print(f"{name}: total {one[0]['total']:.4f} → {one[-1]['total']:.4f}, 1 vs 2 threads at most {spread:.2e}")


if __name__ == "__main__":
    main()
