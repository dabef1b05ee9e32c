"""Golden tensors of DSA-RetinaNet from the authors' code (chenzuge1/DSANet 70ade58, an mmdetection
2.4.0 fork) run on the CPU, for Tests/DetectorsTests/Fixtures/dsa_official/.

The whole fork runs unmodified: `build_detector` from its configs/retinanet/retinanet_r50_fpn_1x_coco.py
(RetinaNet with the DSA neck on P4-P7 and the object-confidence output), shrunk to a ResNet-18 with 8
base channels, a 32-channel pyramid and head, 5 classes. Every weight is random and perturbed: the
head N(0, 0.05), the DSA gates 0.5 (0 at initialization would hide the attention), the backbone's
batch-norm statistics moved. Two 128x160 images (so P3 has 2,880 anchors, more than the 1,000 of
`nms_pre`, and the fork's score fusion differs between levels), three boxes.

Records the backbone features C2-C5, each level's (classification, localization) features and head
outputs, the three loss terms per level (training mode; the backbone's batch norm stays frozen),
and each image's detections (get_bboxes, with the fork's fusion); then, with every DSA gate at 0 (the
branches become the identity: mmdet 2.4's RetinaNet), the head outputs and the focal and L1 terms
again as "plain.*".

Run: "$(Scripts/reference/dsa/env.sh)" Scripts/goldens/make_dsa_goldens.py
"""
import copy
import json
import os
import pathlib
import sys

ROOT = pathlib.Path(__file__).resolve().parents[2]
SOURCES = ROOT / ".venv-dsa/src/DSANet"
sys.path[:0] = [str(SOURCES), str(ROOT / "Scripts/reference/detrex"), str(ROOT / "Scripts/reference/dsa")]
import tv_cpu_shim  # noqa: F401,E402  (torchvision without its compiled ops; before mmdet)
import mmcv_ext_stub  # noqa: E402  (the two compiled mmcv ops on this path, in plain torch)

import numpy as np  # noqa: E402
import torch  # noqa: E402
from mmcv import Config  # noqa: E402
from mmdet.models import build_detector  # noqa: E402
from safetensors.torch import save_file  # noqa: E402

OUT = ROOT / "Tests/DetectorsTests/Fixtures/dsa_official"


def small_model():
    """The fork's RetinaNet config shrunk (ResNet-18 at 8 base channels, 32 wide, 5 classes), freshly initialized with seed 0."""
    mmcv_ext_stub.patch_ops()
    cfg = Config.fromfile(str(SOURCES / "configs/retinanet/retinanet_r50_fpn_1x_coco.py"))
    m = cfg.model
    m.pretrained = None
    m.backbone.update(depth=18, base_channels=8)
    m.neck.update(in_channels=[8, 16, 32, 64], out_channels=32)
    m.bbox_head.update(num_classes=5, in_channels=32, feat_channels=32)
    torch.manual_seed(0)
    model = build_detector(m, train_cfg=cfg.train_cfg, test_cfg=cfg.test_cfg)
    model.init_weights()
    return model


def main():
    torch.set_num_threads(1)
    OUT.mkdir(parents=True, exist_ok=True)
    model = small_model()
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("gamma"):
                p.fill_(0.5)
            elif name.startswith("bbox_head."):
                p.copy_(torch.randn(p.shape, generator=g) * 0.05)
        for name, b in model.named_buffers():
            if name.endswith("running_var"):
                b.copy_(torch.rand(b.shape, generator=g) * 0.5 + 0.75)
            elif name.endswith("running_mean"):
                b.copy_(torch.randn(b.shape, generator=g) * 0.1)
    save_file({k: v.contiguous() for k, v in model.state_dict().items() if not k.endswith("num_batches_tracked")},
              str(OUT / "model.safetensors"))

    torch.manual_seed(2)
    img = torch.randn(2, 3, 128, 160)
    metas = [dict(img_shape=(128, 160, 3), ori_shape=(128, 160, 3), pad_shape=(128, 160, 3),
                  scale_factor=np.ones(4, dtype=np.float32), flip=False, batch_input_shape=(128, 160)) for _ in range(2)]
    gt_bboxes = [torch.tensor([[20., 30., 70., 90.], [90., 40., 150., 120.]]), torch.tensor([[40., 20., 120., 100.]])]
    gt_labels = [torch.tensor([1, 3]), torch.tensor([4])]

    model.eval()
    with torch.no_grad():
        backbone_features = model.backbone(img)
        features = model.extract_feat(img)
        cls_scores, bbox_preds, iou_preds = model.bbox_head(features)
        detections = model.bbox_head.get_bboxes(cls_scores, bbox_preds, iou_preds, copy.deepcopy(metas), rescale=False)
    model.train()
    losses = model.forward_train(img, copy.deepcopy(metas), gt_bboxes, gt_labels)

    golden = {"images": img, "gt_boxes": torch.cat(gt_bboxes), "gt_labels": torch.cat(gt_labels).float()}
    golden.update({f"C{i + 2}": f for i, f in enumerate(backbone_features)})
    for level in range(5):
        name = f"P{level + 3}"
        golden[f"{name}.cls_feat"], golden[f"{name}.reg_feat"] = features[level][0].clone(), features[level][1].clone()
        golden[f"{name}.cls_score"], golden[f"{name}.bbox_pred"] = cls_scores[level], bbox_preds[level]
        golden[f"{name}.iou_pred"] = iou_preds[level]
    for key, values in losses.items():
        for level, value in enumerate(values):
            golden[f"{key}.P{level + 3}"] = value.detach().reshape(1)
    for image, (boxes, labels) in enumerate(detections):
        golden[f"detections{image}.boxes"], golden[f"detections{image}.labels"] = boxes, labels.float()
    # DSA off: with every gate at 0 the attention branches are the identity, and the fork's pyramid and
    # head are mmdet 2.4's RetinaNet (plus the IoU output, whose loss is left out of the comparison).
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("gamma"):
                p.fill_(0.0)
    model.eval()
    with torch.no_grad():
        plain_scores, plain_deltas, _ = model.bbox_head(model.extract_feat(img))
    model.train()
    plain_losses = model.forward_train(img, copy.deepcopy(metas), gt_bboxes, gt_labels)
    for level in range(5):
        golden[f"plain.P{level + 3}.cls_score"], golden[f"plain.P{level + 3}.bbox_pred"] = plain_scores[level], plain_deltas[level]
    for key in ("loss_cls", "loss_bbox"):
        for level, value in enumerate(plain_losses[key]):
            golden[f"plain.{key}.P{level + 3}"] = value.detach().reshape(1)
    save_file({k: v.contiguous() for k, v in golden.items()}, str(OUT / "golden.safetensors"))
    meta = {"script": "Scripts/goldens/make_dsa_goldens.py", "torch": torch.__version__, "reference": "chenzuge1/DSANet 70ade58 (mmdet 2.4.0 fork)",
            "mmcv": __import__("mmcv").__version__, "losses": {k: [round(float(v.detach()), 6) for v in vs] for k, vs in losses.items()},
            "detections": [int(b.shape[0]) for b, _ in detections]}
    (OUT / "meta.json").write_text(json.dumps(meta, indent=1) + "\n")
    print(json.dumps(meta, indent=1))


if __name__ == "__main__":
    main()
