"""Gradient boosting on binned latents, every factor's class trees grown in lockstep.

The recipe is that of ``GradientBoostingClassifier()`` with scikit-learn's defaults —
multinomial deviance (binomial for two classes), one depth-3 regression tree per class and
round fitted to the negative gradient by squared-error splits, a Newton step in each leaf,
learning rate 0.1, 100 rounds — run on latents binned at quantiles. The split-gain
importances are accumulated while the trees grow, in the units of
``feature_importances_``. See :func:`boost_importance` for every choice.

Instead of one tree at a time, all trees of a round (every class of every factor) are grown
together, one depth level at a time: the gradient histograms of all nodes of a level come
from one sparse–dense product ``onehot(codes)ᵀ @ W`` (``W`` holds each left child's
residuals and row indicators in its own column; a right child is its parent minus its
sibling), and the best split of every node is found from prefix sums over the bins.

References: J. H. Friedman, "Greedy Function Approximation: A Gradient Boosting Machine",
Annals of Statistics 29(5), 2001 (multinomial deviance, the ``(K − 1)/K`` Newton leaf step);
scikit-learn's ``sklearn/ensemble/_gb.py`` (the recipe reproduced here).
"""

from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

try:  # scipy's private sparse kernels (no fresh outputs, run without the interpreter lock)
    from scipy.sparse import _sparsetools
except ImportError:  # a scipy that moved them: the public product and np.bincount are used
    _sparsetools = None

#: Tree depth of the reference ``GradientBoostingClassifier()`` (``max_depth=3``).
MAX_DEPTH = 3
_BLOCK = 16  # bins per block of the two-level prefix sum
_NO_SPLIT = np.uint8(255)  # bin sentinel: every row goes left (codes are at most 255)
_SPLIT_RTOL = 1e-7  # gains below this fraction of S²/n are float32 rounding, not splits
_LEAF_CHUNK = 1 << 18  # leaf sums: rows × trees per sparse product (bounds its buffers)
_OTHER = 255  # code of a categorical column's rows whose category another column holds


def quantile_thresholds(x: np.ndarray, n_bins: int) -> list[np.ndarray]:
    """Bin edges of every column of ``x`` ``(n, D)``: at most ``n_bins − 1`` thresholds each.

    A column with at most ``n_bins`` distinct values gets the midpoints between consecutive
    distinct values (the reference's own candidate thresholds, so binning loses nothing);
    otherwise the percentiles ``100·j/n_bins``, ``j = 1 … n_bins − 1`` (numpy's ``midpoint``
    method), with duplicates removed. A constant column gets none. A value goes to the left
    of a threshold when it is ``<=`` it, as in scikit-learn's trees.
    """
    n = x.shape[0]
    xs = np.sort(x, axis=0)  # (n, D)
    pos = np.arange(1, n_bins) * ((n - 1) / n_bins)  # (n_bins - 1,) virtual indices
    lo, hi = np.floor(pos).astype(np.intp), np.ceil(pos).astype(np.intp)
    quantiles = (xs[lo] + xs[hi]) / 2  # (n_bins - 1, D)
    out = []
    for d in range(x.shape[1]):
        col = xs[:, d]
        distinct = col[np.concatenate([[True], col[1:] > col[:-1]])]
        if distinct.size <= n_bins:
            out.append((distinct[:-1] + distinct[1:]) / 2)
        else:
            out.append(np.unique(quantiles[:, d]))
    return out


def bin_codes(x: np.ndarray, thresholds: list[np.ndarray]) -> np.ndarray:
    """Bin index of every entry of ``x`` ``(n, D)``: ``(n, D)`` uint8, the number of
    thresholds of that column strictly below the value."""
    out = np.empty(x.shape, dtype=np.uint8)
    for d, t in enumerate(thresholds):
        out[:, d] = np.searchsorted(t, x[:, d], side="left")
    return out


def _prefix_sum_bins(h: np.ndarray) -> np.ndarray:
    """In-place cumulative sum over axis 0 of ``h`` ``(n_bins_padded, ...)``.

    Two levels (within blocks of ``_BLOCK`` bins, then across blocks), so every numpy call
    adds whole contiguous slabs: ``np.cumsum`` along a leading axis is several times slower
    (it is used only on the small array of block totals).
    """
    v = h.reshape(h.shape[0] // _BLOCK, _BLOCK, *h.shape[1:])  # (n_blocks, BLOCK, ...)
    for j in range(1, _BLOCK):
        v[:, j] += v[:, j - 1]
    if v.shape[0] > 1:  # add the running total of the blocks before (a small cumsum)
        v[1:] += np.cumsum(v[:-1, -1], axis=0)[:, None]
    return h


@dataclass(frozen=True)
class _Data:
    """Binned train and test latents, shared read-only by the worker threads."""

    n_bins: int  # bins per latent, padded to a multiple of _BLOCK
    n_active: int  # D': columns with at least two codes (a latent, or part of one)
    onehot_t: sp.csc_matrix  # (n_bins * D', n_train): row b * D' + d flags code b of latent d
    n_train: int
    codes_t: np.ndarray  # (D', n_train + n_test) uint8: train rows, then test rows
    count_prefix: np.ndarray  # (n_bins, D', 1) float32: rows with code <= b, per latent
    categorical: np.ndarray | None = None  # (D',) bool: columns split one category vs rest


def category_codes(
    x_train: np.ndarray, x_test: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Categories of every column of ``x_train`` ``(n, D)`` and ``x_test``: each column's
    distinct values over both (sorted) number its categories ``0 … C − 1``. Returns the
    train and test codes (``int64``) and ``(D,)`` the number of categories per column."""
    both = np.concatenate([x_train, x_test])
    codes = np.empty(both.shape, dtype=np.int64)
    sizes = np.empty(both.shape[1], dtype=np.int64)
    for d in range(both.shape[1]):
        values, codes[:, d] = np.unique(both[:, d], return_inverse=True)
        sizes[d] = values.size
    n = x_train.shape[0]
    return codes[:n], codes[n:], sizes


def _prepare(
    x_train: np.ndarray, x_test: np.ndarray, n_bins: int, categorical: np.ndarray | None = None
) -> tuple[_Data, np.ndarray]:
    """Bin the latents once: the shared :class:`_Data` and, for each of its columns, the
    latent it comes from ``(D',)``. Constant latents are dropped.

    Latents flagged in ``categorical`` ``(D,)`` are coded by category
    (:func:`category_codes`), 255 categories per column: a latent with more is spread over
    several columns, each coding its own 255 categories ``0 … 254`` and every other row
    ``_OTHER``, a code never split on. A column is kept when two codes occur among the
    train rows."""
    n_all = x_train.shape[1]
    cat = np.zeros(n_all, dtype=bool) if categorical is None else np.asarray(categorical, bool)
    train_cols: list[np.ndarray] = []
    test_cols: list[np.ndarray] = []
    owner: list[int] = []
    widths: list[int] = []  # codes each column uses
    is_cat: list[bool] = []
    if (~cat).any():
        numeric = np.flatnonzero(~cat)
        x_num, x_num_test = (x_train, x_test) if not cat.any() else (
            x_train[:, numeric], x_test[:, numeric])
        thresholds = quantile_thresholds(x_num, n_bins)
        codes, codes_test = bin_codes(x_num, thresholds), bin_codes(x_num_test, thresholds)
        for i, (j, t) in enumerate(zip(numeric, thresholds, strict=True)):
            if t.size:
                train_cols.append(codes[:, i])
                test_cols.append(codes_test[:, i])
                owner.append(int(j))
                widths.append(t.size + 1)
                is_cat.append(False)
    if cat.any():
        tr, te, sizes = category_codes(x_train[:, cat], x_test[:, cat])
        for i, j in enumerate(np.flatnonzero(cat)):
            for lo in range(0, int(sizes[i]), _OTHER):  # 255 categories per column
                part = []
                for c in (tr[:, i], te[:, i]):
                    inside = (c >= lo) & (c < lo + _OTHER)
                    part.append(np.where(inside, c - lo, _OTHER).astype(np.uint8))
                if part[0].min() < part[0].max():
                    train_cols.append(part[0])
                    test_cols.append(part[1])
                    owner.append(int(j))
                    widths.append(_OTHER + 1 if sizes[i] > _OTHER else int(sizes[i]))
                    is_cat.append(True)
    order = np.argsort(owner, kind="stable")  # columns in the order of their latents
    d = len(owner)
    n = x_train.shape[0]
    padded = _BLOCK * max(1, math.ceil(max(widths, default=1) / _BLOCK))
    codes = np.empty((n, d), dtype=np.uint8)
    codes_test = np.empty((x_test.shape[0], d), dtype=np.uint8)
    for k, o in enumerate(order):
        codes[:, k], codes_test[:, k] = train_cols[o], test_cols[o]
    rows = (codes.astype(np.intp) * d + np.arange(d)).ravel()  # (n * D',) sample-major
    onehot_t = sp.csc_matrix(
        (np.ones(n * d, dtype=np.float32), rows, np.arange(n + 1) * d), shape=(padded * d, n)
    )
    counts = np.bincount(rows, minlength=padded * d).astype(np.float32)
    count_prefix = _prefix_sum_bins(counts.reshape(padded, d, 1))
    flags = np.array(is_cat, dtype=bool)[order]
    data = _Data(
        n_bins=padded,
        n_active=d,
        onehot_t=onehot_t,
        n_train=n,
        codes_t=np.ascontiguousarray(np.concatenate([codes, codes_test]).T),
        count_prefix=count_prefix,
        categorical=flags if flags.any() else None,
    )
    return data, np.array(owner, dtype=np.intp)[order]


def _select(cond: np.ndarray, node: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """``cond[node[t, i], t, i]`` for ``cond`` ``(M, T, n)`` uint8 0/1 and ``node``
    ``(T, n)`` uint8, ``M`` a power of two; ``mask`` is a ``(T, n)`` uint8 scratch array.

    A binary tree of bitwise selects over the bits of ``node``, in place in ``cond``
    (several times faster than a gather or ``np.where`` on booleans). Returns a view of
    ``cond[0]``.
    """
    layer = list(cond)
    bit = 0
    while len(layer) > 1:
        np.right_shift(node, bit, out=mask)
        np.bitwise_and(mask, 1, out=mask)
        np.negative(mask, out=mask)  # 0x00 or 0xFF
        for a, b in zip(layer[::2], layer[1::2], strict=True):
            np.bitwise_xor(a, b, out=b)  # a ^ (mask & (a ^ b)): b where mask, else a
            np.bitwise_and(b, mask, out=b)
            np.bitwise_xor(a, b, out=a)
        layer = layer[::2]
        bit += 1
    return layer[0]


def _check_matvecs() -> bool:
    """Whether scipy's ``csc_matvecs`` and ``csc_matvec`` kernels take the arguments
    :func:`_sparse_product` and :meth:`_GroupBooster.leaves` pass them (private functions:
    checked once against the public product and ``np.bincount``; False when scipy has
    no ``scipy.sparse._sparsetools``)."""
    if _sparsetools is None:
        return False
    try:
        a = sp.csc_matrix(np.array([[1.0, 0.0], [2.0, 3.0]], dtype=np.float32))
        x = np.array([[1.0, 2.0], [3.0, 4.0]], dtype=np.float32)
        out = np.zeros((2, 2), dtype=np.float32)
        _sparsetools.csc_matvecs(2, 2, 2, a.indptr, a.indices, a.data, x.ravel(), out.ravel())
        ok = bool(np.array_equal(out, (a @ x).astype(np.float32)))
        w = np.array([0.5, 1.0, 2.0])
        expected = np.bincount([2, 0, 2], weights=w, minlength=3)
        for index in (np.int32, np.int64):
            rows = np.array([2, 0, 2], dtype=index)  # bins of three values
            sums = np.zeros(3)
            _sparsetools.csc_matvec(3, 3, np.arange(4, dtype=index), rows, np.ones(3), w, sums)
            ok = ok and bool(np.array_equal(sums, expected))
        return ok
    except Exception:  # any failure: use the public product and np.bincount
        return False


_MATVECS_OK = _check_matvecs()


def _sparse_product(a: sp.csc_matrix, x: np.ndarray, out: np.ndarray) -> np.ndarray:
    """``out[...] = a @ x`` for ``a`` CSC float32 ``(M, N)`` and ``x`` C-contiguous float32
    ``(N, k)``, into the reused ``out`` ``(M, k)``: scipy's own kernel, called directly so
    that no fresh ``(M, k)`` array (and its page faults) is made each time."""
    if _MATVECS_OK:
        out.fill(0)
        m, n = a.shape
        _sparsetools.csc_matvecs(
            m, n, x.shape[1], a.indptr, a.indices, a.data, x.ravel(), out.ravel()
        )
    else:
        out[...] = a @ x
    return out


def _best_splits(
    cg: np.ndarray,
    cn: np.ndarray,
    crit: np.ndarray,
    den: np.ndarray,
    empty: np.ndarray,
    categorical: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Best split of every node from prefix sums over bins.

    A latent flagged in ``categorical`` ``(D',)`` is split one category against the rest
    (as a tree splits a one-hot column): its candidates are the per-bin sums, the
    differences of consecutive prefix sums, instead of the prefix sums themselves.

    Args:
        cg: ``(B, D', C)`` float32: residual sum of the node's rows with code ``<= b``.
        cn: ``(B, D', C)`` or ``(B, D', 1)`` float32: their count.
        crit, den, empty: ``(B, D', C)`` float32 scratch arrays.
        categorical: ``(D',)`` bool, or ``None`` when no latent is categorical.

    Returns:
        ``(latent (C,), bin (C,) uint8, gain (C,) float64)``: ``bin`` is ``_NO_SPLIT`` and
        ``gain`` 0 where the node is not split. The gain is the squared-error decrease
        ``S_L²/n_L + S_R²/n_R − S²/n``; a categorical split sends bin ``b``'s rows right.
    """
    n_cols = cg.shape[2]
    g_tot, n_tot = cg[-1], cn[-1]  # (D', C), (D', C or 1)
    if categorical is not None:  # per-bin sums of the categorical latents, in copies
        cat = np.flatnonzero(categorical)  # (the totals above stay views of the inputs)
        cg, cn = cg.copy(), cn.copy()
        cg[1:, cat] -= cg[:-1, cat]  # fancy indexing reads the right side before writing
        cn[1:, cat] -= cn[:-1, cat]
        if cn.shape[0] > _OTHER:  # rows of other columns' categories: never split off
            cn[_OTHER, cat] = 0
    np.multiply(cg, n_tot, out=crit)  # S_L·n − S·n_L = n·(S_L − n_L·S/n)
    np.multiply(g_tot, cn, out=den)
    crit -= den
    crit *= crit
    np.subtract(n_tot, cn, out=den)  # n_R
    den *= cn  # n_L·n_R: exactly 0 when a side has no rows (counts are exact integers)
    # Such a split scores 0 (its residual sum can be float32 noise rather than 0 where it
    # was found by subtraction). Arithmetic on a 0/1 float mask: several times faster than
    # a masked assignment.
    np.equal(den, 0, out=empty)
    den += empty  # 1 where a side is empty
    crit /= den  # n · gain
    np.subtract(1, empty, out=empty)
    crit *= empty
    best = crit.max(axis=0)  # (D', C): best of each latent
    latent = np.argmax(best, axis=0)  # (C,): first best latent
    cols = np.arange(n_cols)
    b = np.argmax(crit[:, latent, cols], axis=0)  # (C,): its first best bin
    # the gain again in float64, from the float32 sums at the chosen split
    per_col = cols if cn.shape[2] > 1 else 0
    sl = cg[b, latent, cols].astype(np.float64)
    nl = cn[b, latent, per_col].astype(np.float64)
    s = g_tot[latent, cols].astype(np.float64)
    n = n_tot[latent, per_col].astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        gain = (sl * n - s * nl) ** 2 / (nl * (n - nl) * n)
    ok = (best[latent, cols] > 0) & (gain > _SPLIT_RTOL * s * s / np.maximum(n, 1))
    return (
        np.where(ok, latent, 0),
        np.where(ok, b, _NO_SPLIT).astype(np.uint8),
        np.where(ok, gain, 0.0),
    )


class _GroupBooster:
    """Boosts the factors of one group; every array of a round lives in a buffer made once.

    Layout: per-row arrays are tree-major ``(T, n)`` (tree ``t`` = a class of a factor);
    node ``j`` of tree ``t`` at a level is column ``j * T + t`` of that level's arrays;
    a node's children at the next level are ``j`` (left) and ``j + M`` (right). Rows are
    routed down the trees and given leaf values train and test together, ``(T, N)`` with
    ``N = n + n_test`` and the train rows first; only the train rows fit.
    """

    def __init__(self, data: _Data, y: np.ndarray, sizes: list[int], n_test: int) -> None:
        self.data = data
        self.sizes = sizes
        n = y.shape[0]
        self.trees = [c if c > 2 else 1 for c in sizes]  # trees per round of each factor
        t = self.t = sum(self.trees)
        is_target = np.zeros((t, n), dtype=bool)  # one-hot classes, or y == 1 for 2
        start = 0
        for k, (c, nt) in enumerate(zip(sizes, self.trees, strict=True)):
            if c > 2:
                is_target[start + y[:, k], np.arange(n)] = True
            else:
                is_target[start] = y[:, k] == 1
            start += nt
        self.is_target = is_target
        self.target = is_target.astype(np.float32)
        self.other = (~is_target).astype(np.float32)
        eps = np.finfo(np.float64).eps
        prior = np.clip(is_target.mean(axis=1, dtype=np.float64), eps, 1 - eps)  # (T,)
        binary = np.repeat(np.array(sizes) == 2, self.trees)
        # scikit-learn's init: the class prior through the link (log prior or log-odds)
        baseline = np.where(binary, np.log(prior / (1 - prior)), np.log(prior))
        n_all = n + n_test
        self.raw_all = np.repeat(baseline[:, None], n_all, axis=1)  # (T, N) float64
        self.raw = self.raw_all[:, :n]  # (T, n) view: the train rows
        classes = np.repeat(np.array(sizes, dtype=np.float64), self.trees)
        # GradientBoostingClassifier's multinomial leaf step carries a (K − 1)/K factor
        self.scale = np.where(binary, 1.0, (classes - 1) / classes)[:, None]  # (T, 1)
        self.gains = np.zeros((data.n_active, t))
        d, nb, f32 = data.n_active, data.n_bins, np.float32
        self.g = np.empty((t, n), f32)
        self.h = np.empty((t, n), f32)
        self.tmp = [np.empty((t, n), f32) for _ in range(2)]
        self.g_rows = np.empty((n, t), f32)
        self.node = np.empty((t, n_all), np.uint8)
        self.mask = np.empty((t, n_all), np.uint8)
        self.node_rows = np.empty((n, t), np.uint8)
        self.inside = np.empty((n, t), f32)
        # leaf sums: leaf l of tree t is entry t·L + l (L leaves per tree); a chunk of
        # trees at a time (at most _LEAF_CHUNK values), train row r of its tree t is column
        # t·n + r of a 0/1 matrix with one entry per column
        n_leaves = 1 << MAX_DEPTH
        self.leaf_trees = max(1, min(t, _LEAF_CHUNK // n))  # trees per chunk
        c = self.leaf_trees
        self.leaf_offset = (n_leaves * np.arange(c, dtype=np.int32))[:, None]  # (c, 1)
        index = np.int32 if c * n < np.iinfo(np.int32).max else np.int64
        self.leaf_index = np.empty((c, n), index)
        self.leaf_indptr = np.arange(c * n + 1, dtype=index)
        self.leaf_ones = np.ones(c * n)
        self.leaf_x = np.empty((c, n))  # g or h in float64
        self.leaf_g = np.empty(t * n_leaves)  # leaf sums of g and h
        self.leaf_h = np.empty(t * n_leaves)
        # per level: the codes of each node's latent, then its side, (M, T, rows); prefix
        # sums of residuals and counts of every node, (B, D', M*T), left children first,
        # contiguous (numpy is several times slower on strided views) and their split-scan
        # scratch; below the root, the product's columns (left children: residuals and row
        # indicators) and result
        # Buffers used within one level only (routing, split scan, product) are shared by
        # the levels: each level takes a contiguous view of the first elements, so the
        # memory a round touches stays small.
        widest = (1 << (MAX_DEPTH - 1)) * t  # columns at the last level
        shared = {
            "cond": np.empty(widest * n_all, np.uint8),
            "crit": np.empty(nb * d * widest, f32),
            "den": np.empty(nb * d * widest, f32),
            "empty": np.empty(nb * d * widest, f32),
            "w": np.empty(n * widest, f32),
            "hist": np.empty(nb * d * widest, f32),
        }

        def view(name: str, *shape: int) -> np.ndarray:
            return shared[name][: math.prod(shape)].reshape(shape)

        self.cond, self.level_g, self.level_n = [], [], []
        self.crit, self.den, self.empty = [], [], []
        self.w, self.hist = [], []
        for level in range(MAX_DEPTH):
            m = 1 << level  # nodes per tree
            self.cond.append(view("cond", m, t, n_all))
            self.crit.append(view("crit", nb, d, m * t))
            self.den.append(view("den", nb, d, m * t))
            self.empty.append(view("empty", nb, d, m * t))
            if level == 0:  # the roots: residuals only (every row counts); their
                # histogram is the parents' of level 1, so it has a buffer of its own
                self.hist.append(np.empty((nb * d, t), f32))
                self.w.append(None)
                self.level_g.append(self.hist[0].reshape(nb, d, t))
                self.level_n.append(data.count_prefix)  # (B, D', 1)
                continue
            self.w.append(view("w", n, 2, m // 2, t))
            self.hist.append(view("hist", nb * d, m * t))
            self.level_g.append(np.empty((nb, d, m * t), f32))  # parents of the next level
            self.level_n.append(np.empty((nb, d, m * t), f32))

    def gradients(self) -> None:
        """``g = y − p`` and ``h = p (1 − p)`` of the deviance at the current raw scores,
        factor by factor (softmax over a factor's trees, logistic for two classes).

        float32, without cancellation where ``p`` is close to 1: the top class's ``1 − p``
        is the other classes' share (summed in float64), ``σ(−x)`` is ``1/(1 + eˣ)``. A
        confident row keeps a relative precision of ~1e-6 in both, as the reference's
        float64 arithmetic gives.
        """
        g, h, e, q = self.g, self.h, self.tmp[0], self.tmp[1]
        start = 0
        for c in self.sizes:
            if c == 2:  # x = ±raw: the true class has probability σ(x)
                x = np.where(self.is_target[start], self.raw[start], -self.raw[start])
                x = np.minimum(x, 80.0).astype(np.float32)  # e^80 stays finite in float32
                np.exp(x, out=x)
                u = 1 / (1 + x)  # σ(−x) = 1 − p(true class)
                np.multiply(u, x * u, out=h[start])  # σ(−x) σ(x)
                np.subtract(np.multiply(u, self.target[start]),
                            np.multiply(u, self.other[start]), out=g[start])  # y − σ(raw)
                start += 1
                continue
            rows = slice(start, start + c)
            np.subtract(self.raw[rows], self.raw[rows].max(axis=0), out=e[rows],
                        casting="same_kind")
            np.exp(e[rows], out=e[rows])  # the top class has e = 1 exactly
            total64 = e[rows].sum(axis=0, dtype=np.float64)  # (n,)
            total = total64.astype(np.float32)
            rest = (total64 - 1).astype(np.float32)  # the other classes' share × total
            np.subtract(1, e[rows], out=q[rows])  # 1 − p = (total − e)/total, with
            q[rows] += rest  # total − e = (total − 1) + (1 − e): exact where e = 1
            q[rows] /= total
            e[rows] /= total  # p
            np.multiply(e[rows], q[rows], out=h[rows])
            # y − p: q on the true class, −p elsewhere (no cancellation)
            np.multiply(q[rows], self.target[rows], out=g[rows])
            e[rows] *= self.other[rows]
            g[rows] -= e[rows]
            start += c

    def grow(self) -> None:
        """Grow one tree per row of ``g``; leave each row's leaf in ``node`` and credit the
        split gains to ``gains``."""
        data, t, g = self.data, self.t, self.g
        node = self.node
        node.fill(0)
        if data.n_active == 0:  # every latent constant: no tree ever splits
            return
        nb, d = data.n_bins, data.n_active
        np.copyto(self.g_rows, g.T)  # (n, T) for the sparse product
        _prefix_sum_bins(
            _sparse_product(data.onehot_t, self.g_rows, self.hist[0]).reshape(nb, d, t)
        )
        for level in range(MAX_DEPTH):
            m = 1 << level
            latent, b, gain = _best_splits(
                self.level_g[level], self.level_n[level], self.crit[level], self.den[level],
                self.empty[level], data.categorical,
            )
            self.gains += np.bincount(  # credit each split's gain to its latent
                (latent * t + np.tile(np.arange(t), m)), weights=gain, minlength=self.gains.size
            ).reshape(self.gains.shape)
            cond = self.cond[level]  # train and test rows together
            np.take(data.codes_t, latent, axis=0, out=cond.reshape(m * t, -1))
            np.greater(cond, b.reshape(m, t, 1), out=cond.view(bool))
            if data.categorical is not None:  # one category right, the rest left
                cat = np.flatnonzero(data.categorical[latent] & (gain > 0))  # their splits
                if cat.size:
                    flat = cond.reshape(m * t, -1)
                    flat[cat] = data.codes_t[latent[cat]] == b.ravel()[cat, None]
            right = _select(cond, node, self.mask)  # (T, N) 0/1
            if level:
                np.left_shift(right, level, out=right)
            node += right  # node j -> j (left) or j + M (right)
            if level == MAX_DEPTH - 1:
                break
            # left children (nodes 0 … M−1 of the next level keep their parents'
            # numbers): residuals and row indicators, one column per (kind, node, tree)
            nxt = level + 1
            np.copyto(self.node_rows, node[:, : data.n_train].T)
            w = self.w[nxt]  # (n, 2, M, T)
            for j in range(m):  # contiguous sources, one strided write each
                np.equal(self.node_rows, j, out=self.inside)  # 0/1 float32
                np.copyto(w[:, 1, j], self.inside)
                np.multiply(self.g_rows, self.inside, out=w[:, 0, j])
            h = _sparse_product(data.onehot_t, w.reshape(w.shape[0], -1), self.hist[nxt])
            h = _prefix_sum_bins(h.reshape(nb, d, 2, m * t))
            width = m * t
            for kind, parents, out in ((0, self.level_g[level], self.level_g[nxt]),
                                       (1, self.level_n[level], self.level_n[nxt])):
                np.copyto(out[:, :, :width], h[:, :, kind])  # left children
                np.subtract(parents, h[:, :, kind], out=out[:, :, width:])  # right children

    def leaves(self, learning_rate: float) -> None:
        """Newton step in every leaf; add the leaf values to the raw scores."""
        t, n, n_leaves = self.t, self.data.n_train, 1 << MAX_DEPTH
        node, s_g, s_h = self.node, self.leaf_g, self.leaf_h
        # Leaf sums in float64, each leaf's rows added in row order (as np.bincount adds
        # them), a chunk of trees per sparse product, through scipy's kernel: it runs
        # without the interpreter lock (np.bincount holds it), so the threads of the factor
        # groups overlap here.
        if _MATVECS_OK:
            c = self.leaf_trees
            for lo in range(0, t, c):
                k = min(c, t - lo)  # trees in this chunk
                index = self.leaf_index[:k]
                np.add(node[lo:lo + k, :n], self.leaf_offset[:k], out=index)
                for src, out in ((self.g, s_g), (self.h, s_h)):
                    np.copyto(self.leaf_x[:k], src[lo:lo + k])
                    part = out[lo * n_leaves:(lo + k) * n_leaves]
                    part.fill(0)
                    _sparsetools.csc_matvec(k * n_leaves, k * n, self.leaf_indptr[:k * n + 1],
                                            index.ravel(), self.leaf_ones, self.leaf_x[:k].ravel(),
                                            part)
        else:
            for i in range(t):
                rows = slice(i * n_leaves, (i + 1) * n_leaves)
                s_g[rows] = np.bincount(node[i, :n], weights=self.g[i], minlength=n_leaves)
                s_h[rows] = np.bincount(node[i, :n], weights=self.h[i], minlength=n_leaves)
        s_g, s_h = s_g.reshape(t, n_leaves), s_h.reshape(t, n_leaves)
        ok = np.abs(s_h) >= 1e-150  # scikit-learn's _safe_divide
        value = np.where(ok, s_g / np.where(ok, s_h, 1.0), 0.0)
        value *= learning_rate * self.scale  # (T, n_leaves)
        for i in range(t):  # train and test rows
            self.raw_all[i] += value[i].take(node[i])

    def run(self, n_rounds: int, learning_rate: float) -> tuple[np.ndarray, ...]:
        """Boost; return the gain sums per factor ``(D', K_g)`` and the raw train
        ``(T_g, n)`` and test ``(T_g, n_test)`` scores."""
        for _ in range(n_rounds):
            self.gradients()
            self.grow()
            self.leaves(learning_rate)
        per_factor = np.add.reduceat(self.gains, np.cumsum([0, *self.trees[:-1]]), axis=1)
        n = self.data.n_train
        return per_factor, self.raw_all[:, :n], self.raw_all[:, n:]


def _partition(trees: list[int], n_groups: int) -> list[list[int]]:
    """Split factors (``trees[k]`` trees per round each) into ``n_groups`` groups with
    similar tree counts: largest first, each to the lightest group, then single moves and
    swaps between the heaviest and the lightest group while they lower the heavier of the
    two. Each group lists its factors in increasing order."""
    groups: list[list[int]] = [[] for _ in range(max(1, min(n_groups, len(trees))))]
    for k in sorted(range(len(trees)), key=lambda k: -trees[k]):
        min(groups, key=lambda g: sum(trees[i] for i in g)).append(k)

    def load(g: list[int]) -> int:
        return sum(trees[i] for i in g)

    while len(groups) > 1:
        heavy, light = max(groups, key=load), min(groups, key=load)
        best, move = load(heavy), None
        for a in [*heavy, None]:
            for b in [*light, None]:
                if a is None:
                    continue
                delta = trees[a] - (trees[b] if b is not None else 0)
                worst = max(load(heavy) - delta, load(light) + delta)
                if worst < best:
                    best, move = worst, (a, b)
        if move is None:
            break
        a, b = move
        heavy.remove(a)
        light.append(a)
        if b is not None:
            light.remove(b)
            heavy.append(b)
    return [sorted(g) for g in groups if g]


def boost_importance(
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_test: np.ndarray,
    *,
    n_bins: int = 256,
    n_rounds: int = 100,
    learning_rate: float = 0.1,
    n_threads: int = 1,
    categorical: np.ndarray | None = None,
) -> tuple[np.ndarray, list[np.ndarray], list[np.ndarray]]:
    """Boosted-tree importances and raw scores of every factor.

    Estimator choices (``GradientBoostingClassifier()``'s, except where binning is said):

    * **Bins:** each latent is binned once on the train rows (:func:`quantile_thresholds`):
      exact midpoints when it has at most ``n_bins`` distinct values, else ``n_bins``
      quantile bins. Splits are ``code <= b`` — thresholds at bin edges instead of at the
      midpoint of the two train values around the split. Constant latents are never split.
    * **Categorical latents** (``categorical``): each distinct value (over train and test
      rows) is a category, and a split sends one category's rows one way and the rest the
      other: the trees of ``GradientBoostingClassifier()`` on the
      latent's one-hot columns, whose importances summed over the columns are the latent's.
    * **Loss and trees:** multinomial deviance with one regression tree per class and round
      (binomial deviance and one tree for a two-class factor), fitted to the negative
      gradient ``onehot(y) − softmax(raw)``; depth 3 (up to 8 leaves), a node splits when
      both sides keep at least one row; the split maximises the squared-error decrease
      ``S_L²/n_L + S_R²/n_R − S²/n`` (residual sums ``S``, row counts ``n``), which is the
      ordering of scikit-learn's ``friedman_mse`` criterion.
    * **Leaves:** one Newton step, ``(K − 1)/K · ΣS / Σp(1 − p)`` (``ΣS / Σp(1 − p)`` for
      two classes; 0 when the denominator is below 1e-150), times the learning rate.
    * **Start:** the class prior, ``log p_k`` (log-odds for two classes).
    * **Rounds:** ``n_rounds`` with learning rate ``learning_rate``; no subsampling.
    * **Ties:** the first best bin of the first best latent (lowest latent index, then
      lowest bin). The reference visits latents in a random order and keeps the first of
      equal gains, so ties go to a random latent there.
    * **Arithmetic:** residuals, hessians, gradient histograms and their prefix sums in
      float32 (residuals and hessians without cancellation for confident rows, see
      :meth:`_GroupBooster.gradients`); gains of chosen splits, leaf sums and raw scores in
      float64. A node whose best gain is below ``1e-7 · S²/n`` is left unsplit: that is
      float32 rounding on a node whose residuals are all equal, which the reference leaves
      unsplit (variance at most machine epsilon).
    * **Importance:** every split's squared-error decrease is credited to its latent,
      summed over the trees of a factor and normalised to sum 1 — the quantity
      ``GradientBoostingClassifier.feature_importances_`` reports.

    ``n_threads`` threads each boost a group of factors (similar numbers of trees per
    group; one group per thread: larger groups make fewer, longer numpy calls). Trees never
    see other trees' numbers, so the result does not depend on the grouping.

    Args:
        x_train: float ``(n_train, D)``.
        y_train: int ``(n_train, K)``, each column class indices ``0 … C_k − 1``, every
            class present, ``C_k >= 2``.
        x_test: float ``(n_test, D)``.
        n_bins: bins per latent, 2 to 256.
        n_rounds: boosting rounds.
        learning_rate: shrinkage of every leaf value.
        n_threads: threads (factor groups).
        categorical: ``(D,)`` bool, the latents to split by category; ``None``: none.

    Returns:
        ``(importance (D, K), raw_train, raw_test)``: importance columns sum to 1 (or are
        all zero when no latent was ever split on); ``raw_train`` and ``raw_test`` are lists
        of ``K`` raw-score arrays ``(n_train, T_k)`` and ``(n_test, T_k)`` (``T_k`` = the
        number of classes, 1 for a two-class factor: the log-odds of class 1), as
        ``GradientBoostingClassifier.decision_function`` returns them up to a per-row shift.

    Example:
        >>> rng = np.random.default_rng(0)
        >>> y = rng.integers(0, 3, size=(200, 1))  # one factor of three classes
        >>> x = np.column_stack([y[:, 0] + 0.1 * rng.standard_normal(200),
        ...                      rng.standard_normal(200)])  # its code, and noise
        >>> importance, raw, raw_test = boost_importance(x, y, x[:5])
        >>> importance.round(6).tolist(), raw[0].shape, raw_test[0].shape
        ([[1.0], [0.0]], (200, 3), (5, 3))
        >>> bool((raw[0].argmax(axis=1) == y[:, 0]).all())
        True
    """
    assert 2 <= n_bins <= 256 and n_rounds >= 1 and n_threads >= 1
    n_total_latents = x_train.shape[1]
    sizes = [int(y_train[:, k].max()) + 1 for k in range(y_train.shape[1])]
    data, owner = _prepare(x_train, x_test, n_bins, categorical)
    trees = [c if c > 2 else 1 for c in sizes]
    groups = _partition(trees, n_threads)  # one group per thread

    def run(group: list[int]) -> tuple[np.ndarray, ...]:
        booster = _GroupBooster(data, y_train[:, group], [sizes[k] for k in group],
                                x_test.shape[0])
        return booster.run(n_rounds, learning_rate)

    if n_threads == 1 or len(groups) == 1:
        results = [run(g) for g in groups]
    else:
        with ThreadPoolExecutor(max_workers=min(n_threads, len(groups))) as pool:
            results = list(pool.map(run, groups))
    importance = np.zeros((n_total_latents, len(sizes)))
    raw_train: list[np.ndarray] = [np.empty(0)] * len(sizes)
    raw_test: list[np.ndarray] = [np.empty(0)] * len(sizes)
    for group, (gains, raw, raw_te) in zip(groups, results, strict=True):
        np.add.at(importance, (owner[:, None], np.array(group)[None, :]), gains)
        start = 0
        for k in group:
            raw_train[k] = raw[start : start + trees[k]].T  # (n_train, T_k)
            raw_test[k] = raw_te[start : start + trees[k]].T
            start += trees[k]
    total = importance.sum(axis=0)
    importance = np.divide(importance, total, out=np.zeros_like(importance), where=total > 0)
    return importance, raw_train, raw_test
