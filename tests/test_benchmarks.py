"""The training benchmark runs end to end (small sizes): the script does not rot between
`make bench` runs. No timing is asserted; the rows must be there and hold numbers."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ROW = re.compile(r"^\| beta_vae \| dlib \| 32 \|(.*)\|$")
CPU_ROW = re.compile(r"^\| beta_vae \| dlib \| (1 thread|channels_last|bf16 autocast|32×32 "
                     r"images) \|(.*)\|$")


def test_training_benchmark_prints_its_ratios():
    result = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "train.py"), "--part", "all", "--quick",
         "--models", "beta_vae", "--archs", "dlib", "--k", "2", "--variants", "1 thread",
         "channels_last", "bf16 autocast", "32×32 images"],
        capture_output=True, text=True, timeout=600, cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT / "src")},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    lines = result.stdout.splitlines()
    rows = [[c.strip() for c in m.group(1).split("|")] for m in map(ROW.match, lines) if m]
    # the trainer against the bare loop; K = 2 vectorised by each CPU strategy; one-thread
    # runs in parallel
    assert len(rows) == 4, result.stdout
    trainer, loop, threads, parallel = rows
    assert all(float(v) > 0 for v in trainer[-3:])
    for row, strategy in ((loop, "loop"), (threads, "threads")):
        assert row[:2] == [strategy, "2"] and all(float(v) > 0 for v in row[-3:])
    assert all(float(v) > 0 for v in parallel[-3:])
    variants = {m.group(1): [c.strip() for c in m.group(2).split("|")]
                for m in map(CPU_ROW.match, lines) if m}
    assert len(variants) == 4, result.stdout
    assert all(float(v) > 0 for cells in variants.values() for v in cells)
