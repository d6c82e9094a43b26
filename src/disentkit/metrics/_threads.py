"""Per-factor work in threads, the costliest first."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar

import numpy as np
from joblib import Parallel, delayed

T = TypeVar("T")
R = TypeVar("R")


def map_costliest_first(
    fn: Callable[[T], R], items: Sequence[T], costs: Sequence[float], n_jobs: int
) -> list[R]:
    """``[fn(x) for x in items]`` on ``n_jobs`` joblib threads, results in ``items``' order.

    Items start in decreasing order of ``costs`` (longest-processing-time first): with a
    few uneven tasks, such as one classifier per factor whose cost grows with its number
    of classes, starting the big ones first keeps a thread from being left with the
    largest task at the end. Each item is computed exactly as it would be alone.

    Example:
        >>> map_costliest_first(lambda x: x * x, [1, 2, 3], costs=[1, 3, 2], n_jobs=2)
        [1, 4, 9]
    """
    order = np.argsort(-np.asarray(costs, dtype=np.float64), kind="stable")
    done = Parallel(n_jobs=n_jobs, prefer="threads")(delayed(fn)(items[i]) for i in order)
    out: list = [None] * len(items)
    for i, r in zip(order, done, strict=True):
        out[i] = r
    return out
