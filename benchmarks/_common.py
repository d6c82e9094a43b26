"""Small helpers shared by the benchmark scripts: timing, peak memory, printing."""

from __future__ import annotations

import os
import resource
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np


def peak_rss_gib() -> float:
    """Peak resident memory of this process so far, GiB (``getrusage``'s ``ru_maxrss``)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**30 if sys.platform == "darwin" else peak / 2**20  # bytes vs KiB


def load_average() -> str:
    """The 1-minute load average and the core count, e.g. ``"3.9 on 2 cores"``."""
    try:
        load = f"{os.getloadavg()[0]:.1f}"
    except OSError:  # pragma: no cover
        load = "?"
    return f"{load} on {os.cpu_count()} cores"


def cpu_ticks() -> tuple[int, int] | None:
    """``(stolen, all)`` CPU ticks of this machine since boot, from ``/proc/stat``'s
    ``cpu`` line (Linux; ``None`` elsewhere). Stolen ticks are those a virtual machine's
    cores waited while the host ran something else: the difference of two readings over
    the difference of the totals is the share of a period lost to other jobs on the host."""
    try:
        with open("/proc/stat") as f:
            fields = [int(v) for v in f.readline().split()[1:]]
    except (OSError, ValueError):  # pragma: no cover
        return None
    return (fields[7], sum(fields)) if len(fields) > 7 else None


@dataclass
class StealMeter:
    """Adds up the stolen and all CPU ticks of the periods it measures (see
    :func:`cpu_ticks`); ``share`` is their ratio, ``None`` where not readable."""

    stolen: int = 0
    total: int = 0
    readable: bool = True

    @contextmanager
    def measure(self) -> Iterator[None]:
        before = cpu_ticks()
        yield
        after = cpu_ticks()
        if before is None or after is None:
            self.readable = False
            return
        self.stolen += after[0] - before[0]
        self.total += after[1] - before[1]

    def share(self) -> float | None:
        return self.stolen / self.total if self.readable and self.total else None

    def text(self) -> str:
        share = self.share()
        return "n/a" if share is None else f"{100 * share:.1f} %"


def two_core_speedup(n_iter: int = 700, repeat: int = 3) -> float:
    """How much of a second core this process gets now: the time of a numpy pass over
    2 MiB arrays (which releases the interpreter lock) on one thread, times two, over the
    time of two such passes on two threads at once; the median of ``repeat`` tries. About
    2 when two cores are free; near 1 when another job holds one, which a virtual machine's
    load average does not show when the job runs on the host beside it (seen here: 1.4–1.9
    on a quiet 2-core VM, 1.0–1.2 with a busy loop on one of its cores)."""
    rng = np.random.default_rng(0)
    arrays = [[rng.random(1 << 19, dtype=np.float32) for _ in range(3)] for _ in range(2)]

    def work(k: int) -> None:
        a, b, c = arrays[k]
        for _ in range(n_iter):
            np.multiply(a, b, out=c)
            np.add(c, a, out=c)

    ratios = []
    with ThreadPoolExecutor(2) as pool:
        for _ in range(repeat):
            start = time.perf_counter()
            work(0)
            one = time.perf_counter() - start
            start = time.perf_counter()
            list(pool.map(work, range(2)))
            ratios.append(2 * one / (time.perf_counter() - start))
    return float(np.median(ratios))


@dataclass
class Stage:
    name: str
    wall_s: float
    cpu_s: float
    peak_gib: float
    note: str = ""


@dataclass
class Stages:
    """Times named stages (wall and CPU seconds) and the peak RSS after each."""

    rows: list[Stage] = field(default_factory=list)

    @contextmanager
    def time(self, name: str, note: str = "") -> Iterator[None]:
        wall, cpu = time.perf_counter(), time.process_time()
        print(f"  … {name}", flush=True)
        yield
        self.rows.append(
            Stage(name, time.perf_counter() - wall, time.process_time() - cpu, peak_rss_gib(), note)
        )
        r = self.rows[-1]
        print(f"    {r.wall_s:8.2f} s wall  {r.cpu_s:8.2f} s CPU  peak RSS {r.peak_gib:.2f} GiB",
              flush=True)

    def wall(self, *names: str) -> float:
        return sum(r.wall_s for r in self.rows if r.name in names)

    def table(self) -> str:
        """A markdown table of the stages."""
        lines = [
            "| stage | wall s | CPU s | peak RSS GiB | note |",
            "| --- | ---: | ---: | ---: | --- |",
        ]
        for r in self.rows:
            lines.append(
                f"| {r.name} | {r.wall_s:.2f} | {r.cpu_s:.2f} | {r.peak_gib:.2f} | {r.note} |"
            )
        return "\n".join(lines)
