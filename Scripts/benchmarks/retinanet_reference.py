"""Times the reference RetinaNets' networks on the CPU (backbone, pyramid, head) on a ready batch, random
weights; with --with-post-processing also anchors, decoding and NMS. The comparison uses the network:
neither reference's compiled NMS runs here, and the plain Python NMS that stands in for it
(Scripts/reference/dsa/mmcv_ext_stub.py) would time Python, not the method.
  --model retinanet:      torchvision 0.28's retinanet_resnet50_fpn (91 classes), its parts called on an
                          ImageList of the batch (GeneralizedRCNNTransform's resize skipped);
  --model dsa-retinanet:  the authors' DSANet fork (mmdet 2.4): RetinaNet R50 with DSA on P4-P7 and the
                          object-confidence output (80 classes), extract_feat + bbox_head + get_bboxes.
Prints one JSON line (step_timing.print_timing), or with --flops-only the GFLOP of one inference and of
the pyramid ("neck_flops").

Run: "$(Scripts/reference/dsa/env.sh)" Scripts/benchmarks/retinanet_reference.py --model retinanet --image-size 512
"""
import argparse
import pathlib
import sys

ROOT = pathlib.Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT / ".venv-dsa/src/DSANet"), str(ROOT / "Scripts/reference/detrex"), str(ROOT / "Scripts/reference/dsa"),
                str(ROOT / "Scripts/benchmarks")]
import tv_cpu_shim  # noqa: F401,E402
import mmcv_ext_stub  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402
from step_timing import parse_benchmark_arguments, print_flops, print_timing  # noqa: E402


def torchvision_model(height, width, batch):
    import torchvision
    from torchvision.models.detection import retinanet_resnet50_fpn
    from torchvision.models.detection.image_list import ImageList
    from torchvision.ops import boxes as box_ops

    def plain_batched_nms(boxes, scores, idxs, iou_threshold):
        if boxes.numel() == 0:
            return torch.zeros(0, dtype=torch.int64)
        offsets = idxs.to(boxes) * (boxes.max() + 1)
        return mmcv_ext_stub.pure_nms(boxes + offsets[:, None], scores, iou_threshold)[1]

    box_ops.batched_nms = plain_batched_nms
    torchvision.models.detection.retinanet.box_ops.batched_nms = plain_batched_nms
    model = retinanet_resnet50_fpn(weights=None, weights_backbone=None, num_classes=91).eval()
    images = torch.randn(batch, 3, height, width)
    sizes = [(height, width)] * batch

    def forward(post_processing):
        features = list(model.backbone(images).values())
        outputs = model.head(features)
        if post_processing:
            anchors = model.anchor_generator(ImageList(images, sizes), features)
            counts = [x.size(2) * x.size(3) * 9 for x in features]
            split = {k: list(v.split(counts, dim=1)) for k, v in outputs.items()}
            return model.postprocess_detections(split, [list(a.split(counts)) for a in anchors], sizes)
        return outputs

    return model, forward, ("BackboneWithFPN.fpn",)


def dsa_model(height, width, batch):
    from mmcv import Config
    from mmdet.models import build_detector

    mmcv_ext_stub.patch_ops()
    cfg = Config.fromfile(str(ROOT / ".venv-dsa/src/DSANet/configs/retinanet/retinanet_r50_fpn_1x_coco.py"))
    cfg.model.pretrained = None
    model = build_detector(cfg.model, train_cfg=cfg.train_cfg, test_cfg=cfg.test_cfg)
    model.init_weights()
    model.eval()
    images = torch.randn(batch, 3, height, width)
    metas = [dict(img_shape=(height, width, 3), ori_shape=(height, width, 3), pad_shape=(height, width, 3),
                  scale_factor=np.ones(4, dtype=np.float32), flip=False, batch_input_shape=(height, width))] * batch

    def forward(post_processing):
        outputs = model.bbox_head(model.extract_feat(images))
        return model.bbox_head.get_bboxes(*outputs, metas, rescale=False) if post_processing else outputs

    return model, forward, ("FPN",)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", choices=["retinanet", "dsa-retinanet"], default="retinanet")
    parser.add_argument("--with-post-processing", action="store_true")
    args = parse_benchmark_arguments(parser)
    if args.train:
        sys.exit("retinanet_reference.py times inference only")
    height, width = args.image_size, args.image_width or args.image_size
    build = torchvision_model if args.model == "retinanet" else dsa_model
    model, forward, neck = build(height, width, args.batch_size)
    if args.flops_only:
        print_flops(model, lambda: forward(False), "neck_flops", neck)
    else:
        def step():
            with torch.no_grad():
                forward(args.with_post_processing)
        print_timing(step, args.iterations, args.batch_size)


if __name__ == "__main__":
    main()
