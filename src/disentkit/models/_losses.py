"""Loss math shared by the autoencoder and VAE-family models.

Everything here works per sample: a function returns ``(B,)`` (or ``(B, D)``) values and the
model averages over the batch. Values are computed in float32, also under autocast.

- :func:`reconstruction_loss`: Bernoulli (sigmoid cross-entropy with logits) or Gaussian
  (squared error of ``sigmoid(logits)``) negative log-likelihood, summed or averaged over
  ``C×H×W``; disentanglement_lib ``methods/unsupervised/losses.py`` (``bernoulli_loss``,
  ``l2_loss``).
- :func:`gaussian_kl`: ``KL(N(μ, σ²) ‖ N(0, 1))`` per latent dimension.
- :func:`gaussian_log_density`, :func:`pairwise_log_density`: ``log N(z; μ, σ²)`` and the
  ``(B, B, D)`` table ``L_ijk = log q(z_ik | x_j)``.
- :func:`mss_log_weights`, :func:`tc_decomposition`: the β-TCVAE estimators of ``log q(z)``
  and ``Σ_k log q(z_k)`` (Chen et al. 2018; ``rtqichen/beta-tcvae:vae_quant.py``
  L194-257; METHODS.md §7).
- :func:`dip_covariance`, :func:`dip_regularizer`: DIP-VAE's moment matching (Kumar et al.
  2018; disentanglement_lib ``methods/unsupervised/vae.py`` L286-371).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

RECONSTRUCTIONS = ("bernoulli", "gaussian")
TC_ESTIMATORS = ("mws", "mss")
DIP_TYPES = ("i", "ii")
_LOG_2PI = math.log(2 * math.pi)


def reconstruction_loss(
    logits: torch.Tensor, x: torch.Tensor, *, kind: str = "bernoulli", reduction: str = "sum"
) -> torch.Tensor:
    """Per-sample reconstruction loss ``(B,)`` of images ``x`` in ``[0, 1]`` from ``logits``.

    Args:
        logits: decoder output ``(B, C, H, W)``.
        x: targets ``(B, C, H, W)`` in ``[0, 1]``.
        kind: ``"bernoulli"``: sigmoid cross-entropy with logits (dlib ``bernoulli_loss``);
            ``"gaussian"``: ``(sigmoid(logits) − x)²`` (dlib ``l2_loss``; the Gaussian
            negative log-likelihood with variance 1/2, constants dropped).
        reduction: ``"sum"`` over ``C×H×W`` (disentanglement_lib's VAEs) or ``"mean"``
            (LQ's autoencoders, ``losses/reconstruction.py`` L8-9).

    Example:
        >>> logits = torch.zeros(2, 1, 4, 4)
        >>> reconstruction_loss(logits, torch.ones(2, 1, 4, 4), reduction="mean")
        tensor([0.6931, 0.6931])
    """
    logits, x = logits.float(), x.float()
    if kind == "bernoulli":
        per_pixel = F.binary_cross_entropy_with_logits(logits, x, reduction="none")
    elif kind == "gaussian":
        per_pixel = (torch.sigmoid(logits) - x).square()
    else:
        raise ValueError(
            f"reconstruction must be one of {list(RECONSTRUCTIONS)}; received {kind!r}"
        )
    per_pixel = per_pixel.flatten(1)  # (B, C·H·W)
    if reduction == "sum":
        return per_pixel.sum(1)
    if reduction == "mean":
        return per_pixel.mean(1)
    raise ValueError(f"reduction must be 'sum' or 'mean'; received {reduction!r}")


def gaussian_kl(mean: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """``KL(N(mean, exp(logvar)) ‖ N(0, 1))`` per dimension, ``(B, D)``.

    ``0.5 · (μ² + σ² − 1 − log σ²)``.

    Example:
        >>> gaussian_kl(torch.tensor([[0.0, 1.0]]), torch.zeros(1, 2))
        tensor([[0.0000, 0.5000]])
    """
    mean, logvar = mean.float(), logvar.float()
    return 0.5 * (mean.square() + logvar.exp() - 1.0 - logvar)


def gaussian_log_density(z: torch.Tensor, mean: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """Element-wise ``log N(z; mean, exp(logvar))`` (broadcasting)."""
    z, mean, logvar = z.float(), mean.float(), logvar.float()
    return -0.5 * (_LOG_2PI + logvar + (z - mean).square() * torch.exp(-logvar))


def pairwise_log_density(z: torch.Tensor, mean: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """``L[i, j, k] = log q(z_ik | x_j)``: each sample's code under each posterior, ``(B, B, D)``.

    Args:
        z: samples ``(B, D)``; mean, logvar: posterior parameters ``(B, D)``.
    """
    # (B, 1, D) against (1, B, D) -> (B, B, D)
    return gaussian_log_density(z[:, None, :], mean[None, :, :], logvar[None, :, :])


def mss_log_weights(batch_size: int, dataset_size: int) -> torch.Tensor:
    """Log importance weights ``log W`` ``(B, B)`` of minibatch-stratified sampling.

    With ``M = B − 1`` and ``N`` the dataset size, row ``i`` holds ``1/N`` on the diagonal
    (the sample's own posterior), ``(N − M)/(N·M)`` at column ``(i + 1) mod B`` (the stratum
    sample) and ``1/M`` elsewhere; each row sums to 1. This is the matrix Chen et al. intend
    (Appendix C.2). The reference ``log_importance_weight_matrix`` writes ``1/N`` with stride
    ``M + 1 = B`` on the flattened matrix, which fills column 0 instead of the diagonal, and
    the stratum weight into column 1 (rtqichen/beta-tcvae PR #1); that version is not
    reproduced.

    Example:
        >>> mss_log_weights(3, 10).exp()
        tensor([[0.1000, 0.4000, 0.5000],
                [0.5000, 0.1000, 0.4000],
                [0.4000, 0.5000, 0.1000]])
    """
    if batch_size < 2:
        raise ValueError(
            f"minibatch-stratified sampling needs a batch of >= 2; received {batch_size}"
        )
    if dataset_size < batch_size:
        raise ValueError(
            f"dataset_size must be >= the batch size {batch_size}; received {dataset_size}"
        )
    n, m = float(dataset_size), float(batch_size - 1)
    w = torch.full((batch_size, batch_size), 1.0 / m)
    idx = torch.arange(batch_size)
    w[idx, idx] = 1.0 / n
    w[idx, (idx + 1) % batch_size] = (n - m) / (n * m)
    return w.log()


def tc_decomposition(
    z: torch.Tensor,
    mean: torch.Tensor,
    logvar: torch.Tensor,
    *,
    dataset_size: int,
    estimator: str = "mws",
) -> dict[str, torch.Tensor]:
    """Per-sample log densities of the β-TCVAE decomposition, each ``(B,)``.

    With ``L_ijk = log q(z_ik | x_j)`` (:func:`pairwise_log_density`), ``N`` the dataset size
    and ``M`` the batch size:

    - ``"mws"`` (minibatch-weighted sampling): ``log q(z_i) = LSE_j Σ_k L_ijk − log(N·M)``,
      ``Σ_k log q(z_ik) = Σ_k [LSE_j L_ijk − log(N·M)]``;
    - ``"mss"`` (minibatch-stratified sampling): ``log W_ij`` (:func:`mss_log_weights`) is
      added inside each log-sum-exp instead of subtracting ``log(N·M)``.

    Returns:
        ``log_qz_x`` = log q(z|x), ``log_qz`` = log q(z), ``log_prod_qzk`` = Σ_k log q(z_k),
        ``log_pz`` = log p(z) under the standard normal prior.

    Example:
        >>> torch.manual_seed(0) and None
        >>> z, mu, lv = torch.randn(4, 2), torch.randn(4, 2), torch.zeros(4, 2)
        >>> d = tc_decomposition(z, mu, lv, dataset_size=100)
        >>> sorted(d), tuple(d["log_qz"].shape)
        (['log_prod_qzk', 'log_pz', 'log_qz', 'log_qz_x'], (4,))
    """
    if estimator not in TC_ESTIMATORS:
        raise ValueError(f"estimator must be one of {list(TC_ESTIMATORS)}; received {estimator!r}")
    batch_size = z.shape[0]
    log_qz_x = gaussian_log_density(z, mean, logvar).sum(1)  # (B,)
    zeros = torch.zeros((), device=z.device)
    log_pz = gaussian_log_density(z, zeros, zeros).sum(1)  # (B,)
    table = pairwise_log_density(z, mean, logvar)  # (B, B, D)
    if estimator == "mws":
        log_norm = math.log(dataset_size * batch_size)
        log_qz = torch.logsumexp(table.sum(2), dim=1) - log_norm  # (B,)
        log_prod_qzk = (torch.logsumexp(table, dim=1) - log_norm).sum(1)  # (B, D) -> (B,)
    else:
        log_w = mss_log_weights(batch_size, dataset_size).to(table.device)  # (B, B)
        log_qz = torch.logsumexp(table.sum(2) + log_w, dim=1)  # (B,)
        log_prod_qzk = torch.logsumexp(table + log_w[:, :, None], dim=1).sum(1)  # (B,)
    return {"log_qz_x": log_qz_x, "log_qz": log_qz, "log_prod_qzk": log_prod_qzk, "log_pz": log_pz}


def dip_covariance(mean: torch.Tensor, logvar: torch.Tensor, *, dip_type: str) -> torch.Tensor:
    """The covariance DIP-VAE pushes towards the identity, ``(D, D)``.

    ``"i"``: ``Cov[μ(x)]`` over the batch (biased, divides by ``B``, as dlib's
    ``compute_covariance_z_mean``); ``"ii"``: ``E[diag σ²(x)] + Cov[μ(x)]``.
    """
    mean = mean.float()
    centred = mean - mean.mean(0, keepdim=True)  # (B, D)
    cov = centred.T @ centred / mean.shape[0]  # (D, D)
    if dip_type == "i":
        return cov
    if dip_type == "ii":
        return cov + torch.diag(logvar.float().exp().mean(0))
    raise ValueError(f"dip_type must be one of {list(DIP_TYPES)}; received {dip_type!r}")


def dip_regularizer(cov: torch.Tensor, *, lambda_od: float, lambda_d: float) -> torch.Tensor:
    """``λ_od Σ_{i≠j} C_ij² + λ_d Σ_i (C_ii − 1)²`` (a scalar).

    Example:
        >>> dip_regularizer(torch.eye(3), lambda_od=1.0, lambda_d=10.0)
        tensor(0.)
    """
    diag = torch.diagonal(cov)
    off_diag = cov - torch.diag(diag)
    return lambda_od * off_diag.square().sum() + lambda_d * (diag - 1.0).square().sum()
