"""Scores during training, per model: the mean over seeds of each ``eval/`` column of the
runs' ``log/metrics.csv`` against the step, one panel per score (the thin lines are the
seeds). Used for docs/results.md::

    python examples/results/study_curves.py studies/qlae2023_mini \\
        docs/images/qlae2023_mini_curves.png
"""

from __future__ import annotations

import argparse
import csv
import json
from collections import defaultdict
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

SCORES = {"infomec.infom": "InfoM", "infomec.infoe": "InfoE", "infomec.infoc": "InfoC",
          "dci.disentanglement": "DCI-D", "mig": "MIG"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("study", type=Path)
    parser.add_argument("out", type=Path)
    args = parser.parse_args()
    curves: dict[str, dict[str, dict[int, dict[int, float]]]] = defaultdict(
        lambda: defaultdict(lambda: defaultdict(dict)))  # model → score → seed → step → value
    models: list[str] = []
    for run in sorted((args.study / "runs").glob("run-*")):
        config = json.loads((run / "config.json").read_text())
        model, seed = config["model"], config["seed"]
        if model not in models:
            models.append(model)
        with (run / "log" / "metrics.csv").open() as fh:
            for row in csv.DictReader(fh):
                for column, value in row.items():
                    if column.startswith("eval/") and value:
                        key = column.split("/", 2)[2]
                        if key in SCORES:
                            curves[model][key][seed][int(row["step"])] = float(value)
    fig, axes = plt.subplots(1, len(SCORES), figsize=(3.2 * len(SCORES), 3.0), sharex=True)
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for ax, (key, label) in zip(axes, SCORES.items(), strict=True):
        for colour, model in zip(colours, models, strict=False):
            seeds = curves[model][key]
            steps = sorted(set().union(*[s.keys() for s in seeds.values()]))
            for per_step in seeds.values():
                ax.plot(sorted(per_step), [per_step[s] for s in sorted(per_step)],
                        color=colour, lw=0.6, alpha=0.35)
            mean = [sum(seeds[s][t] for s in seeds if t in seeds[s])
                    / sum(1 for s in seeds if t in seeds[s]) for t in steps]
            ax.plot(steps, mean, color=colour, lw=2, label=model)
        ax.set_title(label)
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out, dpi=110)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
