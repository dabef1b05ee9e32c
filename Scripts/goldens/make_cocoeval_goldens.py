"""Writes COCOEval parity fixtures: random ground truth and detections, and pycocotools' results.

Run: "$(Scripts/reference-env.sh)" Scripts/goldens/make_cocoeval_goldens.py
Writes Tests/COCOEvalTests/Goldens/<problem>.{gt,dt,expected}.json. Each expected file records the
pycocotools version, this script, the 12 stats and the per-category AP (area all, 100 detections).

The problems cover: hundreds of images, many categories, crowd boxes, all three area ranges,
images without ground truth, images without detections, categories without either, tied scores,
boxes that touch or miss, more than 100 detections in an image, and a ground-truth id of 0
(pycocotools treats a match to it as no match; so do we).
"""
import contextlib
import io
import json
import pathlib
import random
from importlib.metadata import version

from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

ROOT = pathlib.Path(__file__).resolve().parents[2]
OUT = ROOT / "Tests/COCOEvalTests/Goldens"


def box(rng, width, height, scale):
    w = max(1.0, rng.uniform(0.5, 1.5) * scale)
    h = max(1.0, rng.uniform(0.5, 1.5) * scale)
    x = rng.uniform(0, max(1.0, width - w))
    y = rng.uniform(0, max(1.0, height - h))
    return [round(x, 2), round(y, 2), round(w, 2), round(h, 2)]


def problem(seed, images, categories, zero_id=False, many=False):
    rng = random.Random(seed)
    cats = [{"id": c, "name": f"class{c}", "supercategory": "shape"} for c in sorted(rng.sample(range(1, 3 * categories), categories))]
    gt_images, annotations, detections = [], [], []
    next_id = 0 if zero_id else 1
    for index in range(images):
        image_id = 1000 + index * 3
        width, height = rng.choice([(640, 480), (320, 240), (800, 600), (200, 500)])
        gt_images.append({"id": image_id, "width": width, "height": height, "file_name": f"{image_id}.jpg"})
        has_gt = rng.random() > 0.08
        truths = []
        for _ in range(rng.randint(1, 12) if has_gt else 0):
            cat = rng.choice(cats[:-1])["id"]  # the last category never has ground truth
            scale = rng.choice([12, 24, 40, 70, 120, 200])
            b = box(rng, width, height, scale)
            crowd = 1 if rng.random() < 0.06 else 0
            area = b[2] * b[3] * rng.uniform(0.6, 1.0)  # segmentation area, not the box area, as COCO has
            annotations.append({"id": next_id, "image_id": image_id, "category_id": cat, "bbox": b, "area": round(area, 3), "iscrowd": crowd})
            truths.append((cat, b))
            next_id += 1
        if rng.random() < 0.07:
            continue  # no detections for this image
        count = rng.randint(0, 25) if not (many and index % 17 == 0) else 130
        for _ in range(count):
            if truths and rng.random() < 0.6:
                cat, b = rng.choice(truths)
                jitter = [v + rng.gauss(0, 0.04 * max(b[2], b[3])) for v in b]
                jitter[2], jitter[3] = max(0.5, jitter[2]), max(0.5, jitter[3])
                if rng.random() < 0.1:
                    cat = rng.choice(cats)["id"]
                d = [round(v, 2) for v in jitter]
            else:
                cat = rng.choice(cats)["id"]
                d = box(rng, width, height, rng.choice([8, 20, 50, 100, 180]))
            score = round(rng.random(), 2) if rng.random() < 0.5 else rng.random()  # many exact ties
            detections.append({"image_id": image_id, "category_id": cat, "bbox": d, "score": score})
    return {"images": gt_images, "annotations": annotations, "categories": cats}, detections


def evaluate(name, gt, dt):
    (OUT / f"{name}.gt.json").write_text(json.dumps(gt, separators=(",", ":")))
    (OUT / f"{name}.dt.json").write_text(json.dumps(dt, separators=(",", ":")))
    with contextlib.redirect_stdout(io.StringIO()) as printed:
        coco = COCO(str(OUT / f"{name}.gt.json"))
        results = coco.loadRes(str(OUT / f"{name}.dt.json"))
        evaluator = COCOeval(coco, results, "bbox")
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    precision = evaluator.eval["precision"]
    per_category = {}
    for k, cat in enumerate(evaluator.params.catIds):
        p = precision[:, :, k, 0, -1]
        p = p[p > -1]
        per_category[str(cat)] = float(p.mean()) if p.size else -1.0
    summary = [line for line in printed.getvalue().splitlines() if line.startswith(" Average")]
    expected = {"script": "Scripts/goldens/make_cocoeval_goldens.py", "pycocotools": version("pycocotools"),
                "stats": [float(s) for s in evaluator.stats], "per_category": per_category, "summary": summary}
    (OUT / f"{name}.expected.json").write_text(json.dumps(expected, indent=1))
    print(name, ["%.6f" % s for s in evaluator.stats])


if __name__ == "__main__":
    OUT.mkdir(parents=True, exist_ok=True)
    evaluate("main", *problem(1, 400, 24, many=True))
    evaluate("zero_id", *problem(2, 60, 5, zero_id=True))
    evaluate("sparse", *problem(3, 150, 40))
