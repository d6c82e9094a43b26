"""Modularity and Explicitness (Ridgeway & Mozer 2018), as in disentanglement_lib's
``modularity_explicitness.py``.

Ridgeway & Mozer, "Learning Deep Disentangled Embeddings With the F-Statistic Loss",
NeurIPS 2018, Section 3.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
from threadpoolctl import threadpool_limits

from disentkit._random import SeedLike
from disentkit._validation import (
    DisentkitWarning,
    check_choice,
    check_n_jobs,
    check_positive_int,
    prepare,
)
from disentkit.metrics._base import MetricResult, ScoreInfo, metric_id, register_metric
from disentkit.metrics._logistic import fit_logistic
from disentkit.metrics._mi import MutualInfo
from disentkit.metrics._mi_cache import MICache, resolve_mi
from disentkit.metrics._split import split_train_test
from disentkit.metrics._threads import map_costliest_first

DEAD_LATENTS = ("count", "drop")
ROWS = ("train", "all")
CLASSIFIERS = ("lbfgs", "liblinear-ovr")


# ----------------------------------------------------------------------------------------
# Modularity


@dataclass(frozen=True, kw_only=True)
class ModularityResult(MetricResult):
    """Modularity score and diagnostics.

    Attributes:
        score: mean over latents of the per-latent modularity.
        per_latent: ``(D,)`` modularity of each latent (0 for a latent with no mutual
            information with any factor).
        mutual_info: ``(D, K)`` MI matrix in nats.
        dead_latents: indices of latents with zero mutual information with every factor.
    """

    SCORES = ("score",)

    score: float
    per_latent: np.ndarray
    mutual_info: np.ndarray
    dead_latents: tuple[int, ...] = ()


def modularity_from_mi(matrix: np.ndarray) -> np.ndarray:
    """Per-latent modularity of an MI matrix ``(D, K)``: ``(D,)``.

    ``1 − Σ_{k≠k*} m_dk² / (m_dk*² (K − 1))`` with ``k*`` the factor of largest MI; 0 for
    a latent whose MI is zero everywhere; 1 for an informative latent when ``K == 1``.

    Example:
        >>> modularity_from_mi(np.array([[1.0, 0.0], [1.0, 1.0], [0.0, 0.0]])).tolist()
        [1.0, 0.0, 0.0]
    """
    sq = np.square(matrix)  # (D, K)
    top = sq.max(axis=1)
    rest = sq.sum(axis=1) - top
    k = matrix.shape[1]
    with np.errstate(divide="ignore", invalid="ignore"):
        delta = rest / (top * (k - 1)) if k > 1 else np.zeros_like(top)
    return np.where(top > 0, 1.0 - delta, 0.0)


@register_metric(
    "modularity",
    scores=(ScoreInfo("score", zero_when_independent=False, label="Modularity"),),
    index_options={"estimator": "discrete"},
    reference="Ridgeway & Mozer 2018; disentanglement_lib "
    "evaluation/metrics/modularity_explicitness.py",
)
def modularity(
    latents: object,
    factors: object,
    *,
    estimator: str = "histogram",
    n_bins: int = 20,
    n_neighbors: int = 3,
    dead_latents: str = "count",
    rows: str = "train",
    train_fraction: float = 0.8,
    shuffle: bool = False,
    seed: SeedLike = None,
    mi: MutualInfo | MICache | None = None,
) -> ModularityResult:
    """Modularity: does each latent depend on at most one factor?

    Per latent ``d``, with ``m_dk`` the mutual information with factor ``k`` and ``k*``
    the factor of largest MI, ``1 − Σ_{k≠k*} m_dk² / (m_dk*² (K − 1))`` (the squared
    deviation from an ideal template that depends on ``k*`` only); the score is the mean
    over latents.

    Estimator choices (reference defaults from disentanglement_lib): latents discretised
    into ``n_bins=20`` equal-width bins (edges from the rows scored), plug-in MI in nats,
    computed on the training rows only, as dlib computes it on the sample its explicitness
    trains on: ``rows="train"`` takes the train split of the other split metrics (the
    first ``ceil(train_fraction · n)`` rows, or a permutation with ``seed`` first when
    ``shuffle=True``). ``rows="all"`` uses every row (disentkit's earlier default; its own
    metric ID, ``modularity/hist20@1``, against ``modularity/hist20-train80@1``). The MI is
    not normalised by factor entropy.

    Documented behaviour (kept from the reference, not fixed silently):

    - A latent with zero MI with every factor (e.g. constant) scores 0 and, with
      ``dead_latents="count"`` (reference), still counts in the mean, so unused latents
      pull the score down; ``"drop"`` averages over informative latents only (0 when there
      are none).
    - The null level is not 0: latents independent of the factors still get a dominant
      factor through the finite-sample bias of the MI estimate (which grows with a
      factor's number of classes) and score from about 0.2 (factors of equal sizes) to
      about 0.7 (unequal sizes such as dSprites' 3, 6, 40, 32, 32) at 10,000 rows.
      Compare against a random baseline.
    - With a single factor every informative latent is trivially modular (1; dlib
      divides by zero).

    Args:
        latents: float ``(n_samples, n_latents)``.
        factors: integer ``(n_samples, n_factors)``.
        estimator: ``"histogram"`` (reference), ``"discrete"`` or ``"knn"``.
        n_bins: histogram bins per latent.
        n_neighbors: k of the kNN estimator.
        dead_latents: ``"count"`` (reference: score 0, counted) or ``"drop"``.
        rows: ``"train"`` (reference: the train split) or ``"all"``.
        train_fraction: fraction of rows in the train split (``rows="train"``).
        shuffle: permute rows with ``seed`` before splitting (``rows="train"``).
        seed: seeds the permutation when ``shuffle=True`` and the kNN estimator's jitter.
        mi: a precomputed :class:`MutualInfo` for the rows scored (the train rows unless
            ``rows="all"``), or an ``MICache`` (used with ``rows="all"``; the train rows'
            matrix is computed here, since the cache holds matrices of all rows).

    Returns:
        :class:`ModularityResult`; ``score`` in ``[0, 1]``.

    Example:
        >>> rng = np.random.default_rng(0)
        >>> s = rng.integers(0, 4, size=(2000, 2))
        >>> round(modularity(s + 0.1 * rng.normal(size=s.shape), s).score, 3)
        1.0
    """
    p = prepare(latents, factors, metric="modularity", keep_float32=estimator == "histogram")
    dead_latents = check_choice(dead_latents, "dead_latents", DEAD_LATENTS)
    rows = check_choice(rows, "rows", ROWS)
    if not isinstance(shuffle, bool | np.bool_):
        raise TypeError(f"shuffle must be True or False; received {shuffle!r}")
    z, s = p.latents, p.factors
    split_options: dict[str, object] = {"rows": rows}
    rows_tag = ""
    if rows == "train":
        split = split_train_test(
            p.n_samples,
            train_fraction=train_fraction,
            shuffle=bool(shuffle),
            seed=seed,
            metric="modularity",
        )
        z, s = z[split.train], s[split.train]  # (n_train, D), (n_train, K)
        split_options.update(split.describe())
        if shuffle:
            split_options["seed"] = (
                seed if seed is None or isinstance(seed, int | np.integer) else "generator"
            )
        rows_tag = f"-train{round(100 * split.train_fraction)}"
        if isinstance(mi, MICache):
            mi = None  # the cache holds matrices of all rows
        elif isinstance(mi, MutualInfo) and mi.n_samples != split.train.size:
            raise ValueError(
                f"precomputed mi was estimated on {mi.n_samples} rows; rows='train' scores "
                f"the {split.train.size} train rows. Estimate it on those rows, or pass "
                "rows='all'"
            )
    info = resolve_mi(
        mi,
        z,
        s,
        p.factor_sizes,
        estimator=estimator,
        n_bins=n_bins,
        n_neighbors=n_neighbors,
        seed=seed,
    )
    m = info.matrix  # (D, K)
    per_latent = modularity_from_mi(m)
    dead = np.flatnonzero(m.max(axis=1) <= 0)
    alive = np.ones(m.shape[0], dtype=bool)
    if dead_latents == "drop":
        alive[dead] = False
    score = float(np.mean(per_latent[alive])) if alive.any() else 0.0
    variant = info.variant + rows_tag + ("-dropdead" if dead_latents == "drop" else "")
    return ModularityResult(
        metric_id=metric_id("modularity", variant),
        options={
            "estimator": info.estimator,
            **info.options,
            "dead_latents": dead_latents,
            **split_options,
        },
        n_samples=p.n_samples,
        skipped_factors=p.skipped_factors,
        score=score,
        per_latent=per_latent,
        mutual_info=m,
        dead_latents=tuple(int(d) for d in dead),
    )


# ----------------------------------------------------------------------------------------
# Explicitness


@dataclass(frozen=True, kw_only=True)
class ExplicitnessResult(MetricResult):
    """Explicitness scores and diagnostics.

    Attributes:
        train: mean over factors of the mean per-class ROC-AUC on train rows.
        test: the same on test rows.
        per_factor_train: ``(K,)`` mean per-class AUC of each factor on train rows.
        per_factor_test: ``(K,)`` the same on test rows.
        skipped_classes_train: per factor, classes whose AUC is undefined on the train
            rows (absent, or every row of that class) and left out of the mean.
        skipped_classes_test: the same on the test rows.
        not_converged: indices of factors whose classifier stopped at ``max_iter``.
        constant_latents: indices of latents constant on the train rows (fed as zeros).
    """

    SCORES = ("train", "test")
    PER_FACTOR = {"train": "per_factor_train", "test": "per_factor_test"}  # noqa: RUF012

    train: float
    test: float
    per_factor_train: np.ndarray
    per_factor_test: np.ndarray
    skipped_classes_train: tuple[int, ...] = ()
    skipped_classes_test: tuple[int, ...] = ()
    not_converged: tuple[int, ...] = ()
    constant_latents: tuple[int, ...] = ()


def _standardise(train: np.ndarray, test: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Standardise with the train rows' mean and std (ddof 0, as dlib's ``normalize_data``);
    a column constant on the train rows becomes 0 in both."""
    mean = train.mean(axis=0)
    std = train.std(axis=0)
    constant = std == 0
    scale = np.where(constant, 1.0, std)
    tr = np.where(constant, 0.0, (train - mean) / scale)
    te = np.where(constant, 0.0, (test - mean) / scale)
    return tr, te, np.flatnonzero(constant)


def class_aucs(y: np.ndarray, proba: np.ndarray) -> np.ndarray:
    """One-vs-rest ROC-AUC of every class at once: ``(C,)``, NaN where undefined.

    Class ``c``'s AUC is the Mann–Whitney statistic of ``proba[:, c]`` between rows of
    class ``c`` and the others, ties counted one half (equal to
    ``sklearn.metrics.roc_auc_score(y == c, proba[:, c])``); undefined (NaN) when the class
    is absent or covers every row.

    Args:
        y: ``(n,)`` class indices in ``[0, C)``.
        proba: ``(n, C)`` scores.

    Example:
        >>> class_aucs(np.array([0, 0, 1]), np.array([[0.9, 0.1], [0.4, 0.6], [0.5, 0.5]]))
        array([0.5, 0.5])
    """
    n, c = proba.shape
    ranks = np.empty((n, c))  # (n, C): 1-based ranks within each column, ties averaged
    for j in range(c):
        order = np.argsort(proba[:, j], kind="stable")
        s = proba[order, j]
        new = np.ones(n, dtype=bool)
        new[1:] = s[1:] != s[:-1]  # first row of each run of equal scores
        starts = np.flatnonzero(new)
        ends = np.append(starts[1:], n)
        ranks[order, j] = ((starts + ends + 1) / 2)[np.cumsum(new) - 1]
    onehot = y[:, None] == np.arange(c)[None, :]  # (n, C)
    n_pos = onehot.sum(axis=0)
    n_neg = n - n_pos
    rank_sum = np.where(onehot, ranks, 0.0).sum(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        auc = (rank_sum - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)
    return np.where((n_pos > 0) & (n_neg > 0), auc, np.nan)


def _explicitness_factor(
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_test: np.ndarray,
    y_test: np.ndarray,
    n_classes: int,
    classifier: str,
    c: float,
    max_iter: int,
) -> tuple[np.ndarray, np.ndarray, bool]:
    """Fit one classifier for one factor; per-class AUCs on train and test rows, and
    whether the solver stopped before ``max_iter`` (read from the iteration count: this
    runs in threads, where catching warnings is not safe)."""
    if classifier == "lbfgs":
        clf: Any = fit_logistic(x_train, y_train, c=c, max_iter=max_iter)
        n_iter, cols = clf.n_iter, clf.classes
    else:
        from sklearn.linear_model import LogisticRegression  # lazily: a heavy import
        from sklearn.multiclass import OneVsRestClassifier

        clf = OneVsRestClassifier(
            LogisticRegression(C=c, max_iter=max_iter, solver="liblinear")
        ).fit(x_train, y_train)
        n_iter = max(int(np.max(e.n_iter_)) for e in clf.estimators_)
        cols = clf.classes_
    converged = n_iter < max_iter
    # Columns of predict_proba follow the classes seen in training; classes never seen
    # get probability 0 everywhere. Classes are encoded from all rows, so the columns
    # stay aligned with the labels of both splits.
    out = []
    for x, y in ((x_train, y_train), (x_test, y_test)):
        proba = np.zeros((x.shape[0], n_classes))
        proba[:, cols] = clf.predict_proba(x)
        auc = class_aucs(y, proba)
        unseen = np.setdiff1d(np.arange(n_classes), cols)
        auc[unseen] = np.nan  # no classifier output for a class absent from training
        out.append(auc)
    return out[0], out[1], converged


@register_metric(
    "explicitness",
    scores=(ScoreInfo("train"), ScoreInfo("test")),
    reference="Ridgeway & Mozer 2018; disentanglement_lib "
    "evaluation/metrics/modularity_explicitness.py",
)
def explicitness(
    latents: object,
    factors: object,
    *,
    classifier: str = "lbfgs",
    c: float = 1.0,
    max_iter: int = 100,
    train_fraction: float = 0.8,
    shuffle: bool = False,
    seed: SeedLike = None,
    n_jobs: int = 1,
) -> ExplicitnessResult:
    """Explicitness: can a linear classifier on all latents recover each factor?

    Per factor, a logistic regression predicts the class from the standardised latents;
    its class probabilities are scored by the one-vs-rest ROC-AUC of each class, averaged
    over classes; the score is the mean over factors, on train rows and on test rows.

    Estimator choices (reference defaults from disentanglement_lib's code run with current
    scikit-learn):

    - latents standardised with the train rows' mean and std (ddof 0);
    - ``classifier="lbfgs"``: ``LogisticRegression()`` defaults — multinomial, L2,
      ``C=1``, lbfgs, ``max_iter=100`` (its objective and solver settings, implemented in
      :mod:`disentkit.metrics._logistic` and tested equal to scikit-learn's to solver
      precision). dlib's published 2019 study ran scikit-learn
      < 0.22, whose defaults were liblinear one-vs-rest with a regularised intercept:
      ``classifier="liblinear-ovr"`` reproduces that (probabilities of the binary models
      normalised to sum to one, as then);
    - rows split with ``train_fraction`` (first 80 % train, rest test, as dlib;
      ``shuffle=True`` permutes with ``seed`` first).

    Fixes of the reference's quirks: a latent constant on the train rows (std 0, where
    dlib divides by zero) is fed as zeros, i.e. carries no information; classes are
    encoded from all rows, so a class absent from one split cannot misalign the
    probability columns (dlib re-encodes the test labels alone). A class whose AUC is
    undefined on a split (absent from it, covering all of it, or never seen in training)
    is left out of that factor's mean and recorded in ``skipped_classes_train/test``.
    Fits stopped at ``max_iter`` are recorded in ``not_converged`` and reported with a
    :class:`DisentkitWarning`. The null level is 0.5 (chance AUC), not 0.

    Args:
        latents: float ``(n_samples, n_latents)``.
        factors: integer ``(n_samples, n_factors)``.
        classifier: ``"lbfgs"`` (reference) or ``"liblinear-ovr"`` (pre-0.22 defaults).
        c: inverse L2 regularisation strength.
        max_iter: solver iteration limit.
        train_fraction: fraction of rows used to fit.
        shuffle: permute rows with ``seed`` before splitting.
        seed: seeds the permutation when ``shuffle=True``.
        n_jobs: threads fitting factors side by side (joblib's convention: -1 is every
            core); the result does not depend on it.

    Returns:
        :class:`ExplicitnessResult`; both scores in ``[0, 1]``.

    Raises:
        ValueError: a factor has a single class among the training rows (use
            ``shuffle=True`` when rows are ordered by factor), or a bad option.

    Example:
        >>> rng = np.random.default_rng(0)
        >>> s = rng.integers(0, 3, size=(600, 2))
        >>> r = explicitness(s + 0.1 * rng.normal(size=s.shape), s)
        >>> round(r.test, 3)
        1.0
    """
    p = prepare(latents, factors, metric="explicitness")
    classifier = check_choice(classifier, "classifier", CLASSIFIERS)
    if isinstance(c, bool) or not isinstance(c, int | float | np.floating) or not c > 0:
        raise ValueError(f"c must be a positive number; received {c!r}")
    max_iter = check_positive_int(max_iter, "max_iter")
    n_jobs = check_n_jobs(n_jobs)
    split = split_train_test(
        p.n_samples,
        train_fraction=train_fraction,
        shuffle=shuffle,
        seed=seed,
        metric="explicitness",
    )
    y_tr, y_te = p.factors[split.train], p.factors[split.test]
    for part, y in (("training", y_tr), ("test", y_te)):
        single = [k for k in range(y.shape[1]) if np.unique(y[:, k]).size < 2]
        if single:
            raise ValueError(
                f"explicitness: factor(s) {[p.kept_factors[k] for k in single]} take a "
                f"single value among the {y.shape[0]} {part} rows, so no classifier can be "
                "fitted or scored; rows may be ordered by factor: pass shuffle=True"
            )
    x_tr, x_te, constant = _standardise(p.latents[split.train], p.latents[split.test])
    # Factors side by side in threads, one BLAS thread each (these problems are small; BLAS
    # threads would only contend). liblinear's own ConvergenceWarning is silenced here,
    # not in the threads (warning filters are process-wide); non-convergence is read from
    # the iteration counts and reported once below.
    with threadpool_limits(limits=1, user_api="blas"), warnings.catch_warnings():
        if classifier != "lbfgs":
            from sklearn.exceptions import ConvergenceWarning  # lazily: a heavy import

            warnings.simplefilter("ignore", ConvergenceWarning)
        out = map_costliest_first(
            lambda k: _explicitness_factor(
                x_tr,
                y_tr[:, k],
                x_te,
                y_te[:, k],
                int(p.factor_sizes[k]),
                classifier,
                float(c),
                max_iter,
            ),
            range(y_tr.shape[1]),
            costs=p.factor_sizes,  # parameters grow with the number of classes
            n_jobs=n_jobs,
        )
    for part, col in (("training", 0), ("test", 1)):
        undefined = [p.kept_factors[k] for k, o in enumerate(out) if np.isnan(o[col]).all()]
        if undefined:
            raise ValueError(
                f"explicitness: no class of factor(s) {undefined} has a defined ROC-AUC on "
                f"the {part} rows (every class there is missing from the training rows); "
                "pass shuffle=True or use more rows"
            )
    per_train = np.array([np.nanmean(a) for a, _, _ in out])
    per_test = np.array([np.nanmean(b) for _, b, _ in out])
    skipped_train = tuple(int(np.isnan(a).sum()) for a, _, _ in out)
    skipped_test = tuple(int(np.isnan(b).sum()) for _, b, _ in out)
    not_converged = tuple(k for k, (_, _, ok) in enumerate(out) if not ok)
    if not_converged:
        warnings.warn(
            f"explicitness: the classifier of factor(s) {list(not_converged)} stopped at "
            f"max_iter={max_iter} before converging; the scores use it as it is",
            DisentkitWarning,
            stacklevel=2,
        )
    variant = "logreg-lbfgs" if classifier == "lbfgs" else "logreg-liblinear-ovr"
    if c != 1.0 or max_iter != 100:
        variant += f"-C{c:g}-it{max_iter}"
    return ExplicitnessResult(
        metric_id=metric_id("explicitness", variant),
        options={
            "classifier": classifier,
            "c": float(c),
            "max_iter": max_iter,
            **split.describe(),
            "seed": seed if seed is None or isinstance(seed, int | np.integer) else "generator",
        },
        n_samples=p.n_samples,
        skipped_factors=p.skipped_factors,
        train=float(np.mean(per_train)),
        test=float(np.mean(per_test)),
        per_factor_train=per_train,
        per_factor_test=per_test,
        skipped_classes_train=skipped_train,
        skipped_classes_test=skipped_test,
        not_converged=not_converged,
        constant_latents=tuple(int(d) for d in constant),
    )
