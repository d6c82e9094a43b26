"""Continuous–discrete kNN mutual information (Ross 2014)."""

from __future__ import annotations

import numpy as np
from sklearn.feature_selection import mutual_info_classif

from disentkit._random import SeedLike, as_generator, int_seed


def knn_mutual_info(
    latents: np.ndarray,
    factors: np.ndarray,
    *,
    n_neighbors: int = 3,
    standardize: bool = False,
    seed: SeedLike = None,
) -> np.ndarray:
    """MI (nats) between each continuous latent and each discrete factor: ``(D, K)``."""
    rng = as_generator(seed)
    z = latents
    if standardize:
        std = z.std(axis=0)
        z = (z - z.mean(axis=0)) / np.where(std > 0, std, 1.0)
    out = np.empty((z.shape[1], factors.shape[1]))
    for k in range(factors.shape[1]):
        out[:, k] = mutual_info_classif(
            z, factors[:, k], n_neighbors=n_neighbors, random_state=int_seed(rng)
        )
    return out
