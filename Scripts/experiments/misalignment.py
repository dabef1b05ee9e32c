"""The misalignment SD-DETR's paper motivates its alignment loss with: among the detections scored
above a threshold, the share whose best IoU with a ground-truth box of the same image and category is
below 0.5 (confident but badly localized). Prints "share | confident detections".

    python3 misalignment.py GT.json DETECTIONS.json [--score 0.5] [--iou 0.5]
"""
import argparse
import json
from collections import defaultdict


def iou(a, b):
    """IoU of two COCO (x, y, w, h) boxes."""
    ix = max(0.0, min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = a[2] * a[3] + b[2] * b[3] - inter
    return inter / union if union > 0 else 0.0


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("ground_truth")
    parser.add_argument("detections")
    parser.add_argument("--score", type=float, default=0.5)
    parser.add_argument("--iou", type=float, default=0.5)
    args = parser.parse_args()
    truth = defaultdict(list)
    for annotation in json.load(open(args.ground_truth))["annotations"]:
        truth[(annotation["image_id"], annotation["category_id"])].append(annotation["bbox"])
    confident = [d for d in json.load(open(args.detections)) if d["score"] > args.score]
    misaligned = sum(
        1 for d in confident if max((iou(d["bbox"], box) for box in truth[(d["image_id"], d["category_id"])]), default=0.0) < args.iou)
    share = f"{misaligned / len(confident):.3f}" if confident else "n/a"
    print(f"{share} | {len(confident)}")


if __name__ == "__main__":
    main()
