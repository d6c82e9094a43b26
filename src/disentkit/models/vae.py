"""The autoencoder and VAE-family baselines: AE, BioAE, VAE, β-VAE, annealed VAE, β-TCVAE,
FactorVAE, DIP-VAE-I and DIP-VAE-II.

All share one layout: an encoder from :func:`disentkit.nn.build_encoder` (``2·D`` outputs,
means then log-variances, for the VAEs; ``D`` for the autoencoders) and a decoder from
:func:`disentkit.nn.build_decoder` giving logits ``(B, C, H, W)``.

Loss conventions (see each class for its reference):

- VAEs: the reconstruction negative log-likelihood is summed over ``C×H×W`` and the KL over
  latents, per sample, then averaged over the batch (disentanglement_lib). LQ's β-VAE
  (``models/vae.py`` L42-61) writes ``BCE_mean + (n_z/x_dim)·β·KL_mean``, which is the same
  objective divided by ``x_dim = C·H·W``; the β values are the same in both conventions.
- AE and BioAE follow LQ (METHODS.md §1): the reconstruction is averaged over ``C×H×W`` and
  the BioAE penalties over latents, per sample, then averaged over the batch; their weights
  are relative to that scale.
- ``reconstruction="bernoulli"`` (default): sigmoid cross-entropy with logits;
  ``"gaussian"``: squared error of ``sigmoid(logits)`` (disentanglement_lib ``l2_loss``).
- ``weight_decay`` (λ_l2) and ``clip_value`` are exposed through :meth:`param_groups`:
  decayed and clipped weights, undecayed and unclipped biases
  (:func:`disentkit.nn.split_weight_decay`), for a decoupled-decay optimiser (AdamW), as
  LQ's optimiser (``models/ae.py`` L54-82) does for every model.
- ``posterior_scale`` (VAEs): how the encoder's second ``D`` outputs give σ — ``"exp"``
  (default): they are log-variances, σ = exp(h/2) (disentanglement_lib); ``"softplus"``:
  σ = softplus(h) (LQ ``latents/diagonal_gaussian.py``).

Sampling draws its noise through :meth:`~disentkit.models.Model.noise` (the global torch RNG,
seeded by the trainer, unless a vectorised trainer redirects it); no model keeps a step
counter — step-dependent losses read the ``step`` argument of :meth:`loss`. Every model here
but FactorVAE (its discriminator's extra step) trains vectorised, its loss weights and
``weight_decay`` allowed to differ between members (``vectorized_options``).

Example:
    >>> import torch
    >>> from disentkit.models import build_model
    >>> model = build_model("beta_vae", n_latents=4, image_shape=(1, 32, 32), beta=4.0)
    >>> x = torch.rand(3, 1, 32, 32)
    >>> total, terms = model.loss(x, model(x))
    >>> sorted(terms), model.representation(x).shape
    (['kl', 'reconstruction'], torch.Size([3, 4]))
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from disentkit.models._base import Encoding, ExtraStep, Model, Output, register_model
from disentkit.models._checks import check_choice, check_clip, check_nonnegative
from disentkit.models._losses import (
    RECONSTRUCTIONS,
    TC_ESTIMATORS,
    dip_covariance,
    dip_regularizer,
    gaussian_kl,
    reconstruction_loss,
    tc_decomposition,
)
from disentkit.nn import ARCHITECTURES, build_decoder, build_encoder, split_weight_decay

TC_BATCHES = ("independent", "same")
POSTERIOR_SCALES = ("exp", "softplus")


# -- configs ------------------------------------------------------------------------------
@dataclass
class AEConfig:
    """Options shared by every model in this module (the plain autoencoder's config)."""

    n_latents: int = 10  # D, latent dimensions
    image_shape: tuple[int, int, int] = (1, 64, 64)  # (C, H, W) of the input images
    arch: str = "dlib"  # encoder/decoder architecture, one of disentkit.nn.ARCHITECTURES
    reconstruction: str = "bernoulli"  # "bernoulli" (BCE with logits) or "gaussian" (L2)
    weight_decay: float = 0.0  # λ_l2 on weights, not biases (LQ AE baseline: 0)
    clip_value: float | None = None  # element-wise gradient clip of the weights (LQ: 1.0)

    def __post_init__(self) -> None:
        if isinstance(self.n_latents, bool) or not isinstance(self.n_latents, int):
            raise ValueError(f"n_latents must be a positive integer; received {self.n_latents!r}")
        if self.n_latents < 1:
            raise ValueError(f"n_latents must be a positive integer; received {self.n_latents!r}")
        shape = tuple(self.image_shape)
        if len(shape) != 3 or not all(isinstance(s, int) and s > 0 for s in shape):
            raise ValueError(
                f"image_shape must be (C, H, W) positive integers; received {self.image_shape!r}"
            )
        self.image_shape = shape  # a JSON list becomes a tuple again
        check_choice("arch", self.arch, ARCHITECTURES)
        check_choice("reconstruction", self.reconstruction, RECONSTRUCTIONS)
        check_nonnegative(self, "weight_decay")
        check_clip(self)


@dataclass
class BioAEConfig(AEConfig):
    """BioAE: an autoencoder with non-negative, energy-penalised latents (LQ baseline)."""

    weight_decay: float = 1e-4  # λ_l2 (LQ BioAE baseline, METHODS.md §1)
    nonneg_weight: float = 1.0  # weight of mean_j max(−z_j, 0) (LQ)
    activity_weight: float = 0.01  # weight of mean_j z_j² (LQ; 0.1 for Isaac3D)

    def __post_init__(self) -> None:
        super().__post_init__()
        check_nonnegative(self, "nonneg_weight", "activity_weight")


@dataclass
class VAEConfig(AEConfig):
    """The plain VAE (Kingma & Welling 2014): reconstruction + KL."""

    posterior_scale: str = "exp"  # σ from the encoder: "exp" (log-variance) or "softplus" (LQ)

    def __post_init__(self) -> None:
        super().__post_init__()
        check_choice("posterior_scale", self.posterior_scale, POSTERIOR_SCALES)


@dataclass
class BetaVAEConfig(VAEConfig):
    """β-VAE (Higgins et al. 2017): reconstruction + β·KL."""

    beta: float = 3.0  # KL weight (LQ Shapes3D; MPI3D 0.1, Falcor3D 10, Isaac3D 0.3)

    def __post_init__(self) -> None:
        super().__post_init__()
        check_nonnegative(self, "beta")


@dataclass
class AnnealedVAEConfig(VAEConfig):
    """Annealed VAE (Burgess et al. 2018): reconstruction + γ·|KL − C(step)|."""

    gamma: float = 1000.0  # weight of |KL − C| (Burgess et al.; disentanglement_lib)
    c_max: float = 25.0  # final capacity C in nats (Burgess et al. dSprites; dlib sweeps 5-100)
    anneal_steps: int = 100_000  # steps over which C grows linearly from 0 to c_max (dlib)

    def __post_init__(self) -> None:
        super().__post_init__()
        check_nonnegative(self, "gamma", "c_max")
        if isinstance(self.anneal_steps, bool) or not isinstance(self.anneal_steps, int):
            raise ValueError(
                f"anneal_steps must be an integer >= 1; received {self.anneal_steps!r}"
            )
        if self.anneal_steps < 1:
            raise ValueError(
                f"anneal_steps must be an integer >= 1; received {self.anneal_steps!r}"
            )


@dataclass
class BetaTCVAEConfig(VAEConfig):
    """β-TCVAE (Chen et al. 2018): ELBO with the total-correlation term weighted by β."""

    beta: float = 3.0  # TC weight (LQ Shapes3D/Falcor3D; MPI3D 0.3, Isaac3D 1)
    mi_weight: float = 1.0  # α, weight of the index-code mutual information (reference: 1)
    dim_kl_weight: float = 1.0  # γ, weight of the dimension-wise KL (reference: 1)
    estimator: str = "mws"  # "mws" (minibatch-weighted, reference default) or "mss"
    dataset_size: int = 480_000  # N in the estimators: set to len(dataset) (Shapes3D: 480000)

    def __post_init__(self) -> None:
        super().__post_init__()
        check_nonnegative(self, "beta", "mi_weight", "dim_kl_weight")
        check_choice("estimator", self.estimator, TC_ESTIMATORS)
        if isinstance(self.dataset_size, bool) or not isinstance(self.dataset_size, int):
            raise ValueError(
                f"dataset_size must be an integer >= 2; received {self.dataset_size!r}"
            )
        if self.dataset_size < 2:
            raise ValueError(
                f"dataset_size must be an integer >= 2; received {self.dataset_size!r}"
            )


@dataclass
class FactorVAEConfig(VAEConfig):
    """FactorVAE (Kim & Mnih 2018): VAE + γ·TC estimated by a discriminator."""

    gamma: float = 10.0  # TC weight (1Konny/FactorVAE dSprites; dlib sweeps 10-100)
    tc_batch: str = "independent"  # "independent": halves of the batch; "same": dlib
    discriminator_hidden: int = 1000  # width of the discriminator's hidden layers
    discriminator_layers: int = 6  # number of hidden layers (LeakyReLU 0.2)
    discriminator_lr: float = 1e-4  # Adam learning rate of the discriminator
    discriminator_betas: tuple[float, float] = (0.5, 0.9)  # Adam betas of the discriminator

    def __post_init__(self) -> None:
        super().__post_init__()
        check_nonnegative(self, "gamma", "discriminator_lr")
        check_choice("tc_batch", self.tc_batch, TC_BATCHES)
        for name in ("discriminator_hidden", "discriminator_layers"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer; received {value!r}")
        betas = tuple(self.discriminator_betas)
        if len(betas) != 2 or not all(0.0 <= b < 1.0 for b in betas):
            raise ValueError(
                f"discriminator_betas must be two numbers in [0, 1); "
                f"received {self.discriminator_betas!r}"
            )
        self.discriminator_betas = betas  # type: ignore[assignment]


@dataclass
class DIPVAEIConfig(VAEConfig):
    """DIP-VAE-I (Kumar et al. 2018): KL + moment matching of Cov[μ(x)]."""

    lambda_od: float = 10.0  # off-diagonal weight λ_od (dlib sweeps 1, 2, 5, 10, 20, 50)
    lambda_d_factor: float = 10.0  # λ_d = lambda_d_factor·λ_od (dlib: 10 for DIP-VAE-I)

    def __post_init__(self) -> None:
        super().__post_init__()
        check_nonnegative(self, "lambda_od", "lambda_d_factor")


@dataclass
class DIPVAEIIConfig(DIPVAEIConfig):
    """DIP-VAE-II (Kumar et al. 2018): KL + moment matching of E[diag σ²] + Cov[μ(x)]."""

    lambda_d_factor: float = 1.0  # λ_d = lambda_d_factor·λ_od (dlib: 1 for DIP-VAE-II)


# -- models -------------------------------------------------------------------------------
class _EncoderDecoder(Model):
    """Encoder and decoder built from the config; the weight-decay parameter groups."""

    def __init__(self, config: AEConfig, *, encoder_features: int) -> None:
        super().__init__(config)
        self.encoder = build_encoder(
            config.arch, image_shape=config.image_shape, out_features=encoder_features
        )
        self.decoder = build_decoder(
            config.arch, image_shape=config.image_shape, in_features=config.n_latents
        )

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.decoder(z)

    def _optimised_modules(self) -> nn.Module:
        return self

    def param_groups(self) -> list[dict[str, Any]]:
        """One group, or weights and biases apart when ``weight_decay > 0`` or ``clip_value``
        is set: the weights decayed and clipped, the biases neither (LQ ``models/ae.py``)."""
        module = self._optimised_modules()
        cfg = self.config
        if cfg.weight_decay == 0 and cfg.clip_value is None:
            return [{"params": [p for p in module.parameters() if p.requires_grad]}]
        decay, no_decay = split_weight_decay(module)
        return [
            {"params": decay, "weight_decay": float(cfg.weight_decay),
             "clip_value": cfg.clip_value},
            {"params": no_decay, "weight_decay": 0.0, "clip_value": None},
        ]


@register_model(
    "ae",
    config=AEConfig,
    description="deterministic autoencoder (LQ baseline, λ_l2 = 0)",
    reference="Hsu et al., NeurIPS 2023, Sec. 5 baselines; kylehkhsu/latent_quantization",
)
class AE(_EncoderDecoder):
    """A deterministic autoencoder: loss = BCE averaged over ``C×H×W``, per sample.

    The LQ baseline (METHODS.md §1 Baselines) with ``weight_decay = 0``.
    """

    representation_kinds = ("mean",)
    vectorize_refusal = None
    vectorized_options = ("weight_decay",)

    def __init__(self, config: AEConfig) -> None:
        super().__init__(config, encoder_features=config.n_latents)

    def encode(self, x: torch.Tensor) -> Encoding:
        z = self.encoder(x)  # (B, D)
        return Encoding(z=z, mean=z)

    def _penalty(self, z: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        return torch.zeros_like(z[:, 0]), {}

    def loss(
        self, x: torch.Tensor, out: Output, step: int = 0
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        recon = reconstruction_loss(
            out.logits, x, kind=self.config.reconstruction, reduction="mean"
        )  # (B,)
        penalty, terms = self._penalty(out.encoding.z.float())  # (B,)
        total = (recon + penalty).mean()
        return total, {"reconstruction": recon.mean().detach(), **terms}


@register_model(
    "bioae",
    config=BioAEConfig,
    description="autoencoder with non-negativity and activity penalties on the latents",
    reference="Whittington et al., ICLR 2023 (biological constraints); LQ baseline",
)
class BioAE(AE):
    """BioAE: ``BCE_mean + w_n·mean_j max(−z_j, 0) + w_a·mean_j z_j²`` per sample.

    Whittington, Dorrell, Ganguli, Behrens, "Disentanglement with Biological Constraints",
    ICLR 2023; the LQ baseline's weights (METHODS.md §1 Baselines): non-negativity 1,
    activity 0.01, λ_l2 = 1e-4.
    """

    vectorized_options = ("weight_decay", "nonneg_weight", "activity_weight")

    def _penalty(self, z: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        nonneg = F.relu(-z).mean(1)  # (B,)
        activity = z.square().mean(1)  # (B,)
        penalty = self.config.nonneg_weight * nonneg + self.config.activity_weight * activity
        return penalty, {"nonneg": nonneg.mean().detach(), "activity": activity.mean().detach()}


@register_model(
    "vae",
    config=VAEConfig,
    description="variational autoencoder, Gaussian posterior and N(0, I) prior",
    reference="Kingma & Welling, ICLR 2014; disentanglement_lib methods/unsupervised/vae.py",
)
class VAE(_EncoderDecoder):
    """Gaussian VAE: loss = reconstruction (summed over pixels) + regulariser.

    The encoder's ``2·D`` outputs are the means and the scale parameters ``h`` (log-variances
    with ``posterior_scale="exp"``; σ = softplus(h) with ``"softplus"``, the encoding's
    ``logvar`` is then ``2·log σ``); ``z`` is sampled with the reparameterisation trick
    (global torch RNG). Subclasses change :meth:`_regularizer`.
    """

    representation_kinds = ("mean", "sampled")
    vectorize_refusal = None
    vectorized_options = ("weight_decay",)

    def __init__(self, config: VAEConfig) -> None:
        super().__init__(config, encoder_features=2 * config.n_latents)

    def encode(self, x: torch.Tensor) -> Encoding:
        h = self.encoder(x)  # (B, 2·D)
        mean, scale = h.chunk(2, dim=1)  # 2 × (B, D)
        if self.config.posterior_scale == "softplus":
            sigma = F.softplus(scale)  # (B, D)
            logvar = 2.0 * torch.log(sigma)
        else:
            logvar = scale
            sigma = torch.exp(0.5 * logvar)
        z = mean + self.noise(mean) * sigma  # (B, D)
        return Encoding(z=z, mean=mean, logvar=logvar)

    def _regularizer(
        self, enc: Encoding, kl: torch.Tensor, step: int
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The batch-averaged regulariser; ``kl`` is the per-sample KL ``(B,)``."""
        return kl.mean(), {}

    def loss(
        self, x: torch.Tensor, out: Output, step: int = 0
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        enc = out.encoding
        recon = reconstruction_loss(out.logits, x, kind=self.config.reconstruction)  # (B,)
        kl = gaussian_kl(enc.mean, enc.logvar).sum(1)  # (B,)
        reg, terms = self._regularizer(enc, kl, step)
        total = recon.mean() + reg
        return total, {
            "reconstruction": recon.mean().detach(),
            "kl": kl.mean().detach(),
            **terms,
        }


@register_model(
    "beta_vae",
    config=BetaVAEConfig,
    description="β-VAE: reconstruction + β·KL",
    reference="Higgins et al., ICLR 2017; LQ models/vae.py L42-61",
)
class BetaVAE(VAE):
    """β-VAE: ``recon + β·KL``, both summed per sample (LQ's per-pixel form divides by
    ``x_dim``: ``BCE_mean + (n_z/x_dim)·β·KL_mean``, the same β)."""

    vectorized_options = ("weight_decay", "beta")

    def _regularizer(
        self, enc: Encoding, kl: torch.Tensor, step: int
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        return self.config.beta * kl.mean(), {}


@register_model(
    "annealed_vae",
    config=AnnealedVAEConfig,
    description="annealed VAE: recon + γ·|KL − C|, C increased linearly to c_max",
    reference="Burgess et al., 2018 (arXiv:1804.03599); disentanglement_lib vae.py AnnealedVAE",
)
class AnnealedVAE(VAE):
    """Annealed (capacity-controlled) VAE: ``recon + γ·|E_batch[KL] − C(step)|``.

    ``C(step) = c_max · min(1, step / anneal_steps)`` (disentanglement_lib ``anneal``); the
    absolute value is taken of the batch-mean KL, as there. ``step`` is the optimiser step
    passed to :meth:`loss`.
    """

    vectorized_options = ("weight_decay", "gamma", "c_max")

    def capacity(self, step: int | torch.Tensor) -> float | torch.Tensor:
        """``C(step)`` in nats."""
        fraction = step / self.config.anneal_steps
        if isinstance(fraction, torch.Tensor):
            return self.config.c_max * fraction.clamp(max=1.0)
        return self.config.c_max * min(1.0, float(fraction))

    def _regularizer(
        self, enc: Encoding, kl: torch.Tensor, step: int
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        c = torch.as_tensor(self.capacity(step), dtype=kl.dtype, device=kl.device)
        return self.config.gamma * (kl.mean() - c).abs(), {"capacity": c.detach()}


@register_model(
    "beta_tcvae",
    config=BetaTCVAEConfig,
    description="β-TCVAE: ELBO decomposition with β on the total correlation (MWS or MSS)",
    reference="Chen et al., NeurIPS 2018; rtqichen/beta-tcvae vae_quant.py L194-257",
)
class BetaTCVAE(VAE):
    """β-TCVAE: ``recon + α·MI + β·TC + γ·dim-KL`` (METHODS.md §7).

    Per sample, with the estimators of :func:`disentkit.models._losses.tc_decomposition`:
    ``MI = log q(z|x) − log q(z)``, ``TC = log q(z) − Σ_k log q(z_k)``,
    ``dim-KL = Σ_k log q(z_k) − log p(z)``; with α = β = γ = 1 the sum is the single-sample
    KL estimate ``log q(z|x) − log p(z)``. ``estimator="mss"`` uses the stratified weights on
    the diagonal as Chen et al. intend (the reference code's stride bug is not reproduced).
    LQ (``models/tcvae.py`` L34-56) uses MWS scaled per pixel (the same objective divided by
    ``x_dim``); disentanglement_lib instead uses ``KL + (β−1)·TC`` with constants dropped.
    """

    vectorized_options = ("weight_decay", "beta", "mi_weight", "dim_kl_weight")

    def _regularizer(
        self, enc: Encoding, kl: torch.Tensor, step: int
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        cfg = self.config
        d = tc_decomposition(
            enc.z, enc.mean, enc.logvar, dataset_size=cfg.dataset_size, estimator=cfg.estimator
        )
        mi = (d["log_qz_x"] - d["log_qz"]).mean()
        tc = (d["log_qz"] - d["log_prod_qzk"]).mean()
        dim_kl = (d["log_prod_qzk"] - d["log_pz"]).mean()
        reg = cfg.mi_weight * mi + cfg.beta * tc + cfg.dim_kl_weight * dim_kl
        return reg, {"mi": mi.detach(), "tc": tc.detach(), "dim_kl": dim_kl.detach()}


def permute_dims(z: torch.Tensor) -> torch.Tensor:
    """Shuffle each column of ``z`` ``(B, D)`` independently across the batch.

    Samples from the product of the marginals of the batch (Kim & Mnih 2018, Alg. 1).

    Example:
        >>> z = torch.arange(6.0).view(3, 2)
        >>> permute_dims(z).sort(0).values.equal(z)
        True
    """
    order = torch.argsort(torch.rand(z.shape, device=z.device), dim=0)  # (B, D)
    return torch.gather(z, 0, order)


def _discriminator(in_features: int, hidden: int, layers: int) -> nn.Sequential:
    modules: list[nn.Module] = []
    width = in_features
    for _ in range(layers):
        modules += [nn.Linear(width, hidden), nn.LeakyReLU(0.2)]
        width = hidden
    modules.append(nn.Linear(width, 2))  # logits of (from q(z), from Π_k q(z_k))
    return nn.Sequential(*modules)


@register_model(
    "factor_vae",
    config=FactorVAEConfig,
    description="FactorVAE: VAE + γ·TC estimated by a latent discriminator",
    reference="Kim & Mnih, ICML 2018; 1Konny/FactorVAE solver.py; disentanglement_lib",
)
class FactorVAE(VAE):
    """FactorVAE: ``recon + KL + γ·E[D_0(z) − D_1(z)]`` with a discriminator ``D``.

    ``D`` is an MLP (``discriminator_layers`` × ``discriminator_hidden``, LeakyReLU 0.2, 2
    logits: class 0 = a code from q(z), class 1 = a per-dimension permuted code). Its logit
    difference estimates the density ratio ``log q(z) / Π_k q(z_k)``, i.e. the TC.

    Batches (``tc_batch``):

    - ``"independent"`` (default; Kim & Mnih Alg. 1 and 1Konny use two independent
      batches): the batch is split in two halves. The VAE loss and the TC term use the
      first ``B − ⌊B/2⌋`` samples; the discriminator sees the codes of that first half as
      class 0 and a per-dimension permutation of the codes of the second half as class 1.
      The VAE therefore trains on half of each batch: feed twice the reference batch size.
    - ``"same"`` (disentanglement_lib): VAE loss on the whole batch; the discriminator's
      class 1 is a permutation of the same batch's codes.

    The discriminator is trained by the extra step from :meth:`extra_steps` (cross-entropy,
    Adam lr 1e-4, betas (0.5, 0.9)); its parameters are not in :meth:`param_groups`, and the
    VAE loss evaluates it with detached weights, so the VAE's backward pass leaves its
    gradients untouched. The reference VAE optimiser is Adam lr 1e-4, betas (0.9, 0.999).
    """

    vectorize_refusal = "it trains its discriminator in an extra optimiser step"
    vectorized_options = ()

    def __init__(self, config: FactorVAEConfig) -> None:
        super().__init__(config)
        self.discriminator = _discriminator(
            config.n_latents, config.discriminator_hidden, config.discriminator_layers
        )

    def _n_first(self, batch_size: int) -> int:
        """Number of samples in the first half (the VAE's and the discriminator's class 0)."""
        if self.config.tc_batch == "same":
            return batch_size
        if batch_size < 2:
            raise ValueError(
                f"factor_vae with tc_batch='independent' splits the batch in two and needs "
                f"at least 2 samples; received a batch of {batch_size}"
            )
        return batch_size - batch_size // 2

    def _optimised_modules(self) -> nn.Module:
        return nn.ModuleList([self.encoder, self.decoder])

    def _frozen_discriminator(self, z: torch.Tensor) -> torch.Tensor:
        params = {name: p.detach() for name, p in self.discriminator.named_parameters()}
        return torch.func.functional_call(self.discriminator, params, (z,))

    def loss(
        self, x: torch.Tensor, out: Output, step: int = 0
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        n = self._n_first(x.shape[0])
        enc = out.encoding
        recon = reconstruction_loss(out.logits[:n], x[:n], kind=self.config.reconstruction)
        kl = gaussian_kl(enc.mean[:n], enc.logvar[:n]).sum(1)  # (n,)
        logits = self._frozen_discriminator(enc.z[:n].float())  # (n, 2)
        tc = (logits[:, 0] - logits[:, 1]).mean()
        total = recon.mean() + kl.mean() + self.config.gamma * tc
        return total, {
            "reconstruction": recon.mean().detach(),
            "kl": kl.mean().detach(),
            "tc": tc.detach(),
        }

    def discriminator_loss(
        self, x: torch.Tensor, step: int = 0
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Cross-entropy of the discriminator on codes of ``x`` vs permuted codes."""
        n = self._n_first(x.shape[0])
        with torch.no_grad():
            z = self.encode(x).z.float()  # (B, D)
        real = z[:n]  # (n, D)
        permuted = permute_dims(z[n:] if self.config.tc_batch == "independent" else z)
        logits_real = self.discriminator(real)  # (n, 2)
        logits_perm = self.discriminator(permuted)  # (B − n or B, 2)
        zeros = torch.zeros(len(real), dtype=torch.long, device=z.device)
        ones = torch.ones(len(permuted), dtype=torch.long, device=z.device)
        loss = 0.5 * (F.cross_entropy(logits_real, zeros) + F.cross_entropy(logits_perm, ones))
        accuracy = 0.5 * (
            (logits_real.argmax(1) == 0).float().mean()
            + (logits_perm.argmax(1) == 1).float().mean()
        )
        return loss, {"discriminator": loss.detach(), "discriminator_accuracy": accuracy}

    def extra_steps(self) -> list[ExtraStep]:
        return [
            ExtraStep(
                name="discriminator",
                parameters=lambda: list(self.discriminator.parameters()),
                loss=self.discriminator_loss,
                every=1,
                optimizer={
                    "lr": float(self.config.discriminator_lr),
                    "betas": tuple(self.config.discriminator_betas),
                },
            )
        ]


class _DIPVAE(VAE):
    dip_type = "i"
    vectorized_options = ("weight_decay", "lambda_od", "lambda_d_factor")

    def _regularizer(
        self, enc: Encoding, kl: torch.Tensor, step: int
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        cfg = self.config
        cov = dip_covariance(enc.mean, enc.logvar, dip_type=self.dip_type)  # (D, D)
        dip = dip_regularizer(
            cov, lambda_od=cfg.lambda_od, lambda_d=cfg.lambda_d_factor * cfg.lambda_od
        )
        return kl.mean() + dip, {"dip": dip.detach()}


@register_model(
    "dip_vae_i",
    config=DIPVAEIConfig,
    description="DIP-VAE-I: KL + λ_od·off-diagonal² + λ_d·(diagonal − 1)² of Cov[μ(x)]",
    reference="Kumar et al., ICLR 2018; disentanglement_lib vae.py L286-371",
)
class DIPVAEI(_DIPVAE):
    """DIP-VAE-I: ``recon + KL + λ_od Σ_{i≠j} C_ij² + λ_d Σ_i (C_ii − 1)²``, ``C = Cov[μ(x)]``
    over the batch, ``λ_d = lambda_d_factor·λ_od`` (10·λ_od by default)."""

    dip_type = "i"


@register_model(
    "dip_vae_ii",
    config=DIPVAEIIConfig,
    description="DIP-VAE-II: DIP-VAE-I's penalty on E[diag σ²] + Cov[μ(x)]",
    reference="Kumar et al., ICLR 2018; disentanglement_lib vae.py L286-371",
)
class DIPVAEII(_DIPVAE):
    """DIP-VAE-II: as DIP-VAE-I with ``C = E[diag σ²(x)] + Cov[μ(x)]`` and
    ``λ_d = λ_od`` by default."""

    dip_type = "ii"
