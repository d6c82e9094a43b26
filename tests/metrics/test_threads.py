"""Thread counts and the per-factor thread map of the metrics."""

from __future__ import annotations

import os
import threading

import pytest

from disentkit.metrics._threads import effective_n_jobs, map_costliest_first


def test_effective_n_jobs_follows_joblibs_convention(monkeypatch) -> None:
    monkeypatch.delenv("LOKY_MAX_CPU_COUNT", raising=False)
    cores = len(os.sched_getaffinity(0))
    assert effective_n_jobs(5) == 5
    assert effective_n_jobs(-1) == cores
    assert effective_n_jobs(-cores - 5) == 1  # never below one worker
    monkeypatch.setenv("LOKY_MAX_CPU_COUNT", "1")  # as the study executor bounds a trial
    assert effective_n_jobs(-1) == 1
    monkeypatch.setenv("LOKY_MAX_CPU_COUNT", "not a number")
    assert effective_n_jobs(-1) == cores


@pytest.mark.parametrize("n_jobs", [1, 2, -1])
def test_map_costliest_first_keeps_item_order_and_starts_the_costliest(n_jobs) -> None:
    started: list[int] = []
    lock = threading.Lock()

    def work(x: int) -> int:
        with lock:
            started.append(x)
        return 10 * x

    assert map_costliest_first(work, [1, 2, 3, 4], costs=[1, 9, 3, 5], n_jobs=n_jobs) == [
        10, 20, 30, 40
    ]
    assert started[0] == 2  # the costliest item is submitted first
    assert sorted(started) == [1, 2, 3, 4]
