"""Active/passive latents and the mean-vs-sampled correlation comparison."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from scipy import integrate, stats

from disentkit import DisentkitWarning
from disentkit.metrics import METRICS
from disentkit.metrics.active import (
    ActiveLatentsResult,
    active_latents,
    compare_mean_sampled,
    gaussian_kl,
)

N = 3000
ACTIVE = np.array([True, False, True, False, True, False])


def synthetic_posterior(n: int = N, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A VAE posterior in the polarised regime.

    Active dims 0, 2, 4: means spread over the data (independent), variances ≈ 0.01.
    Passive dims 1, 3, 5: means ≈ 0 with tiny residuals that share one signal, variances ≈ 1.
    """
    rng = np.random.default_rng(seed)
    mean = np.empty((n, 6))
    logvar = np.empty((n, 6))
    mean[:, ACTIVE] = rng.standard_normal((n, 3))
    logvar[:, ACTIVE] = np.log(0.01) + 0.1 * rng.standard_normal((n, 3))
    shared = rng.standard_normal((n, 1))
    mean[:, ~ACTIVE] = 0.01 * (shared + 0.2 * rng.standard_normal((n, 3)))
    logvar[:, ~ACTIVE] = 0.01 * rng.standard_normal((n, 3))
    return mean, logvar


def test_polarised_posterior_is_classified() -> None:
    mean, logvar = synthetic_posterior()
    r = active_latents(mean, logvar=logvar)
    assert isinstance(r, ActiveLatentsResult)
    np.testing.assert_array_equal(r.active, ACTIVE)
    assert r.fraction_active == 0.5 and r.n_active == 3 and r.criterion == "kl"
    np.testing.assert_array_equal(r.active_indices, [0, 2, 4])
    np.testing.assert_array_equal(r.passive_indices, [1, 3, 5])
    assert r.metric_id == "active_latents/kl0.01@1"
    # The two halves of the polarised-regime condition, as diagnostics.
    assert (r.mean_variance[~ACTIVE] > 0.95).all() and (r.mean_variance[ACTIVE] < 0.02).all()
    assert (r.variance_of_mean[~ACTIVE] < 1e-3).all() and (r.variance_of_mean[ACTIVE] > 0.9).all()
    # Means passed by keyword give the same answer.
    again = active_latents(None, mean=mean, logvar=logvar)
    np.testing.assert_array_equal(again.statistic, r.statistic)


def test_kl_statistic_is_the_closed_form_gaussian_kl() -> None:
    mean, logvar = synthetic_posterior(n=200)
    r = active_latents(mean, logvar=logvar)
    var = np.exp(logvar)
    expected = np.mean(0.5 * (mean**2 + var - logvar - 1.0), axis=0)
    np.testing.assert_allclose(r.statistic, expected, rtol=1e-12)


@pytest.mark.parametrize(("mu", "sigma"), [(0.0, 1.0), (1.5, 0.3), (-0.7, 2.0)])
def test_gaussian_kl_matches_numerical_integration(mu: float, sigma: float) -> None:
    p, q = stats.norm(mu, sigma), stats.norm(0.0, 1.0)
    value, _ = integrate.quad(
        lambda x: p.pdf(x) * (p.logpdf(x) - q.logpdf(x)), mu - 12 * sigma, mu + 12 * sigma
    )
    got = gaussian_kl(np.array([mu]), np.array([2 * np.log(sigma)]))[0]
    assert got == pytest.approx(value, abs=1e-8)


def test_threshold_moves_the_boundary() -> None:
    mean, logvar = synthetic_posterior()
    r = active_latents(mean, logvar=logvar)
    lo = float(r.statistic[~ACTIVE].max())
    hi = float(r.statistic[ACTIVE].min())
    assert lo < 0.01 < hi
    # Active means statistic ≥ threshold.
    assert active_latents(mean, logvar=logvar, threshold=hi).n_active == 3
    assert active_latents(mean, logvar=logvar, threshold=np.nextafter(hi, 1e9)).n_active == 2
    assert active_latents(mean, logvar=logvar, threshold=lo).n_active == 4
    assert active_latents(mean, logvar=logvar, threshold=np.nextafter(lo, 1e9)).n_active == 3


def test_constant_mean_is_passive_whatever_its_kl() -> None:
    rng = np.random.default_rng(1)
    mean = np.c_[rng.standard_normal(500), np.zeros(500)]
    logvar = np.c_[np.full(500, -4.0), np.full(500, np.log(0.1))]  # KL of dim 1 ≈ 0.70 nats
    r = active_latents(mean, logvar=logvar)
    assert r.statistic[1] > 0.5
    np.testing.assert_array_equal(r.active, [True, False])


def test_variance_rule_for_deterministic_codes() -> None:
    rng = np.random.default_rng(2)
    z = rng.standard_normal((1000, 4)) * np.array([1.0, 3.0, 0.02, 0.0])
    r = active_latents(z)
    assert r.criterion == "variance" and r.mean_variance is None
    np.testing.assert_array_equal(r.active, [True, True, False, False])
    np.testing.assert_allclose(r.statistic, z.var(axis=0) / z.var(axis=0).max())
    assert r.metric_id == "active_latents/relvar0.01@1"
    # Relative rule: units do not matter.
    np.testing.assert_array_equal(active_latents(1e-4 * z).active, r.active)
    # Absolute rule: units do.
    absolute = active_latents(z, relative=False, threshold=0.5)
    assert absolute.metric_id == "active_latents/var0.5@1"
    np.testing.assert_array_equal(absolute.active, [True, True, False, False])
    np.testing.assert_array_equal(
        active_latents(0.1 * z, relative=False, threshold=0.05).active, [False, True, False, False]
    )


def test_every_latent_constant_means_none_active() -> None:
    r = active_latents(np.ones((50, 3)))
    assert r.fraction_active == 0.0 and r.n_active == 0
    assert type(r.scores()["fraction_active"]) is float


def test_factors_are_validated_and_constant_factors_skipped() -> None:
    mean, logvar = synthetic_posterior(n=100)
    factors = np.c_[np.arange(100) % 3, np.zeros(100, dtype=int)]
    with pytest.warns(DisentkitWarning, match="single value"):
        r = active_latents(mean, factors, logvar=logvar)
    assert r.skipped_factors == (1,) and r.n_samples == 100
    with pytest.raises(ValueError, match="same number of samples"):
        active_latents(mean, factors[:-1], logvar=logvar)
    # The factors do not change the answer.
    np.testing.assert_array_equal(active_latents(mean, logvar=logvar).active, r.active)


def test_registered_as_an_analysis_outside_the_default_suite() -> None:
    info = METRICS["active_latents"]
    assert info.func is active_latents and info.kind == "array"
    assert not info.in_default_suite
    (score,) = info.scores
    assert score.name == "fraction_active" and score.bounds == (0.0, 1.0)
    assert not score.zero_when_independent
    # Why not: latents independent of the factors are pure noise, and noise is active.
    noise = np.random.default_rng(3).standard_normal((400, 4))
    factors = np.random.default_rng(4).integers(0, 3, (400, 2))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert active_latents(noise, factors, seed=0).fraction_active == 1.0


@pytest.mark.parametrize(
    ("kwargs", "exc", "match"),
    [
        ({"latents": np.zeros((5, 2)), "mean": np.zeros((5, 2))}, ValueError, "without logvar"),
        ({"latents": None, "logvar": np.zeros((5, 2))}, ValueError, "without means"),
        (
            {"latents": np.zeros((5, 2)), "logvar": np.zeros((5, 3))},
            ValueError,
            "same shape",
        ),
        (
            {"latents": np.zeros((5, 2)), "mean": np.ones((5, 2)), "logvar": np.zeros((5, 2))},
            ValueError,
            "differ",
        ),
        ({"latents": np.zeros((5, 2)), "threshold": 0.0}, ValueError, "threshold"),
        ({"latents": np.zeros((5, 2)), "threshold": -1}, ValueError, "threshold"),
        ({"latents": np.zeros((5, 2)), "relative": "yes"}, ValueError, "relative"),
        ({"latents": np.zeros((1, 2))}, ValueError, "at least 2 samples"),
        ({"latents": np.zeros((5, 2, 1))}, ValueError, "2-D"),
        ({"latents": np.array([[0.0, np.nan], [1, 2]])}, ValueError, "finite"),
        (
            {"latents": np.zeros((5, 2)), "logvar": np.full((5, 2), np.inf)},
            ValueError,
            "logvar must be finite",
        ),
    ],
)
def test_bad_inputs_are_rejected(kwargs, exc, match) -> None:
    latents = kwargs.pop("latents")
    with pytest.raises(exc, match=match):
        active_latents(latents, **kwargs)


# --- mean vs sampled -------------------------------------------------------------------------


def test_passive_latents_correlate_in_means_not_in_samples() -> None:
    mean, logvar = synthetic_posterior()
    c = compare_mean_sampled(mean, logvar, seed=0)
    np.testing.assert_array_equal(c.active, ACTIVE)
    # Passive: the shared residual (std 0.01) dominates the means and vanishes under unit noise.
    # Expected |corr| of the means: 1/(1 + 0.2²) ≈ 0.96; of samples ≈ 0 (± ~1/sqrt(N) = 0.018).
    assert c.passive_mean == pytest.approx(1 / 1.04, abs=0.02)
    assert c.passive_sampled < 0.05
    # Active: independent in both; the posterior noise (std 0.1 against 1) changes little.
    assert c.active_mean < 0.05 and c.active_sampled < 0.05
    assert c.passive_mean > 10 * c.passive_sampled
    np.testing.assert_allclose(np.diag(c.corr_mean), 1.0)
    np.testing.assert_allclose(c.corr_mean, c.corr_mean.T)
    d = c.to_dict()
    assert d["passive_mean"] == c.passive_mean and d["threshold"] == 0.01


def test_sampled_correlation_uses_the_seeded_reparameterisation() -> None:
    mean, logvar = synthetic_posterior(n=500)
    c = compare_mean_sampled(mean, logvar, seed=7)
    eps = np.random.default_rng(7).standard_normal(mean.shape)
    z = mean + np.exp(0.5 * logvar) * eps
    np.testing.assert_allclose(c.corr_sampled, np.corrcoef(z.T), atol=1e-12)
    np.testing.assert_allclose(c.corr_mean, np.corrcoef(mean.T), atol=1e-12)
    again = compare_mean_sampled(mean, logvar, seed=7)
    assert again.passive_sampled == c.passive_sampled
    other = compare_mean_sampled(mean, logvar, seed=8)
    assert other.passive_sampled != c.passive_sampled


def test_given_active_mask_and_small_groups() -> None:
    mean, logvar = synthetic_posterior(n=500)
    mask = np.array([True, True, True, True, True, False])
    c = compare_mean_sampled(mean, logvar, active=mask, seed=0)
    assert c.threshold is None
    assert np.isnan(c.passive_mean) and np.isnan(c.passive_sampled)  # one passive: no pairs
    assert c.to_dict()["passive_mean"] is None
    with pytest.raises(ValueError, match="bool mask of shape"):
        compare_mean_sampled(mean, logvar, active=np.ones(6))


def test_constant_column_has_zero_correlation() -> None:
    rng = np.random.default_rng(5)
    mean = np.c_[rng.standard_normal((300, 2)), np.zeros(300)]
    logvar = np.c_[np.full((300, 2), -3.0), np.full(300, -50.0)]  # sampled column ≈ constant
    c = compare_mean_sampled(mean, logvar, active=np.array([True, True, True]), seed=0)
    assert c.corr_mean[2, 2] == 0.0 and (c.corr_mean[2] == 0).all()
    assert np.isfinite(c.corr_sampled).all()
