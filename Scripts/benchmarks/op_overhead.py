"""Per-op overhead of Python torch for the ops of Benchmarks/TorchOverhead (same shapes, same protocol)."""
import sys
import time

import torch

torch.set_num_threads(1)
iterations = int(sys.argv[1]) if len(sys.argv) > 1 else 20000
g = lambda seed, *shape: torch.randn(*shape, generator=torch.Generator().manual_seed(seed))
a, b, big, weight = g(0, 4, 4), g(1, 4, 4), g(2, 64, 256), g(3, 256, 256)
F = torch.nn.functional
cases = [
    ("add", lambda: a + b), ("mul_scalar", lambda: a * 2.0), ("matmul_4x4", lambda: a @ b), ("sigmoid", lambda: a.sigmoid()),
    ("sum", lambda: a.sum()), ("view", lambda: a.view(16)), ("slice_index", lambda: a[1:3, 0]), ("cat", lambda: torch.cat([a, b])),
    ("linear_64x256", lambda: F.linear(big, weight)), ("add_inplace", lambda: a.add_(0.0)),
]
print("op,microseconds_per_call")
with torch.no_grad():
    for name, body in cases:
        for _ in range(1000):
            body()
        runs = []
        for _ in range(5):
            start = time.perf_counter_ns()
            for _ in range(iterations):
                body()
            runs.append((time.perf_counter_ns() - start) / iterations / 1000)
        print(f"{name},{sorted(runs)[2]:.3f}")
