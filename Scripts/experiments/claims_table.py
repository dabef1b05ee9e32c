"""The claim benchmark's tables (Scripts/experiments/claims.sh): per configuration the AP, AP50 and AP50
after the middle epoch over its seeds (mean ± sample standard deviation), the median training speed;
then each claim with its verdict, and one AP50-per-epoch chart per claim (convergence_chart.py).

A verdict compares the method's mean with the baseline's: "reproduced" when the difference is in the
paper's direction by more than twice its standard error (sqrt(s1²/n1 + s2²/n2)), "not reproduced"
when it is against it by as much, "within noise" otherwise; "not measured" while seeds are missing.

    python3 claims_table.py --folder runs/claims/shapes-256 --seeds "1 2 3" --epochs 6 --size 256
"""
import argparse
import json
import math
import pathlib
import statistics
import subprocess
import sys

HERE = pathlib.Path(__file__).resolve().parent

# (method, baseline, what the paper claims, the metric the claim is about)
CLAIMS = [
    ("smca-detr", "detr", "SMCA-DETR converges faster than DETR (Gao et al., ICCV 2021)", "ap50_mid"),
    ("smca-detr", "detr", "... and ends higher at equal epochs", "ap"),
    ("sd-detr", "conditional-detr", "Decoupling classification and localization queries adds AP (SD-DETR)", "ap"),
    ("focus-detr", "dino", "Focus-DETR keeps DINO's AP with a sparse encoder (Zheng et al., ICCV 2023)", "ap_equal"),
    ("focus-detr", "dino", "... and is faster (training images/s)", "speed"),
    ("dsa-retinanet", "retinanet", "Decoupled self-attention adds AP to RetinaNet (DSANet)", "ap"),
    ("dsa-retinanet-confidence", "retinanet", "DSA with the object-confidence task adds more", "ap"),
    ("deformable-detr", "detr", "Deformable DETR converges faster than DETR (Zhu et al., ICLR 2021)", "ap50_mid"),
    ("deformable-detr", "detr", "... and ends higher at equal epochs", "ap"),
    ("dino", "deformable-detr", "DINO beats Deformable DETR at equal epochs (Zhang et al., ICLR 2023)", "ap"),
]


def run_results(folder, epochs):
    """AP, AP50, AP50 after the middle epoch, the AP50 curve and the median speed of one finished run; None otherwise."""
    metrics = folder / "metrics.jsonl"
    if not metrics.exists():
        return None
    records = [json.loads(line) for line in open(metrics)]
    evaluations = [r for r in records if "ap50" in r and not any(k.startswith("ema_") for k in r)]
    if len(evaluations) < epochs:
        return None
    speeds = sorted(r["images_per_second"] for r in records if "images_per_second" in r)
    curve = [e["ap50"] for e in evaluations]
    return {"ap": evaluations[-1]["ap"], "ap50": evaluations[-1]["ap50"], "ap50_mid": curve[(epochs - 1) // 2],
            "curve": curve, "speed": speeds[len(speeds) // 2] if speeds else float("nan")}


def spread(values):
    mean = statistics.fmean(values)
    return mean, (statistics.stdev(values) if len(values) > 1 else float("nan"))


def verdict(method, baseline, metric):
    if len(method) < 2 or len(baseline) < 2:
        return "not measured (fewer than 2 seeds)", float("nan"), float("nan")
    key = "ap" if metric == "ap_equal" else metric
    (m1, s1), (m2, s2) = spread([r[key] for r in method]), spread([r[key] for r in baseline])
    difference = m1 - m2
    error = math.sqrt(s1 ** 2 / len(method) + s2 ** 2 / len(baseline))
    if metric == "ap_equal":  # the claim is "no worse": reproduced unless clearly lower
        return ("not reproduced" if difference < -2 * error else "reproduced"), difference, error
    if difference > 2 * error:
        return "reproduced", difference, error
    if difference < -2 * error:
        return "not reproduced", difference, error
    return "within noise", difference, error


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--folder", required=True)
    parser.add_argument("--seeds", required=True)
    parser.add_argument("--epochs", type=int, required=True)
    parser.add_argument("--size", type=int, default=256)
    args = parser.parse_args()
    folder, seeds = pathlib.Path(args.folder), args.seeds.split()
    names = sorted({p.name.rsplit("-seed", 1)[0] for p in folder.glob("*-seed*") if p.is_dir()})
    results = {name: [r for s in seeds if (r := run_results(folder / f"{name}-seed{s}", args.epochs))] for name in names}

    print(f"# Claim benchmark: shapes-{args.size}, {args.epochs} epochs, seeds {args.seeds}\n")
    print("| configuration | seeds done | AP | AP50 | AP50 after epoch", (args.epochs + 1) // 2, "| training images/s |")
    print("| --- | --- | --- | --- | --- | --- |")
    for name in names:
        done = results[name]
        if not done:
            print(f"| {name} | 0 | | | | |")
            continue
        cells = []
        for key in ("ap", "ap50", "ap50_mid", "speed"):
            mean, std = spread([r[key] for r in done])
            digits = 1 if key == "speed" else 3
            cells.append(f"{mean:.{digits}f}" + ("" if math.isnan(std) else f" ± {std:.{digits}f}"))
        print(f"| {name} | {len(done)} | " + " | ".join(cells) + " |")

    print("\n| claim | method vs baseline | measure | difference (± standard error) | verdict |")
    print("| --- | --- | --- | --- | --- |")
    for method, baseline, claim, metric in CLAIMS:
        outcome, difference, error = verdict(results.get(method, []), results.get(baseline, []), metric)
        measure = {"ap": "AP", "ap50_mid": f"AP50 after epoch {(args.epochs + 1) // 2}", "ap_equal": "AP (no worse)",
                   "speed": "training images/s"}[metric]
        shown = "" if math.isnan(difference) else f"{difference:+.3f} ± {error:.3f}"
        print(f"| {claim} | {method} vs {baseline} | {measure} | {shown} | {outcome} |")

    for method, baseline in sorted({(m, b) for m, b, _, _ in CLAIMS}):
        runs = [f"{name} seed {s}={folder}/{name}-seed{s}/metrics.jsonl" for name in (baseline, method) for s in seeds
                if run_results(folder / f"{name}-seed{s}", args.epochs)]
        if runs:
            subprocess.run([sys.executable, str(HERE / "convergence_chart.py"), "--title", f"AP50 after each epoch: {method} vs {baseline}",
                            "--output", str(folder / f"{method}-vs-{baseline}.svg"), *runs], check=True)


if __name__ == "__main__":
    main()
