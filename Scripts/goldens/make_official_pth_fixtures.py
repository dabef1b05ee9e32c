"""Writes the .pth round-trip fixtures of `detr convert`: small models of the official DETR, Conditional DETR and
Deformable DETR code (random weights, perturbed so that no bias or frozen statistic is trivial), saved with
torch.save exactly as the official training scripts save checkpoints ({"model", "optimizer", "lr_scheduler",
"epoch", "args": argparse.Namespace}), and each model's outputs on two padded images.

Run: "$(Scripts/reference/official/env.sh)" Scripts/goldens/make_official_pth_fixtures.py
Writes Tests/DETRCommandsTests/Fixtures/official_pth/<name>/{checkpoint.pth, golden.safetensors, meta.json}; meta.json
names this script, the repositories' commits and the torch version. DETR's checkpoint is in the legacy format of
torch < 1.6 (the released DETR checkpoints are), the others in the zip format.

The architecture (all three): a ResNet of BasicBlocks, 1 block per stage, stem 8 and stages 8/16/32/64 channels,
frozen batch norm; transformer 32 wide, 4 heads, 1 encoder and 2 decoder layers, feed-forward 64, no dropout;
5 classes; 20 queries. Deformable DETR: 4 levels (stages 2-4 and one strided convolution), 2 points, box
refinement and two stages. Conditional DETR's query sine embedding has 16 features per axis (half the width, as in
the released model's 128 of 256; Scripts/reference/official/env.sh makes the official constant settable), and so do Deformable DETR's two-stage proposal embeddings.
"""
import argparse
import json
import pathlib
import sys
import types

ROOT = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "Scripts/reference/detrex"))
import tv_cpu_shim  # noqa: F401,E402  (must precede torchvision)

import torch  # noqa: E402
import torchvision  # noqa: E402
from safetensors.torch import save_file  # noqa: E402
from torch import nn  # noqa: E402
from torchvision.models.resnet import BasicBlock  # noqa: E402

SOURCES = ROOT / ".venv-official/src"
OUT = ROOT / "Tests/DETRCommandsTests/Fixtures/official_pth"
COMMITS = {"detr": "facebookresearch/detr 29901c51d7fe8712168b8d0d64351170bc0f83e0",
           "ConditionalDETR": "Atten4Vis/ConditionalDETR 8ea7c3f3fff49cd287855d4f13cc12a6066bc8e9",
           "Deformable-DETR": "fundamentalvision/Deformable-DETR 11169a60c33333af00a4849f1808023eba96a931"}
CLASSES, QUERIES, HIDDEN = 5, 20, 32
SIZES = [(96, 128), (80, 112)]  # (height, width): the second image is padded


def use_repository(name):
    """Imports `models` and `util` from one official repository (they share package names)."""
    for module in [m for m in sys.modules if m == "models" or m.startswith("models.") or m == "util" or m.startswith("util.")]:
        del sys.modules[module]
    sys.path = [p for p in sys.path if not p.startswith(str(SOURCES))]
    sys.path.insert(0, str(SOURCES / name))


def tiny_resnet(frozen_batch_norm):
    net = torchvision.models.resnet18(weights=None, norm_layer=frozen_batch_norm)
    net.inplanes = 8
    net.conv1 = nn.Conv2d(3, 8, kernel_size=7, stride=2, padding=3, bias=False)
    net.bn1 = frozen_batch_norm(8)
    for index, width in enumerate((8, 16, 32, 64)):
        setattr(net, f"layer{index + 1}", net._make_layer(BasicBlock, width, 1, stride=1 if index == 0 else 2))
    return net


def perturb(model, seed):
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for key, value in model.state_dict().items():
            if not value.is_floating_point():
                continue
            if key.endswith("running_var"):
                value.copy_(torch.rand(value.shape, generator=generator) * 0.5 + 0.75)
            elif key.endswith("running_mean"):
                value.copy_(torch.randn(value.shape, generator=generator) * 0.1)
            else:
                value.add_(torch.randn(value.shape, generator=generator) * 0.05)


def images():
    generator = torch.Generator().manual_seed(7)
    return [torch.randn(3, h, w, generator=generator) for h, w in SIZES]


def training_checkpoint(model, args):
    """What the official main.py saves: the state dict, the optimizer and scheduler states, the epoch and args."""
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4, weight_decay=1e-4)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, 40)
    return {"model": model.state_dict(), "optimizer": optimizer.state_dict(), "lr_scheduler": scheduler.state_dict(),
            "epoch": 49, "args": args}


def write(name, model, args, outputs, detections, legacy, repository):
    folder = OUT / name
    folder.mkdir(parents=True, exist_ok=True)
    torch.save(training_checkpoint(model, args), folder / "checkpoint.pth", _use_new_zipfile_serialization=not legacy)
    golden = {"logits": outputs["pred_logits"].contiguous(), "boxes": outputs["pred_boxes"].contiguous()}
    for index, image in enumerate(detections):
        for key in ("scores", "labels", "boxes"):
            golden[f"detections.{index}.{key}"] = image[key].contiguous()
    padded, mask = padded_batch()
    golden["images"], golden["mask"] = padded, mask
    save_file(golden, folder / "golden.safetensors")
    meta = {"made_by": f"Scripts/goldens/make_official_pth_fixtures.py: {COMMITS[repository]}, torch {torch.__version__}, "
                       f"torchvision {torchvision.__version__}",
            "format": "legacy" if legacy else "zip", "classes": CLASSES, "queries": QUERIES, "image_sizes": SIZES}
    (folder / "meta.json").write_text(json.dumps(meta, indent=1))
    print("wrote", folder, (folder / "checkpoint.pth").stat().st_size, "bytes")


def padded_batch():
    from util.misc import nested_tensor_from_tensor_list
    batch = nested_tensor_from_tensor_list(images())
    return batch.tensors, batch.mask


def run(model, postprocess):
    model.eval()
    from util.misc import nested_tensor_from_tensor_list
    with torch.no_grad():
        outputs = model(nested_tensor_from_tensor_list(images()))
        detections = postprocess(outputs, torch.tensor(SIZES))
    return outputs, detections


def arguments(**extra):
    values = dict(hidden_dim=HIDDEN, nheads=4, enc_layers=1, dec_layers=2, dim_feedforward=64, dropout=0.0, pre_norm=False,
                  num_queries=QUERIES, backbone="resnet18-tiny", lr=1e-4, lr_drop=40, epochs=50, aux_loss=True)
    values.update(extra)
    return argparse.Namespace(**values)


def detr():
    use_repository("detr")
    from models.backbone import BackboneBase, FrozenBatchNorm2d, Joiner
    from models.detr import DETR, PostProcess
    from models.position_encoding import PositionEmbeddingSine
    from models.transformer import build_transformer
    torch.manual_seed(0)
    args = arguments()
    backbone = Joiner(BackboneBase(tiny_resnet(FrozenBatchNorm2d), True, 64, False), PositionEmbeddingSine(HIDDEN // 2, normalize=True))
    backbone.num_channels = 64
    model = DETR(backbone, build_transformer(args), num_classes=CLASSES, num_queries=QUERIES, aux_loss=True)
    perturb(model, 1)
    outputs, detections = run(model, PostProcess())
    write("detr", model, args, outputs, detections, legacy=True, repository="detr")


def conditional_detr():
    use_repository("ConditionalDETR")
    from models.backbone import BackboneBase, FrozenBatchNorm2d, Joiner
    from models.conditional_detr import ConditionalDETR, PostProcess
    from models.position_encoding import PositionEmbeddingSine
    import models.transformer
    from models.transformer import build_transformer
    models.transformer.SINE_FEATURES_PER_AXIS = HIDDEN // 2  # hard-coded 128 (for width 256) in the official code
    torch.manual_seed(0)
    args = arguments()
    backbone = Joiner(BackboneBase(tiny_resnet(FrozenBatchNorm2d), True, 64, False), PositionEmbeddingSine(HIDDEN // 2, normalize=True))
    backbone.num_channels = 64
    model = ConditionalDETR(backbone, build_transformer(args), num_classes=CLASSES, num_queries=QUERIES, aux_loss=True)
    perturb(model, 2)
    outputs, detections = run(model, PostProcess())
    write("conditional_detr", model, args, outputs, detections, legacy=False, repository="ConditionalDETR")


def deformable_detr():
    use_repository("Deformable-DETR")
    sys.modules["MultiScaleDeformableAttention"] = types.ModuleType("MultiScaleDeformableAttention")  # the CUDA op, not built
    from models.ops.functions.ms_deform_attn_func import ms_deform_attn_core_pytorch
    import models.ops.modules.ms_deform_attn as attention_module

    class PurePyTorch:  # the repository's own reference implementation in place of the compiled op
        @staticmethod
        def apply(value, shapes, level_start, locations, weights, step):
            return ms_deform_attn_core_pytorch(value, shapes, locations, weights)

    attention_module.MSDeformAttnFunction = PurePyTorch
    from models.backbone import BackboneBase, FrozenBatchNorm2d, Joiner
    from models.deformable_detr import DeformableDETR, PostProcess
    import models.deformable_transformer
    from models.deformable_transformer import build_deforamble_transformer
    models.deformable_transformer.PROPOSAL_FEATURES_PER_COORDINATE = HIDDEN // 2  # hard-coded 128 (for width 256)
    from models.position_encoding import PositionEmbeddingSine
    torch.manual_seed(0)
    args = arguments(num_feature_levels=4, dec_n_points=2, enc_n_points=2, two_stage=True, with_box_refine=True)
    base = BackboneBase(tiny_resnet(FrozenBatchNorm2d), True, True)
    base.num_channels = [16, 32, 64]
    backbone = Joiner(base, PositionEmbeddingSine(HIDDEN // 2, normalize=True))
    model = DeformableDETR(backbone, build_deforamble_transformer(args), num_classes=CLASSES, num_queries=QUERIES,
                           num_feature_levels=4, aux_loss=True, with_box_refine=True, two_stage=True)
    perturb(model, 3)
    outputs, detections = run(model, PostProcess())
    write("deformable_detr", model, args, outputs, detections, legacy=False, repository="Deformable-DETR")



if __name__ == "__main__":
    detr()
    conditional_detr()
    deformable_detr()
