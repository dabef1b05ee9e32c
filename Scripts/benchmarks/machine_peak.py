"""What this CPU does at best with libtorch, as the yardstick for the detectors' FLOP rates: float32
matrix products (2048 x 2048) and a 3x3 convolution (256 -> 256 channels, 128 x 128), both at the given
thread count, best of 5. Prints one JSON line with GFLOP/s.

    python machine_peak.py --threads 2
"""
import argparse
import json
import time

import torch
import torch.nn.functional as F

parser = argparse.ArgumentParser()
parser.add_argument("--threads", type=int, default=2)
args = parser.parse_args()
torch.set_num_threads(args.threads)


def best_rate(flops, function, repeats=5):
    function()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        best = min(best, time.perf_counter() - start)
    return flops / best / 1e9


a, b = torch.randn(2048, 2048), torch.randn(2048, 2048)
x, w = torch.randn(1, 256, 128, 128), torch.randn(256, 256, 3, 3)
with torch.inference_mode():
    print(json.dumps({
        "threads": args.threads,
        "matmul_gflops": best_rate(2 * 2048**3, lambda: a @ b),
        "conv3x3_gflops": best_rate(2 * 256 * 256 * 9 * 128 * 128, lambda: F.conv2d(x, w, padding=1)),
    }))
