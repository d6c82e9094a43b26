"""Shared statistics: discretisation, contingency tables and the mutual-information matrix.

Every MI-based metric (MIG, modularity, InfoMEC, ...) reads one ``(n_latents, n_factors)``
matrix of mutual information in nats, computed once per estimator and reused. Three
estimators:

- ``"histogram"``: each latent is cut into ``n_bins`` equal-width bins over its observed
  range (disentanglement_lib's ``np.histogram`` + ``np.digitize``), then plug-in MI.
- ``"discrete"``: latents are already categorical (quantized values, code indices);
  each distinct value is a category; plug-in MI (= ``sklearn.metrics.mutual_info_score``).
- ``"knn"``: the continuous–discrete k-nearest-neighbour estimator of Ross (2014), as in
  ``sklearn.feature_selection.mutual_info_classif`` (see :mod:`disentkit.metrics._knn`).

All pairwise contingency tables come from one pass over the data: no Python loop over
(latent, factor) pairs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from disentkit._random import SeedLike
from disentkit._validation import (
    check_choice,
    check_positive_int,
    encode_labels,
)

ESTIMATORS = ("histogram", "discrete", "knn")


def histogram_codes(latents: np.ndarray, n_bins: int = 20) -> np.ndarray:
    """Discretise each latent into ``n_bins`` equal-width bins over its observed range.

    Matches ``np.digitize(z, np.histogram(z, bins=n_bins)[1][:-1]) - 1`` per column
    (disentanglement_lib's ``_histogram_discretize``), including its handling of constant
    columns (all in one bin), but vectorised over columns.

    Args:
        latents: float ``(n_samples, n_latents)``.
        n_bins: bins per latent.

    Returns:
        int64 codes in ``[0, n_bins)``, shape ``(n_samples, n_latents)``.

    Example:
        >>> histogram_codes(np.array([[0.0], [0.5], [1.0]]), n_bins=2).ravel().tolist()
        [0, 1, 1]
    """
    n_bins = check_positive_int(n_bins, "n_bins", minimum=2)
    z = np.asarray(latents, dtype=np.float64)
    lo = z.min(axis=0)
    hi = z.max(axis=0)
    const = lo == hi
    lo = np.where(const, lo - 0.5, lo)
    hi = np.where(const, hi + 0.5, hi)
    # Same edges as np.histogram: linspace(lo, hi, n_bins + 1) per column.
    edges = np.linspace(lo, hi, n_bins + 1, axis=1)  # (D, n_bins + 1)
    width = (hi - lo) / n_bins
    codes = np.floor((z - lo) / width).astype(np.int64)  # (n, D), may be off by one at edges
    np.clip(codes, 0, n_bins - 1, out=codes)
    cols = np.arange(z.shape[1])
    # Exact correction against the float edges (searchsorted semantics, side="right").
    codes -= z < edges[cols, codes]
    np.clip(codes, 0, n_bins - 1, out=codes)
    upper = np.minimum(codes + 1, n_bins - 1)
    codes += (codes < n_bins - 1) & (z >= edges[cols, upper])
    return codes


def discrete_codes(latents: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Label-encode discrete latents: each distinct value of a column is one category.

    Returns:
        ``codes`` int64 ``(n_samples, n_latents)`` and ``sizes`` int64 ``(n_latents,)``.
    """
    return encode_labels(np.asarray(latents))


def contingency(
    a: np.ndarray, a_sizes: np.ndarray, b: np.ndarray, b_sizes: np.ndarray
) -> np.ndarray:
    """Every pairwise contingency table between the columns of ``a`` and of ``b`` at once.

    Args:
        a: int codes ``(n, D)`` with column ``d`` in ``[0, a_sizes[d])``.
        a_sizes: ``(D,)``.
        b: int codes ``(n, K)`` with column ``k`` in ``[0, b_sizes[k])``.
        b_sizes: ``(K,)``.

    Returns:
        int64 ``(Σ a_sizes, Σ b_sizes)``: the block at rows of latent ``d`` and columns of
        factor ``k`` is the contingency table of ``(a[:, d], b[:, k])``. It is the product
        of the two one-hot code matrices, ``onehot(a).T @ onehot(b)``, accumulated in row
        chunks so memory stays bounded.
    """
    n = a.shape[0]
    a_off = np.concatenate([[0], np.cumsum(a_sizes)])
    b_off = np.concatenate([[0], np.cumsum(b_sizes)])
    n_a, n_b = int(a_off[-1]), int(b_off[-1])
    out = np.zeros((n_a, n_b), dtype=np.int64)
    n_cols = a.shape[1] * b.shape[1]
    chunk = max(1, min(n, 2**24 // max(n_cols, 1)))
    for start in range(0, n, chunk):
        ga = a[start : start + chunk] + a_off[:-1]  # (c, D) global row ids
        gb = b[start : start + chunk] + b_off[:-1]  # (c, K) global column ids
        flat = (ga[:, :, None] * n_b + gb[:, None, :]).ravel()  # (c·D·K,)
        out += np.bincount(flat, minlength=n_a * n_b).reshape(n_a, n_b)
    return out


def mi_from_contingency(
    table: np.ndarray, a_sizes: np.ndarray, b_sizes: np.ndarray, n_samples: int
) -> np.ndarray:
    """Plug-in mutual information (nats) of every block of a stacked contingency table.

    Equal to ``sklearn.metrics.mutual_info_score`` on each pair.

    Returns:
        float64 ``(D, K)``.
    """
    a_id = np.repeat(np.arange(a_sizes.size), a_sizes)  # latent of each table row
    b_id = np.repeat(np.arange(b_sizes.size), b_sizes)  # factor of each table column
    # Row and column marginals of each block: the same for every block of a row/column.
    pa = table[:, b_id == 0].sum(axis=1) / n_samples  # (Σa,)
    pb = table[a_id == 0, :].sum(axis=0) / n_samples  # (Σb,)
    rows, cols = np.nonzero(table)
    p = table[rows, cols] / n_samples
    terms = p * (np.log(p) - np.log(pa[rows]) - np.log(pb[cols]))
    mi = np.bincount(
        a_id[rows] * b_sizes.size + b_id[cols], weights=terms, minlength=a_sizes.size * b_sizes.size
    ).reshape(a_sizes.size, b_sizes.size)
    return np.maximum(mi, 0.0)


def plugin_mutual_info(
    a: np.ndarray, a_sizes: np.ndarray, b: np.ndarray, b_sizes: np.ndarray
) -> np.ndarray:
    """Plug-in MI (nats) between every column of ``a`` and every column of ``b``: ``(D, K)``.

    Example:
        >>> a = np.array([[0], [0], [1], [1]]); b = np.array([[0], [0], [1], [1]])
        >>> round(float(plugin_mutual_info(a, np.array([2]), b, np.array([2]))[0, 0]), 6)
        0.693147
    """
    table = contingency(a, a_sizes, b, b_sizes)
    return mi_from_contingency(table, a_sizes, b_sizes, a.shape[0])


def entropies(codes: np.ndarray, sizes: np.ndarray) -> np.ndarray:
    """Plug-in entropy (nats) of each column of label-encoded ``codes`` ``(n, K)``: ``(K,)``."""
    n, k = codes.shape
    off = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    counts = np.bincount((codes + off).ravel(), minlength=int(sizes.sum()))
    p = counts / n
    col = np.repeat(np.arange(k), sizes)
    nz = p > 0
    return np.bincount(col[nz], weights=-p[nz] * np.log(p[nz]), minlength=k)


@dataclass(frozen=True)
class MutualInfo:
    """The latents × factors mutual-information matrix and what it was computed with.

    Attributes:
        matrix: float64 ``(n_latents, n_factors)``, nats.
        factor_entropy: float64 ``(n_factors,)``, plug-in entropy of each factor, nats.
        estimator: ``"histogram"``, ``"discrete"`` or ``"knn"``.
        options: the estimator's options (``n_bins``, ``n_neighbors``, ``standardize``, ...).
        n_samples: rows used.
    """

    matrix: np.ndarray
    factor_entropy: np.ndarray
    estimator: str
    options: dict[str, Any] = field(default_factory=dict)
    n_samples: int = 0

    @property
    def variant(self) -> str:
        """Short estimator tag used in metric IDs, e.g. ``hist20``, ``discrete``, ``knn3``."""
        if self.estimator == "histogram":
            return f"hist{self.options['n_bins']}"
        if self.estimator == "knn":
            std = "std" if self.options.get("standardize") else ""
            return f"knn{self.options['n_neighbors']}{std}"
        return "discrete"

    def normalized(self) -> np.ndarray:
        """``NMI[d, k] = I(z_d; s_k) / H(s_k)``, clipped to ``[0, 1]`` (kNN can overshoot)."""
        return np.clip(self.matrix / self.factor_entropy[None, :], 0.0, 1.0)


def mutual_info_matrix(
    latents: np.ndarray,
    factors: np.ndarray,
    factor_sizes: np.ndarray | None = None,
    *,
    estimator: str = "histogram",
    n_bins: int = 20,
    n_neighbors: int = 3,
    standardize: bool = False,
    seed: SeedLike = None,
) -> MutualInfo:
    """Mutual information between every latent and every factor, in nats.

    Args:
        latents: float ``(n_samples, n_latents)``.
        factors: label-encoded int ``(n_samples, n_factors)`` (see
            :func:`disentkit._validation.encode_labels`).
        factor_sizes: classes per factor; computed when omitted.
        estimator: ``"histogram"`` (default; 20 equal-width bins as dlib), ``"discrete"``
            (latents are categorical) or ``"knn"`` (Ross 2014, as sklearn's
            ``mutual_info_classif``).
        n_bins: bins per latent for ``"histogram"``.
        n_neighbors: k for ``"knn"``.
        standardize: for ``"knn"``, standardise latents first (LQ's standalone InfoMEC).
        seed: for ``"knn"``, seeds the small-noise jitter.

    Returns:
        :class:`MutualInfo`.

    Example:
        >>> z = np.array([[0.0], [0.1], [0.9], [1.0]]); s = np.array([[0], [0], [1], [1]])
        >>> mi = mutual_info_matrix(z, s)
        >>> round(float(mi.matrix[0, 0] / mi.factor_entropy[0]), 6)
        1.0
    """
    estimator = check_choice(estimator, "estimator", ESTIMATORS)
    factors = np.asarray(factors)
    if factor_sizes is None:
        factors, factor_sizes = encode_labels(factors)
    factor_sizes = np.asarray(factor_sizes, dtype=np.int64)
    h = entropies(factors, factor_sizes)
    n = latents.shape[0]
    if estimator == "histogram":
        n_bins = check_positive_int(n_bins, "n_bins", minimum=2)
        codes = histogram_codes(latents, n_bins)
        sizes = np.full(latents.shape[1], n_bins, dtype=np.int64)
        matrix = plugin_mutual_info(codes, sizes, factors, factor_sizes)
        options: dict[str, Any] = {"n_bins": n_bins}
    elif estimator == "discrete":
        codes, sizes = discrete_codes(latents)
        matrix = plugin_mutual_info(codes, sizes, factors, factor_sizes)
        options = {}
    else:
        from disentkit.metrics._knn import knn_mutual_info

        n_neighbors = check_positive_int(n_neighbors, "n_neighbors")
        matrix = knn_mutual_info(
            latents, factors, n_neighbors=n_neighbors, standardize=standardize, seed=seed
        )
        options = {"n_neighbors": n_neighbors, "standardize": bool(standardize)}
    return MutualInfo(
        matrix=matrix, factor_entropy=h, estimator=estimator, options=options, n_samples=n
    )
