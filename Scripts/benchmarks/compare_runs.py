"""One row of a side-by-side benchmark table from the JSON lines of both sides' rounds (the fields
`detr benchmark --json` and step_timing.py write): the median of each side's p50, their ratio
(reference / ours: above 1 means swift-detr is faster), each round's ratio, the largest peak memory
of each side, and the reference's GFLOP (total, and of the part the family changes).

    python3 compare_runs.py NAME '[reference runs]' '[our runs]' '{"flops": F, "encoder_flops": E}' encoder_flops
"""
import json
import statistics
import sys

name, theirs, ours, flops, part = sys.argv[1], json.loads(sys.argv[2]), json.loads(sys.argv[3]), json.loads(sys.argv[4]), sys.argv[5]
reference_ms = statistics.median(run["latency_ms_p50"] for run in theirs)
ours_ms = statistics.median(run["latency_ms_p50"] for run in ours)
rounds = "/".join(f"{a['latency_ms_p50'] / b['latency_ms_p50']:.2f}" for a, b in zip(theirs, ours))
print(f"{name:26s} {reference_ms:12.0f} {ours_ms:12.0f} {reference_ms / ours_ms:8.2f} {rounds:17s} "
      f"{max(run['peak_rss_mib'] for run in theirs):10.0f} {max(run['peak_rss_mib'] for run in ours):10.0f} "
      f"{flops['flops'] / 1e9:8.1f} {flops[part] / 1e9:10.1f}")
