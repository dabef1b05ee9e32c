"""Prints a training run's validation results as one line: AP50 after each epoch (space-separated),
then the final AP and AP50, separated by " | " (a row of a Markdown table).

    python3 run_summary.py runs/focus-vs-dino/dino-seed42/metrics.jsonl
"""
import json
import sys

evaluations = [json.loads(line) for line in open(sys.argv[1]) if '"ap50"' in line]
if not evaluations:
    sys.exit(f"{sys.argv[1]}: no evaluation recorded")
curve = " ".join(f"{record['ap50']:.3f}" for record in evaluations)
print(f"{curve} | {evaluations[-1]['ap']:.3f} | {evaluations[-1]['ap50']:.3f}")
