"""The interface of sampling-based metrics: a ground-truth sampler and a representation.

Metrics such as the BetaVAE and FactorVAE scores do not score fixed arrays: they choose
factor configurations (e.g. pairs that agree on one factor), render observations for them
and encode those. They take two things:

- a :class:`GroundTruthSampler`: ``factor_sizes``, ``sample_factors(n, rng)`` and
  ``images_from_factors(factors)``. A :class:`disentkit.data.FactorDataset` satisfies it as
  is; :class:`IdentityFactors` is a tiny one whose observations are the factors themselves.
- a representation function ``representation(observations) -> latents`` mapping a batch of
  observations ``(n, ...)`` to latents ``(n, n_latents)``. It is called on batches of at
  most ``encode_batch_size`` observations; what it returns is checked (2-D, one row per
  observation, finite, the same number of latents every call).

Randomness comes only from the ``numpy.random.Generator`` a metric hands to
``sample_factors``; observations are a deterministic function of the factors.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from typing import Protocol, runtime_checkable

import numpy as np

from disentkit._validation import DisentkitWarning, check_positive_int

RepresentationFn = Callable[[np.ndarray], np.ndarray]
"""Maps a batch of observations ``(n, ...)`` to latents ``(n, n_latents)``."""


@runtime_checkable
class GroundTruthSampler(Protocol):
    """What a sampling-based metric needs from a dataset with known factors.

    Attributes:
        factor_sizes: number of classes of each factor, ``(K,)``.
    """

    @property
    def factor_sizes(self) -> Sequence[int]: ...

    def sample_factors(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """Draw ``n`` factor configurations: int ``(n, K)``, column ``k`` in ``[0, size_k)``."""
        ...

    def images_from_factors(self, factors: np.ndarray) -> np.ndarray:
        """Observations ``(n, ...)`` for the factor configurations ``factors`` ``(n, K)``."""
        ...



def _check_factor_sizes(factor_sizes: object, what: str) -> np.ndarray:
    """``factor_sizes`` as int64 ``(K,)``, or a ValueError naming ``what`` and the value."""
    sizes = np.asarray(factor_sizes)
    if (
        sizes.ndim != 1
        or sizes.size == 0
        or not np.issubdtype(sizes.dtype, np.integer)
        or (sizes < 1).any()
    ):
        raise ValueError(
            f"{what} must be a non-empty sequence of positive integers; received "
            f"{factor_sizes!r}"
        )
    return sizes.astype(np.int64)


def check_sampler(sampler: object, *, metric: str) -> np.ndarray:
    """Check that ``sampler`` is a :class:`GroundTruthSampler`; return its factor sizes.

    Returns:
        int64 ``(K,)`` factor sizes.

    Raises:
        TypeError: a required member is missing.
        ValueError: the factor sizes are not positive integers.
    """
    missing = [
        name
        for name in ("factor_sizes", "sample_factors", "images_from_factors")
        if not hasattr(sampler, name)
    ]
    if missing:
        raise TypeError(
            f"{metric} needs a ground-truth sampler with factor_sizes, sample_factors(n, rng) "
            f"and images_from_factors(factors) (e.g. a FactorDataset); received "
            f"{type(sampler).__name__} without {', '.join(missing)}"
        )
    for name in ("sample_factors", "images_from_factors"):
        if not callable(getattr(sampler, name)):
            raise TypeError(f"{metric}: sampler.{name} must be callable")
    return _check_factor_sizes(sampler.factor_sizes, f"{metric}: sampler.factor_sizes")


def split_constant_factors(
    sizes: np.ndarray, *, metric: str, min_kept: int = 1
) -> tuple[np.ndarray, tuple[int, ...]]:
    """Split factor indices into those that vary (size ≥ 2) and those that do not.

    A factor with one value can never be told apart from the others, so sampling metrics
    skip it with a :class:`~disentkit.DisentkitWarning`, like the array metrics do.

    Returns:
        ``kept`` int64 indices and ``skipped`` tuple of indices.
    """
    kept = np.flatnonzero(sizes >= 2)
    skipped = tuple(int(k) for k in np.flatnonzero(sizes < 2))
    if kept.size < min_kept:
        raise ValueError(
            f"{metric} needs at least {min_kept} factor(s) that take more than one value; "
            f"received factor_sizes {sizes.tolist()}"
        )
    if skipped:
        warnings.warn(
            f"{metric}: skipping factor(s) {list(skipped)} that take a single value",
            DisentkitWarning,
            stacklevel=3,
        )
    return kept, skipped


def draw_factors(
    sampler: GroundTruthSampler,
    n: int,
    rng: np.random.Generator,
    sizes: np.ndarray,
    *,
    metric: str,
) -> np.ndarray:
    """Call ``sampler.sample_factors(n, rng)`` and check its answer.

    Returns:
        int64 ``(n, K)`` with column ``k`` in ``[0, sizes[k])``.
    """
    f = np.asarray(sampler.sample_factors(n, rng))
    if f.shape != (n, sizes.size):
        raise ValueError(
            f"{metric}: sampler.sample_factors({n}, rng) must return shape ({n}, {sizes.size}); "
            f"received shape {f.shape}"
        )
    if not (np.issubdtype(f.dtype, np.integer) or np.issubdtype(f.dtype, np.floating)):
        raise TypeError(
            f"{metric}: sampler.sample_factors must return integer class indices; "
            f"received dtype {f.dtype}"
        )
    if np.issubdtype(f.dtype, np.floating) and (
        not np.isfinite(f).all() or (f != np.round(f)).any()
    ):
        raise ValueError(f"{metric}: sampler.sample_factors returned non-integral values")
    f = f.astype(np.int64)
    if n and ((f < 0).any() or (f >= sizes).any()):
        bad = np.flatnonzero(((f < 0) | (f >= sizes)).any(axis=0))[0]
        raise ValueError(
            f"{metric}: sampler.sample_factors returned values outside [0, factor_size) for "
            f"factor {bad} (size {sizes[bad]}): range [{f[:, bad].min()}, {f[:, bad].max()}]"
        )
    return f


def _function_name(fn: object) -> str:
    return getattr(fn, "__qualname__", None) or type(fn).__name__


def check_representation_output(
    z: object, n_rows: int, representation: object, *, n_latents: int | None = None
) -> np.ndarray:
    """Validate what a representation function returned for ``n_rows`` observations.

    Returns:
        float64 ``(n_rows, n_latents)``.

    Raises:
        TypeError: non-numeric output.
        ValueError: not 2-D, wrong number of rows, a different number of latents than an
            earlier batch, or NaN/inf; the message names the function and the shape.
    """
    name = _function_name(representation)
    try:
        arr = np.asarray(z)
    except (TypeError, ValueError) as exc:
        raise TypeError(
            f"representation function {name} must return an array (n_observations, "
            f"n_latents); could not convert its output of type {type(z).__name__}: {exc}"
        ) from None
    if arr.dtype == object or not (
        np.issubdtype(arr.dtype, np.number) or np.issubdtype(arr.dtype, np.bool_)
    ) or np.iscomplexobj(arr):
        raise TypeError(
            f"representation function {name} must return a real numeric array; received "
            f"{type(z).__name__} of dtype {arr.dtype}"
        )
    if arr.ndim != 2 or arr.shape[0] != n_rows:
        raise ValueError(
            f"representation function {name} must return a 2-D array (n_observations, "
            f"n_latents) with one row per observation; for a batch of {n_rows} observations "
            f"it returned shape {arr.shape}"
        )
    if arr.shape[1] == 0:
        raise ValueError(f"representation function {name} returned 0 latents (shape {arr.shape})")
    if n_latents is not None and arr.shape[1] != n_latents:
        raise ValueError(
            f"representation function {name} returned {arr.shape[1]} latents (shape "
            f"{arr.shape}) after returning {n_latents} for an earlier batch"
        )
    arr = arr.astype(np.float64, copy=False)
    if not np.isfinite(arr).all():
        raise ValueError(
            f"representation function {name} must return finite values; received "
            f"{int((~np.isfinite(arr)).sum())} NaN/inf value(s) in output of shape {arr.shape}"
        )
    return arr


def encode_factors(
    sampler: GroundTruthSampler,
    representation: RepresentationFn,
    factors: np.ndarray,
    *,
    encode_batch_size: int = 1024,
    n_latents: int | None = None,
) -> np.ndarray:
    """Render ``factors`` with the sampler and encode them, ``encode_batch_size`` at a time.

    Args:
        sampler: a :class:`GroundTruthSampler`.
        representation: maps observations ``(b, ...)`` to latents ``(b, n_latents)``.
        factors: int ``(n, K)``.
        encode_batch_size: most observations rendered and encoded per call.
        n_latents: the number of latents expected (checked), if known.

    Returns:
        float64 latents ``(n, n_latents)``.

    Example:
        >>> data = IdentityFactors([2, 3])
        >>> encode_factors(data, lambda x: 2 * x, np.array([[1, 2], [0, 1]])).tolist()
        [[2.0, 4.0], [0.0, 2.0]]
    """
    encode_batch_size = check_positive_int(encode_batch_size, "encode_batch_size")
    n = factors.shape[0]
    chunks: list[np.ndarray] = []
    for start in range(0, n, encode_batch_size):
        part = factors[start : start + encode_batch_size]
        obs = sampler.images_from_factors(part)
        if len(obs) != part.shape[0]:
            raise ValueError(
                f"sampler.images_from_factors returned {len(obs)} observations for "
                f"{part.shape[0]} factor rows"
            )
        z = check_representation_output(
            representation(obs), part.shape[0], representation, n_latents=n_latents
        )
        n_latents = z.shape[1]
        chunks.append(z)
    if not chunks:
        raise ValueError("encode_factors needs at least one factor row; received 0")
    return np.concatenate(chunks, axis=0)


# ---------------------------------------------------------------------------------------------
# IdentityFactors: a ground-truth "dataset" whose observations are the factors themselves.

def _splitmix64(x: np.ndarray) -> np.ndarray:
    """Vectorised SplitMix64 finaliser on uint64 arrays (wrapping arithmetic)."""
    z = x + np.uint64(0x9E3779B97F4A7C15)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def _unit_interval(bits: np.ndarray) -> np.ndarray:
    """uint64 → float64 in ``[0, 1)`` from the top 53 bits."""
    return (bits >> np.uint64(11)).astype(np.float64) * 2.0**-53


class IdentityFactors:
    """A ground-truth sampler whose observations are the factor values as floats.

    Observation of a factor configuration ``f`` (int ``(K,)``): ``x = f`` as float64, then
    ``x = x[perm]`` (``transform`` a permutation of ``range(K)``) or ``x = x @ A``
    (``transform`` a ``(K, M)`` matrix), then ``x + noise · e(f)`` where ``e(f)`` is a
    standard-normal vector fixed per configuration (a hash of ``f`` and ``seed``). So, as with
    a rendered dataset, every configuration has exactly one observation, and
    ``images_from_factors`` is a pure function: the metric's seed alone decides the numbers.

    Factors are drawn independently and uniformly, as in disentanglement_lib's datasets.

    Args:
        factor_sizes: number of classes of each factor.
        noise: standard deviation of the per-configuration Gaussian perturbation.
        transform: ``None``, a permutation of ``range(K)``, or a float matrix ``(K, M)``.
        seed: seeds the per-configuration perturbation.

    Example:
        >>> data = IdentityFactors([3, 4])
        >>> f = data.sample_factors(2, np.random.default_rng(0))
        >>> f.shape, bool((data.images_from_factors(f) == f).all())
        ((2, 2), True)
        >>> isinstance(data, GroundTruthSampler)
        True
    """

    def __init__(
        self,
        factor_sizes: Sequence[int],
        *,
        noise: float = 0.0,
        transform: object = None,
        seed: int = 0,
    ) -> None:
        sizes = _check_factor_sizes(factor_sizes, "factor_sizes")
        if isinstance(noise, bool) or not isinstance(noise, int | float | np.floating) or not (
            np.isfinite(noise) and noise >= 0
        ):
            raise ValueError(f"noise must be a finite number ≥ 0; received {noise!r}")
        self._sizes = tuple(int(s) for s in sizes)
        self.noise = float(noise)
        self.seed = check_positive_int(seed, "seed", minimum=0)
        k = len(self._sizes)
        self._perm: np.ndarray | None = None
        self._matrix: np.ndarray | None = None
        if transform is not None:
            t = np.asarray(transform)
            if t.ndim == 1 and np.issubdtype(t.dtype, np.integer):
                if sorted(t.tolist()) != list(range(k)):
                    raise ValueError(
                        f"a 1-D transform must be a permutation of range({k}); "
                        f"received {t.tolist()}"
                    )
                self._perm = t.astype(np.int64)
            elif t.ndim == 2 and t.shape[0] == k and t.shape[1] >= 1:
                m = t.astype(np.float64)
                if not np.isfinite(m).all():
                    raise ValueError("transform matrix must be finite")
                self._matrix = m
            else:
                raise ValueError(
                    f"transform must be None, a permutation of range({k}) or a ({k}, M) "
                    f"matrix; received an array of shape {t.shape} and dtype {t.dtype}"
                )

    @property
    def factor_sizes(self) -> tuple[int, ...]:
        """Number of classes of each factor."""
        return self._sizes

    @property
    def factor_names(self) -> tuple[str, ...]:
        return tuple(f"factor_{k}" for k in range(len(self._sizes)))

    @property
    def observation_dim(self) -> int:
        """Length of one observation vector."""
        return len(self._sizes) if self._matrix is None else int(self._matrix.shape[1])

    def __repr__(self) -> str:
        return (
            f"IdentityFactors({list(self._sizes)}, noise={self.noise}, "
            f"transform={'matrix' if self._matrix is not None else self._perm}, seed={self.seed})"
        )

    def sample_factors(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """Independent uniform factors, int64 ``(n, K)``."""
        n = check_positive_int(n, "n", minimum=0)
        return rng.integers(0, np.asarray(self._sizes), size=(n, len(self._sizes)))

    def images_from_factors(self, factors: np.ndarray) -> np.ndarray:
        """Observations float64 ``(n, observation_dim)`` for factors ``(n, K)``."""
        f = np.asarray(factors)
        if f.ndim != 2 or f.shape[1] != len(self._sizes):
            raise ValueError(
                f"factors must have shape (n, {len(self._sizes)}); received {f.shape}"
            )
        x = f.astype(np.float64)  # (n, K)
        if self._perm is not None:
            x = x[:, self._perm]
        elif self._matrix is not None:
            x = x @ self._matrix  # (n, M)
        if self.noise > 0:
            x = x + self.noise * self._configuration_normal(f.astype(np.int64), x.shape[1])
        return x

    def _configuration_normal(self, f: np.ndarray, dim: int) -> np.ndarray:
        """A standard-normal ``(n, dim)`` array that depends only on each row of ``f``."""
        h = _splitmix64(np.full(f.shape[0], self.seed, dtype=np.uint64))
        for k in range(f.shape[1]):  # fold the factor values in, one column at a time
            h = _splitmix64(h ^ f[:, k].astype(np.uint64))
        cols = np.arange(dim, dtype=np.uint64)[None, :]  # (1, dim)
        a = _splitmix64(h[:, None] ^ (cols * np.uint64(2) + np.uint64(1)))  # (n, dim)
        b = _splitmix64(a)
        u1 = 1.0 - _unit_interval(a)  # (0, 1]
        u2 = _unit_interval(b)
        return np.sqrt(-2.0 * np.log(u1)) * np.cos(2.0 * np.pi * u2)  # Box–Muller


def describe_seed(seed: object) -> object:
    """How a result records its ``seed`` option: the int, ``None``, or ``"Generator"``."""
    if seed is None or isinstance(seed, int | np.integer):
        return None if seed is None else int(seed)
    return type(seed).__name__


def check_sampling_options(
    *, batch_size: int, n_train: int, n_eval: int, encode_batch_size: int, min_batch: int = 1
) -> tuple[int, int, int, int]:
    """Validate the options every sampling metric shares."""
    return (
        check_positive_int(batch_size, "batch_size", minimum=min_batch),
        check_positive_int(n_train, "n_train", minimum=2),
        check_positive_int(n_eval, "n_eval", minimum=1),
        check_positive_int(encode_batch_size, "encode_batch_size"),
    )


# Points (BetaVAE features, FactorVAE votes) whose factors are drawn together. A fixed
# constant, so the random stream — and the scores — do not depend on ``encode_batch_size``.
POINTS_PER_DRAW = 256

__all__ = [
    "POINTS_PER_DRAW",
    "GroundTruthSampler",
    "IdentityFactors",
    "RepresentationFn",
    "check_representation_output",
    "check_sampler",
    "check_sampling_options",
    "describe_seed",
    "draw_factors",
    "encode_factors",
    "split_constant_factors",
]
