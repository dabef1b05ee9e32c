"""How the official code initializes each family: per parameter, its shape, count, mean, standard
deviation, extremes, and which earlier parameter it equals exactly (deep-copied heads), for
Tests/DetectorsTests/Fixtures/initialization/<family>-<preset>.json. The Swift test builds the same
preset fresh and compares distribution by distribution (InitializationTests.swift).

The models are the R50 presets as the official training scripts build them without pretrained weights
(the backbones' own initialization then shows too), random seed 0:
- detr, conditional-detr, deformable-detr (r50, r50-box-refinement, r50-two-stage), smca-detr (r50):
  the official repositories, run with Scripts/reference/official/env.sh's environment (which also holds
  SMCA's): "$(Scripts/reference/official/env.sh)" Scripts/goldens/make_init_goldens.py official
- dino (r50-4scale), focus-detr (r50-4scale): detrex's configs, built as detrex_cpu.py builds them:
  "$(Scripts/reference/detrex/env.sh)" Scripts/goldens/make_init_goldens.py detrex
- retinanet r50-torchvision (torchvision 0.28's retinanet_resnet50_fpn), retinanet r50 (MMDetection 2.4.0)
  and dsa-retinanet r50-confidence (the DSA fork): "$(Scripts/reference/dsa/env.sh)" ... dense
Parameters only (the frozen batch norms' statistics are buffers); keys as the reference names them.
"""
import json
import pathlib
import subprocess
import sys
import types

ROOT = pathlib.Path(__file__).resolve().parents[2]
OUT = ROOT / "Tests/DetectorsTests/Fixtures/initialization"


def statistics(model, rename=lambda key: key):
    import torch
    entries, seen = {}, []
    for key, parameter in model.named_parameters(remove_duplicate=False):
        value = parameter.detach().double().flatten()
        same = next((other for other, tensor in seen if tensor.shape == parameter.shape and torch.equal(tensor, parameter.detach())), None)
        seen.append((rename(key), parameter.detach().clone()))
        entries[rename(key)] = {
            "shape": list(parameter.shape), "count": value.numel(), "mean": value.mean().item(),
            "std": value.std(unbiased=False).item() if value.numel() > 1 else 0.0,
            "min": value.min().item(), "max": value.max().item(), "same_as": same}
    return entries


def write(family, preset, model, reference, rename=lambda key: key):
    import torch
    OUT.mkdir(parents=True, exist_ok=True)
    document = {"family": family, "preset": preset, "reference": reference, "torch": torch.__version__,
                "layout": "detrex" if "detrex" in reference else "torchvision" if "torchvision" in reference else "official",
                "script": "Scripts/goldens/make_init_goldens.py", "parameters": statistics(model, rename)}
    (OUT / f"{family}-{preset}.json").write_text(json.dumps(document, indent=0, sort_keys=True) + "\n")
    print(f"{family} {preset}: {len(document['parameters'])} parameters, "
          f"{sum(e['count'] for e in document['parameters'].values()):,} values")


# ----- the official DETR-family repositories -----

OFFICIAL = ROOT / ".venv-official/src"
SMCA = ROOT / ".venv-smca/src/SMCA-DETR"


def use_repository(path):
    for module in [m for m in sys.modules if m.split(".")[0] in ("models", "util")]:
        del sys.modules[module]
    sys.path = [p for p in sys.path if not (p.startswith(str(OFFICIAL)) or p.startswith(str(SMCA.parent)))]
    sys.path.insert(0, str(path))


def detr_arguments(**extra):
    import argparse
    values = dict(lr_backbone=1e-5, masks=False, backbone="resnet50", dilation=False, position_embedding="sine",
                  hidden_dim=256, enc_layers=6, dec_layers=6, dim_feedforward=2048, dropout=0.1, nheads=8,
                  num_queries=100, pre_norm=False, aux_loss=True, dataset_file="coco", device="cpu",
                  set_cost_class=1, set_cost_bbox=5, set_cost_giou=2, bbox_loss_coef=5, giou_loss_coef=2,
                  eos_coef=0.1, cls_loss_coef=1, mask_loss_coef=1, dice_loss_coef=1, focal_alpha=0.25,
                  frozen_weights=None)
    values.update(extra)
    return argparse.Namespace(**values)


def official():
    sys.path.insert(0, str(ROOT / "Scripts/reference/detrex"))
    import tv_cpu_shim  # noqa: F401
    import torch

    use_repository(OFFICIAL / "detr")
    from models import build_model
    torch.manual_seed(0)
    write("detr", "r50", build_model(detr_arguments())[0], "facebookresearch/detr 29901c5")

    use_repository(OFFICIAL / "ConditionalDETR")
    from models import build_model
    torch.manual_seed(0)
    write("conditional-detr", "r50", build_model(detr_arguments(num_queries=300, cls_loss_coef=2, set_cost_class=2))[0],
          "Atten4Vis/ConditionalDETR 8ea7c3f")

    use_repository(OFFICIAL / "Deformable-DETR")
    sys.modules["MultiScaleDeformableAttention"] = types.ModuleType("MultiScaleDeformableAttention")
    from models import build_model
    for preset, refine, two_stage in [("r50", False, False), ("r50-box-refinement", True, False), ("r50-two-stage", True, True)]:
        torch.manual_seed(0)
        arguments = detr_arguments(num_queries=300, num_feature_levels=4, dec_n_points=4, enc_n_points=4, dim_feedforward=1024,
                                   with_box_refine=refine, two_stage=two_stage, cls_loss_coef=2, set_cost_class=2)
        write("deformable-detr", preset, build_model(arguments)[0], "fundamentalvision/Deformable-DETR 11169a6")

    use_repository(SMCA)
    from models import build_model
    torch.manual_seed(0)
    arguments = detr_arguments(num_queries=300, dynamic_scale="type3", smooth=8, cls_loss_coef=2, set_cost_class=2)
    write("smca-detr", "r50", build_model(arguments)[0], "gaopengcuhk/SMCA-DETR e4df3ab")


def detrex():
    sys.path.insert(0, str(ROOT / "Scripts/reference/detrex"))
    import detrex_cpu
    import torch
    from detectron2.config import LazyConfig, instantiate
    for arch, family in [("dino", "dino"), ("focus_detr", "focus-detr")]:
        cfg = LazyConfig.load(str(pathlib.Path(detrex_cpu.SRC) / f"detrex/projects/{arch}/configs/models/{arch}_r50.py"))
        cfg.model.device = "cpu"
        torch.manual_seed(0)
        write(family, "r50-4scale", instantiate(cfg.model), "IDEA-Research/detrex e244e6c (detectron2 70f4543)")


def dense(which=None):
    if which is None:  # the two MMDetections are both `mmdet`: one process each
        for part in ("torchvision", "mmdet", "dsa"):
            subprocess.run([sys.executable, __file__, "dense", part], check=True)
        return
    sys.path[:0] = [str(ROOT / "Scripts/reference/detrex"), str(ROOT / "Scripts/reference/dsa")]
    import tv_cpu_shim  # noqa: F401
    import torch
    if which == "torchvision":
        import torchvision
        from torchvision.models.detection import retinanet_resnet50_fpn
        torch.manual_seed(0)
        model = retinanet_resnet50_fpn(weights=None, weights_backbone=None, num_classes=91)
        write("retinanet", "r50-torchvision", model, f"torchvision {torchvision.__version__} retinanet_resnet50_fpn")
        return
    import mmcv_ext_stub
    sources = ROOT / ".venv-dsa/src" / ("mmdet-2.4.0" if which == "mmdet" else "DSANet")
    sys.path.insert(0, str(sources))
    mmcv_ext_stub.patch_ops()
    import pycocotools
    if not hasattr(pycocotools, "__version__"):
        pycocotools.__version__ = "12.0.3"  # mmdet 2.4 asserts its own fork's version on import
    from mmcv import Config
    from mmdet.models import build_detector
    cfg = Config.fromfile(str(ROOT / ".venv-dsa/src/DSANet/configs/retinanet/retinanet_r50_fpn_1x_coco.py"))
    cfg.model.pretrained = None
    torch.manual_seed(0)
    model = build_detector(cfg.model, train_cfg=cfg.train_cfg, test_cfg=cfg.test_cfg)
    model.init_weights()
    if which == "mmdet":
        write("retinanet", "r50", model, "MMDetection 2.4.0 (RetinaNet R50 FPN 1x)")
    else:
        write("dsa-retinanet", "r50-confidence", model, "chenzuge1/DSANet 70ade58 (mmdet 2.4.0 fork)")


def main():
    {"official": official, "detrex": detrex, "dense": dense}[sys.argv[1]](*sys.argv[2:])


if __name__ == "__main__":
    main()
