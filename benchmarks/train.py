"""Training speed: the trainer against a bare PyTorch loop, vectorised members against
sequential runs, and what helps a small CPU.

Three parts, each measured in one run on this machine (compare ratios taken in the same run
only; the load average is printed):

- ``trainer`` (default): steps/s of :func:`disentkit.train.fit` — the trainer of ``disentkit
  train``, with its logging, progress lines, checkpoints and data pipeline — against a bare
  loop over the same model, optimiser, batches and data pipeline with no framework: build
  the model after ``torch.manual_seed``, ``torch.optim.AdamW`` over the model's parameter
  groups, ``FactorBatchLoader`` batches converted by ``to_float``, forward, loss, backward,
  value clipping where a group sets it, step; in the memory layout the trainer chooses
  (channels-last for ``dlib`` on a CPU, ``memory_format="auto"``). For QLAE and β-VAE
  with the ``dlib`` and ``qlae`` architectures at 64×64 on ``shapes3d_procedural``, batch
  64.
  Both are timed over the same steps after a warm-up (the trainer through its own
  ``steps_per_second`` log rows, ``log_every=--log-every``, which count every second of
  the loop: data, step, logging, progress, checkpoints; the bare loop with a clock around
  the same steps). The two alternate ``--repeats`` times in this process; the ratio printed
  is the median of the per-repeat ratios (target ≥ 0.95).
- ``vectorized``: K members trained as one vectorised model (``fit_vectorized``) against K
  sequential single runs (``fit``), whole runs alternated in this process, steady-state
  rates from the log rows after the first (K = 1, 4, 8; 8, 32 and 64 on a GPU), for each
  of ``--strategies`` (``loop`` and ``threads`` on a CPU, ``vmap`` on a GPU); on a CPU
  also as many one-thread single runs in parallel processes as there are cores (the Ray
  executor's ``cpus_per_trial: 1``); ``--memory`` instead measures the peak memory of K
  members against one run in fresh processes.
- ``cpu``: what helps a 2-core CPU — threads, channels-last, ``torch.compile``, bf16
  autocast, smaller images — as steps/s of the bare loop against the plain one (torch's
  default threads, contiguous float32), alternated.

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
import itertools
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
# torch.compile's compiler in this process, not a pool of workers that keep running
os.environ.setdefault("TORCHINDUCTOR_COMPILE_THREADS", "1")
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import load_average  # noqa: E402

DATA = "shapes3d_procedural"


# --------------------------------------------------------------------------- the bare loop


def bare_loop(model_name: str, arch: str, size: int, *, batch_size: int, steps: int,
              warmup: int, device: str = "cpu", seed: int = 0,
              channels_last: bool | None = None, autocast: Any = None,
              compile_model: bool = False) -> float:
    """Steps/s of a framework-free loop over steps ``warmup … warmup + steps − 1``;
    ``channels_last=None``: the layout the trainer chooses for this run."""
    import torch

    from disentkit.data import get_dataset
    from disentkit.data.torch import FactorBatchLoader, to_float
    from disentkit.models import build_model
    from disentkit.train._loop import uses_channels_last
    from disentkit.train.config import build_config

    if channels_last is None:
        cfg = build_config({"model": model_name, "data": DATA,
                            "model_options": {"arch": arch}})
        channels_last = uses_channels_last(cfg, device)
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
        return rows_rate(path)


def _alternate(first: Callable[[], float], second: Callable[[], float],
               repeats: int) -> tuple[float, float, float]:
    """Median of ``first``, of ``second`` and of their per-repeat ratio second/first; the
    order alternates between repeats, so that a warm-up or order effect cancels."""
    a, b = [], []
    for i in range(repeats):
        if i % 2:
            b.append(second())
            a.append(first())
        else:
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


# --------------------------------------------------------------------------- vectorised


def rows_rate(path: Path) -> float:
    """Steps/s over the log rows after the first (the first interval is the warm-up)."""
    with open(path / "log" / "metrics.csv") as fh:
        rows = [r for r in csv.DictReader(fh) if r.get("steps_per_second")]
    steps = [int(r["step"]) for r in rows]
    seconds = sum((b - a) / float(r["steps_per_second"])
                  for a, b, r in zip(steps, steps[1:], rows[1:], strict=False))
    return (steps[-1] - steps[0]) / seconds


def _config(args: argparse.Namespace, model: str, arch: str) -> dict[str, Any]:
    return {"model": model, "data": DATA, "data_options": {"image_size": args.size},
            "model_options": {"arch": arch}, "steps": args.log_every + args.steps,
            "batch_size": args.batch_size, "log_every": args.log_every, "seed": 0,
            "accelerator": "gpu" if args.device == "cuda" else "cpu"}


def vectorized_rate(cfg: dict[str, Any], k: int, strategy: str = "auto") -> float:
    """Model-steps/s: K × the steps/s of K members trained as one (0: one single run)."""
    from disentkit.train import fit, fit_vectorized
    from disentkit.train.vectorized import expand_configs

    with tempfile.TemporaryDirectory() as tmp:
        if k == 0:
            return rows_rate(fit(cfg, run_dir=Path(tmp) / "single", progress=False))
        paths = fit_vectorized(expand_configs(cfg, seeds=f"0-{k - 1}"), tmp, progress=False,
                               strategy=strategy)
        return k * rows_rate(paths[0])


def _gpu_peak_mib(run: Callable[[], float]) -> tuple[float, float]:
    """``run()``'s result and the peak GPU memory it allocated (MiB)."""
    import torch

    torch.cuda.reset_peak_memory_stats()
    rate = run()
    return rate, torch.cuda.max_memory_allocated() / 2**20


_MEMORY_CHILD = """
import json, resource, sys, tempfile, torch
from pathlib import Path
from disentkit.train import fit, fit_vectorized
from disentkit.train.vectorized import expand_configs
cfg, k = json.loads(sys.argv[1]), int(sys.argv[2])
cuda = cfg["accelerator"] == "gpu"
with tempfile.TemporaryDirectory() as tmp:
    if k == 0:
        fit(cfg, run_dir=Path(tmp) / "single", progress=False)
    else:
        fit_vectorized(expand_configs(cfg, seeds=f"0-{k - 1}"), tmp, progress=False)
peak = (torch.cuda.max_memory_allocated() if cuda else
        resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)
print(json.dumps({"peak_mib": peak / 2**20}))
"""


def peak_memory(cfg: dict[str, Any], k: int) -> float:
    """Peak memory (MiB) of a fresh process training K members (0: one single run): GPU
    memory allocated on a GPU, else the peak RSS."""
    proc = subprocess.run([sys.executable, "-c", _MEMORY_CHILD, json.dumps(cfg), str(k)],
                          capture_output=True, text=True, check=False,
                          env={**os.environ, "PYTHONPATH": str(ROOT / "src")})
    if proc.returncode:
        raise RuntimeError(proc.stderr[-3000:])
    return float(json.loads(proc.stdout.strip().splitlines()[-1])["peak_mib"])


_RATE_CHILD = """
import json, sys, tempfile, torch
from pathlib import Path
sys.path.insert(0, sys.argv[3])
torch.set_num_threads(int(sys.argv[2]))
from train import rows_rate
from disentkit.train import fit
with tempfile.TemporaryDirectory() as tmp:
    print(json.dumps({"rate": rows_rate(fit(json.loads(sys.argv[1]), run_dir=Path(tmp) / "r",
                                                progress=False))}))
"""


def parallel_rate(cfg: dict[str, Any], processes: int) -> float:
    """Model-steps/s of ``processes`` single runs trained at once in as many processes with
    one torch thread each (what the study's Ray executor does with ``cpus_per_trial: 1``)."""
    children = [subprocess.Popen(
        [sys.executable, "-c", _RATE_CHILD, json.dumps({**cfg, "seed": seed}), "1",
         str(Path(__file__).resolve().parent)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT / "src")}) for seed in range(processes)]
    total = 0.0
    for child in children:
        out, err = child.communicate()
        if child.returncode:
            raise RuntimeError(err[-3000:])
        total += float(json.loads(out.strip().splitlines()[-1])["rate"])
    return total


def part_parallel(args: argparse.Namespace) -> None:
    """CPU: one-thread single runs in parallel processes against one run on every core."""
    n = os.cpu_count() or 1
    print(f"| model | arch | size | single-run steps/s ({n} threads) | {n} one-thread runs in "
          f"parallel, model-steps/s | × sequential (median of per-repeat ratios) |")
    print("| --- | --- | ---: | ---: | ---: | ---: |")
    for model in args.models:
        for arch in args.vectorized_archs:
            cfg = _config(args, model, arch)
            single, together, ratio = _alternate(lambda c=cfg: vectorized_rate(c, 0),
                                                 lambda c=cfg: parallel_rate(c, n),
                                                 args.repeats)
            print(f"| {model} | {arch} | {args.size} | {single:.2f} | {together:.2f} | "
                  f"{ratio:.2f} |", flush=True)


def part_vectorized(args: argparse.Namespace) -> None:
    from disentkit.models import build_model

    if args.memory:
        print("| model | arch | size | K | peak MiB | growth per added member since the row "
              "above, MiB | params + grads + Adam per member MiB |")
        print("| --- | --- | ---: | ---: | ---: | ---: | ---: |")
    else:
        gpu = args.device == "cuda"
        print("| model | arch | size | strategy | K | single-run steps/s | vectorised "
              "model-steps/s | × K sequential (median of per-repeat ratios) |"
              + (" peak GPU MiB, single / K |" if gpu else ""))
        print("| --- | --- | ---: | --- | ---: | ---: | ---: | ---: |"
              + (" ---: |" if gpu else ""))
    for model in args.models:
        for arch in args.vectorized_archs:
            cfg = _config(args, model, arch)
            if args.memory:
                state = 4 * sum(p.numel() * p.element_size() for p in build_model(
                    model, arch=arch, image_shape=(3, args.size, args.size)).parameters())
                # the single run (fit, with Lightning's imports) is shown for scale; the growth
                # compares vectorised runs with each other, whose fixed costs are the same
                single = peak_memory(cfg, 0)
                print(f"| {model} | {arch} | {args.size} | single | {single:.0f} | | "
                      f"{state / 2**20:.1f} |", flush=True)
                previous: tuple[int, float] | None = None
                for k in args.k:
                    peak = peak_memory(cfg, k)
                    growth = ("" if previous is None else
                              f"{(peak - previous[1]) / (k - previous[0]):.0f}")
                    print(f"| {model} | {arch} | {args.size} | {k} | {peak:.0f} | {growth} | "
                          f"{state / 2**20:.1f} |", flush=True)
                    previous = (k, peak)
                continue
            for strategy, k in itertools.product(args.strategies, args.k):
                single, vec, ratio = _alternate(
                    lambda c=cfg: vectorized_rate(c, 0),
                    lambda c=cfg, k=k, s=strategy: vectorized_rate(c, k, s), args.repeats)
                peak = ""
                if args.device == "cuda":  # one more run of each, for the peak memory
                    one = _gpu_peak_mib(lambda c=cfg: vectorized_rate(c, 0))[1]
                    many = _gpu_peak_mib(
                        lambda c=cfg, k=k, s=strategy: vectorized_rate(c, k, s))[1]
                    peak = f" {one:.0f} / {many:.0f} |"
                print(f"| {model} | {arch} | {args.size} | {strategy} | {k} | {single:.2f} | "
                      f"{vec:.2f} | {ratio:.2f} |{peak}", flush=True)


# --------------------------------------------------------------------------- CPU study

#: the variants of the CPU study: name → options of :func:`bare_loop` (and image size)
CPU_VARIANTS = {
    "1 thread": {"threads": 1},
    "channels_last": {"channels_last": True},
    "bf16 autocast": {"autocast": "bfloat16"},
    "32×32 images": {"size": 32},
    "torch.compile": {"compile_model": True},  # last: its compiler may leave workers behind
}


def part_cpu(args: argparse.Namespace) -> None:
    import torch

    default_threads = torch.get_num_threads()
    print(f"| model | arch | variant | default steps/s ({default_threads} threads, "
          f"{args.size}×{args.size}, contiguous, float32) | variant steps/s | "
          "variant ÷ default |")
    print("| --- | --- | --- | ---: | ---: | ---: |")
    for model in args.models:
        for arch in args.cpu_archs:
            def default(model: str = model, arch: str = arch) -> float:
                return bare_loop(model, arch, args.size, batch_size=args.batch_size,
                                 steps=args.steps, warmup=args.log_every, device=args.device,
                                 channels_last=False)

            for name in args.variants:
                opts = {"channels_last": False, **CPU_VARIANTS[name]}
                size = opts.pop("size", args.size)
                threads = opts.pop("threads", default_threads)
                if "autocast" in opts:
                    opts["autocast"] = getattr(torch, opts["autocast"])

                def variant(model: str = model, arch: str = arch, size: int = size,
                            threads: int = threads, opts: dict = opts) -> float:
                    torch.set_num_threads(threads)
                    try:
                        return bare_loop(model, arch, size, batch_size=args.batch_size,
                                         steps=args.steps, warmup=args.log_every,
                                         device=args.device, **opts)
                    finally:
                        torch.set_num_threads(default_threads)

                try:
                    d, v, ratio = _alternate(default, variant, args.repeats)
                except Exception as exc:  # e.g. no compiler for torch.compile
                    print(f"| {model} | {arch} | {name} | | failed: "
                          f"{type(exc).__name__}: {str(exc)[:80]} | |", flush=True)
                    continue
                print(f"| {model} | {arch} | {name} | {d:.2f} | {v:.2f} | {ratio:.2f} |",
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
    parser.add_argument("--repeats", type=int, default=4)
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
    parser.add_argument("--k", nargs="+", type=int, default=None,
                        help="vectorised members (default 1 4 8; 8 32 64 on a GPU)")
    parser.add_argument("--vectorized-archs", nargs="+", default=["dlib"])
    parser.add_argument("--strategies", nargs="+", default=None,
                        choices=["auto", "vmap", "loop", "threads"],
                        help="vectorised strategies (default loop threads; vmap on a GPU)")
    parser.add_argument("--cpu-archs", nargs="+", default=["dlib"])
    parser.add_argument("--variants", nargs="+", default=list(CPU_VARIANTS),
                        choices=list(CPU_VARIANTS), metavar="VARIANT",
                        help=f"cpu part: the variants to measure (default all: "
                             f"{', '.join(map(repr, CPU_VARIANTS))})")
    parser.add_argument("--memory", action="store_true",
                        help="vectorized part: peak memory per member instead of speed")
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
    if args.k is None:
        args.k = [8, 32, 64] if args.device == "cuda" else [1, 4, 8]
    if args.strategies is None:
        args.strategies = ["vmap"] if args.device == "cuda" else ["loop", "threads"]
    if args.part in ("trainer", "all"):
        part_trainer(args)
    if args.part in ("vectorized", "all"):
        part_vectorized(args)
        if args.device == "cpu" and not args.memory:
            part_parallel(args)
    if args.part == "cpu" or (args.part == "all" and args.device == "cpu"):
        part_cpu(args)


if __name__ == "__main__":
    main()
