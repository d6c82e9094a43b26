"""Thread helpers of the metrics: how many threads, a plain thread map for compiled loops
that release the GIL, and per-factor work in threads, the costliest first.

These use the standard library's thread pool, not joblib: joblib's import and its result
polling cost more than the fast metric suite's small per-factor fits."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import numpy as np

T = TypeVar("T")
R = TypeVar("R")

_MAX_THREADS = 8
_SERIAL_WORK = 2**20  # below this many elements, no thread pool


def _usable_cores() -> int:
    """The cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def n_threads() -> int:
    """Worker threads for the compiled loops (the cores this process may use, at most 8)."""
    return max(1, min(_usable_cores(), _MAX_THREADS))


def effective_n_jobs(n_jobs: int) -> int:
    """Workers for ``n_jobs`` in joblib's convention: ``n_jobs`` itself when positive, else
    every core but ``-n_jobs - 1`` (at least 1). Cores: those this process may use, at most
    ``LOKY_MAX_CPU_COUNT`` where set (as joblib counts them; the study executor sets it).

    Example:
        >>> effective_n_jobs(3)
        3
        >>> effective_n_jobs(-1) >= 1
        True
    """
    if n_jobs > 0:
        return n_jobs
    cores = _usable_cores()
    cap = os.environ.get("LOKY_MAX_CPU_COUNT", "")
    if cap.strip().isdigit() and int(cap) > 0:
        cores = min(cores, int(cap))
    return max(1, cores + 1 + n_jobs)


def parallel_map(fn: Callable[[T], R], items: Sequence[T], work: int) -> list[R]:
    """``[fn(x) for x in items]`` on a thread pool (the work inside ``fn`` releases the GIL).

    ``work`` (elements touched in all) below ``_SERIAL_WORK`` runs serially: starting
    threads would cost more than it saves.

    Example:
        >>> parallel_map(lambda x: x + 1, [1, 2, 3], work=3)
        [2, 3, 4]
    """
    workers = min(n_threads(), len(items))
    if workers <= 1 or work < _SERIAL_WORK:
        return [fn(x) for x in items]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(fn, items))


def map_costliest_first(
    fn: Callable[[T], R], items: Sequence[T], costs: Sequence[float], n_jobs: int
) -> list[R]:
    """``[fn(x) for x in items]`` on ``n_jobs`` threads (joblib's convention, see
    :func:`effective_n_jobs`), results in ``items``' order.

    Items start in decreasing order of ``costs`` (longest-processing-time first): with a
    few uneven tasks, such as one classifier per factor whose cost grows with its number
    of classes, starting the big ones first keeps a thread from being left with the
    largest task at the end. Each item is computed exactly as it would be alone.

    Example:
        >>> map_costliest_first(lambda x: x * x, [1, 2, 3], costs=[1, 3, 2], n_jobs=2)
        [1, 4, 9]
    """
    order = np.argsort(-np.asarray(costs, dtype=np.float64), kind="stable")
    workers = min(effective_n_jobs(n_jobs), len(order))
    if workers <= 1:
        done = [fn(items[i]) for i in order]
    else:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            done = list(pool.map(lambda i: fn(items[i]), order))
    out: list = [None] * len(items)
    for i, r in zip(order, done, strict=True):
        out[i] = r
    return out
