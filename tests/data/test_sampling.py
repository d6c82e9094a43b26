"""Tests of correlated-factor sampling (Gaussian-kernel pairs, Träuble et al. 2021).

Statistical checks use fixed seeds, so each is deterministic. Where a test accepts the
independence hypothesis it asks for a p-value above 1e-3: under independence the p-value is
uniform, so such a threshold would reject only 0.1% of seeds; the same checks on correlated
samples give p-values below 1e-10, so they can fail.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from disentkit.data import FactorDataset
from disentkit.data.procedural import XYObject
from disentkit.data.sampling import (
    CorrelatedFactorDataset,
    pair_probabilities,
    sample_correlated_factors,
    with_correlated_factors,
)
from disentkit.metrics.sampling import GroundTruthSampler, check_sampler, draw_factors

SIZES = (10, 8, 3, 5)
N = 20_000


def contingency(a: np.ndarray, b: np.ndarray, na: int, nb: int) -> np.ndarray:
    return np.bincount(a * nb + b, minlength=na * nb).reshape(na, nb)


@pytest.fixture(scope="module")
def tiny() -> XYObject:
    return XYObject(name="xyobject_tiny", image_size=32, n_positions=8, n_scales=2, n_colours=4)


# -- the joint table ---------------------------------------------------------------------------
def test_pair_probabilities_model() -> None:
    sigma = 0.3
    p = pair_probabilities(10, 8, sigma)
    assert p.shape == (10, 8) and p.sum() == pytest.approx(1.0) and (p > 0).all()
    u_i, u_j = np.linspace(0, 1, 10), np.linspace(0, 1, 8)
    expected = np.exp(-((u_i[:, None] - u_j[None, :]) ** 2) / (2 * sigma**2))
    np.testing.assert_allclose(p, expected / expected.sum())
    # the mass concentrates on the diagonal as sigma shrinks
    diag = [np.trace(pair_probabilities(6, 6, s)) for s in (0.05, 0.2, 0.7, math.inf)]
    assert all(a > b for a, b in itertools.pairwise(diag))
    assert diag[-1] == pytest.approx(1 / 6)
    np.testing.assert_allclose(pair_probabilities(4, 3, math.inf), np.full((4, 3), 1 / 12))


@pytest.mark.parametrize("sigma", [0.1, 0.3, 1.0])
def test_balanced_marginals(sigma: float) -> None:
    p = pair_probabilities(10, 6, sigma, balance_marginals=True)
    np.testing.assert_allclose(p.sum(1), np.full(10, 0.1), atol=1e-9)
    np.testing.assert_allclose(p.sum(0), np.full(6, 1 / 6), atol=1e-9)
    plain = pair_probabilities(10, 6, sigma)
    assert plain.sum(1)[0] < plain.sum(1)[5]  # the paper's table favours central values
    # balancing keeps the strength of the correlation (within 10% in Spearman's rho)
    rho = [
        stats.spearmanr(*sample_correlated_factors(
            (10, 6), N, 1, pairs=(0, 1), sigma=sigma, balance_marginals=balance).T).statistic
        for balance in (False, True)
    ]
    assert rho[1] == pytest.approx(rho[0], rel=0.1) and rho[1] > 0.05
    f = sample_correlated_factors((10, 6), N, 1, pairs=(0, 1), sigma=sigma,
                                  balance_marginals=True)
    assert stats.chisquare(np.bincount(f[:, 0], minlength=10)).pvalue > 1e-3


# -- sampling ----------------------------------------------------------------------------------
def test_independent_when_sigma_is_infinite() -> None:
    f = sample_correlated_factors(SIZES, N, 0, pairs=[(0, 1)], sigma=math.inf)
    table = contingency(f[:, 0], f[:, 1], 10, 8)
    assert stats.chi2_contingency(table).pvalue > 1e-3
    for k, size in enumerate(SIZES):
        assert stats.chisquare(np.bincount(f[:, k], minlength=size)).pvalue > 1e-3
    # the same test detects a correlation when there is one
    g = sample_correlated_factors(SIZES, N, 0, pairs=[(0, 1)], sigma=0.5)
    assert stats.chi2_contingency(contingency(g[:, 0], g[:, 1], 10, 8)).pvalue < 1e-10


def test_strong_correlation_and_monotone_in_sigma() -> None:
    rho = []
    for sigma in (0.1, 0.3, 0.7, 2.0, math.inf):
        f = sample_correlated_factors(SIZES, N, 4, pairs=[(0, 1)], sigma=sigma)
        rho.append(stats.spearmanr(f[:, 0], f[:, 1]).statistic)
    assert rho[0] > 0.9
    assert all(a > b for a, b in itertools.pairwise(rho)), rho
    assert abs(rho[-1]) < 0.03  # sd of Spearman's rho under independence is 1/sqrt(N) = 0.007


def test_empirical_joint_matches_the_table_and_others_stay_independent() -> None:
    f = sample_correlated_factors(SIZES, N, 7, pairs=[(1, 3)], sigma=0.25)
    observed = contingency(f[:, 1], f[:, 3], 8, 5).ravel()
    expected = pair_probabilities(8, 5, 0.25).ravel() * N
    assert stats.chisquare(observed, expected).pvalue > 1e-3
    # the factors outside the pair are uniform and independent of it
    for k in (0, 2):
        assert stats.chisquare(np.bincount(f[:, k], minlength=SIZES[k])).pvalue > 1e-3
        table = contingency(f[:, k], f[:, 1], SIZES[k], 8)
        assert stats.chi2_contingency(table).pvalue > 1e-3


def test_several_pairs() -> None:
    f = sample_correlated_factors(SIZES, N, 3, pairs=[(0, 1), (3, 2)], sigma=0.1)
    assert stats.spearmanr(f[:, 0], f[:, 1]).statistic > 0.9
    assert stats.spearmanr(f[:, 2], f[:, 3]).statistic > 0.8
    table = contingency(f[:, 0], f[:, 2], 10, 3)  # across pairs: independent
    assert stats.chi2_contingency(table).pvalue > 1e-3


@settings(max_examples=15, deadline=None)
@given(
    sizes=st.lists(st.integers(2, 12), min_size=2, max_size=5),
    sigma=st.sampled_from([0.05, 0.2, 1.0, math.inf]),
    seed=st.integers(0, 2**31),
    n=st.integers(0, 300),
)
def test_marginals_valid_and_deterministic(sizes: list[int], sigma: float, seed: int,
                                           n: int) -> None:
    pair = (len(sizes) - 1, 0)
    f = sample_correlated_factors(sizes, n, seed, pairs=pair, sigma=sigma)
    assert f.dtype == np.int64 and f.shape == (n, len(sizes))
    assert ((f >= 0) & (f < np.array(sizes))).all()
    np.testing.assert_array_equal(
        f, sample_correlated_factors(sizes, n, np.random.default_rng(seed), pairs=pair,
                                     sigma=sigma))


def test_every_value_keeps_positive_probability() -> None:
    f = sample_correlated_factors((6, 11), N, 2, pairs=(0, 1), sigma=0.1)
    assert (np.bincount(f[:, 0], minlength=6) > 0).all()
    assert (np.bincount(f[:, 1], minlength=11) > 0).all()


def test_seeds() -> None:
    a = sample_correlated_factors(SIZES, 100, 5, pairs=(0, 1), sigma=0.2)
    np.testing.assert_array_equal(a, sample_correlated_factors(SIZES, 100, 5, pairs=(0, 1),
                                                               sigma=0.2))
    assert (a != sample_correlated_factors(SIZES, 100, 6, pairs=(0, 1), sigma=0.2)).any()
    np.testing.assert_array_equal(  # None means seed 0
        sample_correlated_factors(SIZES, 50, None, pairs=(0, 1), sigma=0.2),
        sample_correlated_factors(SIZES, 50, 0, pairs=(0, 1), sigma=0.2))


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"pairs": (0, 0)}, ValueError, "two different factors"),
        ({"pairs": [(0, 4)]}, IndexError, "out of range for 4 factors"),
        ({"pairs": [(0, 1), (1, 2)]}, ValueError, "more than one pair"),
        ({"pairs": []}, ValueError, "non-empty list"),
        ({"pairs": [(0, 1, 2)]}, ValueError, r"must be \(factor, factor\)"),
        ({"pairs": [(0.5, 1)]}, TypeError, "indices or names"),
        ({"pairs": ("x", 1)}, ValueError, "unknown factor name 'x'"),
        ({"sigma": 0.0}, ValueError, "sigma must be > 0"),
        ({"sigma": -1.0}, ValueError, "sigma must be > 0"),
        ({"sigma": float("nan")}, ValueError, "sigma must be > 0"),
        ({"sigma": "strong"}, TypeError, "sigma must be a positive number"),
        ({"sigma": True}, TypeError, "sigma must be a positive number"),
        ({"sigma": 1e-3, "factor_sizes": (2, 3)}, ValueError, "too small"),
        ({"factor_sizes": (1, 3)}, ValueError, "has 1 value"),
        ({"factor_sizes": (3.0, 3.0)}, ValueError, "factor_sizes must be"),
        ({"n": -1}, ValueError, "n must be a non-negative int"),
    ],
)
def test_bad_input(kwargs: dict, error: type, match: str) -> None:
    args = {"factor_sizes": SIZES, "n": 10, "rng": 0, "pairs": (0, 1), "sigma": 0.2} | kwargs
    with pytest.raises(error, match=match):
        sample_correlated_factors(**args)


# -- the dataset wrapper -----------------------------------------------------------------------
def test_wrapper_delegates_everything_but_sampling(tiny: XYObject) -> None:
    ds = with_correlated_factors(tiny, [("x", "y")], sigma=0.1)
    assert isinstance(ds, CorrelatedFactorDataset) and isinstance(ds, FactorDataset)
    assert isinstance(ds, GroundTruthSampler)
    assert ds.pairs == ((0, 1),) and ds.sigma == 0.1
    assert (ds.name, ds.factor_names, ds.factor_sizes, ds.image_shape, ds.source, len(ds)) == (
        tiny.name, tiny.factor_names, tiny.factor_sizes, tiny.image_shape, tiny.source,
        len(tiny))
    idx = np.array([0, 17, 511])
    np.testing.assert_array_equal(ds.images(idx), tiny.images(idx))
    np.testing.assert_array_equal(ds.factors(idx), tiny.factors(idx))
    np.testing.assert_array_equal(ds.index(ds.factors(idx)), idx)
    np.testing.assert_array_equal(ds.palette, tiny.palette)  # other attributes delegate
    for a, b in zip(ds.factor_values, tiny.factor_values, strict=True):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(AttributeError):
        _ = ds.no_such_attribute
    info = ds.info()
    assert info["correlation"]["pairs"] == [["x", "y"]] and info["name"] == tiny.name
    np.testing.assert_allclose(ds.pair_probabilities(), pair_probabilities(8, 8, 0.1))
    assert "sigma=0.1" in repr(ds)


def test_wrapper_samples_correlated_factors_for_metrics(tiny: XYObject) -> None:
    ds = with_correlated_factors(tiny, (0, 2), sigma=0.05)
    sizes = check_sampler(ds, metric="test")
    f = draw_factors(ds, 5000, np.random.default_rng(0), sizes, metric="test")
    assert stats.spearmanr(f[:, 0], f[:, 2]).statistic > 0.8
    assert stats.chi2_contingency(contingency(f[:, 1], f[:, 3], 8, 4)).pvalue > 1e-3
    np.testing.assert_array_equal(f, ds.sample_factors(5000, np.random.default_rng(0)))
    assert ds.images_from_factors(f[:3]).shape == (3, 32, 32, 3)
    # the unwrapped dataset is not correlated
    g = tiny.sample_factors(5000, 0)
    assert abs(stats.spearmanr(g[:, 0], g[:, 2]).statistic) < 0.05


def test_wrapper_errors(tiny: XYObject) -> None:
    with pytest.raises(TypeError, match="needs a FactorDataset"):
        with_correlated_factors(np.zeros(3), (0, 1), sigma=0.1)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="unknown factor name 'size'"):
        with_correlated_factors(tiny, ("x", "size"), sigma=0.1)
    with pytest.raises(ValueError, match="too small"):  # checked when wrapping
        with_correlated_factors(tiny, ("scale", "x"), sigma=1e-4)
    with pytest.raises(TypeError):
        with_correlated_factors(tiny, (0, 1), 0.1)  # type: ignore[misc]
