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

All pairwise contingency tables come from one pass over the data per latent: no Python loop
over (latent, factor) pairs. How the counting scales (1,000,000 samples × 512 latents × 40
factors is 2·10¹⁰ (sample, latent, factor) increments):

- Factors are packed into a few *composite* factors whose joint classes number at most
  ``_TABLE_CELLS / n_bins`` (about 6,000 for 20 bins), so one increment per (sample, latent,
  composite) counts the table of every factor in the composite at once; the per-factor tables
  are marginals of the joint one. The 40 factors above pack into 10 composites: 4× fewer
  increments, each into a table that stays in the CPU's L2 cache.
- The increments are a scatter-add of ones into a small dense table: scipy's COO → dense
  conversion, which sums duplicate entries in compiled code without holding the GIL, so
  latents are counted on several threads at once (counts are integers: the result does not
  depend on the number of threads).
- Codes travel as ``uint8`` ``(n_latents, n_samples)`` (one contiguous row per latent), so
  memory is the input plus ``n_samples × n_latents`` bytes, never ``n × D × K``.
- Histogram codes are computed in row blocks (no float64 copy of the whole input) from a
  float64 estimate ``floor((z − first) · scale)``. Values the estimate could put in the wrong
  bin (those within a per-latent, computed slack of a bin boundary; see :class:`_Bins`) are
  compared with ``np.histogram``'s own edges, so the codes equal ``np.digitize``'s bit for
  bit.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import sparse

from disentkit._random import SeedLike
from disentkit._validation import (
    check_choice,
    check_positive_int,
    encode_labels,
)
from disentkit.metrics import _threads
from disentkit.metrics._knn import knn_mutual_info

try:  # the kernel behind scipy's COO → dense conversion (releases the GIL, sums duplicates)
    from scipy.sparse._sparsetools import coo_todense as _coo_todense
except ImportError:  # pragma: no cover - scipy layout changed; the public path is used
    _coo_todense = None

ESTIMATORS = ("histogram", "discrete", "knn")

_TABLE_CELLS = 2**17  # cells of one latent × composite-factor table (int32: 512 KiB, in L2)
_ROWS_PER_COUNT = 2**30  # rows per int32 count table before flushing into int64
_BLOCK_ELEMENTS = 2**15  # elements of one row block when discretising (in L1/L2)


def _ranges(n: int, parts: int) -> list[tuple[int, int]]:
    """Split ``range(n)`` into at most ``parts`` contiguous non-empty ``(start, stop)`` ranges."""
    parts = max(1, min(parts, n))
    bounds = np.linspace(0, n, parts + 1).round().astype(np.int64)
    return [(int(a), int(b)) for a, b in itertools.pairwise(bounds) if b > a]


def _code_dtype(n_codes: int) -> np.dtype:
    """Smallest unsigned dtype holding codes ``0 .. n_codes - 1``."""
    if n_codes <= 2**8:
        return np.dtype(np.uint8)
    if n_codes <= 2**16:
        return np.dtype(np.uint16)
    return np.dtype(np.int32) if n_codes <= 2**31 else np.dtype(np.int64)


# --------------------------------------------------------------------------------------------
# Histogram discretisation
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Bins:
    """Per-latent equal-width bins: exactly ``np.histogram``'s edges, and what the fast
    estimate of a code needs.

    The estimate of a value's code is ``floor(t(z))`` with ``t(z) = (z − first) · scale``
    in float64. Rounded float operations are monotone, so ``t`` never reorders values:
    ``t(z) < t(e) ⇒ z < e`` and ``t(z) > t(e) ⇒ z > e`` for any edge ``e``. With
    ``slack = max_j |t(e_j) − j|`` over the interior edges, a value whose ``t`` lies more
    than ``slack`` from every integer sits on the same side of every edge ``e_j`` as ``t``
    does of ``j``, so its estimate is its code; the few others (within ``slack`` of an
    integer: values on or next to an edge) are decided by comparing with the edges.

    Attributes:
        n_bins: bins per latent.
        first: ``(D,)`` origin of the estimate (the first edge; 0 where the range overflows).
        scale: ``(D,)`` ``n_bins / (last edge − first edge)`` (0 where that overflows).
        slack: ``(D,)`` ``max_j |t(e_j) − j|`` (inf where the estimate is unusable: every
            value of that latent is then decided by the edges).
        bounds: flat ``(D · (n_bins + 1),)``: latent ``d``'s row is
            ``[−inf, e_1, ..., e_{n_bins−1}, +inf]`` (its interior edges), so code ``c`` is
            right exactly when ``bounds[d, c] <= z < bounds[d, c + 1]``.
        offsets: ``(D,)`` start of each latent's row in ``bounds``.
    """

    n_bins: int
    first: np.ndarray
    scale: np.ndarray
    slack: np.ndarray
    bounds: np.ndarray
    offsets: np.ndarray


def _as_float_block(block: np.ndarray) -> np.ndarray:
    """A row block as float32/float64 (kept) or float64 (anything else), C-contiguous."""
    if block.dtype in (np.float32, np.float64):
        return np.ascontiguousarray(block)
    return np.ascontiguousarray(block, dtype=np.float64)


def _row_blocks(n: int, n_cols: int) -> list[tuple[int, int]]:
    """Row ranges for the threads: a few per thread so a busy core does not hold up the rest."""
    return _ranges(n, min(4 * _threads.n_threads(), max(1, n * n_cols // _BLOCK_ELEMENTS)))


def _histogram_bins(latents: np.ndarray, n_bins: int) -> _Bins:
    """The edges ``np.histogram(latents[:, d], bins=n_bins)`` uses, for every latent ``d``."""
    n, d = latents.shape

    def extremes(rows: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
        block = latents[rows[0] : rows[1]]
        return block.min(axis=0), block.max(axis=0)

    parts = _threads.parallel_map(extremes, _row_blocks(n, d), n * d)
    lo = np.min([p[0] for p in parts], axis=0).astype(np.float64)  # exact: min is a value
    hi = np.max([p[1] for p in parts], axis=0).astype(np.float64)
    if not (np.isfinite(lo).all() and np.isfinite(hi).all()):
        bad = int(np.flatnonzero(~(np.isfinite(lo) & np.isfinite(hi)))[0])
        raise ValueError(
            f"latents must be finite to be binned; column {bad} has range [{lo[bad]}, {hi[bad]}]"
        )
    edges = np.empty((d, n_bins + 1))
    for j in range(d):  # per latent (not per pair): np.histogram's own recipe
        first, last = lo[j], hi[j]
        if first == last:
            first, last = first - 0.5, last + 0.5
        edges[j] = np.linspace(first, last, n_bins + 1)
    first = edges[:, 0].copy()
    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
        scale = n_bins / (edges[:, -1] - first)
        usable = np.isfinite(scale) & (scale > 0)
        first[~usable] = 0.0  # keeps z − first finite; with scale 0, t = 0
        scale[~usable] = 0.0
        # t of every interior edge, by the very operations applied to the data below.
        t_edges = np.subtract(edges[:, 1:-1], first[:, None])
        t_edges *= scale[:, None]
        slack = np.abs(t_edges - np.arange(1, n_bins)).max(axis=1, initial=0.0)
    slack[~(usable & np.isfinite(slack) & (slack < 0.25))] = np.inf
    bounds = edges.copy()
    bounds[:, 0] = -np.inf
    bounds[:, -1] = np.inf
    return _Bins(
        n_bins=n_bins,
        first=first,
        scale=scale,
        slack=slack,
        bounds=bounds.ravel(),
        offsets=np.arange(d, dtype=np.intp) * (n_bins + 1),
    )


def _bin_rows(z: np.ndarray, bins: _Bins, dtype: np.dtype) -> np.ndarray:
    """Histogram codes of a row block ``z`` ``(r, D)``: ``(r, D)`` in ``[0, n_bins)``.

    ``dtype`` must hold ``n_bins`` (the estimate can reach it before clipping).
    """
    t = np.subtract(z, bins.first, dtype=np.float64)  # float32 input is widened per block
    t *= bins.scale  # ≥ 0
    code = t.astype(dtype)  # floor
    np.minimum(code, bins.n_bins - 1, out=code)
    near = np.rint(t)
    t -= near
    np.abs(t, out=t)  # distance to the nearest integer
    unsure = t <= bins.slack
    if unsure.any():
        _settle_codes(z, code, unsure, bins)
    return code


def _settle_codes(z: np.ndarray, code: np.ndarray, unsure: np.ndarray, bins: _Bins) -> None:
    """Decide the ``unsure`` codes by the edges: move each one bin at a time until
    ``bounds[c] <= z < bounds[c + 1]`` (edges are non-decreasing, so this ends)."""
    pos = np.flatnonzero(unsure)
    values = z.reshape(-1)[pos]
    c = code.reshape(-1)[pos].astype(np.intp)
    c += bins.offsets[pos % z.shape[1]]  # index into the flat bounds
    for _ in range(bins.n_bins):  # at most n_bins - 1 moves
        step = (values >= bins.bounds[c + 1]).astype(np.intp)
        step -= values < bins.bounds[c]
        if not step.any():
            break
        c += step
    c -= bins.offsets[pos % z.shape[1]]
    code.reshape(-1)[pos] = c


def _discretise(latents: np.ndarray, n_bins: int, out: np.ndarray, transposed: bool) -> None:
    """Write the histogram codes of ``latents`` into ``out`` (``(n, D)``, or ``(D, n)``)."""
    n, d = latents.shape
    bins = _histogram_bins(latents, n_bins)
    step = max(1, _BLOCK_ELEMENTS // d)
    dtype = _code_dtype(n_bins + 1)

    def work(rows: tuple[int, int]) -> None:
        for start in range(rows[0], rows[1], step):
            stop = min(start + step, rows[1])
            code = _bin_rows(_as_float_block(latents[start:stop]), bins, dtype)  # (r, D)
            if transposed:  # a transposed copy of small ints is cheap
                out[:, start:stop] = code.T
            else:
                out[start:stop] = code

    _threads.parallel_map(work, _row_blocks(n, d), n * d)


def _check_latent_array(latents: object) -> np.ndarray:
    z = np.asarray(latents)
    if z.ndim != 2:
        raise ValueError(f"latents must be 2-D (n_samples, n_latents); received shape {z.shape}")
    if z.shape[0] == 0:
        raise ValueError(f"latents must have at least one row; received shape {z.shape}")
    return z


def histogram_codes(latents: np.ndarray, n_bins: int = 20) -> np.ndarray:
    """Discretise each latent into ``n_bins`` equal-width bins over its observed range.

    Matches ``np.digitize(z, np.histogram(z, bins=n_bins)[1][:-1]) - 1`` per column
    (disentanglement_lib's ``_histogram_discretize``) bit for bit, including its handling of
    constant columns (all in one bin) and values exactly on an edge, but vectorised over
    columns and computed in row blocks on several threads. Values are compared with the
    edges in float64: float32 input gives the codes of its float64 values (what every metric
    sees after input validation) without a float64 copy of the whole array.

    Args:
        latents: float ``(n_samples, n_latents)``, finite.
        n_bins: bins per latent.

    Returns:
        int64 codes in ``[0, n_bins)``, shape ``(n_samples, n_latents)``.

    Raises:
        ValueError: ``n_bins`` < 2, input not 2-D, or non-finite values.

    Example:
        >>> histogram_codes(np.array([[0.0], [0.5], [1.0]]), n_bins=2).ravel().tolist()
        [0, 1, 1]
    """
    n_bins = check_positive_int(n_bins, "n_bins", minimum=2)
    z = _check_latent_array(latents)
    out = np.empty(z.shape, dtype=np.int64)
    _discretise(z, n_bins, out, transposed=False)
    return out


def histogram_codes_t(latents: np.ndarray, n_bins: int = 20) -> np.ndarray:
    """:func:`histogram_codes` transposed and narrowed: ``(n_latents, n_samples)``, ``uint8``.

    The layout the contingency counting reads (one contiguous row per latent); ``uint8``
    for ``n_bins <= 256`` (``uint16`` up to 65,536), so 1,000,000 × 512 codes take 512 MB.
    """
    n_bins = check_positive_int(n_bins, "n_bins", minimum=2)
    z = _check_latent_array(latents)
    out = np.empty(z.shape[::-1], dtype=_code_dtype(n_bins))
    _discretise(z, n_bins, out, transposed=True)
    return out


def discrete_codes(latents: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Label-encode discrete latents: each distinct value of a column is one category.

    Returns:
        ``codes`` int64 ``(n_samples, n_latents)`` and ``sizes`` int64 ``(n_latents,)``.
    """
    return encode_labels(np.asarray(latents))


# --------------------------------------------------------------------------------------------
# Contingency tables
# --------------------------------------------------------------------------------------------


@functools.cache
def _fast_scatter_works() -> bool:
    """Whether scipy's compiled COO → dense kernel is importable and adds as expected."""
    if _coo_todense is None:  # pragma: no cover
        return False
    rows = np.array([0, 1, 1, 0], dtype=np.int32)
    cols = np.array([2, 0, 0, 2], dtype=np.int32)
    out = np.ones((2, 3), dtype=np.int32)
    try:
        _coo_todense(2, 3, 4, rows, cols, np.ones(4, dtype=np.int32), out.ravel(), 0)
    except Exception:  # pragma: no cover - signature changed
        return False
    return out.tolist() == [[1, 1, 3], [3, 1, 1]]


def _scatter_count(rows: np.ndarray, cols: np.ndarray, ones: np.ndarray, table: np.ndarray) -> None:
    """``table[rows[i], cols[i]] += 1`` for every ``i``; duplicates add up.

    ``rows`` and ``cols`` are int32 (or both int64) and in range; ``table`` is a C-contiguous
    int32 ``(M, N)``; ``ones`` is int32 and at least as long as ``rows``.
    """
    nnz = rows.size
    if _fast_scatter_works():
        _coo_todense(table.shape[0], table.shape[1], nnz, rows, cols, ones, table.reshape(-1), 0)
    else:  # the same through scipy's public API (one more pass over the table)
        table += sparse.coo_array((ones[:nnz], (rows, cols)), shape=table.shape).toarray()


def _pack_factors(b_sizes: np.ndarray, max_joint: int) -> list[list[int]]:
    """Pack factors into composites of at most ``max_joint`` joint classes.

    Best fit by decreasing size: each factor joins the fullest composite it still fits in.
    A factor larger than ``max_joint`` stays alone. Within a composite, factors are in
    decreasing size order (its first factor is the most significant digit of the joint code).
    """
    groups: list[list[int]] = []
    joint: list[int] = []
    for k in np.argsort(-b_sizes, kind="stable"):
        s = int(b_sizes[k])
        fits = [g for g in range(len(groups)) if joint[g] * s <= max_joint]
        if fits:
            g = max(fits, key=lambda i: joint[i])
            groups[g].append(int(k))
            joint[g] *= s
        else:
            groups.append([int(k)])
            joint.append(s)
    return groups


def _joint_codes(
    b: np.ndarray, b_sizes: np.ndarray, groups: list[list[int]], dtype: np.dtype
) -> list[np.ndarray]:
    """Joint class of every sample in each composite: mixed radix over its factors' codes.

    One small matrix product per row block, ``codes (r, K) @ strides (K, G)``, in float64:
    exact, as every joint class is an integer below 2**53.
    """
    n, k = b.shape
    strides = np.zeros((k, len(groups)))  # (K, G): place value of factor k in composite g
    for g, ks in enumerate(groups):
        place = 1
        for f in reversed(ks):  # the last factor is the least significant digit
            strides[f, g] = place
            place *= int(b_sizes[f])
    if strides.max(initial=1) * max(int(b_sizes.max(initial=1)), 1) >= 2**53:  # pragma: no cover
        raise ValueError("factor classes beyond 2**53 are not supported")
    out = np.empty((len(groups), n), dtype=dtype)  # (G, n)
    step = max(1, 2**16 // max(k, 1))

    def work(rows: tuple[int, int]) -> None:
        for start in range(rows[0], rows[1], step):
            stop = min(start + step, rows[1])
            joint = np.asarray(b[start:stop], dtype=np.float64) @ strides  # (r, G)
            out[:, start:stop] = joint.T  # exact integers

    _threads.parallel_map(work, _ranges(n, 4 * _threads.n_threads()), n * k)
    return list(out)


def _marginals(table: np.ndarray, sizes: list[int]) -> list[np.ndarray]:
    """Per-factor tables ``(A, s_i)`` of a joint table ``(A, Π s_i)`` (mixed radix, first
    factor most significant): peel off the leading factor, then sum it out, and repeat."""
    a = table.shape[0]
    out = []
    rest = table
    for i, s in enumerate(sizes):
        tail = rest.shape[1] // s
        view = rest.reshape(a, s, tail)
        if i == len(sizes) - 1:
            out.append(view[:, :, 0])
            break
        out.append(view.sum(axis=2, dtype=np.int64))
        rest = view.sum(axis=1, dtype=rest.dtype)  # (a, tail)
    return out


@dataclass(frozen=True)
class _Composites:
    """Factors packed into composites, with every sample's joint class in each.

    Attributes:
        groups: factor indices of each composite, most significant digit first.
        sizes: joint classes of each composite (product of its factors' sizes).
        codes: ``(n,)`` joint class of each sample, one array per composite, in the index
            dtype of the counting kernel (int32, or int64 beyond 2**31 classes).
    """

    groups: list[list[int]]
    sizes: list[int]
    codes: list[np.ndarray]


def _composites(b: np.ndarray, b_sizes: np.ndarray, max_joint: int, dtype: np.dtype) -> _Composites:
    groups = _pack_factors(b_sizes, max_joint)
    sizes = [int(np.prod(b_sizes[ks])) for ks in groups]
    return _Composites(groups, sizes, _joint_codes(b, b_sizes, groups, dtype))


def _count_latent(
    row: np.ndarray, size: int, comp: _Composites, b_sizes: np.ndarray, ones: np.ndarray
) -> list[tuple[int, np.ndarray]]:
    """Contingency tables ``(size, b_sizes[k])`` of one latent's codes ``row`` with every
    factor ``k``, as ``(k, table)`` pairs: one count per sample and composite, then marginals.
    """
    n = row.size
    step = ones.size  # ≤ 2**30 rows per int32 count
    result = []
    for ks, joint, jc in zip(comp.groups, comp.sizes, comp.codes, strict=True):
        table = np.zeros((size, joint), dtype=np.int32)
        total = None
        for start in range(0, n, step):
            if start:  # more than _ROWS_PER_COUNT rows: flush the int32 counts into int64
                total = table.astype(np.int64) if total is None else total + table
                table[...] = 0
            _scatter_count(row[start : start + step], jc[start : start + step], ones, table)
        if total is not None:
            table = total + table
        parts = _marginals(table, [int(b_sizes[k]) for k in ks])
        result.extend(zip(ks, parts, strict=True))
    return result


def _count_latents(
    get_rows: Callable[[np.ndarray], np.ndarray],
    a_sizes: np.ndarray,
    b: np.ndarray,
    b_sizes: np.ndarray,
) -> np.ndarray:
    """The stacked contingency table ``(Σ a_sizes, Σ b_sizes)``, int64.

    ``get_rows(idx)`` returns the codes of latents ``idx`` (increasing indices) as
    ``(len(idx), n)`` integers in range, in any layout. Latents are counted in blocks on the
    thread pool; each latent fills its own rows of the result, so threads share no
    accumulator and the counts do not depend on the number of threads.
    """
    n = b.shape[0]
    a_sizes = np.asarray(a_sizes, dtype=np.int64)
    b_sizes = np.asarray(b_sizes, dtype=np.int64)
    a_off = np.concatenate([[0], np.cumsum(a_sizes)])
    b_off = np.concatenate([[0], np.cumsum(b_sizes)])
    out = np.zeros((int(a_off[-1]), int(b_off[-1])), dtype=np.int64)
    if n == 0 or a_sizes.size == 0 or b_sizes.size == 0:
        return out
    ones = np.ones(min(n, _ROWS_PER_COUNT), dtype=np.int32)
    # Composite budget per latent: table cells ≤ _TABLE_CELLS, rounded down to a power of
    # two so that latents of similar size share one packing (one set of joint codes).
    # Fewer samples than cells would spend more time zeroing and summing tables than
    # counting: the budget also stays below n / 4 (but at least 4096 cells).
    cells = min(_TABLE_CELLS, max(4096, 2 ** int(np.log2(max(n // 4, 1)))))
    budget = np.maximum(cells // np.maximum(a_sizes, 1), 1)
    level = 2 ** np.floor(np.log2(budget)).astype(np.int64)
    for max_joint in np.unique(level)[::-1]:
        here = np.flatnonzero(level == max_joint)
        # Joint classes ≤ max(max_joint ≤ _TABLE_CELLS, largest factor): int32 unless a
        # factor or latent has 2**31 classes or more.
        widest = max(int(b_sizes.max()), int(a_sizes[here].max()))
        index_dtype = np.dtype(np.int32 if widest < 2**31 else np.int64)
        comp = _composites(b, b_sizes, int(max_joint), index_dtype)

        def count_block(span: tuple[int, int], here=here, comp=comp, index_dtype=index_dtype):
            idx = here[span[0] : span[1]]
            codes = get_rows(idx)  # (len(idx), n)
            for i, d in enumerate(idx):
                row = np.ascontiguousarray(codes[i], dtype=index_dtype)  # (n,)
                size = int(a_sizes[d])
                r0 = int(a_off[d])
                for k, table in _count_latent(row, size, comp, b_sizes, ones):
                    out[r0 : r0 + size, b_off[k] : b_off[k + 1]] = table

        per_block = max(1, min(16, here.size // (4 * _threads.n_threads())))
        spans = [(s, min(s + per_block, here.size)) for s in range(0, here.size, per_block)]
        _threads.parallel_map(count_block, spans, n * here.size * len(comp.groups))
    return out


def _select(idx: np.ndarray) -> slice | np.ndarray:
    """``idx`` as a slice when it is a run of consecutive indices (a view, not a copy)."""
    if idx.size and idx[-1] - idx[0] == idx.size - 1:
        return slice(int(idx[0]), int(idx[-1]) + 1)
    return idx


def _check_codes(codes: np.ndarray, sizes: np.ndarray, name: str, axis: int) -> None:
    """Raise unless every column (``axis=0``) or row (``axis=1``) is in ``[0, size)``."""
    if codes.size == 0:
        return
    if not np.issubdtype(codes.dtype, np.integer):
        raise TypeError(f"codes must be integers; received dtype {codes.dtype}")
    lo = codes.min(axis=axis)
    hi = codes.max(axis=axis)
    bad = np.flatnonzero((lo < 0) | (hi >= sizes))
    if bad.size:
        j = int(bad[0])
        raise ValueError(
            f"{name} {j} must hold codes in [0, {int(sizes[j])}); "
            f"received values in [{lo[j]}, {hi[j]}]"
        )


def _check_sizes(codes: np.ndarray, sizes: object, name: str) -> np.ndarray:
    sizes = np.asarray(sizes, dtype=np.int64).reshape(-1)
    if codes.ndim != 2 or sizes.size != codes.shape[1]:
        raise ValueError(
            f"{name} must be 2-D (n_samples, {sizes.size}) to match its sizes; "
            f"received shape {codes.shape}"
        )
    return sizes


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
        factor ``k`` is the contingency table of ``(a[:, d], b[:, k])``, i.e. the product of
        the two one-hot code matrices, ``onehot(a).T @ onehot(b)``. Counted per latent
        against composites of factors (see the module docstring), with bounded memory.

    Raises:
        ValueError: shapes that disagree, or codes outside ``[0, size)``.

    Example:
        >>> a = np.array([[0], [1], [1]]); b = np.array([[1], [0], [0]])
        >>> contingency(a, np.array([2]), b, np.array([2])).tolist()
        [[0, 1], [2, 0]]
    """
    a = np.asarray(a)
    b = np.asarray(b)
    a_sizes = _check_sizes(a, a_sizes, "a")
    b_sizes = _check_sizes(b, b_sizes, "b")
    if a.shape[0] != b.shape[0]:
        raise ValueError(f"a and b must have the same rows; received {a.shape} and {b.shape}")
    _check_codes(b, b_sizes, "b column", axis=0)
    _check_codes(a, a_sizes, "a column", axis=0)
    narrow = _code_dtype(int(a_sizes.max(initial=1)))

    def get_rows(idx: np.ndarray) -> np.ndarray:
        return a[:, _select(idx)].astype(narrow).T  # (m, n) view of an (n, m) copy

    return _count_latents(get_rows, a_sizes, b, b_sizes)


def contingency_t(
    a_t: np.ndarray, a_sizes: np.ndarray, b: np.ndarray, b_sizes: np.ndarray
) -> np.ndarray:
    """:func:`contingency` for latent codes given latent-major, ``a_t`` ``(D, n)``.

    The layout :func:`histogram_codes_t` returns; each latent's row is read in place.
    """
    a_t = np.asarray(a_t)
    b = np.asarray(b)
    a_sizes = _check_sizes(a_t.T, a_sizes, "a_t.T")
    b_sizes = _check_sizes(b, b_sizes, "b")
    if a_t.shape[1] != b.shape[0]:
        raise ValueError(
            f"a_t (n_latents, n) and b (n, n_factors) must share n; received {a_t.shape} "
            f"and {b.shape}"
        )
    _check_codes(b, b_sizes, "b column", axis=0)
    _check_codes(a_t, a_sizes, "a_t row", axis=1)

    def get_rows(idx: np.ndarray) -> np.ndarray:
        return a_t[_select(idx)]

    return _count_latents(get_rows, a_sizes, b, b_sizes)


def mi_from_contingency(
    table: np.ndarray, a_sizes: np.ndarray, b_sizes: np.ndarray, n_samples: int
) -> np.ndarray:
    """Plug-in mutual information (nats) of every block of a stacked contingency table.

    Equal to ``sklearn.metrics.mutual_info_score`` on each pair.

    Returns:
        float64 ``(D, K)``.
    """
    a_sizes = np.asarray(a_sizes, dtype=np.int64)
    b_sizes = np.asarray(b_sizes, dtype=np.int64)
    a_id = np.repeat(np.arange(a_sizes.size), a_sizes)  # latent of each table row
    b_id = np.repeat(np.arange(b_sizes.size), b_sizes)  # factor of each table column
    # Row and column marginals of each block: the same for every block of a row/column.
    pa = table[:, b_id == 0].sum(axis=1) / n_samples  # (Σa,)
    pb = table[a_id == 0, :].sum(axis=0) / n_samples  # (Σb,)
    # Dense over the table (no gathers): empty cells contribute an exact 0, so each block
    # sums the same terms in the same (row-major) order as a sum over non-empty cells.
    p = table / n_samples
    filled = table > 0
    with np.errstate(divide="ignore", invalid="ignore"):
        inner = np.log(p, out=np.zeros_like(p), where=filled)
        inner -= np.log(pa)[:, None]
        inner -= np.log(pb)[None, :]
    terms = np.multiply(p, inner, out=np.zeros_like(p), where=filled)
    block = (a_id * b_sizes.size)[:, None] + b_id[None, :]  # (Σa, Σb) block of each cell
    mi = np.bincount(
        block.ravel(), weights=terms.ravel(), minlength=a_sizes.size * b_sizes.size
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


def histogram_mutual_info(
    codes_t: np.ndarray, n_bins: int, factors: np.ndarray, factor_sizes: np.ndarray
) -> np.ndarray:
    """Plug-in MI (nats) ``(D, K)`` from :func:`histogram_codes_t` codes and label-encoded
    factors; what :func:`mutual_info_matrix` does after discretising (no range checks)."""
    factor_sizes = np.asarray(factor_sizes, dtype=np.int64)
    sizes = np.full(codes_t.shape[0], n_bins, dtype=np.int64)
    table = _count_latents(lambda idx: codes_t[_select(idx)], sizes, factors, factor_sizes)
    return mi_from_contingency(table, sizes, factor_sizes, codes_t.shape[1])


def entropies(codes: np.ndarray, sizes: np.ndarray) -> np.ndarray:
    """Plug-in entropy (nats) of each column of label-encoded ``codes`` ``(n, K)``: ``(K,)``.

    Example:
        >>> entropies(np.array([[0, 0], [1, 0]]), np.array([2, 1])).round(6).tolist()
        [0.693147, 0.0]
    """
    n, k = codes.shape
    sizes = np.asarray(sizes, dtype=np.int64)
    off = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    counts = np.zeros(int(sizes.sum()), dtype=np.int64)
    step = max(1, 2**20 // max(k, 1))
    for start in range(0, n, step):  # row blocks: no (n, K) int64 temporary
        block = codes[start : start + step] + off
        counts += np.bincount(block.ravel(), minlength=counts.size)[: counts.size]
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
        codes_t = histogram_codes_t(latents, n_bins)  # (D, n) uint8
        matrix = histogram_mutual_info(codes_t, n_bins, factors, factor_sizes)
        options: dict[str, Any] = {"n_bins": n_bins}
    elif estimator == "discrete":
        codes, sizes = discrete_codes(latents)
        matrix = plugin_mutual_info(codes, sizes, factors, factor_sizes)
        options = {}
    else:
        n_neighbors = check_positive_int(n_neighbors, "n_neighbors")
        matrix = knn_mutual_info(
            latents, factors, n_neighbors=n_neighbors, standardize=standardize, seed=seed
        )
        options = {"n_neighbors": n_neighbors, "standardize": bool(standardize)}
    return MutualInfo(
        matrix=matrix, factor_entropy=h, estimator=estimator, options=options, n_samples=n
    )
