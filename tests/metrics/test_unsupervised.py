"""Unsupervised scores: closed forms for Gaussians, dlib's formulas, per-pair MI, quirks."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import scipy.linalg
from sklearn.metrics import mutual_info_score

from disentkit import DisentkitWarning
from disentkit.metrics.unsupervised import (
    UnsupervisedResult,
    gaussian_total_correlation,
    gaussian_wasserstein_correlation,
    unsupervised,
)
from tests.conftest import make_factors


def _quiet(*args, **kwargs) -> UnsupervisedResult:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        return unsupervised(*args, **kwargs)


def _bivariate(n: int, rho: float, seed: int, scale=(1.0, 1.0)) -> np.ndarray:
    x = np.random.default_rng(seed).standard_normal((n, 2))
    z = np.stack([x[:, 0], rho * x[:, 0] + np.sqrt(1 - rho**2) * x[:, 1]], axis=1)
    return z * np.asarray(scale)


# -- Gaussian total correlation ------------------------------------------------------------


def test_independent_gaussian_has_near_zero_tc_and_wasserstein() -> None:
    # Sample correlations are O(1/√n); TC ≈ ½ Σ_pairs r², about D(D−1)/(4n) = 1.5e-4 here.
    z = np.random.default_rng(0).standard_normal((20_000, 4)) * [1.0, 2.0, 0.5, 3.0]
    r = _quiet(z)
    assert 0 <= r.gaussian_total_correlation < 2e-3
    assert 0 <= r.gaussian_wasserstein_correlation < 5e-3


@pytest.mark.parametrize("rho", [0.3, 0.6, -0.9])
def test_bivariate_tc_closed_form(rho: float) -> None:
    z = _bivariate(100_000, rho, seed=1, scale=(2.0, 0.5))
    r = _quiet(z)
    # Exactly −½ log(1 − r²) for the sample correlation r ...
    r_hat = np.corrcoef(z, rowvar=False)[0, 1]
    assert r.gaussian_total_correlation == pytest.approx(-0.5 * np.log(1 - r_hat**2), rel=1e-10)
    # ... and the population value within 5 standard errors: sd(TC) ≈ |ρ|/√n ≈ 0.003.
    assert r.gaussian_total_correlation == pytest.approx(-0.5 * np.log(1 - rho**2), abs=0.015)


def test_tc_equals_dlib_formula_on_a_random_covariance() -> None:
    rng = np.random.default_rng(2)
    a = rng.standard_normal((5, 5))
    cov = a @ a.T + 0.1 * np.eye(5)
    dlib = 0.5 * (np.sum(np.log(np.diag(cov))) - np.linalg.slogdet(cov)[1])
    tc, n_floor = gaussian_total_correlation(cov)
    assert tc == pytest.approx(dlib, rel=1e-10)
    assert n_floor == 0


def test_tc_is_scale_invariant() -> None:
    z = _bivariate(2000, 0.5, seed=3)
    a = _quiet(z).gaussian_total_correlation
    b = _quiet(z * [100.0, 0.01]).gaussian_total_correlation
    assert a == pytest.approx(b, rel=1e-10)


def test_singular_covariance_is_floored_not_infinite() -> None:
    z = _bivariate(1000, 0.4, seed=4)
    dup = np.concatenate([z, z[:, :1] - 2 * z[:, 1:]], axis=1)  # exact linear dependence
    r = _quiet(dup)
    assert r.n_degenerate == 1
    # The floored direction adds ½ ln(1/floor); the other two eigenvalues of the
    # correlation matrix sum to at most 3, so they take away at most ½ ln(1.5²).
    floor_term = 0.5 * np.log(1e10)
    assert floor_term - 0.5 * np.log(2.25) <= r.gaussian_total_correlation < floor_term
    looser = _quiet(dup, eigenvalue_floor=1e-4)
    assert r.gaussian_total_correlation - looser.gaussian_total_correlation == pytest.approx(
        0.5 * np.log(1e6), rel=1e-9
    )
    assert looser.metric_id == "unsupervised/hist20-floor0.0001@1"


# -- Gaussian Wasserstein correlation ------------------------------------------------------


def test_wasserstein_2d_closed_form() -> None:
    # For C = [[a, c], [c, b]]: W² = 2(a + b) − 2·tr sqrt(M), M = diag(C)^½ C diag(C)^½,
    # and for a 2×2 PSD M, tr sqrt(M) = sqrt(tr M + 2 sqrt(det M)).
    a, b, c = 4.0, 0.25, 0.6
    cov = np.array([[a, c], [c, b]])
    closed = 2 * (a + b) - 2 * np.sqrt(a**2 + b**2 + 2 * np.sqrt(a * b * (a * b - c**2)))
    assert gaussian_wasserstein_correlation(cov) == pytest.approx(closed, rel=1e-12)
    # From data: the same formula on the sample covariance, and near the population value.
    z = _bivariate(200_000, 0.6, seed=5, scale=(2.0, 0.5))  # a=4, b=0.25, c=0.6
    r = _quiet(z)
    sa, sc, sb = r.covariance[0, 0], r.covariance[0, 1], r.covariance[1, 1]
    sample = 2 * (sa + sb) - 2 * np.sqrt(sa**2 + sb**2 + 2 * np.sqrt(sa * sb * (sa * sb - sc**2)))
    assert r.gaussian_wasserstein_correlation == pytest.approx(sample, rel=1e-9)
    assert r.gaussian_wasserstein_correlation == pytest.approx(closed, rel=0.05)
    assert r.gaussian_wasserstein_correlation_norm == pytest.approx(
        r.gaussian_wasserstein_correlation / (sa + sb)
    )


def test_wasserstein_equals_dlib_sqrtm_formula() -> None:
    rng = np.random.default_rng(6)
    a = rng.standard_normal((4, 4))
    cov = a @ a.T + 0.05 * np.eye(4)
    dlib = 2 * np.trace(cov) - 2 * np.trace(scipy.linalg.sqrtm(cov * np.diag(cov)[:, None]))
    assert gaussian_wasserstein_correlation(cov) == pytest.approx(float(np.real(dlib)), rel=1e-8)


def test_wasserstein_scales_with_the_square_of_the_units() -> None:
    z = _bivariate(2000, 0.7, seed=7)
    a = _quiet(z).gaussian_wasserstein_correlation
    assert _quiet(3 * z).gaussian_wasserstein_correlation == pytest.approx(9 * a, rel=1e-10)


# -- pairwise mutual information -----------------------------------------------------------


def test_mutual_info_matches_per_pair_sklearn_loop() -> None:
    z = _bivariate(3000, 0.8, seed=8)
    z = np.concatenate([z, np.random.default_rng(9).uniform(size=(3000, 1))], axis=1)
    codes = np.zeros(z.shape, dtype=int)
    for d in range(3):  # dlib's discretiser
        codes[:, d] = np.digitize(z[:, d], np.histogram(z[:, d], 20)[1][:-1])
    m = np.array(
        [[mutual_info_score(codes[:, i], codes[:, j]) for j in range(3)] for i in range(3)]
    )
    np.fill_diagonal(m, 0.0)
    r = _quiet(z)
    np.testing.assert_allclose(r.mutual_info_matrix, m, atol=1e-12)
    assert r.mutual_info == pytest.approx(m.sum() / 6, abs=1e-12)
    np.testing.assert_allclose(r.mutual_info_matrix, r.mutual_info_matrix.T, atol=1e-12)


def test_mutual_info_of_independent_latents_is_only_the_bias() -> None:
    z = np.random.default_rng(10).standard_normal((10_000, 3))
    # Plug-in bias ≈ (bins − 1)² / (2n) ≈ 0.018 per pair for 20 bins (fewer bins occupied).
    assert 0 < _quiet(z).mutual_info < 0.025


# -- constant latents, factors, edge cases -------------------------------------------------


def test_constant_latent_is_dropped_from_gaussian_scores_and_counted_in_mi() -> None:
    z = _bivariate(2000, 0.5, seed=11)
    zz = np.concatenate([z[:, :1], np.full((2000, 1), 4.0), z[:, 1:]], axis=1)
    r, ref = _quiet(zz), _quiet(z)
    assert r.constant_latents == (1,)
    assert r.gaussian_total_correlation == pytest.approx(ref.gaussian_total_correlation)
    assert r.gaussian_wasserstein_correlation == pytest.approx(ref.gaussian_wasserstein_correlation)
    # MI: the constant latent's pairs are 0 but count among the D(D − 1) = 6 pairs.
    assert r.mutual_info == pytest.approx(ref.mutual_info * 2 / 6, abs=1e-12)


def test_fewer_than_two_latents_scores_zero() -> None:
    one = _quiet(np.random.default_rng(12).standard_normal((100, 1)))
    assert one.scores() == {
        "gaussian_total_correlation": 0.0,
        "gaussian_wasserstein_correlation": 0.0,
        "mutual_info": 0.0,
    }
    const = _quiet(np.concatenate([one_col := np.arange(100.0)[:, None], 0 * one_col], 1))
    assert const.gaussian_total_correlation == 0.0 and const.constant_latents == (1,)


def test_factors_are_optional_and_only_validated() -> None:
    z = _bivariate(500, 0.5, seed=13)
    s = make_factors(500, (3, 4), seed=14)
    assert _quiet(z).scores() == _quiet(z, s).scores() == _quiet(z, s[:, ::-1]).scores()
    with pytest.raises(ValueError, match="same number of samples"):
        unsupervised(z, s[:-1])
    with pytest.warns(DisentkitWarning, match="single value"):
        r = unsupervised(z, np.concatenate([s, np.ones((500, 1), dtype=int)], axis=1))
    assert r.skipped_factors == (2,)
    assert _quiet(z, s, seed=123).scores() == _quiet(z).scores()  # nothing random


def test_metric_id_and_options() -> None:
    r = _quiet(_bivariate(200, 0.5, seed=15), n_bins=10)
    assert r.metric_id == "unsupervised/hist10@1"
    d = r.to_dict()
    assert d["options.n_bins"] == 10 and isinstance(d["mutual_info"], float)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"n_bins": 1}, "n_bins must be an integer"),
        ({"eigenvalue_floor": 0.0}, "eigenvalue_floor must be in"),
        ({"eigenvalue_floor": 2.0}, "eigenvalue_floor must be in"),
    ],
)
def test_bad_options(kwargs, match) -> None:
    with pytest.raises(ValueError, match=match):
        unsupervised(_bivariate(100, 0.5, seed=16), **kwargs)


def test_bad_latents() -> None:
    with pytest.raises(ValueError, match="finite"):
        unsupervised(np.array([[0.0, np.nan], [1.0, 2.0]]))
    with pytest.raises(ValueError, match="at least 2 samples"):
        unsupervised(np.zeros((1, 3)))
