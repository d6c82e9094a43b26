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

Usage::

    python benchmarks/train_vectorized.py                   # K = 1, 4, 8; 32 and 64 px
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
    args = parser.parse_args()
    if args.quick:
        args.sizes, args.k, args.steps = [32], [4], 4
    import torch

    device = "gpu" if args.device == "cuda" else "cpu"
    name = torch.cuda.get_device_name() if args.device == "cuda" else f"CPU, {os.cpu_count()} cores"
    print(f"# vectorised training, {name}, torch {torch.__version__}, load {load_average()}")
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
