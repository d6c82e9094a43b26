"""Small helpers shared by the benchmark scripts: timing, peak memory, printing."""

from __future__ import annotations

import os
import resource
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field


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
