"""Continuous–discrete kNN mutual information (Ross 2014), vectorised for 1-D latents.

This is the estimator of ``sklearn.feature_selection.mutual_info_classif`` for a continuous
feature ``c`` and a discrete target ``s``. For every sample ``i`` whose class ``s_i`` has at
least two members:

- ``k_i = min(n_neighbors, n_{s_i} − 1)``, with ``n_{s_i}`` the size of the class;
- ``d_i`` = distance to the ``k_i``-th nearest *other* sample of the same class;
- ``r_i = nextafter(d_i, 0)``, the largest float below ``d_i``;
- ``m_i`` = number of samples (any class, self included) with ``|c_j − c_i| ≤ r_i``.

Samples of classes with a single member are dropped (``N`` counts the rest), and

    ``I = ψ(N) + ⟨ψ(k_i)⟩ − ⟨ψ(n_{s_i})⟩ − ⟨ψ(m_i)⟩``, clipped at 0 (nats).

Before that, sklearn scales each column by its standard deviation (``with_mean=False``; a
standard deviation below ``10·eps`` counts as 1) and adds jitter
``1e-10 · max(1, mean|c|) · N(0, 1)`` to break ties. :func:`knn_mutual_info` does the same,
with the normal draws taken from ``numpy.random.default_rng(seed)`` (``seed=None`` is seed 0):
one ``(n_samples, n_latents)`` draw of ``standard_normal``, shared by every factor (sklearn
draws per call; called per factor with the same ``random_state`` it also reuses one draw).
sklearn's ``RandomState`` draws cannot be reproduced from a ``Generator``, so the two agree to
the jitter level (≈1e-10), not bit for bit; given the *same* jittered column (see
:func:`mi_cd_from_jittered`), the numbers agree to rounding (~1e-15).

sklearn finds neighbours with trees; since each latent is one-dimensional, here the
``k``-th in-class neighbour comes from sliding windows over the class-sorted column and
``m_i`` from ``searchsorted`` on the globally sorted column, with no trees and no Python loop
over (latent, factor) pairs. One detail is reproduced on purpose: for a class so small that
``k_i ≥ n_{s_i} // 2``, sklearn's ``NearestNeighbors`` switches to brute force, whose squared
distances are computed as ``(x_i² − 2·x_i·x_j) + x_j²`` rather than ``(x_i − x_j)²``; the
rounding of that formula decides whether the ``k``-th neighbour itself falls inside the
radius. ``match_sklearn=True`` (the default) computes those classes' radii the same way, so
the numbers equal sklearn's; ``match_sklearn=False`` uses exact distances everywhere. The
difference is not small where tied values meet tiny classes: the cancellation error of that
formula (≈1e-8 for values of order 1) exceeds the 1e-10 jitter, so sklearn's value there
depends on rounding (a 1e-15 change of the input can move it by 0.01 nats or more).
"""

from __future__ import annotations

import numpy as np
from scipy.special import digamma

from disentkit._random import SeedLike, as_generator
from disentkit._validation import check_positive_int, encode_labels
from disentkit.metrics._threads import parallel_map

JITTER = 1e-10  # sklearn's tie-breaking noise scale


def jitter_latents(
    latents: np.ndarray, *, standardize: bool = False, seed: SeedLike = None
) -> np.ndarray:
    """The columns exactly as the kNN estimator sees them: scaled and jittered.

    Args:
        latents: float ``(n_samples, n_latents)``.
        standardize: centre each column first (StandardScaler-like), as LQ's standalone
            InfoMEC does. Scaling happens in either case (sklearn's ``with_mean=False``
            scaling), so this changes only the offset, i.e. the size of the jitter
            (``1e-10 · max(1, mean|c|)``) and the rounding of large offsets.
        seed: seeds the ``standard_normal`` draw of the jitter.

    Returns:
        float64 ``(n_samples, n_latents)``.

    Example:
        >>> z = jitter_latents(np.array([[1.0], [3.0]]))
        >>> np.allclose(z.ravel(), [1.0, 3.0], atol=1e-8)
        True
    """
    z = np.array(latents, dtype=np.float64)  # copy
    if standardize:
        z -= z.mean(axis=0)
    std = z.std(axis=0)
    std[std < 10 * np.finfo(np.float64).eps] = 1.0  # sklearn's _handle_zeros_in_scale
    z /= std
    scale = np.maximum(1.0, np.mean(np.abs(z), axis=0))
    z += JITTER * scale * as_generator(seed).standard_normal(z.shape)
    return z


def knn_mutual_info(
    latents: np.ndarray,
    factors: np.ndarray,
    *,
    n_neighbors: int = 3,
    standardize: bool = False,
    seed: SeedLike = None,
    match_sklearn: bool = True,
) -> np.ndarray:
    """MI (nats) between each continuous latent and each discrete factor: ``(D, K)``.

    The Ross (2014) estimator as ``sklearn.feature_selection.mutual_info_classif`` computes
    it (see the module docstring), including sklearn's scaling and ``1e-10`` jitter; the
    jitter is drawn from ``numpy.random.default_rng(seed)``.

    Args:
        latents: float ``(n_samples, n_latents)``.
        factors: integer class labels ``(n_samples, n_factors)`` (any integers).
        n_neighbors: k; sklearn's default is 3, LQ's standalone InfoMEC uses 10.
        standardize: centre each latent before sklearn's scaling (LQ standalone). The
            estimator is invariant to shifting and scaling a latent, so this only changes
            the jitter's size; see :func:`jitter_latents`.
        seed: seeds the jitter.
        match_sklearn: reproduce sklearn's brute-force distance rounding in tiny classes.

    Returns:
        float64 ``(n_latents, n_factors)``, each entry ≥ 0.

    Example:
        >>> rng = np.random.default_rng(0)
        >>> s = rng.integers(0, 2, size=(500, 1))
        >>> z = np.hstack([s + 0.1 * rng.standard_normal((500, 1)), rng.random((500, 1))])
        >>> mi = knn_mutual_info(z, s)
        >>> bool(mi[0, 0] > 0.6 and mi[1, 0] < 0.05)
        True
    """
    n_neighbors = check_positive_int(n_neighbors, "n_neighbors")
    z = jitter_latents(latents, standardize=standardize, seed=seed)
    labels, _ = encode_labels(np.asarray(factors))
    return mi_cd_from_jittered(z, labels, n_neighbors=n_neighbors, match_sklearn=match_sklearn)


class _FactorLayout:
    """Per-factor quantities that do not depend on the latent.

    Samples are arranged class by class (class 0 first); within a class they will be sorted
    by the latent's value. For every position of that arrangement this stores the class's
    segment, its size and its ``k``, for all factors at once: arrays ``(n, K)``.
    """

    def __init__(self, labels: np.ndarray, n_neighbors: int) -> None:
        n, n_factors = labels.shape
        self.n_factors = n_factors
        sizes = labels.max(axis=0) + 1
        # Sort key that is cheap to sort stably (radix sort for small integer types).
        key_dtype = np.int16 if sizes.max() <= np.iinfo(np.int16).max else np.int64
        self.labels = labels.astype(key_dtype)
        self.sorted_labels = np.sort(labels, axis=0)  # (n, K): class of each position
        off = np.concatenate([[0], np.cumsum(sizes)])
        class_count = np.bincount(
            (labels + off[:-1]).ravel(), minlength=int(off[-1])
        )  # (Σ sizes,)
        class_start = np.concatenate(
            [np.concatenate([[0], np.cumsum(class_count[off[k] : off[k + 1]])[:-1]])
             for k in range(n_factors)]
        )  # (Σ sizes,), start of each class in its factor's arrangement
        self.offset = off[:-1]  # (K,) first global class id of each factor
        self.singleton = class_count == 1  # (Σ sizes,) classes whose samples are dropped
        flat = self.sorted_labels + self.offset  # (n, K) global class ids
        self.counts = class_count[flat]  # class size per position
        self.start = class_start[flat]  # first position of the class
        self.end = self.start + self.counts  # one past the last position
        self.kept = self.counts > 1  # samples of singleton classes are dropped
        self.k = np.where(self.kept, np.minimum(n_neighbors, self.counts - 1), 0)
        self.n_kept = self.kept.sum(axis=0)  # (K,)
        self.full = self.kept & (self.k == n_neighbors)  # windows of n_neighbors + 1
        self.partial = self.kept & (self.k < n_neighbors)  # window = the whole class
        position = np.arange(n)[:, None]
        self.rel = position - self.start  # samples of the class before this one
        self.rem = self.end - 1 - position  # samples of the class after this one
        # Latent-independent parts of the estimate.
        with np.errstate(invalid="ignore", divide="ignore"):
            self.const = (
                digamma(np.maximum(self.n_kept, 1))
                + (np.where(self.kept, digamma(np.maximum(self.k, 1)), 0.0)).sum(axis=0)
                / np.maximum(self.n_kept, 1)
                - (np.where(self.kept, digamma(np.maximum(self.counts, 1)), 0.0)).sum(axis=0)
                / np.maximum(self.n_kept, 1)
            )
        # Classes where sklearn's NearestNeighbors uses brute force: k ≥ count // 2.
        seg_first = self.kept & (np.arange(n)[:, None] == self.start)
        brute = seg_first & (self.k >= self.counts // 2)
        rows, fac = np.nonzero(brute)
        self.brute_size = self.counts[rows, fac]  # (G,)
        self.brute_k = self.k[rows, fac]  # (G,)
        width = int(self.brute_size.max()) if rows.size else 0
        j = np.arange(width)
        self.brute_valid = j[None, :] < self.brute_size[:, None]  # (G, W)
        pos = rows[:, None] + np.where(self.brute_valid, j[None, :], 0)  # (G, W)
        self.brute_flat = pos * n_factors + fac[:, None]  # indices into an (n, K) raveled


def mi_cd_from_jittered(
    z: np.ndarray, labels: np.ndarray, *, n_neighbors: int = 3, match_sklearn: bool = True
) -> np.ndarray:
    """Ross (2014) MI of already scaled-and-jittered columns, as sklearn's ``_compute_mi_cd``.

    No preprocessing happens here: given the column sklearn's ``_estimate_mi`` passes to
    ``_compute_mi_cd``, the result equals its value up to floating-point summation order.

    Args:
        z: float64 ``(n_samples, n_latents)``.
        labels: label-encoded int ``(n_samples, n_factors)``, values ``0..c_k−1``.
        n_neighbors: k.
        match_sklearn: reproduce sklearn's brute-force distances in tiny classes.

    Returns:
        float64 ``(n_latents, n_factors)``.
    """
    z = np.asarray(z, dtype=np.float64)
    n_latents = z.shape[1]
    layout = _FactorLayout(np.asarray(labels), n_neighbors)
    # One latent per task, all factors at once; latents run side by side in threads (the
    # sorts and searches release the GIL), each computed exactly as it would be alone.
    rows = parallel_map(
        lambda d: _mi_one_latent(z[:, d], layout, n_neighbors, match_sklearn),
        range(n_latents),
        z.shape[0] * layout.n_factors * n_latents * (n_neighbors + 1),  # window passes
    )
    return np.array(rows, dtype=np.float64).reshape(n_latents, layout.n_factors)


def _mi_one_latent(
    c: np.ndarray, lay: _FactorLayout, n_neighbors: int, match_sklearn: bool
) -> np.ndarray:
    n = c.shape[0]
    order = np.argsort(c, kind="stable")
    s = c[order]  # (n,) globally sorted
    # Class-major arrangement with values sorted inside each class, per factor.
    lab = lay.labels[order]  # (n, K) labels in sorted order
    perm = np.argsort(lab, axis=0, kind="stable")  # (n, K) into `order`
    v = s[perm]  # (n, K)

    # k-th in-class neighbour distance: in 1-D the k nearest others form a window of k + 1
    # consecutive class-sorted samples around i; d_k = min over windows of the farther end.
    # Classes with more than n_neighbors members: windows of n_neighbors + 1 positions, read
    # as shifted slices of the padded column. Smaller classes: the window is the class.
    kk = n_neighbors
    vp = np.concatenate([np.zeros((kk, v.shape[1])), v, np.zeros((kk, v.shape[1]))])
    dk = np.full(v.shape, np.inf)
    for o in range(kk + 1):
        ai = vp[kk - o : kk - o + n]  # v[i − o]
        bi = vp[2 * kk - o : 2 * kk - o + n]  # v[i − o + kk]
        ok = lay.full & (lay.rel >= o) & (lay.rem >= kk - o)
        np.minimum(dk, np.where(ok, np.maximum(v - ai, bi - v), np.inf), out=dk)
    if lay.partial.any():
        first = np.take_along_axis(v, lay.start, axis=0)
        last = np.take_along_axis(v, lay.end - 1, axis=0)
        dk = np.where(lay.partial, np.maximum(v - first, last - v), dk)
    if match_sklearn and lay.brute_flat.size:
        dk.ravel()[lay.brute_flat[lay.brute_valid]] = _brute_kth(v, lay)[lay.brute_valid]
    radius = np.empty_like(dk)  # back in sorted-column order: (n, K)
    np.put_along_axis(radius, perm, np.nextafter(np.where(lay.kept, dk, 0.0), 0.0), axis=0)

    # m_i: samples within the radius, counted on the sorted column among kept samples.
    # Queried in sorted-column order, so searchsorted's keys arrive nearly sorted (faster).
    dropped = lay.singleton[lab + lay.offset]  # (n, K) by sorted position
    q = np.broadcast_to(s[:, None], radius.shape)
    lo = _boundary(s, q, radius, left=True)
    hi = _boundary(s, q, radius, left=False)
    dropped_cum = np.concatenate(
        [np.zeros((1, lay.n_factors), dtype=np.int64), np.cumsum(dropped, axis=0)]
    )  # (n + 1, K)
    m = (hi - lo) - (
        np.take_along_axis(dropped_cum, hi, axis=0) - np.take_along_axis(dropped_cum, lo, axis=0)
    )
    kept = ~dropped
    psi_m = np.where(kept, digamma(np.maximum(m, 1)), 0.0).sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mi = lay.const - psi_m / np.maximum(lay.n_kept, 1)
    mi = np.where(lay.n_kept > 0, mi, 0.0)
    return np.maximum(mi, 0.0)


def _boundary(s: np.ndarray, v: np.ndarray, r: np.ndarray, *, left: bool) -> np.ndarray:
    """First index (``left``) or one past the last index of ``s`` with ``|s_j − v| ≤ r``.

    Distances are the rounded ``|fl(s_j − v)|`` that trees compute; ``searchsorted`` on
    ``v ∓ r`` (itself rounded) gives a guess that is corrected until exact. The set is an
    interval of the sorted column containing ``v`` itself, since rounding is monotone.
    """
    n = s.shape[0]
    thresholds = (v - r) if left else (v + r)
    side = "left" if left else "right"
    idx = np.searchsorted(s, thresholds.T.ravel(), side=side).reshape(v.shape[::-1]).T
    while True:
        below = s[np.maximum(idx - 1, 0)]  # last element before the boundary
        above = s[np.minimum(idx, n - 1)]  # first element from the boundary on
        if left:
            grow = (idx > 0) & (v - below <= r)  # the element before is inside
            shrink = (idx < n) & (v - above > r)  # the element at idx is outside
        else:
            grow = (idx < n) & (above - v <= r)  # the element at idx is inside
            shrink = (idx > 0) & (below - v > r)  # the element before is outside
        if not (grow.any() or shrink.any()):
            return idx
        step = grow.astype(np.intp) - shrink.astype(np.intp)
        idx += -step if left else step


def _brute_kth(v: np.ndarray, lay: _FactorLayout) -> np.ndarray:
    """k-th neighbour distance in tiny classes as sklearn's brute-force search rounds it.

    sklearn computes squared Euclidean distances as ``(‖x_i‖² − 2·x_i·x_j) + ‖x_j‖²``
    (clipped at 0) and returns their square roots. Returns ``(G, W)`` for the ``G`` brute-force
    classes padded to width ``W``; classes are processed in chunks of bounded memory.
    """
    x_all = v.ravel()[lay.brute_flat]  # (G, W)
    n_groups, w = x_all.shape
    out = np.zeros((n_groups, w))
    diag = np.arange(w)
    step = max(1, 2**22 // (w * w))
    for g0 in range(0, n_groups, step):
        x = x_all[g0 : g0 + step]  # (g, W)
        valid = lay.brute_valid[g0 : g0 + step]
        sq = x * x
        d2 = (sq[:, :, None] + -2.0 * (x[:, :, None] * x[:, None, :])) + sq[:, None, :]
        np.maximum(d2, 0.0, out=d2)  # (g, W, W): row i is the query
        d2[:, diag, diag] = np.inf  # exclude self
        d2[~np.broadcast_to(valid[:, None, :], d2.shape)] = np.inf  # padding
        d2.sort(axis=2)
        k = lay.brute_k[g0 : g0 + step]
        kth = np.take_along_axis(d2, (k - 1)[:, None, None], axis=2)[:, :, 0]  # (g, W)
        out[g0 : g0 + step] = np.sqrt(np.where(valid, kth, 0.0))
    return out
