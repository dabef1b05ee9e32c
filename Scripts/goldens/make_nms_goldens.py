"""Golden keep lists of class-wise greedy NMS for the Detection tests, from a plain reference NMS
written here in torch (the O(n^2) greedy loop that torchvision's and mmcv's kernels implement: boxes
in stable descending score order, a box dropped when its IoU with a kept box of its class exceeds the
threshold). Random boxes with tied scores (quantized), duplicates and degenerate (zero-width or
zero-height) boxes, one or several classes, several thresholds, and an empty input.

Run: "$(Scripts/reference-env.sh)" Scripts/goldens/make_nms_goldens.py
"""
import pathlib

import torch
from safetensors.torch import save_file

OUT = pathlib.Path(__file__).resolve().parents[2] / "Tests/DetectionTests/Goldens"


def plain_nms(boxes, scores, classes, threshold):
    order = torch.argsort(scores, descending=True, stable=True).tolist()
    b = boxes.double().tolist()
    keep, suppressed = [], set()
    for rank, i in enumerate(order):
        if i in suppressed:
            continue
        keep.append(i)
        for j in order[rank + 1:]:
            if j in suppressed or classes[j] != classes[i]:
                continue
            w = max(0.0, min(b[i][2], b[j][2]) - max(b[i][0], b[j][0]))
            h = max(0.0, min(b[i][3], b[j][3]) - max(b[i][1], b[j][1]))
            inter = w * h
            union = (b[i][2] - b[i][0]) * (b[i][3] - b[i][1]) + (b[j][2] - b[j][0]) * (b[j][3] - b[j][1]) - inter
            if union > 0 and inter / union > threshold:
                suppressed.add(j)
    return torch.tensor(keep, dtype=torch.int64)


def random_case(generator, count, class_count):
    corner = torch.rand(count, 2, generator=generator) * 100
    size = torch.rand(count, 2, generator=generator) * 40 + 1
    boxes = torch.cat([corner, corner + size], 1)
    # Degenerate boxes (zero width or height) and exact duplicates.
    boxes[: count // 10, 2] = boxes[: count // 10, 0]
    boxes[count // 10: count // 5, 3] = boxes[count // 10: count // 5, 1]
    boxes[count // 5: count // 4] = boxes[count // 4: count // 4 + (count // 4 - count // 5)]
    # Tied scores: quantized to tenths.
    scores = (torch.rand(count, generator=generator) * 10).floor() / 10
    classes = torch.randint(0, class_count, (count,), generator=generator)
    return boxes, scores, classes


def main():
    generator = torch.Generator().manual_seed(11)
    tensors, names = {}, []
    for name, count, class_count in [("one_class", 150, 1), ("five_classes", 300, 5), ("many_classes", 400, 40)]:
        boxes, scores, classes = random_case(generator, count, class_count)
        for threshold in (0.3, 0.5, 0.7):
            case = f"{name}_{int(threshold * 10)}"
            names.append(case)
            tensors[f"{case}.boxes"], tensors[f"{case}.scores"] = boxes.clone(), scores.clone()
            tensors[f"{case}.classes"] = classes.clone()
            tensors[f"{case}.threshold"] = torch.tensor([threshold], dtype=torch.float64)
            tensors[f"{case}.keep"] = plain_nms(boxes, scores, classes.tolist(), threshold)
    names.append("empty")
    tensors["empty.boxes"], tensors["empty.scores"] = torch.zeros(0, 4), torch.zeros(0)
    tensors["empty.classes"], tensors["empty.threshold"] = torch.zeros(0, dtype=torch.int64), torch.tensor([0.5], dtype=torch.float64)
    tensors["empty.keep"] = torch.zeros(0, dtype=torch.int64)
    save_file(tensors, str(OUT / "nms.safetensors"),
              metadata={"script": "Scripts/goldens/make_nms_goldens.py", "torch": torch.__version__, "cases": ",".join(names)})


if __name__ == "__main__":
    main()
