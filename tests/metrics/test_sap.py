"""SAP: hand computations, a per-pair scikit-learn loop, the exact solver, quirks, errors."""

from __future__ import annotations

import importlib
import warnings

import numpy as np
import pytest
from sklearn.svm import LinearSVC

from disentkit import DisentkitWarning
from disentkit.metrics import METRICS
from disentkit.metrics.sap import SAPResult, _exact_svc_scores, sap
from tests.conftest import make_factors


def _classic_discrete(
    z: np.ndarray, s: np.ndarray, train: np.ndarray, test: np.ndarray, **svc
) -> np.ndarray:
    """dlib's loop: one LinearSVC per (latent, factor) pair, test accuracy."""
    m = np.zeros((z.shape[1], s.shape[1]))
    for d in range(z.shape[1]):
        for k in range(s.shape[1]):
            clf = LinearSVC(C=0.01, class_weight="balanced", **svc)
            clf.fit(z[train, d][:, None], s[train, k])
            m[d, k] = np.mean(clf.predict(z[test, d][:, None]) == s[test, k])
    return m


def _gap(m: np.ndarray) -> float:
    srt = np.sort(m, axis=0)
    return float(np.mean(srt[-1] - srt[-2]))


@pytest.fixture(scope="module")
def mixed() -> tuple[np.ndarray, np.ndarray]:
    s = make_factors(500, (2, 3, 6), seed=5)
    rng = np.random.default_rng(6)
    z = rng.standard_normal((500, 4))
    z[:, :3] += s * np.array([1.5, 0.8, 0.4])
    z[:, 3] += 0.5 * s[:, 0]
    return z, s


def _quiet(*args, **kwargs) -> SAPResult:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        return sap(*args, **kwargs)


# -- continuous variant ------------------------------------------------------------------


def test_continuous_matches_hand_computation() -> None:
    rng = np.random.default_rng(0)
    s = make_factors(300, (3, 5), seed=1)
    s[:, 1] = np.array([0, 2, 3, 7, 20])[s[:, 1]]  # raw values, not class codes, are used
    z = rng.standard_normal((300, 3)) + np.stack([s[:, 0], s[:, 1] ** 0.5, 0 * s[:, 0]], 1)
    r = _quiet(z, s, continuous_factors=True, rows="all")
    hand = _dlib_continuous(z, s)
    np.testing.assert_allclose(r.score_matrix, hand, rtol=1e-12)
    assert r.score == pytest.approx(_gap(hand), rel=1e-12)
    assert r.metric_id == "sap/continuous@1"
    assert r.options["continuous_factors"] is True


def _dlib_continuous(z: np.ndarray, s: np.ndarray) -> np.ndarray:
    """dlib's continuous score matrix, pair by pair with ``np.cov``."""
    hand = np.empty((z.shape[1], s.shape[1]))
    for d in range(z.shape[1]):
        for k in range(s.shape[1]):
            c = np.cov(z[:, d], s[:, k].astype(float))
            hand[d, k] = c[0, 1] ** 2 / (c[0, 0] * c[1, 1]) if c[0, 0] > 1e-12 else 0.0
    return hand


@pytest.mark.parametrize("shuffle", [False, True])
def test_continuous_reads_the_train_rows_as_the_reference(shuffle: bool) -> None:
    # dlib scores continuous factors on its training sample only: the train split here.
    n = 400
    idx = np.arange(n)
    s = np.column_stack([idx % 4, (idx // 4) % 5])
    z = np.column_stack([s[:, 0] + idx / n, s[:, 1] * (idx < 320) + np.sin(idx)])
    r = _quiet(z, s, continuous_factors=True, shuffle=shuffle, seed=4)
    train = (np.random.default_rng(4).permutation(n) if shuffle else idx)[:320]
    hand = _dlib_continuous(z[train], s[train])
    np.testing.assert_allclose(r.score_matrix, hand, rtol=1e-12)
    assert r.score == pytest.approx(_gap(hand), rel=1e-12)
    assert r.metric_id == "sap/continuous-train80@1"
    assert r.options["rows"] == "train" and r.options["n_train"] == 320
    if not shuffle:  # the last 20 % of rows break the second latent's link
        everything = _quiet(z, s, continuous_factors=True, rows="all")
        assert abs(everything.score - r.score) > 1e-3


def test_rows_all_is_for_continuous_factors_only(mixed) -> None:
    z, s = mixed
    with pytest.raises(ValueError, match="rows must be 'train' for discrete factors"):
        sap(z, s, rows="all")
    with pytest.raises(ValueError, match="rows must be one of"):
        sap(z, s, continuous_factors=True, rows="test")


def test_continuous_perfect_code_scores_near_one() -> None:
    s = make_factors(2000, (4, 10, 40), seed=2)
    z = s + 0.05 * np.random.default_rng(3).standard_normal(s.shape)
    assert _quiet(z, s, continuous_factors=True).score > 0.99


# -- discrete variant: the reference loop ------------------------------------------------


def test_discrete_matches_per_pair_sklearn_loop(mixed) -> None:
    z, s = mixed
    r = _quiet(z, s)
    idx = np.arange(500)
    classic = _classic_discrete(z, s, idx[:400], idx[400:])  # dlib: first 80 % train
    np.testing.assert_array_equal(r.score_matrix, classic)
    assert r.score == _gap(classic)
    assert r.metric_id == "sap/discrete-svc@1"
    assert r.options["n_train"] == 400 and r.options["n_test"] == 100


def test_shuffled_split_matches_loop_on_the_same_permutation(mixed) -> None:
    z, s = mixed
    r = _quiet(z, s, shuffle=True, seed=7, train_fraction=0.7)
    order = np.random.default_rng(7).permutation(500)
    classic = _classic_discrete(z, s, order[:350], order[350:])
    np.testing.assert_array_equal(r.score_matrix, classic)


def test_parallel_equals_serial(mixed) -> None:
    z, s = mixed
    a = _quiet(z, s, n_jobs=1)
    b = _quiet(z, s, n_jobs=2)
    np.testing.assert_array_equal(a.score_matrix, b.score_matrix)


def test_invariant_to_latent_order_and_class_labels(mixed) -> None:
    z, s = mixed
    ref = _quiet(z, s)
    perm = np.array([3, 1, 0, 2])
    np.testing.assert_array_equal(_quiet(z[:, perm], s).score_matrix, ref.score_matrix[perm])
    relabelled = s.copy()
    relabelled[:, 2] = 10 * (5 - s[:, 2]) - 3  # reversed order, other values
    relabelled[:, 0] = 1 - s[:, 0]  # binary: swapped positive class
    np.testing.assert_array_equal(_quiet(z, relabelled).score_matrix, ref.score_matrix)


# -- the exact solver (fast mode) --------------------------------------------------------


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_exact_solver_equals_fully_converged_linearsvc(seed: int) -> None:
    # The exact minimiser equals liblinear run to a tight tolerance, on continuous and on
    # discrete latents (ties), binary and multi-class factors.
    rng = np.random.default_rng(seed)
    s = make_factors(400, (2, 3, 7), seed=seed + 10)
    z = rng.standard_normal((400, 3)) + s * rng.uniform(0.2, 2.0, 3)
    if seed % 2:
        z = np.round(2 * z) / 2
    tight = _classic_discrete(
        z, s, np.arange(320), np.arange(320, 400), tol=1e-12, max_iter=100_000
    )
    np.testing.assert_array_equal(_exact_svc_scores(z[:320], s[:320], z[320:], s[320:]), tight)


def test_exact_solver_close_to_reference_and_named(mixed) -> None:
    z, s = mixed
    ref = _quiet(z, s)
    fast = _quiet(z, s, solver="exact")
    assert abs(fast.score - ref.score) <= 0.02
    assert fast.metric_id == "sap/discrete-svc-exact@1"
    assert METRICS["sap"].fast_options == {"solver": "exact"}


def test_exact_solver_blocks_of_latents_give_the_same_result(mixed, monkeypatch) -> None:
    z, s = mixed
    whole = _quiet(z, s, solver="exact")
    module = importlib.import_module("disentkit.metrics.sap")  # not the re-exported function
    monkeypatch.setattr(module, "_EXACT_ELEMENTS", 1)  # one latent per block
    np.testing.assert_array_equal(_quiet(z, s, solver="exact").score_matrix, whole.score_matrix)


def test_exact_solver_handles_a_class_missing_from_the_training_rows() -> None:
    rng = np.random.default_rng(4)
    s = make_factors(300, (4,), seed=4)
    s[:240][s[:240, 0] == 3, 0] = 2  # class 3 only among the test rows
    z = s + 0.3 * rng.standard_normal(s.shape)
    ref = _quiet(z, s)
    fast = _quiet(z, s, solver="exact")
    np.testing.assert_array_equal(fast.score_matrix, ref.score_matrix)
    assert ref.score_matrix[0, 0] < 1.0  # class-3 test rows can never be predicted


# -- documented levels and quirks --------------------------------------------------------


def test_perfect_code_levels_and_the_many_class_quirk() -> None:
    # The gap is the perfect latent's accuracy minus an uninformative latent's (≈ 1/c): at
    # most ≈ 0.5 on a binary factor. One-vs-rest linear SVMs on one latent separate few
    # classes well but not many, so a perfect code scores low on a 40-class factor
    # (documented, not fixed).
    s = make_factors(3000, (2, 4, 40), seed=8)
    z = s + 0.05 * np.random.default_rng(9).standard_normal(s.shape)
    r = _quiet(z, s)
    assert r.per_factor[0] == pytest.approx(0.5, abs=0.06)
    assert 0.5 < r.per_factor[1] <= 0.75 + 0.06
    assert r.per_factor[2] < 0.15
    assert np.all(np.argmax(r.score_matrix, axis=0) == [0, 1, 2])


@pytest.mark.parametrize("continuous", [False, True])
def test_independent_latents_score_near_zero(continuous: bool) -> None:
    s = make_factors(3000, (3, 5), seed=12)
    z = np.random.default_rng(13).standard_normal((3000, 5))
    assert _quiet(z, s, continuous_factors=continuous).score < 0.03


@pytest.mark.parametrize("continuous", [False, True])
def test_constant_latent_scores_zero_and_is_recorded(mixed, continuous: bool) -> None:
    z, s = mixed
    z1 = np.concatenate([z[:, :1], np.full((500, 1), 3.0)], axis=1)
    r = _quiet(z1, s, continuous_factors=continuous)
    assert r.constant_latents == (1,)
    np.testing.assert_array_equal(r.score_matrix[1], 0.0)
    # With one informative latent and a dead one, the gap is the informative score.
    assert r.score == pytest.approx(float(np.mean(r.score_matrix[0])), abs=1e-12)


def test_single_latent_uses_zero_as_second_entry(mixed) -> None:
    z, s = mixed
    r = _quiet(z[:, :1], s, continuous_factors=True)
    np.testing.assert_allclose(r.per_factor, r.score_matrix[0])


def test_skipped_factor_is_recorded(mixed) -> None:
    z, s = mixed
    s1 = np.concatenate([s, np.zeros((500, 1), dtype=int)], axis=1)
    with pytest.warns(DisentkitWarning, match="single value"):
        r = sap(z, s1)
    assert r.skipped_factors == (3,) and r.score_matrix.shape == (4, 3)


def test_to_dict_records_options(mixed) -> None:
    z, s = mixed
    d = _quiet(z, s).to_dict()
    assert d["options.solver"] == "liblinear" and d["options.shuffle"] is False
    assert isinstance(d["score"], float) and d["constant_latents"] == []


# -- errors ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"solver": "svm"}, "solver must be one of"),
        ({"train_fraction": 1.0}, "train_fraction must be in"),
        ({"n_jobs": 0}, "n_jobs must be a non-zero integer"),
        ({"n_jobs": 1.5}, "n_jobs must be a non-zero integer"),
    ],
)
def test_bad_options(mixed, kwargs, match) -> None:
    z, s = mixed
    with pytest.raises(ValueError, match=match):
        sap(z, s, **kwargs)


def test_continuous_flag_must_be_bool(mixed) -> None:
    z, s = mixed
    with pytest.raises(TypeError, match="continuous_factors must be a bool"):
        sap(z, s, continuous_factors="yes")


def test_rows_ordered_by_factor_need_shuffle() -> None:
    s = np.repeat(np.array([[0], [1]]), [90, 10], axis=0)  # first 80 % all class 0
    z = s + 0.1 * np.random.default_rng(0).standard_normal(s.shape)
    with pytest.raises(ValueError, match="shuffle=True"):
        sap(z, s)
    assert _quiet(z, s, shuffle=True, seed=0).score > 0.9
