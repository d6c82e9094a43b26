"""Shared fixtures: small seeded representations with known structure."""

from __future__ import annotations

import numpy as np
import pytest


def make_factors(n: int, sizes: tuple[int, ...], seed: int = 0) -> np.ndarray:
    """Independent uniform factors ``(n, len(sizes))`` with the given numbers of classes."""
    rng = np.random.default_rng(seed)
    return np.stack([rng.integers(0, s, n) for s in sizes], axis=1)



def mixed_code(seed: int, n: int, n_latents: int, sizes: tuple[int, ...], noise: float,
               mix: float = 0.3) -> tuple[np.ndarray, np.ndarray]:
    """Latents ``(n, n_latents)`` and factors ``(n, len(sizes))``: standardised factors
    plus ``noise`` in the first latents, Gaussian noise latents after, all mixed by
    ``I + mix·N(0, 1)``."""
    rng = np.random.default_rng(seed)
    s = make_factors(n, sizes, seed=seed + 1000)
    k = len(sizes)
    z = rng.standard_normal((n, n_latents))
    z[:, :k] = (s - s.mean(0)) / s.std(0) + noise * rng.standard_normal((n, k))
    return z @ (np.eye(n_latents) + mix * rng.standard_normal((n_latents, n_latents))), s


@pytest.fixture(scope="module")
def torch_one_thread():
    """One torch thread for a test module (small models: threads only contend); restored
    after. Modules opt in with ``pytestmark = pytest.mark.usefixtures("torch_one_thread")``."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)

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
