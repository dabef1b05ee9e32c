"""Training parity over many steps for the dense detectors: torchvision 0.28's RetinaNet and the DSA fork
(chenzuge1/DSANet 70ade58, an mmdetection 2.4.0 fork, with DSA on P4-P7 and the object confidence)
trained for 60 steps from their fresh initialization on the fixed batches of
Tests/TrainingTests/Fixtures/training_parity/batches.safetensors (make_training_parity_goldens.py's),
for Tests/TrainingTests/Fixtures/training_parity/{retinanet_torchvision,dsa}/.

The recipe is the DSA fork's (configs/_base_/schedules/schedule_1x.py with the RetinaNet config's
optimizer): SGD with momentum 0.9, learning rate 0.01, weight decay 1e-4 on every trainable parameter,
a linear warmup from 0.001 over 500 iterations (mmcv's `warmup='linear'`, so 60 steps stay in it), no
gradient clipping; the loss is the sum of the model's terms (torchvision: classification and
bbox_regression; the fork: loss_cls, loss_bbox, loss_iou summed over the levels). torchvision's own
detection recipe warms up over 1,000 iterations instead; it is given the same schedule here, since
swift-detr's RetinaNet recipe is one. Frozen parts as each trains them: torchvision's backbone with
FrozenBatchNorm2d (ε 0) everywhere and conv1 + layer1 frozen (trainable_layers=3); the fork's ResNet
with frozen_stages=1 and norm_eval (the statistics fixed, the batch-norm scales and shifts trained).

The models: make_retinanet_torchvision_goldens.py's (ResNet of BasicBlocks 8/16/32/64, pyramid and head
32 wide, 9 anchors, 5 classes) and make_dsa_goldens.py's (ResNet-18 at 8 base channels, 32 wide, 5
classes), seed 0, unperturbed. Each image's boxes in its own pixels; the batch padded to 96x128 with
zeros, as swift-detr pads it; the fork's valid anchors from each image's size rounded up to 32 (its Pad).

Run: "$(Scripts/reference/dsa/env.sh)" Scripts/goldens/make_dense_training_parity_goldens.py
"""
import copy
import json
import pathlib
import sys

ROOT = pathlib.Path(__file__).resolve().parents[2]
SOURCES = ROOT / ".venv-dsa/src/DSANet"
sys.path[:0] = [str(ROOT / "Scripts/goldens"), str(SOURCES), str(ROOT / "Scripts/reference/detrex"), str(ROOT / "Scripts/reference/dsa")]
import tv_cpu_shim  # noqa: F401,E402  (torchvision without its compiled ops; before mmdet)
import mmcv_ext_stub  # noqa: F401,E402  (the compiled mmcv ops in plain torch)

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torchvision  # noqa: E402
from safetensors.torch import load_file, save_file  # noqa: E402

OUT = ROOT / "Tests/TrainingTests/Fixtures/training_parity"
STEPS = 60
LEARNING_RATE, WARMUP, WARMUP_RATIO = 0.01, 500, 0.001


def batches():
    """The stored batches: (images [2, 3, 96, 128], sizes, targets with absolute corner boxes)."""
    stored = load_file(str(OUT / "batches.safetensors"))
    made = []
    for index in range(8):
        images = stored[f"batch{index}.images"].float()
        sizes = [tuple(int(v) for v in s) for s in stored[f"batch{index}.sizes"]]
        targets = []
        for image, (h, w) in enumerate(sizes):
            # In float32 and in swift-detr's order of operations: IoU ties between anchors (mmdet assigns every
            # anchor at a box's best IoU) hang on the last bit of a coordinate.
            cx, cy, bw, bh = stored[f"batch{index}.targets{image}.boxes"].float().unbind(1)
            corners = torch.stack([cx - bw * 0.5, cy - bh * 0.5, cx + bw * 0.5, cy + bh * 0.5], dim=1) * torch.tensor([w, h, w, h]).float()
            targets.append({"boxes": corners, "labels": stored[f"batch{index}.targets{image}.labels"].long()})
        made.append((images, sizes, targets))
    return made


def train(model, loss_of, data, threads):
    torch.set_num_threads(threads)
    model = copy.deepcopy(model)
    model.train()
    parameters = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.SGD(parameters, lr=LEARNING_RATE, momentum=0.9, weight_decay=1e-4)
    history = []
    for step in range(STEPS):
        for group in optimizer.param_groups:  # mmcv's linear warmup
            group["lr"] = LEARNING_RATE * (1 - (1 - step / WARMUP) * (1 - WARMUP_RATIO))
        images, sizes, targets = data[step % len(data)]
        terms = loss_of(model, images, sizes, copy.deepcopy(targets))
        total = sum(terms.values())
        history.append({**{k: float(v) for k, v in terms.items()}, "total": float(total)})
        optimizer.zero_grad()
        total.backward()
        optimizer.step()
    return history


def torchvision_retinanet():
    from make_retinanet_torchvision_goldens import SmallResNet
    from torchvision.models.detection import RetinaNet
    from torchvision.models.detection.backbone_utils import BackboneWithFPN
    from torchvision.models.detection.image_list import ImageList
    from torchvision.models.detection.retinanet import RetinaNetHead
    from torchvision.ops.feature_pyramid_network import LastLevelP6P7
    torch.manual_seed(0)
    resnet = SmallResNet()
    for name, parameter in resnet.named_parameters():  # trainable_layers=3: layer2-4
        if not name.startswith(("layer2", "layer3", "layer4")):
            parameter.requires_grad_(False)
    backbone = BackboneWithFPN(resnet, {"layer2": "0", "layer3": "1", "layer4": "2"}, [16, 32, 64], 32,
                               extra_blocks=LastLevelP6P7(32, 32))
    model = RetinaNet(backbone, num_classes=5, head=RetinaNetHead(32, 9, 5))

    def loss_of(model, images, sizes, targets):
        features = list(model.backbone(images).values())
        anchors = model.anchor_generator(ImageList(images, sizes), features)
        losses = model.compute_loss(targets, model.head(features), anchors)
        return {"loss_cls": losses["classification"], "loss_bbox": losses["bbox_regression"]}
    return model, loss_of, f"torchvision {torchvision.__version__} RetinaNet"


def dsa():
    from make_dsa_goldens import small_model
    model = small_model()

    def loss_of(model, images, sizes, targets):
        height, width = images.shape[-2:]
        # pad_shape as mmdet's Pad(size_divisor=32) leaves each image before the batch is collated: its valid anchors.
        metas = [dict(img_shape=(h, w, 3), ori_shape=(h, w, 3), pad_shape=(-(-h // 32) * 32, -(-w // 32) * 32, 3),
                      scale_factor=np.ones(4, dtype=np.float32), flip=False, batch_input_shape=(height, width)) for h, w in sizes]
        losses = model.forward_train(images, metas, [t["boxes"] for t in targets], [t["labels"] for t in targets])
        return {key: sum(values) for key, values in losses.items()}
    return model, loss_of, "chenzuge1/DSANet 70ade58 (mmdet 2.4.0 fork)"


def main():
    data = batches()
    for name, build in [("retinanet_torchvision", torchvision_retinanet), ("dsa", dsa)]:
        model, loss_of, reference = build()
        folder = OUT / name
        folder.mkdir(parents=True, exist_ok=True)
        save_file({k: v.clone().contiguous() for k, v in model.state_dict().items() if not k.endswith("num_batches_tracked")},
                  str(folder / "initial.safetensors"))
        one, two = train(model, loss_of, data, 1), train(model, loss_of, data, 2)
        meta = {"script": "Scripts/goldens/make_dense_training_parity_goldens.py", "reference": reference, "torch": torch.__version__,
                "steps": STEPS, "batches": len(data), "one_thread": one, "two_threads": two}
        (folder / "losses.json").write_text(json.dumps(meta, indent=0) + "\n")
        spread = max(abs(a["total"] - b["total"]) for a, b in zip(one, two))
        print(f"{name}: total {one[0]['total']:.4f} → {one[-1]['total']:.4f}, 1 vs 2 threads at most {spread:.2e}")


if __name__ == "__main__":
    main()
