"""Separated Attribute Predictability (Kumar et al. 2018), as in disentanglement_lib's
``sap_score.py``.

Kumar, Sattigeri & Balakrishnan, "Variational Inference of Disentangled Latent Concepts
from Unlabeled Observations", ICLR 2018, Section 3.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from disentkit._random import SeedLike
from disentkit._validation import (
    DisentkitWarning,
    check_choice,
    check_factors,
    check_n_jobs,
    prepare,
)
from disentkit.metrics._base import MetricResult, ScoreInfo, metric_id, register_metric
from disentkit.metrics._split import split_train_test

SOLVERS = ("liblinear", "exact")
ROWS = ("train", "all")
SVC_C = 0.01  # dlib: LinearSVC(C=0.01, class_weight="balanced")
_EXACT_ELEMENTS = 2**22  # (latent, sample, factor) entries sorted at once by the exact solver


@dataclass(frozen=True, kw_only=True)
class SAPResult(MetricResult):
    """SAP score and diagnostics.

    Attributes:
        score: mean over factors of the gap between the two largest scores of a factor.
        per_factor: ``(K,)`` gap per kept factor.
        score_matrix: ``(D, K)`` predictability of each factor from each single latent
            (test accuracy of a 1-D linear SVM, or squared Pearson correlation).
        constant_latents: indices of latents that take a single value; their scores are 0.
        n_not_converged: SVM fits that stopped at ``max_iter`` before converging (the
            ``"liblinear"`` solver; 0 otherwise).
    """

    SCORES = ("score",)
    PER_FACTOR = {"score": "per_factor"}  # noqa: RUF012

    score: float
    per_factor: np.ndarray
    score_matrix: np.ndarray
    constant_latents: tuple[int, ...] = ()
    n_not_converged: int = 0


def _gap_top_two(matrix: np.ndarray) -> np.ndarray:
    """Per column, the largest entry minus the second largest (0 stands in for a missing
    second entry when there is a single row)."""
    top = -np.sort(-matrix, axis=0)  # (D, K) descending per factor
    second = top[1] if matrix.shape[0] > 1 else np.zeros(matrix.shape[1])
    return top[0] - second


def _continuous_scores(latents: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Squared Pearson correlation of every (latent, factor) pair at once: ``(D, K)``."""
    zc = latents - latents.mean(axis=0)  # (n, D)
    yc = values - values.mean(axis=0)  # (n, K)
    cov = zc.T @ yc  # (D, K); the 1/(n-1) factors cancel in the ratio
    var_z = np.einsum("nd,nd->d", zc, zc)
    var_y = np.einsum("nk,nk->k", yc, yc)
    with np.errstate(divide="ignore", invalid="ignore"):
        r2 = cov**2 / (var_z[:, None] * var_y[None, :])
    r2 = np.where(var_z[:, None] > 0, r2, 0.0)
    return np.clip(r2, 0.0, 1.0)


def _check_train_classes(y_train: np.ndarray, kept_factors: tuple[int, ...]) -> None:
    """Every factor must take two values among the training rows ``(n_train, K)``."""
    single = [k for k in range(y_train.shape[1]) if np.unique(y_train[:, k]).size < 2]
    if single:
        raise ValueError(
            f"sap: factor(s) {[kept_factors[k] for k in single]} take a single value "
            f"among the {y_train.shape[0]} training rows, so no classifier can be "
            "trained or correlation taken; rows may be ordered by factor: pass shuffle=True"
        )


# ----------------------------------------------------------------------------------------
# Reference route: scikit-learn's LinearSVC, one fit per (latent, factor).


def _svc_latent(
    x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray, y_test: np.ndarray
) -> tuple[np.ndarray, int]:
    """Test accuracy of ``LinearSVC(C=0.01, class_weight="balanced")`` on one latent for
    every factor.

    Args:
        x_train: ``(n_train,)`` one latent. y_train: ``(n_train, K)`` codes.
        x_test: ``(n_test,)``. y_test: ``(n_test, K)``.

    Returns:
        ``(K,)`` accuracies and the number of fits that did not converge.
    """
    from sklearn.exceptions import ConvergenceWarning  # lazily: a heavy import
    from sklearn.svm import LinearSVC

    xtr = x_train[:, None]  # (n_train, 1)
    xte = x_test[:, None]
    acc = np.empty(y_train.shape[1])
    not_converged = 0
    for k in range(y_train.shape[1]):  # one liblinear fit per factor (all its classes)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", ConvergenceWarning)
            clf = LinearSVC(C=SVC_C, class_weight="balanced").fit(xtr, y_train[:, k])
        not_converged += any(issubclass(w.category, ConvergenceWarning) for w in caught)
        acc[k] = np.mean(clf.predict(xte) == y_test[:, k])
    return acc, not_converged


# ----------------------------------------------------------------------------------------
# Fast route: the same squared-hinge problems solved exactly, all at once.
#
# For one latent x and a binary sub-problem with labels y_i = ±1 and per-sample costs c_i,
# liblinear's primal L2-regularised L2-loss SVM with a regularised intercept minimises
#     f(w, b) = ½(w² + b²) + Σ_i c_i max(0, 1 − y_i (w x_i + b))².
# class_weight="balanced" gives class j the weight n / (P · n_j) (P classes present in the
# training split). With P > 2, class j's one-vs-rest problem charges its members
# C · weight_j and every other sample C; with P = 2 there is one problem, class 1 positive,
# each class charged C · its own weight. On a single feature the samples violating the
# margin form a prefix or a suffix of the sorted latent, so sorted prefix sums of
# (1, x, x²) give f, its gradient and its Hessian for any (w, b) in O(log n): a damped
# Newton iteration on the active set reaches the exact minimiser in a few steps for every
# (latent, factor, class) problem at once.


class _SortedLatents:
    """Prefix sums of ``(1, x, x²)`` over each latent sorted, overall and per class."""

    def __init__(self, x: np.ndarray, local: np.ndarray, offset: np.ndarray, n_groups: int) -> None:
        # x: (n, D) training latents; local: (n, K) class index of each sample within its
        # factor; offset: (K,) first global class id of each factor; n_groups: classes in all.
        n, d = x.shape
        order = np.argsort(x, axis=0, kind="stable")  # (n, D)
        self.xs = np.take_along_axis(x, order, axis=0).T.copy()  # (D, n) sorted values
        self.n = n
        self.all = np.zeros((d, n + 1, 3))  # (D, n+1, 3) prefix sums over sorted latents
        self.all[:, 1:, 0] = np.arange(1, n + 1)
        self.all[:, 1:, 1] = np.cumsum(self.xs, axis=1)
        self.all[:, 1:, 2] = np.cumsum(self.xs**2, axis=1)
        # Samples of one class of one factor, in latent order. A stable sort by class of
        # the classes listed in latent order gives, per (latent, factor), the ranks grouped
        # by class and increasing within a class (radix sort on small ints).
        small = np.int16 if local.max() < 2**15 else np.int64
        cls_in_order = local[order.T].astype(small)  # (D, n, K): class of the rank-r sample
        cls_in_order = np.moveaxis(cls_in_order, 2, 1)  # (D, K, n)
        perm = np.argsort(cls_in_order, axis=2, kind="stable")  # (D, K, n) ranks
        cls_sorted = np.take_along_axis(cls_in_order, perm, axis=2).astype(np.int64)
        group = (np.arange(d)[:, None, None] * n_groups + offset[None, :, None]) + cls_sorted
        # Global key = group · n + rank; increasing along the flattened (D, K, n) array.
        self.keys = (group * n + perm).ravel()
        xv = np.take_along_axis(self.xs[:, None, :], perm, axis=2).ravel()  # (D·K·n,)
        self.cls = np.zeros((xv.size + 1, 3))  # prefix sums in (group, rank) order
        self.cls[1:, 0] = np.arange(1, xv.size + 1)
        self.cls[1:, 1] = np.cumsum(xv)
        self.cls[1:, 2] = np.cumsum(xv**2)

    def rank_of(self, latent: np.ndarray, t: np.ndarray, side: str) -> np.ndarray:
        """Number of sorted values of ``latent`` below ``t`` (``side`` as searchsorted)."""
        out = np.empty(t.shape, dtype=np.int64)
        for d in np.unique(latent):  # one vectorised search per latent
            sel = latent == d
            out[sel] = np.searchsorted(self.xs[d], t[sel], side=side)
        return out

    def class_sums(self, group: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
        """Sums of ``(1, x, x²)`` over members of ``group`` with rank in ``[lo, hi)``: (P, 3)."""
        base = group * self.n
        a = np.searchsorted(self.keys, base + lo)
        b = np.searchsorted(self.keys, base + hi)
        return self.cls[b] - self.cls[a]

    def all_sums(self, latent: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
        """Sums of ``(1, x, x²)`` over all samples with rank in ``[lo, hi)``: (P, 3)."""
        return self.all[latent, hi] - self.all[latent, lo]


class _Problems:
    """All binary squared-hinge problems: latent, positive class group and costs."""

    def __init__(
        self,
        data: _SortedLatents,
        latent: np.ndarray,
        group: np.ndarray,
        c_pos: np.ndarray,
        c_neg: np.ndarray,
    ) -> None:
        self.data, self.latent, self.group = data, latent, group
        self.c_pos, self.c_neg = c_pos, c_neg

    def _region(self, w: np.ndarray, b: np.ndarray, level: float, below: bool) -> tuple:
        """Rank range ``[lo, hi)`` of the samples with ``w·x + b < level`` (``below``) or
        ``w·x + b > level``: a prefix or a suffix of the sorted latent."""
        n = self.data.n
        safe_w = np.where(w == 0, 1.0, w)
        with np.errstate(over="ignore"):  # a tiny |w| puts the threshold at ±inf: fine
            t = (level - b) / safe_w
        # Below the level: x < t when w > 0, x > t when w < 0 (reversed for above).
        prefix = (w > 0) if below else (w < 0)
        left = self.data.rank_of(self.latent, t, "left")
        right = self.data.rank_of(self.latent, t, "right")
        lo = np.where(prefix, 0, right)
        hi = np.where(prefix, left, n)
        flat_all = (b < level) if below else (b > level)  # w == 0: all or nothing
        lo = np.where(w == 0, 0, lo)
        hi = np.where(w == 0, np.where(flat_all, n, 0), hi)
        return lo, hi

    def stats(self, w: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, tuple]:
        """Cost-weighted sums over the margin violators: ``(5, P)`` = Σc, Σcx, Σcx²,
        Σcy, Σcyx, and the active rank ranges."""
        lo_p, hi_p = self._region(w, b, 1.0, below=True)  # positives: w·x + b < 1
        lo_n, hi_n = self._region(w, b, -1.0, below=False)  # negatives: w·x + b > −1
        pos = self.data.class_sums(self.group, lo_p, hi_p)  # (P, 3)
        neg = self.data.all_sums(self.latent, lo_n, hi_n) - self.data.class_sums(
            self.group, lo_n, hi_n
        )
        cp, cn = self.c_pos[:, None], self.c_neg[:, None]
        s = cp * pos + cn * neg  # Σc(1, x, x²)
        t = cp * pos[:, :2] - cn * neg[:, :2]  # Σcy(1, x)
        return np.stack([s[:, 0], s[:, 1], s[:, 2], t[:, 0], t[:, 1]]), (lo_p, hi_p, lo_n, hi_n)

    @staticmethod
    def objective(w: np.ndarray, b: np.ndarray, st: np.ndarray) -> np.ndarray:
        s0, s1, s2, t0, t1 = st
        loss = w * w * s2 + 2 * w * b * s1 + b * b * s0 - 2 * w * t1 - 2 * b * t0 + s0
        return 0.5 * (w * w + b * b) + loss

    @staticmethod
    def gradient(w: np.ndarray, b: np.ndarray, st: np.ndarray) -> tuple:
        s0, s1, s2, t0, t1 = st
        return w + 2 * (w * s2 + b * s1 - t1), b + 2 * (w * s1 + b * s0 - t0)

    @staticmethod
    def quadratic_minimiser(st: np.ndarray) -> tuple:
        """Minimiser of f with the active set held fixed (one Newton step)."""
        s0, s1, s2, t0, t1 = st
        h11, h12, h22 = 1 + 2 * s2, 2 * s1, 1 + 2 * s0
        det = h11 * h22 - h12 * h12
        return (h22 * 2 * t1 - h12 * 2 * t0) / det, (h11 * 2 * t0 - h12 * 2 * t1) / det

    def solve(self, max_iter: int = 100) -> tuple[np.ndarray, np.ndarray]:
        size = self.latent.size
        w, b = np.zeros(size), np.zeros(size)
        st, act = self.stats(w, b)
        f = self.objective(w, b, st)
        todo = np.arange(size)
        for _ in range(max_iter):
            if todo.size == 0:
                break
            sub = self._subset(todo)
            st_t = st[:, todo]
            wn, bn = self.quadratic_minimiser(st_t)
            st_n, act_n = sub.stats(wn, bn)
            same = np.all([a[todo] == an for a, an in zip(act, act_n, strict=True)], axis=0)
            # Same active set at the minimiser of its quadratic: the gradient of f is zero
            # there, so it is the exact minimiser.
            gw, gb = self.gradient(w[todo], b[todo], st_t)
            dw, db = wn - w[todo], bn - b[todo]
            slope = gw * dw + gb * db  # < 0: a descent direction
            f_n = self.objective(wn, bn, st_n)
            alpha = np.ones(todo.size)
            bad = ~same & (f_n > f[todo] + 1e-4 * slope)
            for _ in range(40):  # backtracking line search where the full step overshoots
                if not bad.any():
                    break
                alpha[bad] *= 0.5
                idx = np.flatnonzero(bad)
                wt, bt = w[todo[idx]] + alpha[idx] * dw[idx], b[todo[idx]] + alpha[idx] * db[idx]
                st_b, act_b = sub._subset(idx).stats(wt, bt)
                f_b = self.objective(wt, bt, st_b)
                wn[idx], bn[idx], f_n[idx] = wt, bt, f_b
                st_n[:, idx] = st_b
                for a, ab in zip(act_n, act_b, strict=True):
                    a[idx] = ab
                bad[idx] = f_b > f[todo[idx]] + 1e-4 * alpha[idx] * slope[idx]
            moved = np.abs(wn - w[todo]) + np.abs(bn - b[todo])
            stuck = moved <= 1e-15 * (1 + np.abs(wn) + np.abs(bn))
            w[todo], b[todo], f[todo] = wn, bn, f_n
            st[:, todo] = st_n
            for a, an in zip(act, act_n, strict=True):
                a[todo] = an
            todo = todo[~(same | stuck)]
        return w, b

    def _subset(self, idx: np.ndarray) -> _Problems:
        return _Problems(
            self.data, self.latent[idx], self.group[idx], self.c_pos[idx], self.c_neg[idx]
        )


def _exact_svc_scores(
    x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray, y_test: np.ndarray
) -> np.ndarray:
    """Test accuracy of the exact minimiser of every 1-D squared-hinge SVM: ``(D, K)``.

    Same problems as ``LinearSVC(C=0.01, class_weight="balanced")`` on each single latent
    (classes present in the training split, balanced weights, regularised intercept,
    one-vs-rest for more than two classes, first class on ties), solved exactly rather
    than to liblinear's tolerance.
    """
    n, d = x_train.shape
    k_factors = y_train.shape[1]
    present = [np.unique(y_train[:, k]) for k in range(k_factors)]  # classes_ per factor
    sizes = np.array([p.size for p in present])
    offset = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    n_groups = int(sizes.sum())
    local = np.stack(
        [np.searchsorted(present[k], y_train[:, k]) for k in range(k_factors)], axis=1
    )  # (n, K) index into present classes
    counts = np.bincount((local + offset).ravel(), minlength=n_groups)  # per global class
    weight = n / (np.repeat(sizes, sizes) * counts)  # balanced class weights
    # One problem per class for P > 2; one (class 1 positive) for P == 2.
    pos_class, c_pos, c_neg, factor_of = [], [], [], []
    for k in range(k_factors):
        if sizes[k] == 2:
            pos_class.append([offset[k] + 1])
            c_pos.append([SVC_C * weight[offset[k] + 1]])
            c_neg.append([SVC_C * weight[offset[k]]])
            factor_of.append([k])
        else:
            cls = offset[k] + np.arange(sizes[k])
            pos_class.append(cls)
            c_pos.append(SVC_C * weight[cls])
            c_neg.append(np.full(sizes[k], SVC_C))
            factor_of.append(np.full(sizes[k], k))
    pc, cp, cn = (np.concatenate(v) for v in (pos_class, c_pos, c_neg))
    n_prob = pc.size
    w, b = np.empty((d, n_prob)), np.empty((d, n_prob))  # (D, P)
    step = max(1, _EXACT_ELEMENTS // (n * k_factors))  # latents per block: bounded memory
    for lo in range(0, d, step):
        block = slice(lo, lo + step)
        data = _SortedLatents(x_train[:, block], local, offset, n_groups)
        dc = data.xs.shape[0]
        latent = np.repeat(np.arange(dc), n_prob)  # (dc·P,) latent-major
        problems = _Problems(
            data, latent, latent * n_groups + np.tile(pc, dc), np.tile(cp, dc), np.tile(cn, dc)
        )
        wb, bb = problems.solve()
        w[block], b[block] = wb.reshape(dc, n_prob), bb.reshape(dc, n_prob)
    start = np.concatenate([[0], np.cumsum([len(f) for f in factor_of])])
    acc = np.empty((d, k_factors))
    n_test = x_test.shape[0]
    chunk = max(1, 2**22 // max(1, n_test * int(sizes.max())))
    for k in range(k_factors):
        wk, bk = w[:, start[k] : start[k + 1]], b[:, start[k] : start[k + 1]]  # (D, Pk)
        for lo in range(0, d, chunk):  # bounded memory for many latents
            sl = slice(lo, lo + chunk)
            dec = x_test[:, sl, None] * wk[None, sl] + bk[None, sl]  # (n_test, d, Pk)
            idx = (dec[..., 0] > 0).astype(np.int64) if sizes[k] == 2 else dec.argmax(axis=2)
            acc[sl, k] = np.mean(present[k][idx] == y_test[:, k, None], axis=0)
    return acc


# ----------------------------------------------------------------------------------------


@register_metric(
    "sap",
    scores=(ScoreInfo("score", zero_when_independent=True, label="SAP"),),
    fast_options={"solver": "exact"},
    reference="Kumar et al. 2018; disentanglement_lib evaluation/metrics/sap_score.py",
)
def sap(
    latents: object,
    factors: object,
    *,
    continuous_factors: bool = False,
    rows: str = "train",
    train_fraction: float = 0.8,
    shuffle: bool = False,
    seed: SeedLike = None,
    solver: str = "liblinear",
    n_jobs: int = 1,
) -> SAPResult:
    """Separated Attribute Predictability.

    A score matrix ``S[d, k]`` says how well factor ``k`` is predicted from latent ``d``
    alone; SAP is the mean over factors of the gap between the two largest entries of
    the factor's column: ``score = mean_k (S_(1)k − S_(2)k)``.

    Estimator choices (reference defaults from disentanglement_lib):

    - discrete factors (``continuous_factors=False``, the reference): ``S[d, k]`` is the
      test accuracy of ``LinearSVC(C=0.01, class_weight="balanced")`` (current
      scikit-learn defaults otherwise: squared hinge, regularised intercept, one-vs-rest,
      ``dual="auto"`` → primal solver) trained on latent ``d`` alone. Rows are split with
      ``train_fraction`` (first 80 % train, rest test, as dlib; ``shuffle=True`` permutes
      with ``seed`` first). A 1-D linear classifier can only cut a latent into intervals,
      so even a perfect code reaches only about ``1/c`` + a little on a factor with many
      classes ``c`` (≈0.3 on dSprites-like factors): SAP is not comparable across factor
      sets.
    - continuous factors: ``S[d, k]`` is the squared Pearson correlation
      ``cov(z_d, s_k)² / (var z_d · var s_k)`` of the latent and the factor's values as
      given (not their class codes), computed on the train split only (dlib computes it on
      its training sample and leaves its test sample unused): ``rows="train"``, metric ID
      ``sap/continuous-train80@1``. ``rows="all"`` uses every row (disentkit's earlier
      default, ID ``sap/continuous@1``).

    Constant latents score 0 against every factor (they carry no information; dlib's
    continuous variant does the same through a ``var > 1e-12`` guard, while its discrete
    variant would fit the SVM and report the accuracy of a constant prediction). With a
    single latent the second-largest entry is taken as 0 (dlib would fail).

    ``solver="exact"`` (the fast mode) solves the same 1-D squared-hinge problems exactly
    and all at once from sorted prefix sums instead of calling liblinear per pair; it
    agrees with the reference except for test points that lie within liblinear's
    tolerance of a decision boundary.

    Args:
        latents: float ``(n_samples, n_latents)``.
        factors: integer ``(n_samples, n_factors)``.
        continuous_factors: use the squared-correlation score (factor values taken as
            numbers) instead of SVM accuracy.
        rows: rows of the continuous score: ``"train"`` (reference: the train split) or
            ``"all"``. Discrete factors always train on the train split and score on the
            rest, so they take ``"train"`` only.
        train_fraction: fraction of rows used to train the SVMs (or, for continuous
            factors, scored).
        shuffle: permute rows with ``seed`` before splitting.
        seed: seeds the permutation when ``shuffle=True``.
        solver: ``"liblinear"`` (reference: scikit-learn's ``LinearSVC``) or ``"exact"``.
        n_jobs: parallel jobs (joblib, over latents) for ``"liblinear"``; the result does
            not depend on it.

    Returns:
        :class:`SAPResult`; ``score`` in ``[0, 1]``.

    Raises:
        ValueError: a factor has a single class among the training rows (use
            ``shuffle=True`` when rows are ordered by factor), or a bad option.

    Example:
        >>> rng = np.random.default_rng(0)
        >>> s = rng.integers(0, 2, size=(500, 2))
        >>> z = s + 0.1 * rng.normal(size=s.shape)
        >>> round(sap(z, s).score, 3)  # accuracy 1 minus chance (0.5) of the other latent
        0.52
        >>> round(sap(z, s, continuous_factors=True).score, 3)
        0.965
    """
    p = prepare(latents, factors, metric="sap")
    solver = check_choice(solver, "solver", SOLVERS)
    n_jobs = check_n_jobs(n_jobs)
    if not isinstance(continuous_factors, bool | np.bool_):
        raise TypeError(f"continuous_factors must be a bool; received {continuous_factors!r}")
    rows = check_choice(rows, "rows", ROWS)
    if rows == "all" and not continuous_factors:
        raise ValueError(
            "sap: rows must be 'train' for discrete factors (the SVMs train on the train "
            "split and are scored on the rest); received rows='all'. rows='all' applies to "
            "continuous_factors=True"
        )
    z = p.latents
    constant = np.flatnonzero(np.ptp(z, axis=0) == 0)
    informative = np.flatnonzero(np.ptp(z, axis=0) > 0)
    matrix = np.zeros((z.shape[1], p.factors.shape[1]))  # (D, K)
    n_not_converged = 0
    split = split_train_test(
        p.n_samples, train_fraction=train_fraction, shuffle=shuffle, seed=seed, metric="sap"
    )
    seed_option = seed if seed is None or isinstance(seed, int | np.integer) else "generator"
    if continuous_factors:
        values = check_factors(factors)[:, list(p.kept_factors)].astype(np.float64)
        options: dict[str, object] = {"continuous_factors": True, "rows": rows}
        if rows == "train":
            _check_train_classes(p.factors[split.train], p.kept_factors)
            z_rows, values = z[split.train], values[split.train]  # (n_train, D), (n_train, K)
            variant = f"continuous-train{round(100 * split.train_fraction)}"
            options.update(split.describe(), seed=seed_option)
        else:
            z_rows = z
            variant = "continuous"
        matrix = _continuous_scores(z_rows, values)
        constant = np.flatnonzero(np.ptp(z_rows, axis=0) == 0)
    else:
        y_tr, y_te = p.factors[split.train], p.factors[split.test]
        _check_train_classes(y_tr, p.kept_factors)
        if informative.size:
            x_tr, x_te = z[split.train][:, informative], z[split.test][:, informative]
            if solver == "liblinear":
                from joblib import Parallel, delayed  # lazily: process workers for sklearn

                out = Parallel(n_jobs=n_jobs)(
                    delayed(_svc_latent)(x_tr[:, j], y_tr, x_te[:, j], y_te)
                    for j in range(informative.size)
                )
                matrix[informative] = np.stack([acc for acc, _ in out])
                n_not_converged = int(sum(nc for _, nc in out))
            else:
                matrix[informative] = _exact_svc_scores(x_tr, y_tr, x_te, y_te)
        if n_not_converged:
            warnings.warn(
                f"sap: {n_not_converged} LinearSVC fit(s) stopped at max_iter before "
                "converging; the scores use them as they are",
                DisentkitWarning,
                stacklevel=2,
            )
        variant = "discrete-svc" if solver == "liblinear" else "discrete-svc-exact"
        options = {
            "continuous_factors": False,
            "solver": solver,
            **split.describe(),
            "seed": seed_option,
        }
    per_factor = _gap_top_two(matrix)
    return SAPResult(
        metric_id=metric_id("sap", variant),
        options=options,
        n_samples=p.n_samples,
        skipped_factors=p.skipped_factors,
        score=float(np.mean(per_factor)),
        per_factor=per_factor,
        score_matrix=matrix,
        constant_latents=tuple(int(d) for d in constant),
        n_not_converged=n_not_converged,
    )
