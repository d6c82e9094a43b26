"""Loss math against closed forms, torch.distributions and brute-force loops."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.stats import norm
from torch.distributions import Normal, kl_divergence

from disentkit.models._losses import (
    dip_covariance,
    dip_regularizer,
    gaussian_kl,
    gaussian_log_density,
    mss_log_weights,
    pairwise_log_density,
    reconstruction_loss,
    tc_decomposition,
)

B, D, N = 5, 3, 50


@pytest.fixture
def posterior() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    mean = torch.randn(B, D, generator=g, dtype=torch.float64)
    logvar = 0.5 * torch.randn(B, D, generator=g, dtype=torch.float64)
    z = mean + torch.randn(B, D, generator=g, dtype=torch.float64) * (0.5 * logvar).exp()
    return z, mean, logvar


def _log_q_table(z: np.ndarray, mean: np.ndarray, logvar: np.ndarray) -> np.ndarray:
    """Brute-force L[i, j, k] = log q(z_ik | x_j) with scipy, one entry at a time."""
    table = np.empty((B, B, D))
    for i in range(B):
        for j in range(B):
            for k in range(D):
                table[i, j, k] = norm.logpdf(z[i, k], mean[j, k], math.exp(0.5 * logvar[j, k]))
    return table


def _intended_mss_weights(b: int, n: int) -> np.ndarray:
    m = b - 1
    w = np.empty((b, b))
    for i in range(b):
        for j in range(b):
            if j == i:
                w[i, j] = 1 / n
            elif j == (i + 1) % b:
                w[i, j] = (n - m) / (n * m)
            else:
                w[i, j] = 1 / m
    return w


def _reference_code_mss_weights(b: int, n: int) -> np.ndarray:
    """``log_importance_weight_matrix`` as written in rtqichen/beta-tcvae (stride bug)."""
    m = b - 1
    w = np.full((b, b), 1 / m)
    flat = w.reshape(-1)  # a view
    flat[:: m + 1] = 1 / n
    flat[1 :: m + 1] = (n - m) / (n * m)
    w[m - 1, 0] = (n - m) / (n * m)
    return w


# -- Gaussian KL and densities --------------------------------------------------------------
def test_gaussian_kl_closed_form(posterior):
    _, mean, logvar = posterior
    expected = 0.5 * (mean**2 + logvar.exp() - 1 - logvar)
    torch.testing.assert_close(gaussian_kl(mean, logvar), expected.float())
    assert gaussian_kl(torch.zeros(2, 3), torch.zeros(2, 3)).abs().max() == 0


def test_gaussian_kl_matches_torch_distributions(posterior):
    _, mean, logvar = posterior
    q = Normal(mean, (0.5 * logvar).exp())
    p = Normal(torch.zeros_like(mean), torch.ones_like(mean))
    torch.testing.assert_close(gaussian_kl(mean, logvar), kl_divergence(q, p).float())


def test_gaussian_log_density_matches_torch(posterior):
    z, mean, logvar = posterior
    expected = Normal(mean, (0.5 * logvar).exp()).log_prob(z)
    torch.testing.assert_close(gaussian_log_density(z, mean, logvar), expected.float())


def test_pairwise_table_matches_loops(posterior):
    z, mean, logvar = posterior
    expected = _log_q_table(z.numpy(), mean.numpy(), logvar.numpy())
    table = pairwise_log_density(z, mean, logvar)
    assert table.shape == (B, B, D)
    np.testing.assert_allclose(table.numpy(), expected, rtol=1e-5, atol=1e-5)


# -- β-TCVAE estimators ---------------------------------------------------------------------
def test_mws_matches_brute_force(posterior):
    z, mean, logvar = posterior
    table = _log_q_table(z.numpy(), mean.numpy(), logvar.numpy())
    log_qz = np.empty(B)
    log_prod = np.empty(B)
    for i in range(B):
        log_qz[i] = math.log(sum(math.exp(table[i, j].sum()) for j in range(B)) / (N * B))
        log_prod[i] = sum(
            math.log(sum(math.exp(table[i, j, k]) for j in range(B)) / (N * B)) for k in range(D)
        )
    d = tc_decomposition(z, mean, logvar, dataset_size=N, estimator="mws")
    np.testing.assert_allclose(d["log_qz"].numpy(), log_qz, rtol=1e-5)
    np.testing.assert_allclose(d["log_prod_qzk"].numpy(), log_prod, rtol=1e-5)
    np.testing.assert_allclose(d["log_qz_x"].numpy(), table[range(B), range(B)].sum(1), rtol=1e-5)
    np.testing.assert_allclose(d["log_pz"].numpy(), norm.logpdf(z.numpy()).sum(1), rtol=1e-5)


def test_mss_matches_brute_force(posterior):
    z, mean, logvar = posterior
    table = _log_q_table(z.numpy(), mean.numpy(), logvar.numpy())
    w = _intended_mss_weights(B, N)
    log_qz = np.empty(B)
    log_prod = np.empty(B)
    for i in range(B):
        log_qz[i] = math.log(sum(w[i, j] * math.exp(table[i, j].sum()) for j in range(B)))
        log_prod[i] = sum(
            math.log(sum(w[i, j] * math.exp(table[i, j, k]) for j in range(B))) for k in range(D)
        )
    d = tc_decomposition(z, mean, logvar, dataset_size=N, estimator="mss")
    np.testing.assert_allclose(d["log_qz"].numpy(), log_qz, rtol=1e-5)
    np.testing.assert_allclose(d["log_prod_qzk"].numpy(), log_prod, rtol=1e-5)


def test_mss_weights_on_the_diagonal():
    w = mss_log_weights(B, N).exp().double().numpy()
    np.testing.assert_allclose(w, _intended_mss_weights(B, N), rtol=1e-6)
    np.testing.assert_allclose(np.diag(w), 1 / N, rtol=1e-6)
    np.testing.assert_allclose(w.sum(1), 1.0, rtol=1e-6)  # each row is a distribution
    # the reference code's version puts 1/N in column 0 (but for its row M − 1, which it
    # then overwrites with the stratum weight), not on the diagonal
    buggy = _reference_code_mss_weights(B, N)
    np.testing.assert_allclose(np.delete(buggy[:, 0], B - 2), 1 / N)
    assert not np.allclose(w, buggy)
    assert not np.allclose(np.diag(buggy), 1 / N)


def test_mss_weights_reject_bad_sizes():
    with pytest.raises(ValueError, match="batch of >= 2"):
        mss_log_weights(1, 10)
    with pytest.raises(ValueError, match="dataset_size"):
        mss_log_weights(8, 4)


@pytest.mark.parametrize("estimator", ["mws", "mss"])
def test_one_latent_has_zero_total_correlation(estimator, posterior):
    z, mean, logvar = (t[:, :1] for t in posterior)
    d = tc_decomposition(z, mean, logvar, dataset_size=N, estimator=estimator)
    torch.testing.assert_close(d["log_qz"], d["log_prod_qzk"])


def test_unknown_estimator_rejected(posterior):
    with pytest.raises(ValueError, match="estimator must be one of"):
        tc_decomposition(*posterior, dataset_size=N, estimator="bogus")


# -- DIP-VAE --------------------------------------------------------------------------------
def test_dip_covariances_match_numpy(posterior):
    _, mean, logvar = posterior
    cov_mu = np.cov(mean.numpy(), rowvar=False, bias=True)
    np.testing.assert_allclose(dip_covariance(mean, logvar, dip_type="i").numpy(), cov_mu, 1e-5)
    cov_ii = cov_mu + np.diag(np.exp(logvar.numpy()).mean(0))
    np.testing.assert_allclose(dip_covariance(mean, logvar, dip_type="ii").numpy(), cov_ii, 1e-5)
    with pytest.raises(ValueError, match="dip_type"):
        dip_covariance(mean, logvar, dip_type="iii")


def test_dip_regularizer_matches_loops():
    c = np.array([[1.5, 0.2, -0.1], [0.2, 0.7, 0.3], [-0.1, 0.3, 1.0]])
    expected = 0.0
    for i in range(3):
        for j in range(3):
            expected += 2.0 * c[i, j] ** 2 if i != j else 7.0 * (c[i, i] - 1) ** 2
    got = dip_regularizer(torch.tensor(c), lambda_od=2.0, lambda_d=7.0)
    assert float(got) == pytest.approx(expected)


# -- reconstruction --------------------------------------------------------------------------
def test_reconstruction_losses_match_formulas():
    g = torch.Generator().manual_seed(1)
    logits = torch.randn(3, 2, 4, 4, generator=g)
    x = torch.rand(3, 2, 4, 4, generator=g)
    p = torch.sigmoid(logits)
    bce = -(x * p.log() + (1 - x) * (1 - p).log()).flatten(1)
    torch.testing.assert_close(reconstruction_loss(logits, x), bce.sum(1))
    torch.testing.assert_close(reconstruction_loss(logits, x, reduction="mean"), bce.mean(1))
    l2 = ((p - x) ** 2).flatten(1).sum(1)
    torch.testing.assert_close(reconstruction_loss(logits, x, kind="gaussian"), l2)
    with pytest.raises(ValueError, match="reconstruction must be one of"):
        reconstruction_loss(logits, x, kind="poisson")
    with pytest.raises(ValueError, match="reduction"):
        reconstruction_loss(logits, x, reduction="max")


def test_losses_are_float32_under_bfloat16_inputs():
    logits = torch.zeros(2, 1, 4, 4, dtype=torch.bfloat16)
    assert reconstruction_loss(logits, torch.ones(2, 1, 4, 4)).dtype == torch.float32
    mean = torch.zeros(2, 3, dtype=torch.bfloat16)
    assert gaussian_kl(mean, mean).dtype == torch.float32
