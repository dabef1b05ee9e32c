"""What the reference benchmarks share: the options of `detr benchmark` they take, and the timing they
print (2 warm-up calls of `step`, then `iterations` timed ones; one JSON line with latency p50/p95 in
ms, images/s and the process's peak RSS in MiB, the fields `detr benchmark --json` writes)."""
import argparse
import json
import resource
import statistics
import time


def parse_benchmark_arguments(parser=None):
    """Adds the options every reference benchmark takes to `parser` (a new one if none), parses them,
    and sets torch's thread count and seed from them."""
    import torch

    parser = parser or argparse.ArgumentParser()
    parser.add_argument("--image-size", type=int, default=512, help="height (and width unless --image-width)")
    parser.add_argument("--image-width", type=int)
    parser.add_argument("--batch-size", type=int, default=1)
    parser.add_argument("--iterations", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--train", action="store_true")
    parser.add_argument("--flops-only", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    return args


def training_step(parameters, loss, learning_rate):
    """A training step as both sides time it: `loss()`, backward, gradient clipping at 0.1, AdamW (weight
    decay 1e-4) over the parameters that require gradients."""
    import torch

    trainable = [p for p in parameters if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=learning_rate, weight_decay=1e-4)

    def step():
        value = loss()
        optimizer.zero_grad()
        value.backward()
        torch.nn.utils.clip_grad_norm_(trainable, 0.1)
        optimizer.step()

    return step


def print_flops(model, forward, part, suffixes):
    """Prints one JSON line: the FLOPs of one inference (`forward()`) as torch's FlopCounterMode counts
    them, in all and, as `part`, in the modules whose names end with one of `suffixes`."""
    from torch.utils.flop_counter import FlopCounterMode

    model.eval()
    with FlopCounterMode(display=False) as counter:  # module tracking needs autograd on
        forward()
    per_module = {name: sum(ops.values()) for name, ops in counter.get_flop_counts().items()}
    print(json.dumps({"flops": counter.get_total_flops(), part: sum(v for k, v in per_module.items() if k.endswith(suffixes))}))


def print_timing(step, iterations, batch_size, synchronize=lambda: None):
    """`synchronize` waits for queued GPU work, so that each time covers its own step (as `detr benchmark`)."""
    for _ in range(2):
        step()
    synchronize()
    times = []
    for _ in range(iterations):
        start = time.perf_counter()
        step()
        synchronize()
        times.append((time.perf_counter() - start) * 1000)
    times.sort()
    print(json.dumps({
        "latency_ms_p50": statistics.median(times), "latency_ms_p95": times[min(len(times) - 1, int(len(times) * 0.95 + 0.999) - 1)],
        "images_per_second": batch_size / (sum(times) / len(times) / 1000),
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
