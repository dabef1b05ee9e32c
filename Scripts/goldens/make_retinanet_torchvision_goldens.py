"""Golden tensors of torchvision's RetinaNet (torchvision 0.28.0, its pure-Python model code; the
compiled NMS replaced by a plain one, Scripts/reference/dsa/mmcv_ext_stub.py's) run on the CPU, for
Tests/DetectorsTests/Fixtures/retinanet_torchvision/.

torchvision's own classes: `RetinaNet`, `BackboneWithFPN` with `LastLevelP6P7` (P6 from P5, ReLU
before P7), `RetinaNetHead`, `AnchorGenerator` (rounded anchors, strides from the padded size),
`FrozenBatchNorm2d` with eps 0 (what loading its COCO weights sets). The backbone is a small ResNet
made of torchvision's `BasicBlock`s (widths 8/16/32/64, one block per stage) so that the fixture stays
small; the pyramid and head are 32 wide, 5 classes. Random weights, perturbed (head N(0, 0.05),
batch-norm statistics moved). Two images in one padded 128x160 batch, the second 96x128 (padding);
the model's parts are called directly (backbone, head, anchors, compute_loss, postprocess_detections),
skipping GeneralizedRCNNTransform's resize, so that the batch is exactly what swift-detr sees.

Writes model.safetensors (torchvision's current key names), golden.safetensors, meta.json.

Run: "$(Scripts/reference/dsa/env.sh)" Scripts/goldens/make_retinanet_torchvision_goldens.py
"""
import functools
import json
import pathlib
import sys
from collections import OrderedDict

ROOT = pathlib.Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT / "Scripts/reference/detrex"), str(ROOT / "Scripts/reference/dsa")]
import tv_cpu_shim  # noqa: F401,E402
import mmcv_ext_stub  # noqa: E402

import torch  # noqa: E402
import torchvision  # noqa: E402
from safetensors.torch import save_file  # noqa: E402
from torch import nn  # noqa: E402
from torchvision.models.detection import RetinaNet  # noqa: E402
from torchvision.models.detection.backbone_utils import BackboneWithFPN  # noqa: E402
from torchvision.models.detection.image_list import ImageList  # noqa: E402
from torchvision.models.detection.retinanet import RetinaNetHead  # noqa: E402
from torchvision.models.resnet import BasicBlock  # noqa: E402
from torchvision.ops import boxes as box_ops  # noqa: E402
from torchvision.ops.feature_pyramid_network import LastLevelP6P7  # noqa: E402
from torchvision.ops.misc import FrozenBatchNorm2d  # noqa: E402

OUT = ROOT / "Tests/DetectorsTests/Fixtures/retinanet_torchvision"


class SmallResNet(nn.Module):
    """torchvision's ResNet layout (conv1, bn1, relu, maxpool, layer1-4) with small widths."""

    def __init__(self, widths=(8, 16, 32, 64)):
        super().__init__()
        norm = functools.partial(FrozenBatchNorm2d, eps=0.0)
        self.conv1 = nn.Conv2d(3, widths[0], 7, 2, 3, bias=False)
        self.bn1 = norm(widths[0])
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        inplanes = widths[0]
        for index, planes in enumerate(widths):
            stride = 1 if index == 0 else 2
            downsample = None
            if stride != 1 or inplanes != planes:
                downsample = nn.Sequential(nn.Conv2d(inplanes, planes, 1, stride, bias=False), norm(planes))
            setattr(self, f"layer{index + 1}", nn.Sequential(BasicBlock(inplanes, planes, stride, downsample, norm_layer=norm)))
            inplanes = planes


def plain_batched_nms(boxes, scores, idxs, iou_threshold):
    offsets = idxs.to(boxes) * (boxes.max() + 1)
    return mmcv_ext_stub.pure_nms(boxes + offsets[:, None], scores, iou_threshold)[1]


def main():
    torch.set_num_threads(1)
    box_ops.batched_nms = plain_batched_nms
    torchvision.models.detection.retinanet.box_ops.batched_nms = plain_batched_nms
    OUT.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    backbone = BackboneWithFPN(SmallResNet(), {"layer2": "0", "layer3": "1", "layer4": "2"}, [16, 32, 64], 32,
                               extra_blocks=LastLevelP6P7(32, 32))
    model = RetinaNet(backbone, num_classes=5, head=RetinaNetHead(32, 9, 5))
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.startswith("head."):
                p.copy_(torch.randn(p.shape, generator=g) * 0.05)
        for name, b in model.named_buffers():
            if name.endswith("running_var"):
                b.copy_(torch.rand(b.shape, generator=g) * 0.5 + 0.75)
            elif name.endswith("running_mean") or name.endswith("bn1.bias") or name.endswith(".bias") and "bn" in name:
                b.copy_(torch.randn(b.shape, generator=g) * 0.1)
    model.eval()
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(OUT / "model.safetensors"))

    torch.manual_seed(2)
    images = torch.zeros(2, 3, 128, 160)
    images[0] = torch.randn(3, 128, 160)
    images[1, :, :96, :128] = torch.randn(3, 96, 128)
    sizes = [(128, 160), (96, 128)]
    image_list = ImageList(images, sizes)
    targets = [{"boxes": torch.tensor([[20., 30., 70., 90.], [90., 40., 150., 120.]]), "labels": torch.tensor([1, 3])},
               {"boxes": torch.tensor([[10., 20., 60., 80.]]), "labels": torch.tensor([4])}]
    with torch.no_grad():
        features = list(model.backbone(images).values())
        head_outputs = model.head(features)
        anchors = model.anchor_generator(image_list, features)
        losses = model.compute_loss(targets, head_outputs, anchors)
        counts = [x.size(2) * x.size(3) for x in features]
        anchors_per_level = [x * 9 for x in counts]
        split_outputs = {k: list(v.split(anchors_per_level, dim=1)) for k, v in head_outputs.items()}
        split_anchors = [list(a.split(anchors_per_level)) for a in anchors]
        detections = model.postprocess_detections(split_outputs, split_anchors, sizes)

    golden = {"images": images, "anchors": anchors[0], "cls_logits": head_outputs["cls_logits"],
              "bbox_regression": head_outputs["bbox_regression"], "loss_cls": losses["classification"].reshape(1),
              "loss_bbox": losses["bbox_regression"].reshape(1)}
    for index, feature in enumerate(features):
        golden[f"P{index + 3}"] = feature
    for image, found in enumerate(detections):
        golden[f"detections{image}.boxes"], golden[f"detections{image}.scores"] = found["boxes"], found["scores"]
        golden[f"detections{image}.labels"] = found["labels"].float()
        golden[f"targets{image}.boxes"], golden[f"targets{image}.labels"] = targets[image]["boxes"], targets[image]["labels"].float()
    save_file({k: v.contiguous() for k, v in golden.items()}, str(OUT / "golden.safetensors"))
    meta = {"script": "Scripts/goldens/make_retinanet_torchvision_goldens.py", "torch": torch.__version__,
            "torchvision": torchvision.__version__, "sizes": sizes, "losses": {k: float(v) for k, v in losses.items()},
            "detections": [int(d["boxes"].shape[0]) for d in detections]}
    (OUT / "meta.json").write_text(json.dumps(meta, indent=1) + "\n")
    print(json.dumps(meta, indent=1))


if __name__ == "__main__":
    main()
