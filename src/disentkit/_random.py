"""Explicit randomness: every random choice takes a seed or a ``numpy.random.Generator``."""

from __future__ import annotations

import numpy as np

SeedLike = int | np.random.Generator | None


def as_generator(seed: SeedLike) -> np.random.Generator:
    """Return a ``numpy.random.Generator`` for ``seed``.

    ``None`` gives the fixed seed 0 so that results are reproducible by default; an ``int``
    seeds a fresh generator; a ``Generator`` is used as is.
    """
    if seed is None:
        return np.random.default_rng(0)
    if isinstance(seed, np.random.Generator):
        return seed
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer):
        raise TypeError(
            f"seed must be an int, a numpy.random.Generator or None; received {type(seed).__name__}"
        )
    if seed < 0:
        raise ValueError(f"seed must be non-negative; received {seed}")
    return np.random.default_rng(int(seed))


def int_seed(rng: np.random.Generator) -> int:
    """Draw a 31-bit integer seed from ``rng`` for libraries that take ``random_state``."""
    return int(rng.integers(0, 2**31 - 1))
