"""Autoencoders with quantized latents: QLAE, VQ-VAE, FSQ-AE and FactorQVAE.

- ``qlae``: Hsu, Dorrell, Whittington, Wu, Finn, "Disentanglement via Latent Quantization",
  NeurIPS 2023; reference ``kylehkhsu/latent_quantization`` (``models/quantized_ae.py``,
  ``models/ae.py``; METHODS.md §1).
- ``vq_vae``: van den Oord et al., NeurIPS 2017, in the configuration of QLAE's VQ-VAE
  baseline (``models/vqvae.py``, ``latents/vector_quantized.py``; METHODS.md §1 Baselines).
- ``fsq_ae``: an autoencoder with finite scalar quantization (Mentzer et al., ICLR 2024;
  METHODS.md §6) trained with QLAE's recipe.
- ``factor_qvae``: Baykal, Kandemir, Unal, "Disentanglement with Factor Quantized Variational
  Autoencoders", 2024; reference ``ituvisionlab/FactorQVAE`` (``models/factor_qvae.py``,
  ``quantizers/relaxed_vq_quantizer.py``; METHODS.md §9).

The first three share one shape: encoder → quantizer (:mod:`disentkit.quantizers`) →
decoder, a Bernoulli reconstruction loss plus the quantizer's weighted auxiliary losses, and
LQ's two-group optimiser (:meth:`param_groups`). FactorQVAE has a relaxed categorical
posterior over a global scalar codebook and a total-correlation discriminator trained in an
extra step.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

from disentkit.models._base import Encoding, ExtraStep, Model, Output, register_model
from disentkit.models._checks import check_clip, check_image_model, check_nonnegative
from disentkit.nn import build_decoder, build_encoder, split_weight_decay
from disentkit.quantizers import FSQ, Quantizer, build_quantizer
from disentkit.quantizers._base import check_float, check_int

# -- config validation --------------------------------------------------------------------


def _decoder_options(config: Any) -> dict[str, Any]:
    return {"style_activation": config.style_activation} if config.arch == "qlae" else {}


def _bernoulli(logits: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Sigmoid cross-entropy of ``logits`` against ``x`` in [0, 1], mean over every element."""
    return F.binary_cross_entropy_with_logits(logits.float(), x.float())


# -- the shared encoder → quantizer → decoder model ---------------------------------------


class QuantizedAutoencoder(Model):
    """Encoder → quantizer → decoder with a Bernoulli reconstruction (base of three models).

    Subclasses build ``self.quantizer`` and set ``self._loss_weights`` (weight per quantizer
    loss name) and ``self._quantizer_shape`` (how ``(B, F)`` encoder outputs are viewed for
    the quantizer).

    ``encode`` returns ``Encoding(z=codes, mean=pre-quantization encoder output,
    quantized=codes, indices, aux=quantizer aux)``, all flattened to ``(B, ·)``.
    """

    quantizer: Quantizer

    def __init__(self, config: Any, *, latent_features: int) -> None:
        super().__init__(config)
        self.encoder = build_encoder(
            config.arch, image_shape=config.image_shape, out_features=latent_features
        )
        self.decoder = build_decoder(
            config.arch,
            image_shape=config.image_shape,
            in_features=latent_features,
            **_decoder_options(config),
        )
        self._quantizer_shape: tuple[int, ...] = (latent_features,)
        self._loss_weights: dict[str, float] = {}

    def encode(self, x: torch.Tensor) -> Encoding:
        pre = self.encoder(x)  # (B, F)
        codes, indices, aux = self.quantizer(pre.reshape(-1, *self._quantizer_shape))
        batch = pre.shape[0]
        codes = codes.reshape(batch, -1)  # (B, F)
        return Encoding(
            z=codes,
            mean=pre,
            quantized=codes,
            indices=indices.reshape(batch, -1),  # (B, n_indices)
            aux=aux,
        )

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.decoder(z)

    def loss(
        self, x: torch.Tensor, out: Output, step: int = 0
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Bernoulli reconstruction (mean over pixels and batch) + weighted quantizer losses.

        The reference averages the sigmoid cross-entropy over ``C×H×W`` and then over the
        batch (``losses/reconstruction.py`` L8-9), and its loss weights are calibrated for
        that scale, so this is a mean rather than a per-sample sum. ``terms`` holds every
        unweighted term and the quantizer's statistics.
        """
        aux = out.encoding.aux
        reconstruction = _bernoulli(out.logits, x)
        total = reconstruction
        for name in self.quantizer.loss_names:
            total = total + self._loss_weights[name] * aux[name]
        terms = {"reconstruction": reconstruction.detach()}
        terms.update({k: v.detach() for k, v in aux.items()})
        return total, terms

    def param_groups(self) -> list[dict[str, Any]]:
        """LQ's optimiser split (``models/ae.py`` L54-82; METHODS.md §1 Optimizer).

        - ``"regularized"``: every weight array (conv kernels, linear weights, norm scales,
          the decoder's ``input_map``): AdamW with ``weight_decay`` and element-wise gradient
          value clipping at ``clip_value`` (``torch.nn.utils.clip_grad_value_`` on this group
          only, before the step).
        - ``"unregularized"``: every bias and every quantizer parameter (the codebook
          values): Adam, no decay, no clipping.

        Each dict carries ``name``, ``params``, ``weight_decay``, ``clip_value`` and
        ``optimizer`` (``"adamw"``/``"adam"``) for the trainer; AdamW with
        ``weight_decay=0`` is Adam, so one ``torch.optim.AdamW`` over both groups
        implements it.
        """
        decay, no_decay = split_weight_decay(self, exclude=("quantizer.",))
        return [
            {
                "name": "regularized",
                "params": decay,
                "weight_decay": self.config.weight_decay,
                "clip_value": self.config.clip_value,
                "optimizer": "adamw",
            },
            {
                "name": "unregularized",
                "params": no_decay,
                "weight_decay": 0.0,
                "clip_value": None,
                "optimizer": "adam",
            },
        ]


# -- QLAE ---------------------------------------------------------------------------------


@dataclass
class QLAEConfig:
    """QLAE options; defaults are the reference's (METHODS.md §1)."""

    image_shape: tuple[int, int, int] = (3, 64, 64)  # (C, H, W) of the images
    arch: str = "dlib"  # encoder/decoder ("dlib": fast default; "qlae": the paper's recipe)
    n_latents: int = 10  # latent dimensions; the reference uses 2 × the number of factors
    n_values: int = 10  # values per latent's scalar codebook
    init_range: tuple[float, float] = (-0.5, 0.5)  # linspace init of the values (⚠ 1)
    optimize_values: bool = True  # learn the codebook values
    global_codebook: bool = False  # one codebook shared by all latents (the ablation)
    quantization_weight: float = 0.01  # weight of mean (sg(z) − z_q)²
    commitment_weight: float = 0.01  # weight of mean (z − sg(z_q))²
    weight_decay: float = 0.1  # AdamW decay of the weights; 0.001 for MPI3D (⚠ 2)
    clip_value: float | None = 1.0  # element-wise gradient clip of the weights; None: off
    style_activation: str = "relu"  # qlae decoder: activation of style scale/shift (⚠ 6)

    def __post_init__(self) -> None:
        check_image_model(self)
        self.init_range = tuple(self.init_range)  # type: ignore[assignment]
        check_nonnegative(self, "quantization_weight", "commitment_weight", "weight_decay")
        check_clip(self)


@register_model(
    "qlae",
    config=QLAEConfig,
    description="Quantized-latent autoencoder: a learnable scalar codebook per latent",
    reference="Hsu et al., Disentanglement via Latent Quantization, NeurIPS 2023",
)
class QLAE(QuantizedAutoencoder):
    """Quantized-latent autoencoder (Hsu et al., NeurIPS 2023; METHODS.md §1).

    Each of ``n_latents`` encoder outputs is snapped to the nearest of its own ``n_values``
    learnable scalars (:class:`disentkit.quantizers.ScalarQuantizer`), straight-through.
    Loss: Bernoulli reconstruction + 0.01·quantization + 0.01·commitment. Optimiser: see
    :meth:`param_groups` (weight decay 0.1 on every weight is what makes it disentangle).

    Representations: ``"quantized"`` (codebook values, default), ``"indices"``, ``"mean"``
    (the pre-quantization encoder output).

    Example:
        >>> import torch
        >>> from disentkit.models import build_model
        >>> model = build_model("qlae", image_shape=(1, 16, 16), arch="dlib", n_latents=4)
        >>> out = model(torch.rand(2, 1, 16, 16))
        >>> total, terms = model.loss(torch.rand(2, 1, 16, 16), out)
        >>> sorted(terms)
        ['commitment', 'perplexity', 'quantization', 'reconstruction', 'usage']
        >>> model.representation(torch.rand(2, 1, 16, 16), "indices").shape
        torch.Size([2, 4])
    """

    representation_kinds = ("quantized", "indices", "mean")
    vectorize_refusal = None
    vectorized_options = ("weight_decay",)

    def __init__(self, config: QLAEConfig) -> None:
        super().__init__(config, latent_features=config.n_latents)
        self.quantizer = build_quantizer(
            "global_scalar" if config.global_codebook else "scalar",
            config.n_latents,
            n_values=config.n_values,
            init_range=config.init_range,
            optimize_values=config.optimize_values,
        )
        self._loss_weights = {
            "quantization": config.quantization_weight,
            "commitment": config.commitment_weight,
        }


# -- VQ-VAE -------------------------------------------------------------------------------


@dataclass
class VQVAEConfig:
    """VQ-VAE options; defaults are QLAE's VQ-VAE baseline (METHODS.md §1 Baselines, §7)."""

    image_shape: tuple[int, int, int] = (3, 64, 64)  # (C, H, W) of the images
    arch: str = "dlib"  # encoder/decoder ("dlib": fast default; "qlae": the paper's recipe)
    n_latents: int = 10  # number of codes per image (n_z); the reference uses 2 × factors
    code_dim: int = 64  # dimension of each code vector
    n_codes: int = 512  # entries of the codebook shared by all n_latents codes
    codebook_weight: float = 1.0  # weight of mean ‖sg(z) − e‖² (unused with ema)
    commitment_weight: float = 0.25  # β, weight of mean ‖z − sg(e)‖²
    ema: bool = False  # EMA codebook updates instead of the codebook loss (Sonnet)
    decay: float = 0.99  # EMA decay γ (codebook and usage counts)
    eps: float = 1e-5  # Laplace smoothing of the EMA counts
    restart_threshold: float | None = None  # restart codes with EMA count below (Jukebox 1.0)
    codebook_init: str = "uniform"  # "uniform" U(±√(3/code_dim)) or "data" (first batch)
    weight_decay: float = 0.01  # AdamW decay of the weights (λ_l2)
    clip_value: float | None = 1.0  # element-wise gradient clip of the weights; None: off
    style_activation: str = "relu"  # qlae decoder: activation of style scale/shift (⚠ 6)

    def __post_init__(self) -> None:
        check_image_model(self)
        check_int("code_dim", self.code_dim, minimum=1)
        check_int("n_codes", self.n_codes, minimum=1)
        check_nonnegative(self, "codebook_weight", "commitment_weight", "weight_decay")
        check_clip(self)


@register_model(
    "vq_vae",
    config=VQVAEConfig,
    description="VQ-VAE: n_latents code vectors from one shared codebook",
    reference="van den Oord et al., Neural Discrete Representation Learning, NeurIPS 2017",
)
class VQVAE(QuantizedAutoencoder):
    """VQ-VAE as QLAE's baseline (METHODS.md §1 Baselines, §7).

    The encoder emits ``n_latents × code_dim`` features, viewed as ``n_latents`` vectors, each
    replaced by its nearest entry of one shared ``n_codes``-entry codebook
    (:class:`disentkit.quantizers.VectorQuantizer`). Loss: Bernoulli reconstruction +
    1·codebook + 0.25·commitment. Same optimiser split as QLAE with weight decay 0.01.

    Representation: ``"indices"`` (``(B, n_latents)``), the latents the paper scores. The
    code vectors and the pre-quantization features (``(B, n_latents·code_dim)``) are in
    ``encode(x).quantized`` and ``.mean`` but are not offered as representations, whose
    width is ``n_latents``.

    Example:
        >>> import torch
        >>> from disentkit.models import build_model
        >>> model = build_model("vq_vae", image_shape=(1, 16, 16), arch="dlib", n_latents=3)
        >>> model.encode(torch.rand(2, 1, 16, 16)).indices.shape
        torch.Size([2, 3])
    """

    representation_kinds = ("indices",)
    vectorize_refusal = (
        "its vector quantizer updates the codebook usage counts in place during the forward "
        "pass (and, as configured, EMA codebook, dead-code restarts and data initialisation)"
    )

    def __init__(self, config: VQVAEConfig) -> None:
        super().__init__(config, latent_features=config.n_latents * config.code_dim)
        self.quantizer = build_quantizer(
            "vq",
            config.code_dim,
            n_codes=config.n_codes,
            ema=config.ema,
            decay=config.decay,
            eps=config.eps,
            restart_threshold=config.restart_threshold,
            init=config.codebook_init,
        )
        self._quantizer_shape = (config.n_latents, config.code_dim)  # (B, n_z, d)
        self._loss_weights = {
            "codebook": config.codebook_weight,
            "commitment": config.commitment_weight,
        }


# -- FSQ-AE -------------------------------------------------------------------------------


@dataclass
class FSQAEConfig:
    """FSQ autoencoder options (no reference; QLAE's recipe around an FSQ bottleneck)."""

    image_shape: tuple[int, int, int] = (3, 64, 64)  # (C, H, W) of the images
    arch: str = "dlib"  # encoder/decoder ("dlib": fast default; "qlae": the paper's recipe)
    n_latents: int = 10  # latent dimensions, a multiple of len(levels)
    levels: tuple[int, ...] = (10,)  # levels per dim of one group; (10,): each latent alone
    eps: float = 1e-3  # FSQ bound margin ε
    shift: str = "atanh"  # FSQ bound shift: "atanh" (exact) or "tan" (notebook)
    weight_decay: float = 0.1  # AdamW decay of the weights (QLAE's value)
    clip_value: float | None = 1.0  # element-wise gradient clip of the weights; None: off
    style_activation: str = "relu"  # qlae decoder: activation of style scale/shift (⚠ 6)

    def __post_init__(self) -> None:
        check_image_model(self)
        self.levels = (self.levels,) if isinstance(self.levels, int) else tuple(self.levels)
        if self.n_latents % len(self.levels):
            raise ValueError(
                f"n_latents must be a multiple of len(levels) = {len(self.levels)}; "
                f"received n_latents={self.n_latents}"
            )
        check_nonnegative(self, "weight_decay")
        check_clip(self)


@register_model(
    "fsq_ae",
    config=FSQAEConfig,
    description="Autoencoder with finite scalar quantization of each latent",
    reference="Mentzer et al., Finite Scalar Quantization: VQ-VAE Made Simple, ICLR 2024",
)
class FSQAE(QuantizedAutoencoder):
    """Autoencoder with an FSQ bottleneck (Mentzer et al., ICLR 2024; METHODS.md §6).

    Layout (a choice; FSQ has no disentanglement reference): by default each of the
    ``n_latents`` dimensions is its own FSQ group with ``L = 10`` levels, so every latent is
    an ordinal variable with as many values as a QLAE latent and ``indices`` are per latent.
    The difference from QLAE is then only the fixed, evenly spaced, tanh-bounded grid in
    place of learned values. ``levels=(8, 5, 5, 5)`` gives the paper's grouped layout (one
    index per 4 dimensions, 2^10 codes each). There are no auxiliary losses; the loss is the
    Bernoulli reconstruction and the optimiser is QLAE's split with weight decay 0.1.

    Representations: ``"quantized"`` (codes in ``[−1, 1]``, default), ``"indices"``
    (``(B, n_latents / len(levels))``), ``"mean"`` (the unbounded encoder output).

    Example:
        >>> import torch
        >>> from disentkit.models import build_model
        >>> model = build_model("fsq_ae", image_shape=(1, 16, 16), arch="dlib", n_latents=4)
        >>> model.representation(torch.rand(2, 1, 16, 16)).abs().max() <= 1
        tensor(True)
    """

    representation_kinds = ("quantized", "indices", "mean")
    vectorize_refusal = None
    vectorized_options = ("weight_decay",)

    def __init__(self, config: FSQAEConfig) -> None:
        super().__init__(config, latent_features=config.n_latents)
        self.quantizer: FSQ = build_quantizer(  # type: ignore[assignment]
            "fsq", config.n_latents, levels=config.levels, eps=config.eps, shift=config.shift
        )


# -- FactorQVAE ---------------------------------------------------------------------------


@dataclass
class FactorQVAEConfig:
    """FactorQVAE options; defaults are the reference's for Shapes3D (METHODS.md §9)."""

    image_shape: tuple[int, int, int] = (3, 64, 64)  # (C, H, W) of the images
    arch: str = "dlib"  # encoder/decoder ("dlib": fast default; "qlae": the paper's recipe)
    n_latents: int = 10  # latent dimensions (reference: Shapes3D 12, MPI3D 14, Isaac3D 18)
    n_codes: int = 64  # scalars in the global codebook shared by all latents
    kl_weight: float = 1e-3  # weight of KL(q(c|x) ‖ uniform); 5e-5 Isaac3D and MPI3D
    tc_weight: float = 1e-4  # γ of the total-correlation term; 5e-5 Isaac3D, 1e-6 MPI3D
    temperature: float = 1.0  # Gumbel-softmax temperature at step 0
    temperature_decay: float = 1e-5  # τ = temperature·exp(−decay·step); 0: constant τ
    hard: bool = False  # straight-through hard one-hot samples instead of soft ones
    tc_batch: str = "split"  # discriminator: "split" (permute 2nd half) or "same" batch
    disc_layers: int = 6  # linear layers of the discriminator MLP
    disc_hidden: int = 1000  # width of its hidden layers
    disc_lr: float = 1e-3  # discriminator Adam learning rate
    disc_betas: tuple[float, float] = (0.9, 0.999)  # discriminator Adam betas
    style_activation: str = "relu"  # qlae decoder: activation of style scale/shift (⚠ 6)

    def __post_init__(self) -> None:
        check_image_model(self)
        check_int("n_codes", self.n_codes, minimum=2)
        check_int("disc_layers", self.disc_layers, minimum=2)
        check_int("disc_hidden", self.disc_hidden, minimum=1)
        check_nonnegative(self, "kl_weight", "tc_weight", "temperature_decay")
        check_float("temperature", self.temperature, low=0.0)
        check_float("disc_lr", self.disc_lr, low=0.0)
        self.disc_betas = tuple(self.disc_betas)  # type: ignore[assignment]
        if self.tc_batch not in ("split", "same"):
            raise ValueError(
                f"tc_batch must be one of ['split', 'same']; received {self.tc_batch!r}"
            )


@dataclass
class RelaxedEncoding(Encoding):
    """An :class:`Encoding` with FactorQVAE's per-latent assignment weights.

    Attributes:
        weights: ``(B, D, K)`` relaxed one-hot assignments (Gumbel-softmax samples in
            training, hard one-hots in evaluation), the discriminator's input.
        log_probs: ``(B, D, K)`` log posterior ``log q(c_j = k | x)``.
    """

    weights: torch.Tensor | None = None
    log_probs: torch.Tensor | None = None


class RelaxedScalarCodebook(nn.Module):
    """FactorQVAE's bottleneck: a relaxed categorical choice among ``n_codes`` global scalars.

    For each latent ``z_j`` the posterior over the codebook is ``softmax(−(z_j − v_k)²)``
    (``quantizers/relaxed_vq_quantizer.py``). Training draws Gumbel-softmax weights ``w`` at
    temperature ``τ`` and outputs ``Σ_k w_k v_k``; evaluation takes the nearest value. Math in
    float32 with autocast off. Values start ``N(0, 1)`` (``nn.Embedding``'s default, the
    reference's ``init_type: normal``).

    Args:
        n_codes: scalars in the codebook.
        dim: latents per image, each quantized with the same codebook.
    """

    def __init__(self, n_codes: int, dim: int) -> None:
        super().__init__()
        self.n_codes = n_codes
        self.dim = dim
        self.values = nn.Parameter(torch.randn(n_codes))  # (K,)

    def codebook_values(self) -> tuple[torch.Tensor, ...]:
        """The shared codebook, ascending (detached float32), once per latent: the
        :meth:`disentkit.quantizers.Quantizer.codebook_values` contract."""
        shared = self.values.detach().float().sort().values  # (K,)
        return (shared,) * self.dim

    def codebook_vectors(self) -> None:
        """``None``: each latent is a scalar (see :meth:`codebook_values`)."""
        return None

    def forward(
        self, z: torch.Tensor, temperature: float, hard: bool
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """``z`` ``(B, D)`` → ``(codes, quantized, indices, weights, log_probs)``."""
        with torch.autocast(device_type=z.device.type, enabled=False):
            z = z.float()
            values = self.values.float()
            logits = -(z.unsqueeze(-1) - values).square()  # (B, D, K)
            log_probs = logits.log_softmax(-1)  # (B, D, K)
            if self.training:
                weights = F.gumbel_softmax(logits, tau=temperature, hard=hard, dim=-1)
                indices = weights.argmax(-1)  # (B, D)
            else:
                indices = logits.argmax(-1)  # (B, D): the nearest value
                weights = F.one_hot(indices, self.n_codes).float()  # (B, D, K)
            codes = weights @ values  # (B, D)
            quantized = values.detach()[indices]  # (B, D)
        return codes, quantized, indices, weights, log_probs


def _permute_dims(weights: torch.Tensor) -> torch.Tensor:
    """Shuffle each latent independently across the batch: ``(B, D, K)`` → ``(B, D, K)``."""
    b, d, k = weights.shape
    perm = torch.rand(b, d, device=weights.device).argsort(0)  # (B, D), a permutation per latent
    return weights.gather(0, perm.unsqueeze(-1).expand(b, d, k))


@register_model(
    "factor_qvae",
    config=FactorQVAEConfig,
    description="Discrete VAE over a global scalar codebook with a total-correlation penalty",
    reference="Baykal, Kandemir, Unal, Disentanglement with Factor Quantized VAEs, 2024",
)
class FactorQVAE(Model):
    """FactorQVAE (Baykal, Kandemir, Unal 2024; METHODS.md §9).

    The encoder emits one scalar per latent; its posterior over a global codebook of
    ``n_codes`` learnable scalars is ``softmax(−(z_j − v_k)²)``, relaxed with Gumbel-softmax
    at temperature ``τ(step) = temperature·exp(−temperature_decay·step)``
    (:class:`RelaxedScalarCodebook`). Loss (reference reductions):

    - reconstruction: MSE between ``sigmoid(logits)`` and ``x``, mean over every element;
    - ``kl_weight`` · KL of each latent's posterior to the uniform prior, summed over the
      codebook, averaged over latents and batch;
    - ``tc_weight`` · the total-correlation estimate ``mean(D_0 − D_1)`` of a FactorVAE
      discriminator ``D`` on the flattened assignment weights ``(B, D·K)`` (class 0 real,
      1 permuted). The discriminator is trained by :meth:`extra_steps` and excluded from
      :meth:`param_groups`; the TC term's gradient reaches only the encoder and codebook.

    The temperature needs the training step while ``forward(x)`` has none: ``forward`` and
    ``encode`` take an optional ``step`` and otherwise use the buffer ``temperature_step``,
    which :meth:`loss` sets to ``step + 1`` in training mode (the next step's forward).

    Representations: ``"quantized"`` (nearest codebook values, default), ``"indices"``,
    ``"mean"`` (the continuous encoder output).

    Example:
        >>> import torch
        >>> from disentkit.models import build_model
        >>> model = build_model(
        ...     "factor_qvae", image_shape=(1, 16, 16), arch="dlib", n_latents=3, disc_hidden=8
        ... )
        >>> x = torch.rand(4, 1, 16, 16)
        >>> total, terms = model.loss(x, model(x), step=0)
        >>> sorted(terms)
        ['kl', 'perplexity', 'reconstruction', 'tc', 'temperature']
        >>> [s.name for s in model.extra_steps()]
        ['discriminator']
    """

    representation_kinds = ("quantized", "indices", "mean")
    vectorize_refusal = (
        "it trains its discriminator in an extra optimiser step and draws Gumbel noise "
        "outside Model.noise"
    )
    temperature_step: torch.Tensor

    def __init__(self, config: FactorQVAEConfig) -> None:
        super().__init__(config)
        self.encoder = build_encoder(
            config.arch, image_shape=config.image_shape, out_features=config.n_latents
        )
        self.decoder = build_decoder(
            config.arch,
            image_shape=config.image_shape,
            in_features=config.n_latents,
            **_decoder_options(config),
        )
        self.quantizer = RelaxedScalarCodebook(config.n_codes, config.n_latents)
        width = config.n_latents * config.n_codes
        layers: list[nn.Module] = []
        for i in range(config.disc_layers - 1):
            layers += [
                nn.Linear(width if i == 0 else config.disc_hidden, config.disc_hidden),
                nn.LeakyReLU(0.2),
            ]
        layers.append(nn.Linear(config.disc_hidden, 2))
        self.discriminator = nn.Sequential(*layers)
        self.register_buffer("temperature_step", torch.zeros((), dtype=torch.int64))

    def temperature(self, step: int | None = None) -> float:
        """Gumbel-softmax temperature at ``step`` (default: the ``temperature_step`` buffer)."""
        step = int(self.temperature_step) if step is None else step
        return self.config.temperature * math.exp(-self.config.temperature_decay * step)

    def encode(self, x: torch.Tensor, step: int | None = None) -> RelaxedEncoding:
        pre = self.encoder(x)  # (B, D)
        codes, quantized, indices, weights, log_probs = self.quantizer(
            pre, self.temperature(step), self.config.hard
        )
        probs = log_probs.exp()
        # KL(q ‖ uniform) = Σ_k q_k (log q_k + log K), mean over latents and batch
        kl = (probs * (log_probs + math.log(self.config.n_codes))).sum(-1).mean()
        mean_probs = F.one_hot(indices, self.config.n_codes).float().mean((0, 1))  # (K,)
        perplexity = torch.exp(-torch.special.xlogy(mean_probs, mean_probs).sum())
        return RelaxedEncoding(
            z=codes,
            mean=pre,
            quantized=quantized,
            indices=indices,
            aux={"kl": kl, "perplexity": perplexity.detach()},
            weights=weights,
            log_probs=log_probs,
        )

    def forward(self, x: torch.Tensor, step: int | None = None) -> Output:
        enc = self.encode(x, step)
        return Output(encoding=enc, logits=self.decode(enc.z))

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.decoder(z)

    def _discriminate(self, weights: torch.Tensor, *, train: bool) -> torch.Tensor:
        """Discriminator logits ``(B, 2)`` of weights ``(B, D, K)``; ``train=False``: frozen."""
        flat = weights.reshape(weights.shape[0], -1)  # (B, D·K)
        if train:
            return self.discriminator(flat)
        frozen = {n: p.detach() for n, p in self.discriminator.named_parameters()}
        return functional_call(self.discriminator, frozen, (flat,))

    def loss(
        self, x: torch.Tensor, out: Output, step: int = 0
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        enc = out.encoding
        assert isinstance(enc, RelaxedEncoding) and enc.weights is not None
        reconstruction = F.mse_loss(torch.sigmoid(out.logits.float()), x.float())
        logits = self._discriminate(enc.weights, train=False)
        tc = (logits[:, 0] - logits[:, 1]).mean()
        total = reconstruction + self.config.kl_weight * enc.aux["kl"] + self.config.tc_weight * tc
        if self.training:
            self.temperature_step.fill_(step + 1)
        terms = {
            "reconstruction": reconstruction.detach(),
            "kl": enc.aux["kl"].detach(),
            "tc": tc.detach(),
            "perplexity": enc.aux["perplexity"],
            "temperature": torch.tensor(self.temperature(step), device=x.device),
        }
        return total, terms

    def discriminator_loss(
        self, x: torch.Tensor, step: int = 0
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Cross-entropy of the discriminator: real assignments vs per-latent permuted ones.

        ``tc_batch="split"`` (reference, 1Konny): the first half of ``x`` gives the real
        samples, the second half the permuted ones (independent of the real half);
        ``"same"`` (disentanglement_lib): the whole batch is both, permuted for the second.
        """
        with torch.no_grad():
            weights = self.encode(x, step).weights  # (B, D, K)
        assert weights is not None
        if self.config.tc_batch == "split":
            half = weights.shape[0] // 2
            if half == 0:
                raise ValueError("tc_batch='split' needs a batch of at least 2 images")
            real, other = weights[:half], weights[half : 2 * half]
        else:
            real, other = weights, weights
        logits_real = self._discriminate(real, train=True)
        logits_perm = self._discriminate(_permute_dims(other), train=True)
        zeros = torch.zeros(real.shape[0], dtype=torch.long, device=x.device)
        loss = 0.5 * (
            F.cross_entropy(logits_real.float(), zeros)
            + F.cross_entropy(logits_perm.float(), torch.ones_like(zeros))
        )
        accuracy = 0.5 * (
            (logits_real.argmax(-1) == 0).float().mean()
            + (logits_perm.argmax(-1) == 1).float().mean()
        )
        return loss, {"discriminator": loss.detach(), "discriminator_accuracy": accuracy}

    def param_groups(self) -> list[dict[str, Any]]:
        """One Adam group with every parameter except the discriminator's (reference)."""
        params = [
            p
            for n, p in self.named_parameters()
            if p.requires_grad and not n.startswith("discriminator.")
        ]
        return [
            {
                "name": "model",
                "params": params,
                "weight_decay": 0.0,
                "clip_value": None,
                "optimizer": "adam",
            }
        ]

    def extra_steps(self) -> list[ExtraStep]:
        """The discriminator's Adam step each iteration (reference lr 1e-3)."""
        return [
            ExtraStep(
                name="discriminator",
                parameters=lambda: list(self.discriminator.parameters()),
                loss=self.discriminator_loss,
                every=1,
                optimizer={"lr": self.config.disc_lr, "betas": self.config.disc_betas},
            )
        ]
