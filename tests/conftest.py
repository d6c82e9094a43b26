"""Shared fixtures: small seeded representations with known structure."""

from __future__ import annotations

import numpy as np
import pytest


def make_factors(n: int, sizes: tuple[int, ...], seed: int = 0) -> np.ndarray:
    """Independent uniform factors ``(n, len(sizes))`` with the given numbers of classes."""
    rng = np.random.default_rng(seed)
    return np.stack([rng.integers(0, s, n) for s in sizes], axis=1)


@pytest.fixture
def factors_small() -> np.ndarray:
    return make_factors(400, (3, 4, 5), seed=1)


@pytest.fixture
def perfect_latents(factors_small: np.ndarray) -> np.ndarray:
    """Each factor copied to its own latent (scaled, jittered slightly), plus nothing else."""
    rng = np.random.default_rng(2)
    return factors_small * 1.0 + 0.01 * rng.standard_normal(factors_small.shape)


@pytest.fixture
def random_latents(factors_small: np.ndarray) -> np.ndarray:
    return np.random.default_rng(3).standard_normal((factors_small.shape[0], 4))
