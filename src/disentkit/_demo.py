"""A built-in example for ``disentkit demo``: one set of factors, three representations.

Everything is generated from a seed; nothing is downloaded or read from disk.
"""

from __future__ import annotations

import numpy as np

from disentkit._random import SeedLike, as_generator
from disentkit._validation import check_positive_int

#: Number of classes of each of the five ground-truth factors.
DEMO_FACTOR_SIZES: tuple[int, ...] = (2, 3, 4, 6, 8)
#: Standard deviation of the Gaussian noise added to the disentangled latents.
DEMO_NOISE = 0.05
#: One line per representation returned by :func:`demo_data`.
DEMO_DESCRIPTIONS: dict[str, str] = {
    "disentangled": "one latent per factor (scaled to [-1, 1]) + noise, and one dead latent",
    "entangled": "the disentangled latents under one random rotation: same information, mixed",
    "random": "standard Gaussian noise, independent of the factors",
}


def demo_data(
    seed: SeedLike = 0, n_samples: int = 5000
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Build the demo's ground-truth factors and three representations of them.

    The factors are five independent, uniformly drawn categorical variables with
    :data:`DEMO_FACTOR_SIZES` classes. The representations, each with six latents:

    - ``"disentangled"``: latent ``j < 5`` is factor ``j`` mapped linearly onto
      ``[-1, 1]`` plus Gaussian noise of standard deviation :data:`DEMO_NOISE`; latent 5
      is constant (a dead latent).
    - ``"entangled"``: the disentangled latents multiplied by one random orthogonal
      ``6 × 6`` matrix. The information about the factors is unchanged (the map is
      invertible and linear) but every latent mixes every factor.
    - ``"random"``: standard Gaussian latents, independent of the factors.

    Args:
        seed: int, ``numpy.random.Generator`` or ``None`` (seed 0).
        n_samples: number of rows, at least 10.

    Returns:
        ``{name: (latents, factors)}`` in the order disentangled, entangled, random; latents
        float64 ``(n_samples, 6)``, factors int64 ``(n_samples, 5)`` (the same array for all
        three).

    Example:
        >>> data = demo_data(seed=0, n_samples=100)
        >>> list(data)
        ['disentangled', 'entangled', 'random']
        >>> latents, factors = data["disentangled"]
        >>> latents.shape, factors.shape, factors.max(axis=0).tolist()
        ((100, 6), (100, 5), [1, 2, 3, 5, 7])
    """
    n_samples = check_positive_int(n_samples, "n_samples", minimum=10)
    rng = as_generator(seed)
    sizes = np.asarray(DEMO_FACTOR_SIZES)
    factors = rng.integers(0, sizes, size=(n_samples, sizes.size))  # (n, K)
    scaled = 2.0 * factors / (sizes - 1) - 1.0  # (n, K) in [-1, 1]
    noise = DEMO_NOISE * rng.standard_normal(scaled.shape)
    dead = np.zeros((n_samples, 1))
    disentangled = np.hstack([scaled + noise, dead])  # (n, K + 1)
    q, r = np.linalg.qr(rng.standard_normal((sizes.size + 1,) * 2))
    rotation = q * np.sign(np.diag(r))  # uniformly distributed orthogonal matrix
    entangled = disentangled @ rotation  # (n, K + 1)
    random = rng.standard_normal(disentangled.shape)
    factors = factors.astype(np.int64)
    return {
        "disentangled": (disentangled, factors),
        "entangled": (entangled, factors),
        "random": (random, factors),
    }
