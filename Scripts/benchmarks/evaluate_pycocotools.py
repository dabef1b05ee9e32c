"""Times pycocotools on a COCO ground-truth file and results file (load, evaluate, accumulate, summarize)."""
import contextlib
import io
import json
import sys
import time

from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

start = time.perf_counter()
with contextlib.redirect_stdout(io.StringIO()):
    coco = COCO(sys.argv[1])
    evaluator = COCOeval(coco, coco.loadRes(sys.argv[2]), "bbox")
    evaluator.evaluate()
    evaluator.accumulate()
    evaluator.summarize()
elapsed = time.perf_counter() - start
print(json.dumps({"seconds": elapsed, "stats": list(evaluator.stats)}))
