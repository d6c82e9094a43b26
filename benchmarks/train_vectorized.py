"""K runs trained as one vectorised model against K sequential single runs.

For QLAE and β-VAE (``dlib`` architecture) on ``shapes3d_procedural`` at 32×32 and 64×64
(batch 64), measured in one run on this machine:

- **single**: :func:`disentkit.train.fit` of one run; its steps/s is also the
  model-steps/s of K runs trained one after another.
- **vectorised K**: :func:`disentkit.train.vectorized.fit_vectorized` of K seeds;
  model-steps/s = K × its steps/s. Printed with its ratio to the single run's.
- **memory**: each configuration runs in a fresh process that reports its peak RSS; the
  growth per member is compared with the members' parameters + gradients + Adam state
  (4 × the parameter bytes), the part that must grow with K besides activations.

Rates are the median of the trainer's own per-step ``steps_per_second`` (``log_every=1``)
over ``--steps`` steps after 3 warm-up steps (vmap's first calls and the data caches are
excluded): a median resists the bursts of a shared machine better than a mean. The load
average is printed; on a shared machine compare ratios taken in the same run only.

``--interleaved`` (default) measures the training step alone, in one process: K members'
sequential steps (forward, backward, clipping, ``torch.optim.Adam`` step: the single
trainer's work) and one vectorised step of the same K members (the vectorised trainer's
step function and update) alternate ``--repeats`` times on fixed batches, and the median of
the per-repeat ratios is reported; alternating keeps a shared machine's bursts out of the
ratio. ``--memory`` measures, in fresh processes, the peak RSS growth of two training
steps: one single run's (activations, gradients, Adam state) against K members'.
``--end-to-end`` times whole ``fit``/``fit_vectorized`` runs in fresh processes
instead (data, logging and checkpoints included) and reports peak memory.

Usage::

    python benchmarks/train_vectorized.py                   # K = 1, 4, 8; 32 and 64 px
    python benchmarks/train_vectorized.py --end-to-end      # whole runs, peak memory
    python benchmarks/train_vectorized.py --memory --sizes 64  # training memory per member
    python benchmarks/train_vectorized.py --quick           # 32 px, K = 4, fewer steps
    python benchmarks/train_vectorized.py --device cuda --k 1 8 32 64
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WARMUP = 3
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import load_average  # noqa: E402

_CHILD = """
import json, resource, sys, torch
from pathlib import Path
cfg, k, out, threads = json.loads(sys.argv[1]), int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
if threads:
    torch.set_num_threads(threads)
from disentkit.train import fit
from disentkit.train.vectorized import expand_configs, fit_vectorized
if k == 0:
    paths = [fit(cfg, run_dir=Path(out) / "single", progress=False)]
else:
    paths = fit_vectorized(expand_configs(cfg, seeds=f"0-{k - 1}"), out, progress=False)
from disentkit.train import load_model
n_params = sum(p.numel() * p.element_size() for p in load_model(paths[0]).parameters())
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
print(json.dumps({"paths": [str(p) for p in paths], "peak_gib": peak, "param_bytes": n_params}))
"""


_MEMORY = """
import resource, sys, torch
torch.set_num_threads(1)
from disentkit.models import build_model
from disentkit.train.trainer import _build_optimizer, _clip, _training_module
from disentkit.train.vectorized import _adam_step, _groups, _step_function
model, size, k = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
def rss():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # MiB
models, opts = [], []
for seed in range(max(k, 1)):
    torch.manual_seed(seed)
    models.append(build_model(model, arch="dlib", image_shape=(3, size, size)))
    opts.append(_build_optimizer(models[-1].param_groups(), what=model))
x = torch.rand(max(k, 1), 64, 3, size, size)
if k == 0:
    m, opt = models[0], opts[0]
    before = rss()
    for t in range(2):
        opt.zero_grad(set_to_none=True)
        total, _ = m.loss(x[0], m(x[0]), t)
        total.backward()
        _clip(opt)
        opt.step()
else:
    groups = _groups(models, opts, model)
    names = [n for g in groups for n in g.names]
    params = {n: torch.stack([dict(m.named_parameters())[n] for m in models]).detach().clone()
              for n in names}
    fixed = {n: torch.stack([dict(m.named_buffers())[n] for m in models])
             for n, _ in models[0].named_buffers()}
    del models[1:], opts[1:]
    gens = [torch.Generator().manual_seed(s) for s in range(k)]
    step = _step_function(_training_module(models[0], []), models[0], gens)
    before = rss()
    state = {n: {"exp_avg": torch.zeros_like(p), "exp_avg_sq": torch.zeros_like(p)}
             for n, p in params.items()}
    for t in range(2):
        grads, _ = step(params, fixed, x, {}, t)
        with torch.no_grad():
            for g in groups:
                _adam_step(g, params, grads, state, t + 1)
        del grads
print(rss() - before)
"""


def _memory(model: str, size: int, k: int) -> float:
    """Peak RSS growth (MiB) of two training steps of K members (0: one single-run step)."""
    proc = subprocess.run([sys.executable, "-c", _MEMORY, model, str(size), str(k)],
                          capture_output=True, text=True, check=True,
                          env={**os.environ, "PYTHONPATH": str(ROOT / "src")})
    return float(proc.stdout.strip().splitlines()[-1])


def _run(cfg: dict, k: int, threads: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        proc = subprocess.run(
            [sys.executable, "-c", _CHILD, json.dumps(cfg), str(k), tmp, str(threads)],
            capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT / "src")},
            check=False)
        if proc.returncode:
            raise RuntimeError(proc.stderr[-3000:])
        result = json.loads(proc.stdout.strip().splitlines()[-1])
        with open(Path(result["paths"][0]) / "log" / "metrics.csv") as fh:
            rows = list(csv.DictReader(fh))
    result["steps_per_second"] = statistics.median(
        float(r["steps_per_second"]) for r in rows[WARMUP:])
    return result


def _interleaved(model: str, size: int, k: int, batch: int, repeats: int) -> tuple[float, float]:
    """(median single-run steps/s, median vectorised/sequential ratio) of the training step."""
    import torch

    from disentkit.models import build_model
    from disentkit.train.trainer import _build_optimizer, _clip, _training_module
    from disentkit.train.vectorized import _adam_step, _groups, _step_function

    models, opts = [], []
    for seed in range(k):
        torch.manual_seed(seed)
        models.append(build_model(model, arch="dlib", image_shape=(3, size, size)))
        opts.append(_build_optimizer(models[-1].param_groups(), what=model))
    x = torch.rand(k, batch, 3, size, size)
    groups = _groups(models, opts, model)
    names = [n for g in groups for n in g.names]
    params = {n: torch.stack([dict(m.named_parameters())[n] for m in models]).detach().clone()
              for n in names}
    fixed = {n: torch.stack([b for m in models for bn, b in m.named_buffers() if bn == n])
             for n, _ in models[0].named_buffers()}
    state = {n: {"exp_avg": torch.zeros_like(p), "exp_avg_sq": torch.zeros_like(p)}
             for n, p in params.items()}
    generators = [torch.Generator().manual_seed(s) for s in range(k)]
    step = _step_function(_training_module(models[0], []), models[0], generators)

    def vectorised(t: int) -> None:
        grads, _ = step(params, fixed, x, {}, t)
        with torch.no_grad():
            for group in groups:
                if group.clip_value is not None:
                    for name in group.names:
                        grads[name].clamp_(-group.clip_value, group.clip_value)
                _adam_step(group, params, grads, state, t + 1)

    def sequential(t: int) -> None:
        for m, opt, xb in zip(models, opts, x, strict=True):
            opt.zero_grad(set_to_none=True)
            total, _ = m.loss(xb, m(xb), t)
            total.backward()
            _clip(opt)
            opt.step()

    ratios, rates = [], []
    for t in range(repeats + 2):
        tick = time.perf_counter()
        sequential(t)
        seq = time.perf_counter() - tick
        tick = time.perf_counter()
        vectorised(t)
        vec = time.perf_counter() - tick
        if t >= 2:  # warm-up
            ratios.append(seq / vec)
            rates.append(k / seq)
    return statistics.median(rates), statistics.median(ratios)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="+", default=["qlae", "beta_vae"])
    parser.add_argument("--sizes", nargs="+", type=int, default=[32, 64])
    parser.add_argument("--k", nargs="+", type=int, default=[1, 4, 8])
    parser.add_argument("--steps", type=int, default=10, help="measured steps")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--end-to-end", action="store_true")
    parser.add_argument("--memory", action="store_true")
    parser.add_argument("--repeats", type=int, default=7, help="interleaved repetitions")
    args = parser.parse_args()
    if args.quick:
        args.sizes, args.k, args.steps = [32], [4], 4
    import torch

    device = "gpu" if args.device == "cuda" else "cpu"
    name = torch.cuda.get_device_name() if args.device == "cuda" else f"CPU, {os.cpu_count()} cores"
    print(f"# vectorised training, {name}, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads, load {load_average()}")
    if args.memory:
        print("| model | size | K | peak growth MiB | per member MiB | × one single run's |")
        print("| --- | ---: | ---: | ---: | ---: | ---: |")
        for model in args.models:
            for size in args.sizes:
                single = _memory(model, size, 0)
                print(f"| {model} | {size} | single | {single:.0f} | {single:.0f} | 1.00 |")
                for k in args.k:
                    grown = _memory(model, size, k)
                    print(f"| {model} | {size} | {k} | {grown:.0f} | {grown / k:.0f} | "
                          f"{grown / k / single:.2f} |", flush=True)
        return
    if not args.end_to_end:
        if args.threads:
            torch.set_num_threads(args.threads)
        print("| model | size | K | single-run steps/s | vectorised model-steps/s | × K "
              "sequential (median of per-repeat ratios) |")
        print("| --- | ---: | ---: | ---: | ---: | ---: |")
        for model in args.models:
            for size in args.sizes:
                for k in args.k:
                    rate, ratio = _interleaved(model, size, k, args.batch_size, args.repeats)
                    print(f"| {model} | {size} | {k} | {rate:.2f} | {rate * ratio:.2f} | "
                          f"{ratio:.2f} |", flush=True)
        return
    print("| model | size | K | model-steps/s | × single | peak RSS GiB | RSS growth per "
          "member MiB | params+grads+Adam per member MiB |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for model in args.models:
        for size in args.sizes:
            cfg = {"model": model, "data": "shapes3d_procedural",
                   "data_options": {"image_size": size}, "steps": WARMUP + args.steps,
                   "batch_size": args.batch_size, "log_every": 1,
                   "checkpoint_every": 10**9, "accelerator": device,
                   "model_options": {"arch": "dlib"}}
            single = _run(cfg, 0, args.threads)
            base_rate = single["steps_per_second"]
            print(f"| {model} | {size} | single | {base_rate:.2f} | 1.00 | "
                  f"{single['peak_gib']:.2f} | | |", flush=True)
            for k in args.k:
                out = _run(cfg, k, args.threads)
                rate = k * out["steps_per_second"]
                growth = (out["peak_gib"] - single["peak_gib"]) * 1024 / max(k - 1, 1)
                state = 4 * out["param_bytes"] / 2**20
                print(f"| {model} | {size} | {k} | {rate:.2f} | {rate / base_rate:.2f} | "
                      f"{out['peak_gib']:.2f} | {growth:.0f} | {state:.1f} |", flush=True)


if __name__ == "__main__":
    main()
