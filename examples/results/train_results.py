"""Train and score the models of docs/results.md side by side within a time budget.

Each model trains in its own ``disentkit train`` process, all at once (on one GPU they
share it). A short probe of ``--probe-steps`` steps measures each model's rate; each run
is then continued (``--resume --steps N``, an exact continuation) to as many steps as
fit in ``--minutes`` at that rate, rounded down to a multiple of 500, and scored with the
default metric suite (10,000 samples; ``--eval-mode``) and its report written. The runs'
``config.json`` files record everything needed to repeat a run alone:
``disentkit train --config RUN/config.json --run-dir NEW``.

Usage::

    python examples/results/train_results.py --out runs/results --minutes 5
    python examples/results/train_results.py --out runs/results --minutes 25 \
        --set data.image_size=32 --eval-mode fast          # what docs/results.md reports

Prints one JSON line per run (model, steps, steps/s, scores) and a Markdown table.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import time
from pathlib import Path

#: model → extra ``--set`` overrides (the same latent budget for every model)
MODELS: dict[str, list[str]] = {
    "qlae": ["model.n_latents=12"],
    "qlinfowgan_gp": ["model.n_latents=12"],
    "infowgan_gp": ["model.n_latents=12"],
    "fq_ae": ["model.n_codebooks=6"],
}
SCORES = ("infomec.infom", "infomec.infoc", "infomec.infoe", "dci.disentanglement",
          "dci.completeness", "dci.informativeness_test", "mig", "sap")


def _train(model: str, run: Path, steps: int, extra: list[str], *, resume: bool,
           evaluate: bool, log: Path, args: argparse.Namespace) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "disentkit", "train", "--run-dir", str(run),
           "--steps", str(steps), "--no-progress"]
    if resume:
        cmd.append("--resume")
    else:
        cmd += ["--model", model, "--data", args.data, "--batch-size", "64", "--seed", "0",
                "--checkpoint-every", "500", "--set", "log_every=100",
                "--set", "eval.n_samples=10000", "--set", f"eval.mode={args.eval_mode}"]
        for item in [*args.set, *extra]:
            cmd += ["--set", item]
    if not evaluate:
        cmd += ["--no-evaluate", "--no-report"]
    fh = open(log, "a")  # the child holds it; closed when it exits
    return subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT)


def _wait(procs: dict[str, subprocess.Popen], what: str) -> None:
    for name, proc in procs.items():
        if proc.wait() != 0:
            print(f"{name}: {what} failed (exit {proc.returncode})", file=sys.stderr)


def _rate(run: Path) -> float:
    """Steps per second over the logged steps after the first log line (warm-up)."""
    with (run / "log" / "metrics.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    rates = [float(r["steps_per_second"]) for r in rows[1:] if r.get("steps_per_second")]
    return sum(rates) / len(rates) if rates else float(rows[-1]["steps_per_second"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--minutes", type=float, default=5.0)
    parser.add_argument("--probe-steps", type=int, default=300)
    parser.add_argument("--models", nargs="*", default=list(MODELS))
    parser.add_argument("--data", default="shapes3d_procedural")
    parser.add_argument("--eval-mode", default="reference", choices=("reference", "fast"))
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="a config override for every run, e.g. data.image_size=32")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("PYTHONUNBUFFERED", "1")

    tick = time.perf_counter()
    procs = {m: _train(m, args.out / m, args.probe_steps, MODELS[m], resume=False,
                       evaluate=False, log=args.out / f"{m}.log", args=args)
             for m in args.models}
    _wait(procs, "probe")
    probed = time.perf_counter() - tick
    steps = {}
    for m in args.models:
        rate = _rate(args.out / m)
        total = args.probe_steps + int(rate * args.minutes * 60)
        steps[m] = max(args.probe_steps + 500, total // 500 * 500)
        print(json.dumps({"model": m, "probe_steps_per_second": round(rate, 1),
                          "steps": steps[m]}), flush=True)
    print(f"probe took {probed:.0f} s", flush=True)
    procs = {m: _train(m, args.out / m, steps[m], [], resume=True, evaluate=True,
                       log=args.out / f"{m}.log", args=args) for m in args.models}
    _wait(procs, "training")

    lines = ["| model | steps | " + " | ".join(SCORES) + " | BCE/px |",
             "| --- | ---: | " + " | ".join("---:" for _ in SCORES) + " | ---: |"]
    for m in args.models:
        path = args.out / m / "metrics.json"
        if not path.is_file():
            lines.append(f"| {m} | failed | " + " | ".join("" for _ in SCORES) + " | |")
            continue
        result = json.loads(path.read_text())
        kind, rep = next(iter(result["representations"].items()))
        scores = rep["scores"]
        bce = result.get("reconstruction", {}).get("bce_per_pixel", float("nan"))
        print(json.dumps({"model": m, "representation": kind, "steps": steps[m],
                          "rate": round(_rate(args.out / m), 1),
                          "scores": {k: scores.get(k) for k in SCORES}, "bce_per_pixel": bce}),
              flush=True)
        cells = " | ".join(f"{scores[k]:.3f}" if isinstance(scores.get(k), float) else "—"
                           for k in SCORES)
        lines.append(f"| {m} ({kind}) | {steps[m]} | {cells} | {bce:.4f} |")
    print("\n".join(lines))
    print(f"total {time.perf_counter() - tick:.0f} s")


if __name__ == "__main__":
    main()
