"""Draws a metric per epoch of several training runs as one SVG line chart (standard library only):
AP50 after each epoch, or a training loss term (e.g. loss_giou) averaged over each epoch's logged steps.

    python3 convergence_chart.py --title T --output chart.svg [--metric loss_giou] "label=run/metrics.jsonl" ...

Runs whose label starts with the same word (the model) share a colour; later seeds are dashed.
"""
import argparse
import json

COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e")


def curve(path, metric="ap50"):
    """The metric per epoch: the evaluation's value after each epoch, or a loss term's mean over the epoch."""
    records = [json.loads(line) for line in open(path)]
    if metric == "ap50":
        return [record["ap50"] for record in records if "ap50" in record]
    epochs = {}
    for record in records:
        if metric in record and "loss" in record:
            epochs.setdefault(record["epoch"], []).append(record[metric])
    return [sum(values) / len(values) for _, values in sorted(epochs.items())]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--title", required=True)
    parser.add_argument("--output", required=True)
    parser.add_argument("--metric", default="ap50", help="ap50, or a training loss term such as loss_giou")
    parser.add_argument("runs", nargs="+", help="label=metrics.jsonl")
    args = parser.parse_args()
    runs = [(label, curve(path, args.metric)) for label, path in (run.split("=", 1) for run in args.runs)]
    epochs = max(len(values) for _, values in runs)
    width, height, left, right, top, bottom = 640, 400, 56, 170, 40, 48
    plot_w, plot_h = width - left - right, height - top - bottom
    top_value = max(0.1, max(max(values, default=0) for _, values in runs))
    top_value = (int(top_value * 10) + 1) / 10
    if args.metric == "ap50":
        top_value = min(1.0, top_value)
    x = lambda epoch: left + plot_w * (epoch - 1) / max(1, epochs - 1)
    y = lambda value: top + plot_h * (1 - value / top_value)
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" font-size="12">',
             f'<rect width="{width}" height="{height}" fill="white"/>',
             f'<text x="{width / 2}" y="22" text-anchor="middle" font-size="14">{args.title}</text>']
    for tick in range(int(top_value * 10) + 1):
        value = tick / 10
        parts.append(f'<line x1="{left}" x2="{left + plot_w}" y1="{y(value):.1f}" y2="{y(value):.1f}" stroke="#ddd"/>')
        parts.append(f'<text x="{left - 6}" y="{y(value) + 4:.1f}" text-anchor="end">{value:.1f}</text>')
    for epoch in range(1, epochs + 1):
        parts.append(f'<text x="{x(epoch):.1f}" y="{top + plot_h + 18}" text-anchor="middle">{epoch}</text>')
    parts.append(f'<text x="{left + plot_w / 2}" y="{height - 8}" text-anchor="middle">epoch</text>')
    parts.append(f'<text x="14" y="{top + plot_h / 2}" text-anchor="middle" transform="rotate(-90 14 {top + plot_h / 2})">{args.metric.upper() if args.metric == "ap50" else args.metric}</text>')
    models, seen = [], {}
    for index, (label, values) in enumerate(runs):
        model = label.split()[0]
        if model not in models:
            models.append(model)
        colour = COLOURS[models.index(model) % len(COLOURS)]
        dash = ' stroke-dasharray="6 4"' if seen.get(model) else ""
        seen[model] = True
        points = " ".join(f"{x(epoch + 1):.1f},{y(value):.1f}" for epoch, value in enumerate(values))
        parts.append(f'<polyline points="{points}" fill="none" stroke="{colour}" stroke-width="2"{dash}/>')
        legend_y = top + 16 + 18 * index
        parts.append(f'<line x1="{left + plot_w + 12}" x2="{left + plot_w + 36}" y1="{legend_y - 4}" y2="{legend_y - 4}" '
                     f'stroke="{colour}" stroke-width="2"{dash}/>')
        parts.append(f'<text x="{left + plot_w + 42}" y="{legend_y}">{label}</text>')
    parts.append("</svg>")
    open(args.output, "w").write("\n".join(parts) + "\n")


if __name__ == "__main__":
    main()
