"""Input checks shared by every metric and loader.

One place turns user input into the arrays the rest of disentkit expects:
``latents`` float64 ``(n_samples, n_latents)`` and ``factors`` int64 class indices
``(n_samples, n_factors)``. Errors say what was expected and what was received.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np


class DisentkitWarning(UserWarning):
    """Warnings about data that disentkit handled in a documented way (e.g. skipped factors)."""


def _as_array(x: object, name: str) -> np.ndarray:
    if x is None:
        raise TypeError(f"{name} must be an array of shape (n_samples, n); received None")
    try:
        arr = np.asarray(x)
    except (ValueError, TypeError) as exc:  # ragged lists and the like
        raise TypeError(
            f"{name} must be a rectangular numeric array (n_samples, n); could not convert: {exc}"
        ) from None
    if arr.dtype == object or not (
        np.issubdtype(arr.dtype, np.number) or np.issubdtype(arr.dtype, np.bool_)
    ):
        raise TypeError(f"{name} must be numeric; received an array of dtype {arr.dtype}")
    if np.iscomplexobj(arr):
        raise TypeError(f"{name} must be real-valued; received dtype {arr.dtype}")
    return arr


@contextmanager
def about_file(path: str | os.PathLike[str]) -> Iterator[None]:
    """Make bad content of a file name the file: a ``ValueError``, ``TypeError`` or
    ``KeyError`` raised in the block (a wrong type in ``model.json``, an unknown name in
    ``config.json``) becomes a ``ValueError`` (of the same class when it is one) whose
    message starts with the path, unless the message names the file already.

    Example:
        >>> with about_file("runs/a/model.json"):
        ...     int("three")
        Traceback (most recent call last):
        ...
        ValueError: runs/a/model.json: invalid literal for int() with base 10: 'three'
    """
    try:
        yield
    except (ValueError, TypeError, KeyError) as exc:
        message = str(exc) if type(exc) is not KeyError else str(exc.args[0] if exc.args else "")
        where = str(path)
        if where in message:
            raise
        kind = type(exc) if isinstance(exc, ValueError) else ValueError  # keeps e.g.
        try:  # UnknownNameError, which callers may catch as a KeyError
            named = kind(f"{where}: {message}")
        except Exception:
            named = ValueError(f"{where}: {message}")
        raise named from None


def as_columns(arr: np.ndarray) -> np.ndarray:
    """The one rule for 1-D input, in the Python API and the CLI alike: a 1-D array of
    ``n`` values is one column, ``(n, 1)`` (one latent, or one factor); other shapes are
    returned as they are.

    Example:
        >>> as_columns(np.arange(3)).shape, as_columns(np.zeros((3, 2))).shape
        ((3, 1), (3, 2))
    """
    return arr.reshape(-1, 1) if arr.ndim == 1 else arr


def _as_2d(arr: np.ndarray, name: str, columns: str) -> np.ndarray:
    arr = as_columns(arr)
    if arr.ndim != 2:
        raise ValueError(
            f"{name} must be 2-D (n_samples, {columns}) or 1-D (one column); received "
            f"{arr.ndim}-D shape {arr.shape}"
        )
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ValueError(
            f"{name} must be non-empty (n_samples ≥ 1, {columns} ≥ 1); received shape {arr.shape}"
        )
    return arr


_BLOCK_ELEMENTS = 2**22  # elements checked at once: bounded memory on large arrays


def _check_finite(arr: np.ndarray, name: str) -> None:
    if not np.issubdtype(arr.dtype, np.floating):
        return
    rows = max(1, _BLOCK_ELEMENTS // max(1, int(np.prod(arr.shape[1:], dtype=np.int64))))
    for start in range(0, arr.shape[0], rows):
        block = arr[start : start + rows]
        if np.isfinite(block).all():
            continue
        bad = ~np.isfinite(arr)  # only on failure: count and locate for the message
        row, col = np.argwhere(bad)[0][:2]
        raise ValueError(
            f"{name} must be finite; received {int(bad.sum())} NaN/inf value(s), "
            f"first at row {row}, column {col} ({arr[row, col]})"
        )


def check_latents(
    latents: object, *, name: str = "latents", keep_float32: bool = False
) -> np.ndarray:
    """Validate a representation and return it as float64 ``(n_samples, n_latents)``.

    With ``keep_float32=True`` a float32 array is returned as it is (no float64 copy), for
    estimators that are exact on float32 input (the histogram MI estimator).

    Raises:
        TypeError: non-numeric input.
        ValueError: wrong number of dimensions, empty, NaN or inf.

    Example:
        >>> check_latents([[0, 1], [2, 3]]).dtype
        dtype('float64')
    """
    arr = _as_2d(_as_array(latents, name), name, "n_latents")
    _check_finite(arr, name)
    if keep_float32 and arr.dtype == np.float32:
        return np.ascontiguousarray(arr)
    return np.ascontiguousarray(arr, dtype=np.float64)


def check_factors(factors: object, *, name: str = "factors") -> np.ndarray:
    """Validate ground-truth factors and return them as int64 ``(n_samples, n_factors)``.

    Factors are class indices. Float arrays are accepted when every value is integral;
    continuous factors must be discretised first (see :func:`discretize_factors`).

    Example:
        >>> check_factors([[0.0, 1.0], [2.0, 3.0]]).dtype
        dtype('int64')
        >>> check_factors([[0.5], [1.0]])
        Traceback (most recent call last):
        ...
        ValueError: factors must hold integer class indices; received non-integral float values (first: 0.5 at row 0, column 0). Discretise continuous factors first, e.g. disentkit.discretize_factors(factors, n_bins=20).
    """
    arr = _as_2d(_as_array(factors, name), name, "n_factors")
    _check_finite(arr, name)
    if np.issubdtype(arr.dtype, np.floating):
        frac = arr != np.round(arr)
        if frac.any():
            row, col = np.argwhere(frac)[0]
            raise ValueError(
                f"{name} must hold integer class indices; received non-integral float values "
                f"(first: {arr[row, col]} at row {row}, column {col}). Discretise continuous "
                f"factors first, e.g. disentkit.discretize_factors({name}, n_bins=20)."
            )
        if np.abs(arr).max() > 2**53:
            raise ValueError(f"{name} values are too large to be class indices")
    return np.ascontiguousarray(arr, dtype=np.int64)


def check_same_samples(latents: np.ndarray, factors: np.ndarray) -> None:
    """Raise unless ``latents`` and ``factors`` have the same number of rows."""
    if latents.shape[0] != factors.shape[0]:
        raise ValueError(
            "latents and factors must have the same number of samples (rows); received "
            f"latents {latents.shape} and factors {factors.shape}"
        )


def encode_labels(factors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Label-encode each column to ``0..c_k-1``.

    Args:
        factors: integer array ``(n_samples, n_factors)``.

    Returns:
        ``codes`` int64 ``(n_samples, n_factors)`` and ``sizes`` int64 ``(n_factors,)``, the
        number of distinct values per column.

    Example:
        >>> codes, sizes = encode_labels(np.array([[5, 0], [7, 0], [5, 1]]))
        >>> codes.tolist(), sizes.tolist()
        ([[0, 0], [1, 0], [0, 1]], [2, 2])
    """
    codes = np.empty(factors.shape, dtype=np.int64)
    sizes = np.empty(factors.shape[1], dtype=np.int64)
    for k in range(factors.shape[1]):  # per column, not per (latent, factor) pair
        col = factors[:, k]
        lo, hi = (int(col.min()), int(col.max())) if col.size else (0, 0)
        if np.issubdtype(col.dtype, np.integer) and hi - lo < 2**20:
            # Small integer range: a counting pass instead of a sort (same codes).
            present = np.bincount(col - lo, minlength=hi - lo + 1) > 0
            table = np.cumsum(present) - 1
            codes[:, k] = table[col - lo]
            sizes[k] = int(present.sum())
        else:
            uniq, inv = np.unique(col, return_inverse=True)
            codes[:, k] = inv.reshape(-1)
            sizes[k] = uniq.size
    return codes, sizes


@dataclass(frozen=True)
class Prepared:
    """Validated inputs of one metric call.

    Attributes:
        latents: float64 ``(n, D)``.
        factors: label-encoded int64 ``(n, K')`` of the factors kept.
        factor_sizes: int64 ``(K',)`` number of classes of each kept factor.
        kept_factors: indices (into the user's columns) of the factors kept.
        skipped_factors: indices of factors skipped because they take a single value.
    """

    latents: np.ndarray
    factors: np.ndarray
    factor_sizes: np.ndarray
    kept_factors: tuple[int, ...]
    skipped_factors: tuple[int, ...]

    @property
    def n_samples(self) -> int:
        return int(self.latents.shape[0])


def prepare(
    latents: object,
    factors: object,
    *,
    metric: str,
    min_samples: int = 2,
    keep_float32: bool = False,
) -> Prepared:
    """Validate ``(latents, factors)`` for ``metric`` and label-encode the factors.

    ``keep_float32`` passes float32 latents through without a float64 copy (for metrics
    whose estimator is exact on them). Factors that take one value carry no information to
    score; they are skipped with a
    :class:`DisentkitWarning` and listed in the result. When every factor is constant, or
    there are fewer than ``min_samples`` rows, a ``ValueError`` says so.
    """
    lat = check_latents(latents, keep_float32=keep_float32)
    fac = check_factors(factors)
    check_same_samples(lat, fac)
    if lat.shape[0] < min_samples:
        raise ValueError(
            f"{metric} needs at least {min_samples} samples; received {lat.shape[0]}"
        )
    codes, sizes = encode_labels(fac)
    constant = np.flatnonzero(sizes < 2)
    if constant.size == fac.shape[1]:
        raise ValueError(
            f"{metric}: every factor takes a single value, so there is nothing to score "
            f"(factors shape {fac.shape})"
        )
    if constant.size:
        warnings.warn(
            f"{metric}: skipping factor(s) {constant.tolist()} that take a single value",
            DisentkitWarning,
            stacklevel=3,
        )
    kept = np.flatnonzero(sizes >= 2)
    return Prepared(
        latents=lat,
        factors=np.ascontiguousarray(codes[:, kept]),
        factor_sizes=sizes[kept],
        kept_factors=tuple(int(k) for k in kept),
        skipped_factors=tuple(int(k) for k in constant),
    )


def discretize_factors(
    values: object, *, n_bins: int = 20, strategy: str = "uniform"
) -> np.ndarray:
    """Turn continuous factor values ``(n_samples, n_factors)`` into class indices.

    Args:
        values: real array ``(n_samples, n_factors)``.
        n_bins: number of bins per column.
        strategy: ``"uniform"`` (equal-width bins over the observed range, as dlib's
            histogram discretisation) or ``"quantile"`` (equal-count bins).

    Returns:
        int64 ``(n_samples, n_factors)``.

    Example:
        >>> discretize_factors([[0.0], [0.4], [1.0]], n_bins=2).ravel().tolist()
        [0, 0, 1]
    """
    arr = _as_2d(_as_array(values, "values"), "values", "n_factors")
    _check_finite(arr, "values")
    if not isinstance(n_bins, int | np.integer) or n_bins < 2:
        raise ValueError(f"n_bins must be an integer ≥ 2; received {n_bins!r}")
    if strategy not in ("uniform", "quantile"):
        raise ValueError(f"strategy must be 'uniform' or 'quantile'; received {strategy!r}")
    arr = arr.astype(np.float64)
    out = np.empty(arr.shape, dtype=np.int64)
    qs = np.linspace(0, 1, n_bins + 1)[1:-1]
    for k in range(arr.shape[1]):
        col = arr[:, k]
        if strategy == "uniform":
            edges = np.linspace(col.min(), col.max(), n_bins + 1)[1:-1]
        else:
            edges = np.unique(np.quantile(col, qs))
        out[:, k] = np.searchsorted(edges, col, side="right")
    return out


def check_positive_int(value: object, name: str, *, minimum: int = 1) -> int:
    """Return ``value`` as an int, or raise naming the option and the value received."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < minimum:
        raise ValueError(f"{name} must be an integer ≥ {minimum}; received {value!r}")
    return int(value)


def check_fraction(value: object, name: str) -> float:
    """Return ``value`` as a float in (0, 1), or raise naming the option."""
    if isinstance(value, bool) or not isinstance(value, int | float | np.floating):
        raise ValueError(f"{name} must be a number in (0, 1); received {value!r}")
    if not 0.0 < float(value) < 1.0:
        raise ValueError(f"{name} must be in (0, 1); received {value!r}")
    return float(value)


def check_choice(value: object, name: str, choices: tuple[str, ...]) -> str:
    """Return ``value`` if it is one of ``choices``; otherwise raise listing them."""
    if value not in choices:
        known = ", ".join(map(repr, choices))
        raise ValueError(f"{name} must be one of {known}; received {value!r}")
    return str(value)


def check_n_jobs(n_jobs: object) -> int:
    """Return ``n_jobs`` as an int (joblib's convention: ≥ 1, or negative for all cores
    but ``-n_jobs - 1``), or raise naming the value received."""
    if isinstance(n_jobs, bool) or not isinstance(n_jobs, int | np.integer) or n_jobs == 0:
        raise ValueError(f"n_jobs must be a non-zero integer (-1: all cores); received {n_jobs!r}")
    return int(n_jobs)
