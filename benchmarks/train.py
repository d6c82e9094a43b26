"""Training speed: the trainer against a bare PyTorch loop, vectorised members against
sequential runs, and what helps a small CPU.

Three parts, each measured in one run on this machine (compare ratios taken in the same run
only; the load average is printed):

- ``trainer`` (default): steps/s of :func:`disentkit.train.fit` — the trainer of ``disentkit
  train``, with its logging, progress lines, checkpoints and data pipeline — against a bare
  loop over the same model, optimiser, batches and data pipeline with no framework: build
  the model after ``torch.manual_seed``, ``torch.optim.AdamW`` over the model's parameter
  groups, ``FactorBatchLoader`` batches converted by ``to_float``, forward, loss, backward,
  value clipping where a group sets it, step. For QLAE and β-VAE with the ``dlib`` and
  ``qlae`` architectures at 64×64 on ``shapes3d_procedural``, batch 64.
  Both are timed over the same steps after a warm-up (the trainer through its own
  ``steps_per_second`` log rows, ``log_every=--log-every``, which count every second of
  the loop: data, step, logging, progress, checkpoints; the bare loop with a clock around
  the same steps). The two alternate ``--repeats`` times in this process; the ratio printed
  is the median of the per-repeat ratios (target ≥ 0.95).
- ``vectorized``: K members trained as one vectorised model against K sequential single
  runs, the training step alone, alternated on fixed batches (K = 1, 4, 8; 32 and 64 on a
  GPU); ``--memory`` instead measures the peak-memory growth per member in fresh processes.
- ``cpu``: what helps a 2-core CPU — threads, channels-last, ``torch.compile``, bf16
  autocast, smaller images — as steps/s of the bare loop against its default, alternated.

``--device cuda`` runs the same parts on a GPU (a short prepared call: single-run steps/s,
vectorised K = 8/32/64 model-steps/s and peak GPU memory).

Usage::

    python benchmarks/train.py                       # trainer vs bare loop
    python benchmarks/train.py --part vectorized     # K members vs K sequential runs
    python benchmarks/train.py --part vectorized --memory
    python benchmarks/train.py --part cpu            # the CPU speed study
    python benchmarks/train.py --part all --quick    # everything, small
    python benchmarks/train.py --part all --device cuda
"""

from __future__ import annotations

import argparse
import csv
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import load_average  # noqa: E402

DATA = "shapes3d_procedural"


# --------------------------------------------------------------------------- the bare loop


def bare_loop(model_name: str, arch: str, size: int, *, batch_size: int, steps: int,
              warmup: int, device: str = "cpu", seed: int = 0,
              channels_last: bool = False, autocast: Any = None,
              compile_model: bool = False) -> float:
    """Steps/s of a framework-free loop over steps ``warmup … warmup + steps − 1``."""
    import torch

    from disentkit.data import get_dataset
    from disentkit.data.torch import FactorBatchLoader, to_float
    from disentkit.models import build_model

    dataset = get_dataset(DATA, image_size=size)
    torch.manual_seed(seed)
    model = build_model(model_name, arch=arch, image_shape=(3, size, size)).to(device)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    groups = []
    for g in model.param_groups():
        g = dict(g)
        clip = g.pop("clip_value", None)
        g.pop("optimizer", None)
        groups.append({**g, "clip_value": clip})
    optimizer = torch.optim.AdamW(groups, lr=1e-3)
    clipped = [(g["params"], g["clip_value"]) for g in optimizer.param_groups
               if g["clip_value"] is not None]
    forward = torch.compile(model) if compile_model else model
    loader = FactorBatchLoader(dataset, batch_size=batch_size, seed=seed,
                               steps=warmup + steps)
    model.train()
    start = 0.0
    for t, (images, _) in enumerate(loader):
        if t == warmup:
            if device == "cuda":
                torch.cuda.synchronize()
            start = time.perf_counter()
        x = to_float(images, device, max_value=loader.max_value,
                     channels_last=channels_last)
        optimizer.zero_grad(set_to_none=True)
        if autocast is not None:
            with torch.autocast(device_type=device, dtype=autocast):
                total, _ = model.loss(x, forward(x), t)
        else:
            total, _ = model.loss(x, forward(x), t)
        total.backward()
        for params, value in clipped:
            torch.nn.utils.clip_grad_value_(params, value)
        optimizer.step()
    if device == "cuda":
        torch.cuda.synchronize()
    return steps / (time.perf_counter() - start)


def trainer_rate(model_name: str, arch: str, size: int, *, batch_size: int, steps: int,
                 log_every: int, device: str = "cpu") -> float:
    """Steps/s of :func:`disentkit.train.fit` over the steps after its first log row."""
    from disentkit.train import fit

    with tempfile.TemporaryDirectory() as tmp:
        path = fit({"model": model_name, "data": DATA, "data_options": {"image_size": size},
                    "model_options": {"arch": arch}, "steps": log_every + steps,
                    "batch_size": batch_size, "log_every": log_every, "seed": 0,
                    "accelerator": "gpu" if device == "cuda" else "cpu"},
                   run_dir=Path(tmp) / "run", progress=True)
        with open(path / "log" / "metrics.csv") as fh:
            rows = list(csv.DictReader(fh))
    seconds = sum(log_every / float(r["steps_per_second"]) for r in rows[1:])
    return (len(rows) - 1) * log_every / seconds


def _alternate(first: Callable[[], float], second: Callable[[], float],
               repeats: int) -> tuple[float, float, float]:
    """Median of ``first``, of ``second`` and of their per-repeat ratio second/first."""
    a, b = [], []
    for _ in range(repeats):
        a.append(first())
        b.append(second())
    return (statistics.median(a), statistics.median(b),
            statistics.median(y / x for x, y in zip(a, b, strict=True)))


def part_trainer(args: argparse.Namespace) -> None:
    print("| model | arch | size | bare loop steps/s | disentkit train steps/s | "
          "trainer ÷ bare (median of per-repeat ratios) |")
    print("| --- | --- | ---: | ---: | ---: | ---: |")
    for model in args.models:
        for arch in args.archs:
            def bare(model: str = model, arch: str = arch) -> float:
                return bare_loop(model, arch, args.size, batch_size=args.batch_size,
                                 steps=args.steps, warmup=args.log_every, device=args.device)

            def trainer(model: str = model, arch: str = arch) -> float:
                return trainer_rate(model, arch, args.size, batch_size=args.batch_size,
                                    steps=args.steps, log_every=args.log_every,
                                    device=args.device)

            b, t, ratio = _alternate(bare, trainer, args.repeats)
            print(f"| {model} | {arch} | {args.size} | {b:.2f} | {t:.2f} | {ratio:.3f} |",
                  flush=True)


# --------------------------------------------------------------------------- main


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--part", default="trainer", choices=["trainer", "vectorized", "cpu",
                                                              "all"])
    parser.add_argument("--models", nargs="+", default=["qlae", "beta_vae"])
    parser.add_argument("--archs", nargs="+", default=["dlib", "qlae"])
    parser.add_argument("--size", type=int, default=64, help="image side in pixels")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--steps", type=int, default=40, help="measured steps per repeat")
    parser.add_argument("--log-every", type=int, default=10,
                        help="the trainer's log interval; its first interval is the warm-up")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
    args = parser.parse_args()
    if args.quick:
        args.size, args.steps, args.log_every, args.repeats = 32, 10, 5, 1
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    name = (torch.cuda.get_device_name() if args.device == "cuda"
            else f"CPU, {os.cpu_count()} cores")
    print(f"# training speed, {name}, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads, load {load_average()}")
    if args.part in ("trainer", "all"):
        part_trainer(args)


if __name__ == "__main__":
    main()
