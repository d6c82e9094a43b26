"""Correlated ground-truth factors: sample pairs of factors from a Gaussian-kernel joint.

The benchmark datasets are full grids of independent factors. To study what models learn
from *correlated* data, Träuble et al. (2021, "On Disentangled Representations Learned
from Correlated Data", ICML) sample training factors so that pairs of factors are linearly
correlated, with the joint distribution of a pair

    p(c_i, c_j) ∝ exp(−(c_i − α c_j)² / (2σ²)),

and every other factor independent and uniform. Here the model is applied to class indices
normalised to ``[0, 1]`` (``u = c / (n − 1)``), so that ``α = 1`` maps one factor's range onto
the other's (on raw indices this is ``α = (n_i − 1)/(n_j − 1)`` with σ in units of factor
``i``'s range):

    p(c_i, c_j) ∝ exp(−(u_i − u_j)² / (2σ²)),    c_i ∈ [0, n_i), c_j ∈ [0, n_j).

``sigma`` is the strength knob: small σ (e.g. 0.1–0.2) concentrates the pair near the
diagonal ``u_i ≈ u_j`` (strong correlation), large σ (≳ 1) is close to independence and
``sigma=math.inf`` is exactly independent uniform. The table is evaluated on the grid and
normalised over it, as in the paper, so the marginals of a correlated pair are *not*
uniform: values at the ends of the range are less likely than central ones (for 10×10
factors, an end value is 0.72× as likely as a central one at σ = 0.1, 0.62× at σ = 0.2,
0.82× at σ = 0.7). ``balance_marginals=True`` instead rescales the table (Sinkhorn
iterations) to the joint closest in KL divergence with uniform marginals, which isolates
the effect of correlation from that of imbalance.

Only the sampling of factors changes: images are still a pure function of the factors, and
a dataset's ``images(indices)`` and ``len`` still cover the whole grid. Draw training data
through ``sample_factors`` (then ``images_from_factors``) to see the correlation.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from disentkit._random import SeedLike, as_generator
from disentkit.data._base import FactorDataset

PairLike = tuple[int | str, int | str]


def _check_sigma(sigma: object) -> float:
    if isinstance(sigma, bool) or not isinstance(sigma, int | float | np.integer | np.floating):
        raise TypeError(
            f"sigma must be a positive number (math.inf for independence); received "
            f"{sigma!r} of type {type(sigma).__name__}"
        )
    s = float(sigma)
    if math.isnan(s) or s <= 0:
        raise ValueError(
            f"sigma must be > 0 (small = strong correlation, math.inf = independent); "
            f"received {sigma!r}"
        )
    return s


def pair_probabilities(
    size_i: int, size_j: int, sigma: float, *, balance_marginals: bool = False
) -> np.ndarray:
    """The joint distribution of one correlated pair of factors.

    Args:
        size_i: number of classes of the first factor (≥ 2).
        size_j: number of classes of the second factor (≥ 2).
        sigma: kernel width on the normalised scale (> 0; ``math.inf`` = independent).
        balance_marginals: rescale the table to uniform marginals (Sinkhorn iterations).

    Returns:
        float64 ``(size_i, size_j)``, non-negative, summing to 1:
        ``p[a, b] ∝ exp(−(a/(size_i−1) − b/(size_j−1))² / (2σ²))``.

    Raises:
        ValueError: a size below 2, a bad ``sigma``, or a ``sigma`` so small that some value
            of a factor gets probability 0 (then its marginal cannot be valid).

    Example:
        >>> p = pair_probabilities(3, 3, 0.2)
        >>> round(float(p.sum()), 12), bool(p[0, 0] > p[0, 2])
        (1.0, True)
        >>> pair_probabilities(2, 4, math.inf).round(3).tolist()
        [[0.125, 0.125, 0.125, 0.125], [0.125, 0.125, 0.125, 0.125]]
    """
    for label, size in (("size_i", size_i), ("size_j", size_j)):
        if isinstance(size, bool) or not isinstance(size, int | np.integer) or size < 2:
            raise ValueError(
                f"a correlated factor needs at least 2 values; received {label}={size!r}"
            )
    s = _check_sigma(sigma)
    if math.isinf(s):
        return np.full((size_i, size_j), 1.0 / (size_i * size_j))
    u_i = np.linspace(0.0, 1.0, size_i)  # (n_i,)
    u_j = np.linspace(0.0, 1.0, size_j)  # (n_j,)
    table = np.exp(-((u_i[:, None] - u_j[None, :]) ** 2) / (2.0 * s * s))  # (n_i, n_j)
    if (table.sum(axis=1) == 0).any() or (table.sum(axis=0) == 0).any():
        raise ValueError(
            f"sigma={s} is too small for factors of {size_i} and {size_j} values: some values "
            f"would never be drawn; use a larger sigma"
        )
    if balance_marginals:
        table = _sinkhorn(table)
    return table / table.sum()


def _sinkhorn(table: np.ndarray, *, tol: float = 1e-12, max_iter: int = 10_000) -> np.ndarray:
    """Scale rows and columns of a positive table to uniform marginals."""
    n_i, n_j = table.shape
    r = np.ones(n_i)
    c = np.ones(n_j)
    for _ in range(max_iter):
        r = (1.0 / n_i) / (table @ c)
        c = (1.0 / n_j) / (table.T @ r)
        p = r[:, None] * table * c[None, :]
        if np.abs(p.sum(axis=1) - 1.0 / n_i).max() < tol:
            return p
    raise ValueError(  # only for extreme sigma, where the kernel is numerically sparse
        "balance_marginals: could not reach uniform marginals for this sigma; use a larger sigma"
    )


def _resolve_pairs(
    pairs: object, factor_sizes: Sequence[int], factor_names: Sequence[str] | None = None
) -> tuple[tuple[int, int], ...]:
    """Pairs of factor indices (names allowed with ``factor_names``), checked."""
    k = len(factor_sizes)
    if (
        isinstance(pairs, tuple | list)
        and len(pairs) == 2
        and all(isinstance(p, int | str | np.integer) for p in pairs)
    ):
        pairs = [pairs]  # a single pair
    if not isinstance(pairs, Sequence) or isinstance(pairs, str) or len(pairs) == 0:
        raise ValueError(
            f"pairs must be a non-empty list of (factor, factor) pairs, e.g. [(0, 1)]; "
            f"received {pairs!r}"
        )

    def one(f: object) -> int:
        if isinstance(f, str):
            if factor_names is None or f not in factor_names:
                known = ", ".join(factor_names) if factor_names is not None else "(none given)"
                raise ValueError(f"unknown factor name {f!r} in pairs; factor names: {known}")
            return list(factor_names).index(f)
        if isinstance(f, bool) or not isinstance(f, int | np.integer):
            raise TypeError(f"pairs hold factor indices or names; received {f!r}")
        if not 0 <= f < k:
            raise IndexError(f"factor index {f} in pairs is out of range for {k} factors")
        return int(f)

    out: list[tuple[int, int]] = []
    seen: set[int] = set()
    for pair in pairs:
        if not isinstance(pair, tuple | list) or len(pair) != 2:
            raise ValueError(f"each pair must be (factor, factor); received {pair!r}")
        i, j = one(pair[0]), one(pair[1])
        if i == j:
            raise ValueError(f"a pair must join two different factors; received {pair!r}")
        for f in (i, j):
            if f in seen:
                raise ValueError(
                    f"factor {f} appears in more than one pair; pairs must be disjoint "
                    f"(received {pairs!r})"
                )
            if factor_sizes[f] < 2:
                raise ValueError(
                    f"factor {f} has {factor_sizes[f]} value(s) and cannot be correlated"
                )
            seen.add(f)
        out.append((i, j))
    return tuple(out)


def _check_sizes(factor_sizes: object) -> tuple[int, ...]:
    sizes = np.asarray(factor_sizes)
    if sizes.ndim != 1 or sizes.size == 0 or sizes.dtype.kind not in "iu" or (sizes < 1).any():
        raise ValueError(
            f"factor_sizes must be a non-empty sequence of positive ints; received "
            f"{factor_sizes!r}"
        )
    return tuple(int(s) for s in sizes)


def sample_correlated_factors(
    factor_sizes: Sequence[int],
    n: int,
    rng: SeedLike = None,
    *,
    pairs: Sequence[PairLike] | PairLike,
    sigma: float,
    balance_marginals: bool = False,
) -> np.ndarray:
    """Draw factor vectors with the given pairs correlated and the rest independent.

    Each pair ``(i, j)`` is drawn from :func:`pair_probabilities` ``(n_i, n_j, sigma)``;
    every other factor is uniform; all pairs and factors are independent of each other.
    Draws use ``rng`` in factor order (one uniform draw per pair, integers per factor), so
    the same seed gives the same factors.

    Args:
        factor_sizes: classes per factor ``(K,)``.
        n: number of factor vectors.
        rng: seed or ``numpy.random.Generator``.
        pairs: one pair ``(i, j)`` or a list of disjoint pairs of factor indices.
        sigma: kernel width (> 0); smaller is stronger; ``math.inf`` is independent.
        balance_marginals: keep uniform marginals (see :func:`pair_probabilities`).

    Returns:
        int64 ``(n, K)`` with column ``k`` in ``[0, factor_sizes[k])``.

    Example:
        >>> f = sample_correlated_factors((10, 10, 3), 2000, 0, pairs=(0, 1), sigma=0.1)
        >>> f.shape, bool(np.corrcoef(f[:, 0], f[:, 1])[0, 1] > 0.8)
        ((2000, 3), True)
    """
    sizes = _check_sizes(factor_sizes)
    if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 0:
        raise ValueError(f"n must be a non-negative int; received {n!r}")
    resolved = _resolve_pairs(pairs, sizes)
    gen = as_generator(rng)
    partner = {i: j for i, j in resolved}
    second = {j for _, j in resolved}
    out = np.empty((int(n), len(sizes)), dtype=np.int64)
    for k, size in enumerate(sizes):
        if k in second:
            continue  # drawn with its partner
        if k in partner:
            j = partner[k]
            table = pair_probabilities(size, sizes[j], sigma, balance_marginals=balance_marginals)
            cdf = np.cumsum(table.ravel())
            cdf /= cdf[-1]
            flat = np.searchsorted(cdf, gen.random(int(n)), side="right")  # (n,)
            flat = np.minimum(flat, cdf.size - 1)
            out[:, k], out[:, j] = np.divmod(flat, sizes[j])
        else:
            out[:, k] = gen.integers(0, size, int(n))
    return out


class CorrelatedFactorDataset(FactorDataset):
    """A dataset whose ``sample_factors`` draws correlated pairs; everything else delegates.

    Images, indices, factor names/sizes/values and the source are those of the wrapped
    dataset (other attributes are looked up on it too); only :meth:`sample_factors`
    changes, so sampling metrics and factor-sampling loaders see the correlation.

    Attributes:
        dataset: the wrapped dataset.
        pairs: the correlated pairs as factor indices.
        sigma: kernel width.
        balance_marginals: whether the pair marginals are kept uniform.
    """

    def __init__(self, dataset: FactorDataset, pairs: Sequence[PairLike] | PairLike, *,
                 sigma: float, balance_marginals: bool = False) -> None:
        if not isinstance(dataset, FactorDataset):
            raise TypeError(
                f"with_correlated_factors needs a FactorDataset; received {type(dataset).__name__}"
            )
        self.dataset = dataset
        self.pairs = _resolve_pairs(pairs, dataset.factor_sizes, dataset.factor_names)
        self.sigma = _check_sigma(sigma)
        self.balance_marginals = bool(balance_marginals)
        for i, j in self.pairs:  # fail now, not at the first draw
            pair_probabilities(dataset.factor_sizes[i], dataset.factor_sizes[j], self.sigma,
                               balance_marginals=self.balance_marginals)
        self.name = dataset.name
        self.factor_names = tuple(dataset.factor_names)
        self.factor_sizes = tuple(dataset.factor_sizes)
        self.image_shape = dataset.image_shape
        self.source = dataset.source

    def __getattr__(self, attr: str) -> Any:
        # only called for attributes not found normally; delegate to the wrapped dataset
        dataset = self.__dict__.get("dataset")
        if dataset is None or attr.startswith("__"):
            raise AttributeError(attr)
        return getattr(dataset, attr)

    def __repr__(self) -> str:
        names = [(self.factor_names[i], self.factor_names[j]) for i, j in self.pairs]
        return f"CorrelatedFactorDataset({self.dataset!r}, pairs={names}, sigma={self.sigma})"

    @property
    def factor_values(self) -> tuple[np.ndarray, ...]:
        return self.dataset.factor_values

    def __len__(self) -> int:
        return len(self.dataset)

    def check_factors(self, factors: object) -> np.ndarray:
        return self.dataset.check_factors(factors)

    def factors(self, indices: object) -> np.ndarray:
        return self.dataset.factors(indices)

    def index(self, factors: object) -> np.ndarray:
        return self.dataset.index(factors)

    def images(self, indices: object) -> np.ndarray:
        return self.dataset.images(indices)

    def images_from_factors(self, factors: object) -> np.ndarray:
        return self.dataset.images_from_factors(factors)

    def sample_factors(self, n: int, rng: SeedLike = None) -> np.ndarray:
        """``n`` factor vectors with the pairs correlated: int64 ``(n, K)``."""
        return sample_correlated_factors(
            self.factor_sizes, n, rng, pairs=self.pairs, sigma=self.sigma,
            balance_marginals=self.balance_marginals,
        )

    def pair_probabilities(self, pair: int = 0) -> np.ndarray:
        """The joint ``(n_i, n_j)`` of the ``pair``-th correlated pair."""
        i, j = self.pairs[pair]
        return pair_probabilities(self.factor_sizes[i], self.factor_sizes[j], self.sigma,
                                  balance_marginals=self.balance_marginals)

    def info(self) -> dict[str, Any]:
        """The wrapped dataset's info plus a ``correlation`` entry (model, pairs, sigma)."""
        out = self.dataset.info()
        out["correlation"] = {
            "model": "gaussian_kernel_traeuble2021",
            "pairs": [[self.factor_names[i], self.factor_names[j]] for i, j in self.pairs],
            "sigma": self.sigma,
            "balance_marginals": self.balance_marginals,
        }
        return out


def with_correlated_factors(
    dataset: FactorDataset,
    pairs: Sequence[PairLike] | PairLike,
    *,
    sigma: float,
    balance_marginals: bool = False,
) -> CorrelatedFactorDataset:
    """Wrap ``dataset`` so that ``sample_factors`` correlates the given pairs of factors.

    Args:
        dataset: any :class:`~disentkit.data.FactorDataset`.
        pairs: one pair or a list of disjoint pairs, by factor index or name.
        sigma: kernel width (> 0); smaller is stronger; ``math.inf`` is independent.
        balance_marginals: keep uniform marginals (see :func:`pair_probabilities`).

    Returns:
        A :class:`CorrelatedFactorDataset`.

    Example:
        >>> from disentkit.data.procedural import XYObject
        >>> ds = with_correlated_factors(XYObject(image_size=32, n_positions=8, n_scales=2,
        ...                                       n_colours=4), ("x", "y"), sigma=0.1)
        >>> f = ds.sample_factors(1000, 0)
        >>> bool(np.corrcoef(f[:, 0], f[:, 1])[0, 1] > 0.8), ds.images_from_factors(f[:2]).shape
        (True, (2, 32, 32, 3))
    """
    return CorrelatedFactorDataset(dataset, pairs, sigma=sigma,
                                   balance_marginals=balance_marginals)
