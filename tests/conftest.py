"""Shared fixtures: small seeded representations with known structure."""

from __future__ import annotations

import functools

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


#: (seed, n_latents, sizes, noise) of the 5,000-row cases on which DCI's fast backends are
#: compared with the reference (slow tests of test_dci.py and test_dci_fast.py)
AGREEMENT_CASES_5000 = [
    (11, 6, (4, 6, 8), 0.1),
    (12, 8, (4, 6, 8, 10), 0.1),
    (13, 10, (4, 6, 8, 10, 5), 0.5),
    (14, 6, (4, 6, 8, 10), 0.5),
]


@functools.cache
def gbt_reference_5000(seed: int, n_latents: int, sizes: tuple[int, ...], noise: float):
    """``(latents, factors, dci(..., backend="gbt"))`` of one agreement case, fitted once per
    session (a minute of scikit-learn boosting each) and shared by the tests that compare
    a fast backend with it."""
    from disentkit.metrics.dci import dci

    z, s = mixed_code(seed, 5000, n_latents, sizes, noise=noise)
    return z, s, dci(z, s, backend="gbt")


@pytest.fixture(scope="module")
def torch_one_thread():
    """One torch thread for a test module (small models: threads only contend); restored
    after. Modules opt in with ``pytestmark = pytest.mark.usefixtures("torch_one_thread")``."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def tiny_model(torch_one_thread):
    """The trainer tests' tiny model registered for a test module, on one torch thread.
    Modules opt in with ``pytestmark = pytest.mark.usefixtures("tiny_model")``."""
    from tests.train import registered_tiny

    with registered_tiny():
        yield


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
