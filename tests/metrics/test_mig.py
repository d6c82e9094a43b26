"""MIG against closed-form cases and the classic per-pair computation."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import mutual_info_score

from disentkit.metrics import mig
from tests.conftest import make_factors


def classic_mig(z: np.ndarray, s: np.ndarray, bins: int = 20) -> float:
    """disentanglement_lib's recipe: per-latent histogram bins, one sklearn call per pair."""
    codes = np.stack(
        [np.digitize(z[:, d], np.histogram(z[:, d], bins)[1][:-1]) for d in range(z.shape[1])],
        axis=1,
    )
    m = np.array(
        [[mutual_info_score(s[:, k], codes[:, d]) for k in range(s.shape[1])]
         for d in range(z.shape[1])]
    )
    h = np.array([mutual_info_score(s[:, k], s[:, k]) for k in range(s.shape[1])])
    top = np.sort(m, axis=0)[::-1]
    return float(np.mean((top[0] - top[1]) / h))


@pytest.mark.parametrize("seed", range(4))
def test_matches_the_classic_per_pair_computation(seed: int) -> None:
    rng = np.random.default_rng(seed)
    s = make_factors(800, (3, 5, 7), seed=seed)
    z = s @ rng.standard_normal((3, 5)) + rng.standard_normal((800, 5))
    assert mig(z, s).score == pytest.approx(classic_mig(z, s), abs=1e-12)
    assert mig(z, s, n_bins=7).score == pytest.approx(classic_mig(z, s, 7), abs=1e-12)


def test_float32_latents_give_the_float64_score() -> None:
    rng = np.random.default_rng(0)
    s = make_factors(500, (4, 4), seed=1)
    z = (s + 0.3 * rng.standard_normal(s.shape)).astype(np.float32)
    assert mig(z, s).score == mig(z.astype(np.float64), s).score


def test_closed_form_two_latents_copying_one_factor_give_zero() -> None:
    s = make_factors(400, (4,), seed=2)
    z = np.concatenate([s, s], axis=1).astype(float)  # both latents carry all of s
    assert mig(z, s).score == pytest.approx(0.0, abs=1e-12)


def test_closed_form_binary_factor_perfectly_captured_gives_one() -> None:
    s = np.repeat([[0], [1]], 50, axis=0)
    z = np.concatenate([s * 1.0, np.zeros((100, 1))], axis=1)  # one copy + one dead latent
    result = mig(z, s)
    assert result.score == pytest.approx(1.0)
    np.testing.assert_allclose(result.mutual_info[:, 0], [np.log(2), 0.0], atol=1e-12)
    np.testing.assert_allclose(result.factor_entropy, [np.log(2)])


def test_single_latent_uses_zero_as_second_best() -> None:
    s = make_factors(300, (3,), seed=3)
    assert mig(s.astype(float), s).score == pytest.approx(1.0)


def test_estimators_name_themselves_in_the_metric_id() -> None:
    s = make_factors(300, (3, 3), seed=4)
    z = s + 0.1 * np.random.default_rng(0).standard_normal(s.shape)
    assert mig(z, s).metric_id == "mig/hist20@1"
    assert mig(np.round(z), s, estimator="discrete").metric_id == "mig/discrete@1"
    assert mig(z, s, estimator="knn", n_neighbors=5).metric_id == "mig/knn5@1"
