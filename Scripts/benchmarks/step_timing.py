"""The timing both reference benchmarks print: 2 warm-up calls of `step`, then `iterations` timed
ones; one JSON line with latency p50/p95 in ms, images/s and the process's peak RSS in MiB, the
fields `detr benchmark --json` writes."""
import json
import resource
import statistics
import time


def print_timing(step, iterations, batch_size):
    for _ in range(2):
        step()
    times = []
    for _ in range(iterations):
        start = time.perf_counter()
        step()
        times.append((time.perf_counter() - start) * 1000)
    times.sort()
    print(json.dumps({
        "latency_ms_p50": statistics.median(times), "latency_ms_p95": times[min(len(times) - 1, int(len(times) * 0.95 + 0.999) - 1)],
        "images_per_second": batch_size / (sum(times) / len(times) / 1000),
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
