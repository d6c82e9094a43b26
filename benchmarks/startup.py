"""Start-up of the command line, and the whole ``disentkit score`` process against the same
``evaluate`` call inside Python, measured in the same run.

What a user at the command line feels is the whole process: the interpreter, the imports,
reading the files, the metrics, writing the JSON. This prints

- ``python -c "import disentkit"``, ``disentkit --help`` and ``disentkit metrics``: wall
  time of the whole process (target: ``--help`` well under 1 s);
- ``disentkit score z.npy y.npy --mode fast`` on 10,000 × 10 latents × 5 factors (the data of
  ``benchmarks/metrics.py``) as a whole process, against ``evaluate(z, y, mode="fast")``
  timed inside this process after its imports (as in a notebook), and their ratio
  (target: ≤ 1.5×).

Each time is the median of ``--repeat`` runs; whole-process and in-process runs alternate so
that a change of load on a shared machine hits both alike.

Usage::

    python benchmarks/startup.py              # 5 runs of each
    python benchmarks/startup.py --repeat 3
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
from _common import load_average
from metrics import make_data

import disentkit
from disentkit import DisentkitWarning, evaluate


def _command() -> list[str]:
    """The ``disentkit`` console script beside this interpreter, else ``python -m``."""
    script = Path(sys.executable).with_name("disentkit")
    return [str(script)] if script.is_file() else [sys.executable, "-m", "disentkit"]


def _env() -> dict[str, str]:
    """This environment with PYTHONPATH made absolute: the commands run in a temporary
    directory and must import the same disentkit as this process."""
    parts = os.environ.get("PYTHONPATH", "").split(os.pathsep)
    absolute = os.pathsep.join(str(Path(p).resolve()) for p in parts if p)
    return {**os.environ, "PYTHONPATH": absolute}


def _wall(args: list[str], cwd: Path) -> float:
    start = time.perf_counter()
    subprocess.run(args, cwd=cwd, env=_env(), check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5, help="runs of each variant")
    parser.add_argument("--n", type=int, default=10_000, help="samples")
    args = parser.parse_args()
    cli = _command()
    print(f"load average {load_average()}; command: {' '.join(cli)}; disentkit from "
          f"{Path(disentkit.__file__).parent}")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        starts = {
            "python -c 'import disentkit'": [sys.executable, "-c", "import disentkit"],
            "disentkit --help": [*cli, "--help"],
            "disentkit metrics": [*cli, "metrics"],
        }
        for label, command in starts.items():
            _wall(command, work)  # warm the file cache
            times = [_wall(command, work) for _ in range(args.repeat)]
            print(f"{label:<30} {statistics.median(times):6.3f} s "
                  f"(min {min(times):.3f}, max {max(times):.3f})")

        z, y = make_data(args.n)
        np.save(work / "z.npy", z)
        np.save(work / "y.npy", y)
        score = [*cli, "score", "z.npy", "y.npy", "--mode", "fast", "--json", "scores.json"]
        whole, inside = [], []
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DisentkitWarning)
            evaluate(z, y, mode="fast")  # the first call pays for lazy imports and caches
            for _ in range(args.repeat):
                whole.append(_wall(score, work))
                start = time.perf_counter()
                evaluate(z, y, mode="fast")
                inside.append(time.perf_counter() - start)
    w, i = statistics.median(whole), statistics.median(inside)
    print(f"score --mode fast on {args.n:,} × {z.shape[1]} × {y.shape[1]}:")
    print(f"  whole process (disentkit score)   {w:6.3f} s (min {min(whole):.3f})")
    print(f"  in-process evaluate(mode='fast')  {i:6.3f} s (min {min(inside):.3f})")
    print(f"  ratio whole / in-process          {w / i:6.2f}×  (target ≤ 1.5×)")
    print(f"load average {load_average()}")


if __name__ == "__main__":
    main()
