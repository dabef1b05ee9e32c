"""End-to-end goldens of RetinaNet and DSA-RetinaNet: checkpoints saved as the reference libraries
save them, images of sizes that are not multiples of 32 (one portrait, one landscape), and the
detections each reference's own inference gives on those files (its preprocessing, padding, anchors,
post-processing and rescaling to the image), for Tests/DETRCommandsTests/Fixtures/retinanet_end_to_end/.
The Swift tests run `detr convert`, `detr predict` and `detr evaluate --weights` on them as processes.

References (each in its own process, since the two MMDetections are both `mmdet`):
- torchvision 0.28.0: `RetinaNet(...)` called on the image tensors (`GeneralizedRCNNTransform`: normalize,
  float bilinear resize with min_size 240 / max_size 400, pad to 32; postprocess to the image's pixels).
- MMDetection 2.4.0 (its PyPI sources, unmodified): `inference_detector` with the config's test pipeline
  (LoadImageFromFile, Resize keep_ratio to (333, 200) — the identity for these images —, Normalize, Pad
  size_divisor 32).
- The DSA authors' fork (chenzuge1/DSANet 70ade58, mmdet 2.4.0 + DSA + object confidence), the same way.
Compiled ops are replaced by plain torch (Scripts/reference/dsa/mmcv_ext_stub.py), as in make_dsa_goldens.py.

Cases (random weights, heads perturbed so that scores spread):
- torchvision_default: torchvision's anchors (3 sizes × 3 ratios), 5 classes, frozen BN ε 0 (as its
  COCO_V1 weights), a plain state dict in torch's zip format.
- torchvision_six_anchors: 2 sizes × 3 ratios, 7 classes, ε 1e-5 (a torchvision fine-tune), the legacy
  (non-zip) pickle format.
- mmdet_plain: mmdet 2.4 RetinaNet, octave_base_scale 5, 3 scales, ratios 0.5/1/2, add_extra_convs
  'on_output' with relu_before_extra_convs, 3 named classes; mmdet's checkpoint (meta with CLASSES,
  state_dict, optimizer).
- dsa_confidence: the fork's DSA-RetinaNet with the confidence output, octave_base_scale 3, 2 scales per
  octave × 3 ratios = 6 anchors, add_extra_convs 'on_lateral', 4 named classes, gates 0.5; its checkpoint
  as the fork saves it.
- dsa_on_output: the fork with add_extra_convs 'on_output' and relu_before_extra_convs, where P6 comes
  from P5's localization attention branch (the fork's `outs[-1]`), 3 named classes, 9 anchors.

Each case folder: checkpoint.pth, reference.json (COCO results in the images' pixels, all detections),
meta.json; shared: images/*.png and annotations.json per case (ground truth made from the reference's
detections, jittered, with the categories the checkpoint was trained on), and each case's pycocotools
stats on its reference detections.

Run: "$(Scripts/reference/dsa/env.sh)" Scripts/goldens/make_retinanet_end_to_end_goldens.py
"""
import json
import os
import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[2]
OUT = ROOT / "Tests/DETRCommandsTests/Fixtures/retinanet_end_to_end"
VENV_SOURCES = ROOT / ".venv-dsa/src"
IMAGES = [("portrait.png", 250, 200), ("landscape.png", 200, 250)]  # (name, height, width)


def shared_imports():
    sys.path[:0] = [str(ROOT / "Scripts/reference/detrex"), str(ROOT / "Scripts/reference/dsa")]
    import tv_cpu_shim  # noqa: F401  (torchvision without its compiled ops)
    import mmcv_ext_stub
    return mmcv_ext_stub


def make_images():
    import numpy as np
    import torch
    from PIL import Image
    (OUT / "images").mkdir(parents=True, exist_ok=True)
    g = torch.Generator().manual_seed(7)
    for name, height, width in IMAGES:
        coarse = torch.rand(1, 3, height // 10, width // 10, generator=g)
        smooth = torch.nn.functional.interpolate(coarse, size=(height, width), mode="bilinear", align_corners=False)[0]
        noisy = (smooth * 200 + torch.rand(3, height, width, generator=g) * 55).clamp(0, 255).to(torch.uint8)
        Image.fromarray(noisy.permute(1, 2, 0).numpy().astype(np.uint8)).save(OUT / "images" / name)


def perturb(model, gates=None):
    import torch
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("gamma"):
                p.fill_(gates)
            elif "head" in name:
                p.copy_(torch.randn(p.shape, generator=g) * 0.05)
        for name, b in model.named_buffers():
            if name.endswith("running_var"):
                b.copy_(torch.rand(b.shape, generator=g) * 0.5 + 0.75)
            elif name.endswith("running_mean"):
                b.copy_(torch.randn(b.shape, generator=g) * 0.1)


def results(per_image):
    """COCO results: per_image is [(image_id, boxes [n,4] corners, scores [n], labels [n])]."""
    found = []
    for image_id, boxes, scores, labels in per_image:
        for box, score, label in zip(boxes.tolist(), scores.tolist(), labels.tolist()):
            found.append({"image_id": image_id, "category_index": int(label), "score": float(score),
                          "bbox": [box[0], box[1], box[2] - box[0], box[3] - box[1]]})
    return found


def torchvision_case(name, sizes, classes, eps, legacy_pickle):
    shared_imports()
    import torch
    import torchvision
    from PIL import Image
    from torchvision.models.detection import RetinaNet
    from torchvision.models.detection.anchor_utils import AnchorGenerator
    from torchvision.models.detection.backbone_utils import BackboneWithFPN
    from torchvision.models.detection.retinanet import RetinaNetHead
    from torchvision.ops import boxes as box_ops
    from torchvision.ops.feature_pyramid_network import LastLevelP6P7
    from torchvision.ops.misc import FrozenBatchNorm2d
    from torchvision.transforms.functional import to_tensor
    sys.path.insert(0, str(ROOT / "Scripts/goldens"))
    import make_retinanet_torchvision_goldens as tv_goldens

    torch.set_num_threads(1)
    box_ops.batched_nms = tv_goldens.plain_batched_nms
    torchvision.models.detection.retinanet.box_ops.batched_nms = tv_goldens.plain_batched_nms
    torch.manual_seed(0)
    resnet = tv_goldens.SmallResNet()
    for module in resnet.modules():  # the ε the checkpoint was made with
        if isinstance(module, FrozenBatchNorm2d):
            module.eps = eps
    backbone = BackboneWithFPN(resnet, {"layer2": "0", "layer3": "1", "layer4": "2"}, [16, 32, 64], 32,
                               extra_blocks=LastLevelP6P7(32, 32))
    ratios = (0.5, 1.0, 2.0)
    anchor_sizes = tuple(tuple(int(x * s) for s in sizes) for x in [32, 64, 128, 256, 512])
    anchors = AnchorGenerator(anchor_sizes, (ratios,) * 5)
    model = RetinaNet(backbone, num_classes=classes, anchor_generator=anchors,
                      head=RetinaNetHead(32, len(sizes) * len(ratios), classes), min_size=240, max_size=400)
    perturb(model)
    model.eval()
    folder = OUT / name
    folder.mkdir(parents=True, exist_ok=True)
    state = {k: v.contiguous() for k, v in model.state_dict().items()}
    torch.save(state, folder / "checkpoint.pth", _use_new_zipfile_serialization=not legacy_pickle)
    per_image = []
    with torch.no_grad():
        for image_id, (file, _, _) in enumerate(IMAGES, start=1):
            found = model([to_tensor(Image.open(OUT / "images" / file).convert("RGB"))])[0]
            per_image.append((image_id, found["boxes"], found["scores"], found["labels"]))
    meta = {"reference": f"torchvision {torchvision.__version__}", "torch": torch.__version__, "layout": "torchvision",
            "class_count": classes, "anchor_scales": [s for s in sizes], "anchor_ratios": list(ratios),
            "batch_norm_epsilon": eps, "container": "legacy pickle" if legacy_pickle else "zip state dict",
            "resize": {"size": 240, "max_size": 400, "resizing": "torchvision"},
            "category_ids": list(range(classes)), "category_names": [f"kind {i}" for i in range(classes)]}
    return results(per_image), meta


def mmdet_case(name, sources, config_file, classes, octave_base, scales_per_octave, extra_convs, relu_before_extra, gates, dsa):
    sys.path.insert(0, str(sources))
    stub = shared_imports()
    import numpy as np
    import torch
    import mmcv
    from mmcv import Config

    torch.set_num_threads(1)
    stub.patch_ops()
    # mmdet.apis imports pyplot for its result viewer only; an empty stand-in keeps matplotlib out.
    import types
    sys.modules.setdefault("matplotlib", types.ModuleType("matplotlib"))
    sys.modules.setdefault("matplotlib.pyplot", types.ModuleType("matplotlib.pyplot"))
    # mmdet 2.4 asserts the version of its own pycocotools fork (mmpycocotools 12.0.x); the COCO
    # dataset code that asks is not on the inference path.
    import pycocotools
    if not hasattr(pycocotools, "__version__"):
        pycocotools.__version__ = "12.0.3"
    from mmdet.apis import inference_detector
    from mmdet.models import build_detector
    cfg = Config.fromfile(str(config_file))
    m = cfg.model
    m.pretrained = None
    m.backbone.update(depth=18, base_channels=8)
    m.neck.update(in_channels=[8, 16, 32, 64], out_channels=32, add_extra_convs=extra_convs,
                  relu_before_extra_convs=relu_before_extra)
    m.bbox_head.update(num_classes=len(classes), in_channels=32, feat_channels=32)
    m.bbox_head.anchor_generator.update(octave_base_scale=octave_base, scales_per_octave=scales_per_octave)
    cfg.data.test.pipeline[1].img_scale = (333, 200)
    torch.manual_seed(0)
    model = build_detector(m, train_cfg=cfg.train_cfg, test_cfg=cfg.test_cfg)
    model.init_weights()
    perturb(model, gates)
    model.cfg = cfg
    model.CLASSES = tuple(classes)
    model.eval()
    folder = OUT / name
    folder.mkdir(parents=True, exist_ok=True)
    import mmdet
    state = {k: v for k, v in model.state_dict().items()}
    meta = {"mmdet_version": mmdet.__version__, "config": cfg.text, "CLASSES": tuple(classes), "epoch": 12, "iter": 100}
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    torch.save({"meta": meta, "state_dict": state, "optimizer": optimizer.state_dict()}, folder / "checkpoint.pth")
    per_image = []
    with torch.no_grad():
        for image_id, (file, _, _) in enumerate(IMAGES, start=1):
            per_class = inference_detector(model, str(OUT / "images" / file))
            boxes = np.concatenate([d[:, :4] for d in per_class])
            scores = np.concatenate([d[:, 4] for d in per_class])
            labels = np.concatenate([np.full(len(d), c) for c, d in enumerate(per_class)])
            order = np.argsort(-scores, kind="stable")
            per_image.append((image_id, boxes[order], scores[order], labels[order]))
    meta = {"reference": ("chenzuge1/DSANet 70ade58 (mmdet 2.4.0 fork)" if dsa else "MMDetection 2.4.0"), "torch": torch.__version__,
            "mmcv": mmcv.__version__, "layout": "mmdetection", "class_count": len(classes),
            "anchor_scales": [2 ** (i / scales_per_octave) for i in range(scales_per_octave)],
            "octave_base_scale": octave_base, "scales_per_octave": scales_per_octave, "anchor_ratios": [0.5, 1.0, 2.0],
            "add_extra_convs": extra_convs, "relu_before_extra_convs": relu_before_extra, "dsa": dsa,
            "container": "mmdet checkpoint (meta, state_dict, optimizer)",
            "resize": {"size": 200, "max_size": 333, "resizing": "detr"}, "category_names": list(classes),
            # The ground truth's ids, in another order than the checkpoint's classes: convert matches them by name.
            "category_ids": [[3, 7, 9, 12][(i * 3 + 1) % 4] for i in range(len(classes))] if len(classes) == 4 else [5, 2, 11][:len(classes)]}
    return results(per_image), meta


CASES = {
    "torchvision_default": lambda: torchvision_case("torchvision_default", (1.0, 2 ** (1 / 3), 2 ** (2 / 3)), 5, 0.0, False),
    "torchvision_six_anchors": lambda: torchvision_case("torchvision_six_anchors", (1.0, 2 ** 0.5), 7, 1e-5, True),
    "mmdet_plain": lambda: mmdet_case(
        "mmdet_plain", VENV_SOURCES / "mmdet-2.4.0", VENV_SOURCES / "DSANet/configs/retinanet/retinanet_r50_fpn_1x_coco.py",
        ["sheep", "kite", "boat"], 5, 3, "on_output", True, None, False),
    "dsa_confidence": lambda: mmdet_case(
        "dsa_confidence", VENV_SOURCES / "DSANet", VENV_SOURCES / "DSANet/configs/retinanet/retinanet_r50_fpn_1x_coco.py",
        ["cat", "dog", "bird", "fish"], 3, 2, "on_lateral", False, 0.5, True),
    "dsa_on_output": lambda: mmdet_case(
        "dsa_on_output", VENV_SOURCES / "DSANet", VENV_SOURCES / "DSANet/configs/retinanet/retinanet_r50_fpn_1x_coco.py",
        ["sheep", "kite", "boat"], 4, 3, "on_output", True, 0.5, True),
}


def ground_truth(found, meta):
    """A COCO file for the two images: the reference's best detections, moved a few pixels, some relabelled."""
    import random
    rng = random.Random(3)
    images = [{"id": i, "file_name": name, "height": h, "width": w} for i, (name, h, w) in enumerate(IMAGES, start=1)]
    ids = meta["category_ids"]
    annotations = []
    for image in images:
        best = sorted((d for d in found if d["image_id"] == image["id"]), key=lambda d: -d["score"])[:12]
        for index, d in enumerate(best):
            x, y, w, h = (v + rng.uniform(-3, 3) for v in d["bbox"])
            w, h = max(w, 2.0), max(h, 2.0)
            label = d["category_index"] if index % 4 else rng.randrange(len(ids))
            annotations.append({"id": len(annotations) + 1, "image_id": image["id"], "category_id": ids[label],
                                "bbox": [x, y, w, h], "area": w * h, "iscrowd": 0})
    categories = sorted(({"id": i, "name": n} for i, n in zip(ids, meta["category_names"])), key=lambda c: c["id"])
    return {"images": images, "annotations": annotations, "categories": categories}


def pycocotools_stats(gt, found, ids):
    import contextlib
    import io
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval
    coco = COCO()
    coco.dataset = gt
    with contextlib.redirect_stdout(io.StringIO()):
        coco.createIndex()
        dets = coco.loadRes([{"image_id": d["image_id"], "category_id": ids[d["category_index"]], "bbox": d["bbox"],
                              "score": d["score"]} for d in found])
        evaluation = COCOeval(coco, dets, "bbox")
        evaluation.evaluate()
        evaluation.accumulate()
        evaluation.summarize()
    return [float(s) for s in evaluation.stats]


def run_case(name):
    found, meta = CASES[name]()
    folder = OUT / name
    (folder / "reference.json").write_text(json.dumps(found) + "\n")
    gt = ground_truth(found, meta)
    (folder / "annotations.json").write_text(json.dumps(gt) + "\n")
    meta["pycocotools_stats"] = pycocotools_stats(gt, found, meta["category_ids"])
    meta["script"] = "Scripts/goldens/make_retinanet_end_to_end_goldens.py"
    meta["detections"] = [sum(d["image_id"] == i for d in found) for i in (1, 2)]
    (folder / "meta.json").write_text(json.dumps(meta, indent=1) + "\n")
    print(name, meta["detections"], [round(s, 4) for s in meta["pycocotools_stats"][:2]])


def main():
    if len(sys.argv) > 1:
        run_case(sys.argv[1])
        return
    make_images()
    for name in CASES:
        subprocess.run([sys.executable, __file__, name], check=True, env=dict(os.environ, PYTHONHASHSEED="0"))


if __name__ == "__main__":
    main()
