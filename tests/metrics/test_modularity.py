"""Modularity and Explicitness: hand-built MI matrices, per-pair scikit-learn loops,
the reference quirks and their fixes, errors."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import mutual_info_score, roc_auc_score
from sklearn.preprocessing import StandardScaler

from disentkit import DisentkitWarning
from disentkit.metrics import MutualInfo, mutual_info_matrix
from disentkit.metrics._mi_cache import MICache
from disentkit.metrics.modularity import (
    class_aucs,
    explicitness,
    modularity,
    modularity_from_mi,
)
from tests.conftest import make_factors


def _quiet(fn, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        return fn(*args, **kwargs)


@pytest.fixture(scope="module")
def mixed() -> tuple[np.ndarray, np.ndarray]:
    s = make_factors(600, (2, 3, 5), seed=31)
    rng = np.random.default_rng(32)
    z = rng.standard_normal((600, 4))
    z[:, :3] += s * np.array([1.0, 0.7, 0.5])
    z[:, 3] += 0.4 * s[:, 1] - 0.3 * s[:, 2]
    return z, s


# -- modularity ----------------------------------------------------------------------------


def test_modularity_from_hand_built_matrix() -> None:
    m = np.array(
        [
            [3.0, 1.0, 0.0],  # 1 − 1² / (3² · 2)
            [2.0, 2.0, 2.0],  # uniform: 1 − 8 / (4 · 2) = 0
            [0.0, 0.0, 0.5],  # one factor only: 1
            [0.0, 0.0, 0.0],  # dead: 0
        ]
    )
    np.testing.assert_allclose(modularity_from_mi(m), [1 - 1 / 18, 0.0, 1.0, 0.0])
    np.testing.assert_array_equal(modularity_from_mi(np.array([[0.4], [0.0]])), [1.0, 0.0])


def _dlib_discretise(z: np.ndarray, bins: int = 20) -> np.ndarray:
    out = np.zeros(z.shape, dtype=int)
    for d in range(z.shape[1]):
        out[:, d] = np.digitize(z[:, d], np.histogram(z[:, d], bins)[1][:-1])
    return out


def test_modularity_matches_per_pair_sklearn_computation(mixed) -> None:
    z, s = mixed
    zz = np.concatenate([z, np.zeros((600, 1))], axis=1)  # plus a dead latent
    codes = _dlib_discretise(zz)  # every row: rows="all"
    m = np.array([[mutual_info_score(codes[:, d], s[:, k]) for k in range(3)] for d in range(5)])
    per = np.zeros(5)
    for d in range(5):  # the definition, latent by latent
        sq = m[d] ** 2
        top = sq.max()
        per[d] = 0.0 if top == 0 else 1 - (sq.sum() - top) / (top * (3 - 1))
    r = _quiet(modularity, zz, s, rows="all")
    np.testing.assert_allclose(r.mutual_info, m, atol=1e-12)
    np.testing.assert_allclose(r.per_latent, per, atol=1e-12)
    assert r.score == pytest.approx(per.mean(), abs=1e-12)
    assert r.dead_latents == (4,)
    assert r.metric_id == "modularity/hist20@1"
    assert r.options["rows"] == "all"


def _dlib_modularity(mus_train: np.ndarray, ys_train: np.ndarray) -> float:
    """disentanglement_lib's modularity of ``compute_modularity_explicitness``, written out
    in its ``(n_codes, n_points)`` layout: histogram discretiser on the training sample,
    ``sklearn.metrics.mutual_info_score`` per pair, then ``modularity(mutual_information)``."""
    mus, ys = mus_train.T, ys_train.T  # (D, n), (K, n)
    discretized = np.zeros_like(mus)
    for i in range(mus.shape[0]):
        discretized[i, :] = np.digitize(mus[i, :], np.histogram(mus[i, :], 20)[1][:-1])
    mi = np.zeros([mus.shape[0], ys.shape[0]])
    for i in range(mus.shape[0]):
        for j in range(ys.shape[0]):
            mi[i, j] = mutual_info_score(ys[j, :], discretized[i, :])
    squared_mi = np.square(mi)
    max_squared_mi = np.max(squared_mi, axis=1)
    numerator = np.sum(squared_mi, axis=1) - max_squared_mi
    with np.errstate(divide="ignore", invalid="ignore"):
        delta = numerator / (max_squared_mi * (squared_mi.shape[1] - 1.0))
    score = 1.0 - delta
    score[max_squared_mi == 0.0] = 0.0
    return float(np.mean(score))


@pytest.mark.parametrize(("shuffle", "train_fraction"), [(False, 0.8), (True, 0.8), (False, 0.6)])
def test_modularity_agrees_with_dlib_on_the_train_rows(shuffle, train_fraction) -> None:
    # Deterministic: factors cycle through every combination, latents are fixed functions
    # of them (one clean, one mixed, one ramp over row order, one dead), so the first 80 %
    # of rows differ from all rows in what the ramp and the mix carry.
    n = 500
    idx = np.arange(n)
    s = np.column_stack([idx % 5, (idx // 5) % 4, (idx // 20) % 3])
    z = np.column_stack(
        [
            s[:, 0] + 0.01 * np.sin(idx),
            s[:, 1] + 0.5 * s[:, 2] + 0.1 * np.cos(3 * idx),
            idx / n + 0.3 * s[:, 2],
            np.zeros(n),
        ]
    )
    r = _quiet(modularity, z, s, shuffle=shuffle, train_fraction=train_fraction, seed=7)
    n_train = int(np.ceil(n * train_fraction))
    order = np.random.default_rng(7).permutation(n) if shuffle else idx
    train = order[:n_train]
    want = _dlib_modularity(z[train], s[train])
    assert r.score == pytest.approx(want, abs=1e-12)
    assert r.options["n_train"] == n_train and r.options["shuffle"] == shuffle
    assert r.metric_id == f"modularity/hist20-train{round(100 * train_fraction)}@1"
    # All rows is a different number under a different ID.
    everything = _quiet(modularity, z, s, rows="all")
    assert everything.score == pytest.approx(_dlib_modularity(z, s), abs=1e-12)
    assert abs(everything.score - r.score) > 1e-4
    assert everything.metric_id != r.metric_id


def test_dead_latents_count_by_default_and_can_be_dropped(mixed) -> None:
    z, s = mixed
    zz = np.concatenate([z, np.full((600, 2), 1.5)], axis=1)
    counted = _quiet(modularity, zz, s)
    dropped = _quiet(modularity, zz, s, dead_latents="drop")
    alive = _quiet(modularity, z, s)
    assert counted.score == pytest.approx(alive.score * 4 / 6, abs=1e-12)
    assert dropped.score == pytest.approx(alive.score, abs=1e-12)
    assert dropped.metric_id == "modularity/hist20-train80-dropdead@1"
    assert dropped.options["dead_latents"] == "drop"
    all_dead = _quiet(modularity, np.zeros((600, 2)), s, dead_latents="drop")
    assert all_dead.score == 0.0


def test_perfect_code_is_one_and_independent_latents_are_not_zero() -> None:
    s = make_factors(5000, (3, 6, 40), seed=33)
    rng = np.random.default_rng(34)
    perfect = _quiet(modularity, s + 0.05 * rng.standard_normal(s.shape), s)
    assert perfect.score > 0.99
    # Documented null level: finite-sample MI bias grows with a factor's classes, so an
    # independent latent still has a dominant factor and scores well above 0.
    independent = _quiet(modularity, rng.standard_normal((5000, 4)), s)
    assert independent.score > 0.5
    assert np.all(np.argmax(independent.mutual_info, axis=1) == 2)


def test_single_factor_scores_informative_latents_one() -> None:
    s = make_factors(500, (4,), seed=35)
    z = np.concatenate([s + 0.1, np.zeros((500, 1))], axis=1)
    np.testing.assert_array_equal(_quiet(modularity, z, s).per_latent, [1.0, 0.0])


def test_precomputed_mi_and_cache_are_used(mixed) -> None:
    z, s = mixed
    ref = _quiet(modularity, z, s, rows="all")
    mi = mutual_info_matrix(z, s)
    assert _quiet(modularity, z, s, mi=mi, rows="all").score == ref.score
    cache = MICache()
    assert _quiet(modularity, z, s, mi=cache, rows="all").score == ref.score
    assert len(cache) == 1
    # A hand-built matrix is taken as given.
    fake = MutualInfo(
        matrix=np.tile([[1.0, 0.0, 0.0]], (4, 1)),
        factor_entropy=np.ones(3),
        estimator="histogram",
        options={"n_bins": 20},
        n_samples=480,
    )
    assert _quiet(modularity, z, s, mi=fake).score == 1.0
    with pytest.raises(ValueError, match="precomputed mi"):
        modularity(z, s, mi=mi, n_bins=10, rows="all")


def test_train_rows_do_not_take_all_rows_matrices(mixed) -> None:
    z, s = mixed
    train = _quiet(modularity, z, s)
    on_train = mutual_info_matrix(z[:480], s[:480])
    assert _quiet(modularity, z, s, mi=on_train).score == train.score
    cache = MICache()  # a cache holds all rows' matrices: rows="train" computes its own
    assert _quiet(modularity, z, s, mi=cache).score == train.score
    assert len(cache) == 0
    with pytest.raises(ValueError, match="estimated on 600 rows; rows='train' scores the 480"):
        modularity(z, s, mi=mutual_info_matrix(z, s))


def test_modularity_estimators_are_named(mixed) -> None:
    z, s = mixed
    assert _quiet(modularity, z, s, n_bins=10).metric_id == "modularity/hist10-train80@1"
    disc = _quiet(modularity, np.round(z), s, estimator="discrete", rows="all")
    assert disc.metric_id == "modularity/discrete@1"


def test_modularity_bad_options(mixed) -> None:
    z, s = mixed
    with pytest.raises(ValueError, match="dead_latents must be one of"):
        modularity(z, s, dead_latents="ignore")
    with pytest.raises(ValueError, match="estimator must be one of"):
        modularity(z, s, estimator="kde")
    with pytest.raises(ValueError, match="rows must be one of"):
        modularity(z, s, rows="test")
    with pytest.raises(TypeError, match="shuffle must be True or False"):
        modularity(z, s, shuffle="yes")
    with pytest.raises(ValueError, match="train_fraction"):
        modularity(z, s, train_fraction=1.5)


# -- explicitness --------------------------------------------------------------------------


def _classic_explicitness(z, s, train, test, **lr):
    """The straightforward loop: scaler on train, LogisticRegression, per-class AUC."""
    scaler = StandardScaler().fit(z[train])
    xtr, xte = scaler.transform(z[train]), scaler.transform(z[test])
    res_tr, res_te = [], []
    for k in range(s.shape[1]):
        clf = LogisticRegression(**lr).fit(xtr, s[train, k])
        for x, y, out in ((xtr, s[train, k], res_tr), (xte, s[test, k], res_te)):
            proba = clf.predict_proba(x)
            aucs = [
                roc_auc_score(y == c, proba[:, j])
                for j, c in enumerate(clf.classes_)
                if 0 < np.sum(y == c) < y.size
            ]
            out.append(np.mean(aucs))
    return np.array(res_tr), np.array(res_te)


def test_class_aucs_match_sklearn() -> None:
    rng = np.random.default_rng(40)
    y = rng.integers(0, 4, 200)
    proba = np.round(rng.random((200, 4)), 1)  # many ties
    got = class_aucs(y, proba)
    want = [roc_auc_score(y == c, proba[:, c]) for c in range(4)]
    np.testing.assert_allclose(got, want, atol=1e-12)
    assert np.isnan(class_aucs(np.zeros(5, dtype=int), np.ones((5, 2)))).all()


def test_explicitness_matches_sklearn_loop(mixed) -> None:
    z, s = mixed
    r = _quiet(explicitness, z, s)
    idx = np.arange(600)
    tr, te = _classic_explicitness(z, s, idx[:480], idx[480:])
    np.testing.assert_allclose(r.per_factor_train, tr, atol=1e-10)
    np.testing.assert_allclose(r.per_factor_test, te, atol=1e-10)
    assert r.test == pytest.approx(te.mean(), abs=1e-10)
    assert r.metric_id == "explicitness/logreg-lbfgs@1"
    assert r.options["n_train"] == 480


def test_explicitness_shuffle_and_parallel(mixed) -> None:
    z, s = mixed
    r = _quiet(explicitness, z, s, shuffle=True, seed=3, train_fraction=0.6)
    order = np.random.default_rng(3).permutation(600)
    tr, te = _classic_explicitness(z, s, order[:360], order[360:])
    np.testing.assert_allclose(r.per_factor_train, tr, atol=1e-10)
    np.testing.assert_allclose(r.per_factor_test, te, atol=1e-10)
    par = _quiet(explicitness, z, s, shuffle=True, seed=3, train_fraction=0.6, n_jobs=2)
    assert par.scores() == r.scores()


def test_liblinear_ovr_matches_per_class_binary_fits(mixed) -> None:
    # Pre-0.22 defaults: one binary liblinear logistic regression per class, probabilities
    # normalised across classes.
    z, s = mixed
    r = _quiet(explicitness, z, s, classifier="liblinear-ovr")
    scaler = StandardScaler().fit(z[:480])
    xte = scaler.transform(z[480:])
    per = []
    for k in range(3):
        classes = np.unique(s[:480, k])
        if classes.size == 2:
            p1 = (
                LogisticRegression(solver="liblinear")
                .fit(scaler.transform(z[:480]), s[:480, k])
                .predict_proba(xte)
            )
        else:
            cols = [
                LogisticRegression(solver="liblinear")
                .fit(scaler.transform(z[:480]), s[:480, k] == c)
                .predict_proba(xte)[:, 1]
                for c in classes
            ]
            p1 = np.stack(cols, axis=1)
            p1 /= p1.sum(axis=1, keepdims=True)
        per.append(
            np.mean([roc_auc_score(s[480:, k] == c, p1[:, j]) for j, c in enumerate(classes)])
        )
    np.testing.assert_allclose(r.per_factor_test, per, atol=1e-10)
    assert r.metric_id == "explicitness/logreg-liblinear-ovr@1"


def test_constant_latent_is_fed_as_zeros(mixed) -> None:
    z, s = mixed
    zz = np.concatenate([z[:, :2], np.full((600, 1), 7.0), z[:, 2:]], axis=1)
    with_dead = _quiet(explicitness, zz, s)
    without = _quiet(explicitness, z, s)
    assert with_dead.constant_latents == (2,)
    assert with_dead.scores() == pytest.approx(without.scores(), abs=1e-9)


def test_class_missing_from_test_rows_is_skipped_and_recorded(mixed) -> None:
    z, s = mixed
    s2 = s.copy()
    s2[480:, 2] = np.where(s2[480:, 2] == 4, 3, s2[480:, 2])  # class 4 only in train rows
    r = _quiet(explicitness, z, s2)
    assert r.skipped_classes_test == (0, 0, 1)
    assert r.skipped_classes_train == (0, 0, 0)
    idx = np.arange(600)
    tr, te = _classic_explicitness(z, s2, idx[:480], idx[480:])
    np.testing.assert_allclose(r.per_factor_train, tr, atol=1e-10)
    np.testing.assert_allclose(r.per_factor_test, te, atol=1e-10)


def test_class_unseen_in_training_is_skipped_in_test(mixed) -> None:
    z, s = mixed
    s2 = s.copy()
    s2[:480, 2] = np.where(s2[:480, 2] == 4, 3, s2[:480, 2])  # class 4 only in test rows
    r = _quiet(explicitness, z, s2)
    assert r.skipped_classes_test == (0, 0, 1)
    assert np.isfinite(r.test)


def test_explicitness_levels() -> None:
    s = make_factors(1500, (3, 4), seed=41)
    rng = np.random.default_rng(42)
    perfect = _quiet(explicitness, s + 0.05 * rng.standard_normal(s.shape), s)
    assert perfect.test > 0.99
    independent = _quiet(explicitness, rng.standard_normal((1500, 3)), s)
    assert independent.test == pytest.approx(0.5, abs=0.05)  # chance AUC


def test_non_convergence_is_recorded_and_warned(mixed) -> None:
    z, s = mixed
    with pytest.warns(DisentkitWarning, match="max_iter=1"):
        r = explicitness(z, s, max_iter=1)
    assert r.not_converged
    assert r.metric_id == "explicitness/logreg-lbfgs-C1-it1@1"


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"classifier": "svm"}, "classifier must be one of"),
        ({"c": 0}, "c must be a positive number"),
        ({"max_iter": 0}, "max_iter must be an integer"),
        ({"train_fraction": 0.0}, "train_fraction must be in"),
        ({"n_jobs": 0}, "n_jobs must be a non-zero integer"),
    ],
)
def test_explicitness_bad_options(mixed, kwargs, match) -> None:
    z, s = mixed
    with pytest.raises(ValueError, match=match):
        explicitness(z, s, **kwargs)


def test_explicitness_rows_ordered_by_factor_need_shuffle() -> None:
    s = np.repeat(np.array([[0], [1]]), [90, 10], axis=0)
    z = s + 0.1 * np.random.default_rng(0).standard_normal(s.shape)
    with pytest.raises(ValueError, match="shuffle=True"):
        explicitness(z, s)
    assert _quiet(explicitness, z, s, shuffle=True, seed=0).test > 0.9
