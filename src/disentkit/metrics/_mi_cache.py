"""Sharing mutual-information estimates between metrics."""

from __future__ import annotations

from typing import Any

import numpy as np

from disentkit._random import SeedLike
from disentkit._validation import check_choice
from disentkit.metrics._mi import ESTIMATORS, MutualInfo, mutual_info_matrix


class MICache:
    """Computes each mutual-information matrix once and hands it to every metric that asks.

    :func:`disentkit.evaluate` passes one cache to all metrics of a call as their ``mi``
    argument, so MIG, modularity and InfoMEC share one estimate per estimator setting.
    Keyed by the estimator and its options; valid for one ``(latents, factors)`` pair.
    """

    def __init__(self) -> None:
        self._store: dict[tuple, MutualInfo] = {}

    def get(self, latents: np.ndarray, factors: np.ndarray, factor_sizes: np.ndarray,
            **kwargs: Any) -> MutualInfo:
        key = tuple(sorted((k, repr(v)) for k, v in kwargs.items()))
        if key not in self._store:
            self._store[key] = mutual_info_matrix(latents, factors, factor_sizes, **kwargs)
        return self._store[key]

    def __len__(self) -> int:
        return len(self._store)


def resolve_mi(
    mi: MutualInfo | MICache | None,
    latents: np.ndarray,
    factors: np.ndarray,
    factor_sizes: np.ndarray,
    *,
    estimator: str,
    seed: SeedLike = None,
    **options: Any,
) -> MutualInfo:
    """The MI matrix a metric asked for: from ``mi`` when given, else computed.

    Args:
        mi: ``None`` (compute), a :class:`MICache` (look up or compute once), or a
            precomputed :class:`MutualInfo`, which must match the estimator, options and shape
            asked for; a mismatch raises rather than silently scoring with another estimate.
        latents, factors, factor_sizes: the prepared inputs of the metric.
        estimator, seed, options: as :func:`mutual_info_matrix`; options that do not apply
            to ``estimator`` are ignored.
    """
    relevant = {
        "histogram": ("n_bins",),
        "discrete": (),
        "knn": ("n_neighbors", "standardize"),
    }[check_choice(estimator, "estimator", ESTIMATORS)]
    kwargs = {k: v for k, v in options.items() if k in relevant}
    if estimator == "knn":
        kwargs["seed"] = seed
    if isinstance(mi, MICache):
        return mi.get(latents, factors, factor_sizes, estimator=estimator, **kwargs)
    if isinstance(mi, MutualInfo):
        expected_shape = (latents.shape[1], factors.shape[1])
        if mi.matrix.shape != expected_shape:
            raise ValueError(
                f"precomputed mi has shape {mi.matrix.shape}; expected {expected_shape} "
                "(n_latents, n_kept_factors)"
            )
        asked = {k: v for k, v in kwargs.items() if k != "seed"}
        if mi.estimator != estimator or any(mi.options.get(k) != v for k, v in asked.items()):
            raise ValueError(
                f"precomputed mi was estimated with {mi.estimator} {mi.options}; this call "
                f"asks for {estimator} {asked}"
            )
        return mi
    if mi is not None:
        raise TypeError(
            f"mi must be a MutualInfo, an MICache or None; received {type(mi).__name__}"
        )
    return mutual_info_matrix(latents, factors, factor_sizes, estimator=estimator, **kwargs)
