"""Writes a full-size checkpoint of the official DINO or Focus-DETR (R50 4-scale, 80 classes, random
weights) as the official code saves it (`{'model': state_dict}` .pth, heads listed under two names),
an image (PNG) and the official detections of it, to check checkpoint conversion end to end:

    PYTHONPATH=Scripts/reference/detrex "$(Scripts/reference/detrex/env.sh)" Scripts/reference/detrex/make_checkpoint.py dino dino.pth
    .build/release/detr convert dino.pth --family dino --output weights/dino-check
    .build/release/detr predict --weights weights/dino-check dino.pth.png --size 320 --max-size 480 --threshold 0 --max-detections 5

The last command's scores, classes (as COCO ids) and boxes should be the printed ones.
"""
import pathlib
import sys

import detrex_cpu  # noqa: F401  (must come first)

import torch
from detectron2.config import LazyConfig, instantiate
from PIL import Image

COCO_IDS = [i for i in range(1, 91) if i not in (12, 26, 29, 30, 45, 66, 68, 69, 71, 83)]

arch, output = sys.argv[1].replace("-", "_"), sys.argv[2]
cfg = LazyConfig.load(str(pathlib.Path(detrex_cpu.SRC) / f"detrex/projects/{arch}/configs/models/{arch}_r50.py"))
cfg.model.device = "cpu"
torch.manual_seed(0)
model = instantiate(cfg.model)
torch.save({"model": model.state_dict()}, output)
image = torch.randint(0, 256, (3, 320, 480), generator=torch.Generator().manual_seed(5)).float()
Image.fromarray(image.permute(1, 2, 0).to(torch.uint8).numpy()).save(output + ".png")
model.eval()
with torch.no_grad():
    found = model([{"image": image, "height": 320, "width": 480}])[0]["instances"]
for score, label, box in list(zip(found.scores, found.pred_classes, found.pred_boxes.tensor))[:5]:
    x0, y0, x1, y1 = box.tolist()
    print(f"score {score:.5f}  category {COCO_IDS[label]}  box (x, y, w, h) {x0:.1f} {y0:.1f} {x1 - x0:.1f} {y1 - y0:.1f}")
