"""A factorized-quantization autoencoder (FQGAN adapted to disentanglement datasets): ``fq_ae``.

Bai et al., "Factorized Visual Tokenization and Generation", arXiv 2411.16681 (2024)
(FQGAN); reference code ``showlab/FQGAN``: ``vq_model_dual.py`` (factorized quantizer,
adapters, disentanglement loss), ``clip_encoder.py``/``dino_encoder.py`` (teachers),
``vq_loss.py`` (losses, discriminator schedule). METHODS.md §5.

The model. A shared encoder (``arch``: the ``dlib`` or ``qlae`` conv encoder of
:mod:`disentkit.nn`) maps an image to ``features`` values; ``n_codebooks`` (``k``) adapters
each map them to ``n_tokens`` vectors of ``code_dim`` values, quantized by their own
sub-codebook of ``codebook_size`` entries
(:class:`~disentkit.quantizers.cosine.CosineQuantizer`, the reference's L2-normalised
quantizer with its vq, commitment and entropy losses). The ``k·n_tokens`` quantized vectors
are concatenated (sub-codebook-major) and decoded by the ``arch`` decoder. Each
sub-codebook's index per token is one discrete latent: ``encode(x).indices`` is
``(B, k·n_tokens)``, the default representation, so a metric's latent-by-factor matrix says
which sub-codebook captured which factor.

Loss (each weight a config field; defaults in brackets are the reference's):

- reconstruction [1]: ``"mse"`` (default) is the reference's MSE between images in
  ``[−1, 1]``, computed as ``mean((2σ(logits) − 1 − (2x − 1))²) = 4·mean((σ(logits) − x)²)``
  so the other weights keep the reference's balance; ``"bernoulli"`` is the sigmoid
  cross-entropy averaged over pixels, as the other quantized models. The reference adds
  LPIPS (weight 1); there is none here (no pretrained network is downloaded).
- per sub-codebook [1, 0.25, 0.03]: ``codebook + 0.25·commitment + 0.03·entropy``, summed
  over sub-codebooks (METHODS.md §5.1, 5.4);
- disentanglement [0.1]: :func:`codebook_disentanglement_loss` of the straight-through
  codes: the squared cosine similarity between each pair of sub-codebooks' normalised
  vectors, averaged over batch, tokens and pairs (METHODS.md §5.2). Computed on the
  straight-through outputs, so its gradient reaches the adapters and encoder, never the
  codebook entries (⚠ ambiguity 9, the reference's behaviour);
- alignment [0.5] when a ``teacher`` is set: :func:`info_nce` between a projection of the
  ``align_codebook`` sub-codebook's codes and the frozen teacher's features (METHODS.md §5.3;
  the reference aligns sub-codebook 1, "sem", in FQGAN-Dual);
- generator [0.5] with ``use_discriminator``: ``−mean D(x̂)`` from step ``disc_start``
  (20k in the reference); the PatchGAN discriminator ``D`` is trained by an extra step with
  the hinge loss ``disc_weight·0.5·(mean relu(1 − D(x)) + mean relu(1 + D(x̂)))``.

Logged terms: every unweighted loss, plus per sub-codebook ``i``: ``usage/i`` (distinct indices
among the last ``usage_window`` assigned ones over ``codebook_size``, the reference's codebook
usage metric, from a ring buffer in the quantizer's registered buffers), ``batch_usage/i``
and ``perplexity/i`` of the batch, ``restarted/i`` (entries reset). The statistics are not
part of the total.

Optimiser (``param_groups``): one Adam group, lr 2e-4, betas (0.9, 0.95), no weight decay,
as the reference. The reference clips the global gradient norm at 1.0; the trainer offers
element-wise value clipping per group (``clip_value``, default 1.0 here), which is what is
used. The discriminator's step uses the same Adam settings without clipping (an
``ExtraStep.optimizer`` holds plain Adam arguments).

Adaptations to per-image latents on small images, each a deliberate simplification:

- No token map: the reference quantizes a 16×16 (or 32×32) feature map per sub-codebook;
  here each sub-codebook quantizes ``n_tokens`` vectors per image (default 1), each read by
  its adapter from the encoder's feature vector.
- Adapters: the reference's adapter is a positional embedding, 6 pre-LN transformer blocks
  (width 512) and LayerNorm, then GroupNorm → swish → 3×3 conv → 1×1 conv to 8. With one
  feature vector per image there is nothing to attend over, so an adapter here is
  ``adapter_depth`` pre-LN residual MLP blocks (LayerNorm → Linear ×4 → GELU → Linear), then
  LayerNorm → SiLU → Linear to ``n_tokens·code_dim`` (:class:`Adapter`).
- Projection head: the reference's head (Linear(8→D) → ReLU → Linear(D→D), a CLS token and
  3 transformer blocks, LayerNorm, the CLS output) becomes Linear(n_tokens·code_dim → D_t) →
  ReLU → Linear(D_t → D_t) → LayerNorm on the flattened codes of one image.
- Teachers: any module named by ``teacher`` (:mod:`disentkit.nn.teachers`: a registered
  name such as ``"random_conv"``, or ``"package.module:factory"``), given images in
  ``[0, 1]``. It is frozen, outside the optimiser and outside the saved weights: loading a
  saved model rebuilds it from its name, so the name must resolve where the model is loaded.
- Sizes: codebooks of 256 entries × 8 dimensions (the reference: 16384 × 8 for ImageNet);
  images of the dataset's size (any size the ``arch`` accepts).
- Dead-code restarts (not in the reference): ``restart_threshold=1.0`` (default) resets a
  sub-codebook entry whose usage count (EMA, decay 0.99) falls below 1 to a random adapter
  output of the current batch, as ``VectorQuantizer``'s Jukebox restarts; ``None`` turns
  them off. With one vector per image, the adapters' outputs for different images point
  almost the same way at initialisation, so the reference's uniform codebook assigns a
  whole batch to one entry, the entropy loss has no gradient at such hard assignments, and
  the model stays collapsed: on ``xyobject`` (batch 64, 3000 steps, one GPU) each
  sub-codebook used 1 of 256 entries and the reconstruction stayed at the mean image
  (0.056) without restarts; with them the whole codebook was in use (window usage 1.0) and
  the reconstruction reached 0.027. The reference's token maps give many different vectors
  per image from the start. ``codebook_init="data"`` (the first batch's vectors) is
  available too; restarts alone did better in that comparison.
- The discriminator sees images mapped to ``[−1, 1]`` (the reference's range); its step
  recomputes the reconstruction of the batch without gradients (the trainer's extra step
  receives the batch only), with the quantizers in eval mode: their usage windows, counts
  and restarts are left untouched.
- Before ``disc_start`` the discriminator step's loss is ``0·Σθ``: no forward pass (its
  BatchNorm statistics stay untouched) and zero gradients, which leave Adam's weights
  unchanged; Adam's step counter still advances, so its first real updates are slightly
  smaller than a fresh Adam's (a short warm-up). The reference likewise multiplies the
  discriminator loss by 0 before its start step (``adopt_weight``) and still steps the
  optimiser, but it runs the forward passes, so its BatchNorm statistics move earlier.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

from disentkit.models._base import Encoding, ExtraStep, Model, Output, register_model
from disentkit.models._checks import check_choice, check_nonnegative
from disentkit.nn import ARCHITECTURES, build_decoder, build_encoder
from disentkit.nn.teachers import FrozenTeacher, build_teacher
from disentkit.quantizers import build_quantizer
from disentkit.quantizers._base import check_float, check_int

__all__ = [
    "Adapter",
    "FQAEConfig",
    "FactorizedQuantizedAE",
    "PatchDiscriminator",
    "codebook_disentanglement_loss",
    "info_nce",
]

#: reconstruction losses of ``fq_ae``
RECONSTRUCTIONS = ("mse", "bernoulli")
_STYLE_ACTIVATIONS = ("relu", "none")
_CODEBOOK_INITS = ("uniform", "data")


# -- pure loss functions --------------------------------------------------------------------


def codebook_disentanglement_loss(codes: torch.Tensor) -> torch.Tensor:
    """Mean squared cosine similarity between the codes of different sub-codebooks.

    ``mean over positions and pairs a < b of ⟨q̂_a, q̂_b⟩²`` with ``q̂ = q/‖q‖``
    (METHODS.md §5.2): 0 when the sub-codebooks' vectors are orthogonal, 1 when they are
    parallel. The average over pairs of per-pair means equals the mean over every
    (position, pair), since every pair has the same number of positions.

    Args:
        codes: ``(..., k, dim)``: the ``k`` sub-codebooks' vectors at each position
            (leading axes: batch, tokens).

    Returns:
        a float32 scalar; 0 when ``k = 1`` (no pairs).

    Example:
        >>> codes = torch.tensor([[[1.0, 0.0], [0.0, 2.0]], [[1.0, 1.0], [2.0, 2.0]]])
        >>> round(float(codebook_disentanglement_loss(codes)), 6)  # (0 + 1) / 2
        0.5
    """
    if codes.ndim < 2:
        raise ValueError(f"codes must be (..., k, dim); received shape {tuple(codes.shape)}")
    k = codes.shape[-2]
    if k < 2:
        return codes.float().sum() * 0.0
    unit = F.normalize(codes.float(), dim=-1)  # (..., k, dim)
    gram = unit @ unit.transpose(-1, -2)  # (..., k, k) cosine similarities
    a, b = torch.triu_indices(k, k, offset=1, device=codes.device)  # pairs a < b
    return gram[..., a, b].square().mean()


def info_nce(
    predictions: torch.Tensor, targets: torch.Tensor, *, temperature: float = 1.0
) -> torch.Tensor:
    """Batch InfoNCE on cosine similarity, targets detached (METHODS.md §5.3).

    ``s_ij = cos(predictions_i, targets_j) / temperature`` and
    ``loss = −mean_i log(exp(s_ii) / Σ_j exp(s_ij))``: each prediction must pick its own
    target among the batch's.

    Args:
        predictions: ``(B, D)``.
        targets: ``(B, D)``; no gradient flows into them.
        temperature: ``τ`` (the reference: 1).

    Returns:
        a float32 scalar in ``[0, ∞)``; ``log B`` when every similarity is equal.

    Example:
        >>> round(float(info_nce(torch.eye(3), torch.eye(3))), 4)  # s = I
        0.5514
    """
    if predictions.ndim != 2 or predictions.shape != targets.shape:
        raise ValueError(
            f"predictions and targets must both be (B, D); received "
            f"{tuple(predictions.shape)} and {tuple(targets.shape)}"
        )
    p = F.normalize(predictions.float(), dim=-1)  # (B, D)
    t = F.normalize(targets.detach().float(), dim=-1)  # (B, D)
    logits = p @ t.T / temperature  # (B, B): s_ij
    return -logits.log_softmax(-1).diagonal().mean()


# -- modules --------------------------------------------------------------------------------


class _MLPBlock(nn.Module):
    """Pre-LN residual MLP block: ``h + Linear(GELU(Linear(LN(h))))``."""

    def __init__(self, width: int, hidden: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(width)
        self.fc1 = nn.Linear(width, hidden)
        self.fc2 = nn.Linear(hidden, width)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return h + self.fc2(F.gelu(self.fc1(self.norm(h))))


class Adapter(nn.Module):
    """One sub-codebook's adapter: shared features ``(B, F)`` → vectors ``(B, n_tokens, dim)``.

    ``depth`` pre-LN residual MLP blocks (hidden width ``4·F``), then LayerNorm → SiLU →
    Linear to ``n_tokens·dim`` (the MLP analogue of the reference's transformer adapter and
    its GroupNorm → swish → conv → ``quant_conv`` head).

    Args:
        features: width ``F`` of the shared encoder features.
        n_tokens: vectors per image.
        dim: code dimension.
        depth: residual MLP blocks (0: the head only).

    Example:
        >>> Adapter(16, n_tokens=2, dim=8)(torch.zeros(3, 16)).shape
        torch.Size([3, 2, 8])
    """

    def __init__(self, features: int, *, n_tokens: int, dim: int, depth: int = 1) -> None:
        super().__init__()
        self.n_tokens, self.dim = n_tokens, dim
        self.blocks = nn.Sequential(*[_MLPBlock(features, 4 * features) for _ in range(depth)])
        self.norm = nn.LayerNorm(features)
        self.out = nn.Linear(features, n_tokens * dim)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        h = self.blocks(h)  # (B, F)
        z = self.out(F.silu(self.norm(h)))  # (B, n_tokens·dim)
        return z.view(-1, self.n_tokens, self.dim)  # (B, n_tokens, dim)


class PatchDiscriminator(nn.Module):
    """PatchGAN discriminator (pix2pix ``NLayerDiscriminator``; METHODS.md §5.5).

    ``Conv(k4, s2) + LeakyReLU(0.2)``, then ``n_layers − 1`` blocks ``Conv(k4, s2, no bias) →
    BatchNorm → LeakyReLU(0.2)`` doubling the width (at most ``8·ndf``), one such block with
    stride 1, and ``Conv(k4, s1)`` to one logit per patch. Conv kernels ``N(0, 0.02)``,
    BatchNorm scales ``N(1, 0.02)``, biases 0. Images ``(B, C, H, W)`` → logits
    ``(B, 1, H/2^n − 2, W/2^n − 2)``, so ``H, W ≥ 3·2^n``.

    Args:
        channels: image channels ``C``.
        ndf: width of the first layer (64 in the reference).
        n_layers: stride-2 convolutions (3 in the reference).

    Example:
        >>> PatchDiscriminator(1, ndf=8)(torch.zeros(2, 1, 32, 32)).shape
        torch.Size([2, 1, 2, 2])
    """

    def __init__(self, channels: int, *, ndf: int = 64, n_layers: int = 3) -> None:
        super().__init__()
        layers: list[nn.Module] = [
            nn.Conv2d(channels, ndf, 4, stride=2, padding=1),
            nn.LeakyReLU(0.2),
        ]
        width = ndf
        for n in range(1, n_layers + 1):
            out = ndf * min(2**n, 8)
            stride = 2 if n < n_layers else 1
            layers += [
                nn.Conv2d(width, out, 4, stride=stride, padding=1, bias=False),
                nn.BatchNorm2d(out),
                nn.LeakyReLU(0.2),
            ]
            width = out
        layers.append(nn.Conv2d(width, 1, 4, stride=1, padding=1))
        self.net = nn.Sequential(*layers)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.normal_(m.weight, 0.0, 0.02)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.normal_(m.weight, 1.0, 0.02)
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)  # (B, 1, h', w')


# -- config ---------------------------------------------------------------------------------


@dataclass
class FQAEConfig:
    """``fq_ae`` options; weights and optimiser are FQGAN's (METHODS.md §5), sizes are small."""

    image_shape: tuple[int, int, int] = (3, 64, 64)  # (C, H, W) of the images
    arch: str = "dlib"  # encoder/decoder ("dlib": fast default; "qlae": QLAE's networks)
    n_codebooks: int = 2  # k sub-codebooks (FQGAN-Dual 2, FQGAN-Triple 3)
    n_tokens: int = 1  # vectors (discrete latents) per sub-codebook and image
    codebook_size: int = 256  # entries per sub-codebook (reference 16384, for ImageNet)
    code_dim: int = 8  # dimension of a code vector (reference 8)
    features: int = 256  # width of the shared encoder features the adapters read
    adapter_depth: int = 1  # residual MLP blocks per adapter (reference: 6 transformer blocks)
    reconstruction: str = "mse"  # "mse" (reference, on [−1, 1] images) or "bernoulli"
    reconstruction_weight: float = 1.0  # weight of the reconstruction loss
    codebook_weight: float = 1.0  # weight of mean (ê − sg(ẑ))², per sub-codebook ("vq")
    commitment_weight: float = 0.25  # weight of mean (sg(ê) − ẑ)², per sub-codebook
    entropy_weight: float = 0.03  # weight of E[H(p)] − H(E[p]), per sub-codebook
    entropy_temperature: float = 0.01  # p = softmax(−d / entropy_temperature)
    codebook_init: str = "uniform"  # "uniform": U(±1/K) (reference); "data": first batch
    restart_threshold: float | None = 1.0  # reset entries with EMA count below (None: never)
    disentangle_weight: float = 0.1  # weight of the mean squared cosine between sub-codebooks
    teacher: str | None = None  # frozen teacher: registered name or "package.module:factory"
    align_codebook: int = 1  # sub-codebook aligned with the teacher (reference: 1, "sem")
    align_weight: float = 0.5  # weight of the InfoNCE alignment loss
    align_temperature: float = 1.0  # InfoNCE temperature (reference: 1, ⚠ ambiguity 8)
    use_discriminator: bool = False  # train a PatchGAN discriminator (an extra step)
    disc_start: int = 20_000  # first step of the GAN losses (reference 20k)
    disc_weight: float = 0.5  # scale of the discriminator's hinge loss
    generator_weight: float = 0.5  # weight of −mean D(x̂) in the model's loss
    disc_channels: int = 64  # width of the discriminator's first layer (ndf)
    disc_layers: int = 3  # stride-2 convolutions of the discriminator
    usage_window: int = 65_536  # most recent indices the usage statistic counts over
    lr: float = 2e-4  # Adam learning rate of both steps (a run's lr overrides the main one)
    betas: tuple[float, float] = (0.9, 0.95)  # Adam betas of both steps
    clip_value: float | None = 1.0  # element-wise gradient clip of the model; None: off
    style_activation: str = "relu"  # qlae decoder: activation of style scale/shift (⚠ 6)

    def __post_init__(self) -> None:
        shape = tuple(self.image_shape)
        if len(shape) != 3 or not all(
            isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in shape
        ):
            raise ValueError(f"image_shape must be (C, H, W) positive ints; received {shape!r}")
        self.image_shape = shape  # type: ignore[assignment]  # a JSON list becomes a tuple
        check_choice("arch", self.arch, ARCHITECTURES)
        check_choice("reconstruction", self.reconstruction, RECONSTRUCTIONS)
        check_choice("style_activation", self.style_activation, _STYLE_ACTIVATIONS)
        check_choice("codebook_init", self.codebook_init, _CODEBOOK_INITS)
        for name, minimum in [
            ("n_codebooks", 1),
            ("n_tokens", 1),
            ("codebook_size", 2),
            ("code_dim", 1),
            ("features", 1),
            ("adapter_depth", 0),
            ("align_codebook", 0),
            ("disc_start", 0),
            ("disc_channels", 1),
            ("disc_layers", 1),
            ("usage_window", 1),
        ]:
            check_int(name, getattr(self, name), minimum=minimum)
        check_nonnegative(
            self,
            "reconstruction_weight",
            "codebook_weight",
            "commitment_weight",
            "entropy_weight",
            "disentangle_weight",
            "align_weight",
            "disc_weight",
            "generator_weight",
        )
        check_float("entropy_temperature", self.entropy_temperature, low=0.0)
        check_float("align_temperature", self.align_temperature, low=0.0)
        check_float("lr", self.lr, low=0.0)
        if self.clip_value is not None:
            check_float("clip_value", self.clip_value, low=0.0)
        if self.restart_threshold is not None:
            check_float("restart_threshold", self.restart_threshold, low=0.0)
        betas = tuple(self.betas)
        if len(betas) != 2 or not all(
            isinstance(b, int | float) and not isinstance(b, bool) and 0.0 <= b < 1.0 for b in betas
        ):
            raise ValueError(f"betas must be two numbers in [0, 1); received {self.betas!r}")
        self.betas = betas  # type: ignore[assignment]
        if not isinstance(self.use_discriminator, bool):
            raise ValueError(
                f"use_discriminator must be True or False; received {self.use_discriminator!r}"
            )
        if self.teacher is not None:
            if not isinstance(self.teacher, str) or not self.teacher:
                raise ValueError(
                    "teacher must be None, a registered teacher name or "
                    f"'package.module:factory'; received {self.teacher!r}"
                )
            if self.align_codebook >= self.n_codebooks:
                raise ValueError(
                    f"align_codebook must be in [0, n_codebooks={self.n_codebooks}); "
                    f"received {self.align_codebook!r}"
                )
        if self.use_discriminator:
            side = min(shape[1:])
            need = 3 * 2**self.disc_layers
            if side < need:
                raise ValueError(
                    f"a discriminator with disc_layers={self.disc_layers} needs images of at "
                    f"least {need}×{need}; received image_shape {shape!r}"
                )


# -- the model ------------------------------------------------------------------------------


@register_model(
    "fq_ae",
    config=FQAEConfig,
    description="Factorized-quantization autoencoder: k cosine sub-codebooks, "
    "a disentanglement loss between them, optional teacher alignment and PatchGAN",
    reference="Bai et al., Factorized Visual Tokenization and Generation, "
    "arXiv 2411.16681 (2024); showlab/FQGAN",
)
class FactorizedQuantizedAE(Model):
    """FQGAN's factorized quantization as a per-image autoencoder (see the module docstring).

    ``encode(x)`` returns ``z = quantized`` ``(B, k·n_tokens·code_dim)`` (straight-through
    codes, sub-codebook-major: sub-codebook 0's tokens first), ``mean`` the adapters' outputs
    before normalisation and quantization (same layout), ``indices`` ``(B, k·n_tokens)``
    int64 (column ``i·n_tokens + t``: sub-codebook ``i``, token ``t``) and ``aux`` with each
    sub-codebook's losses and statistics (``codebook/i``, ``commitment/i``, ``entropy/i``,
    ``usage/i``, ``batch_usage/i``, ``perplexity/i``, ``restarted/i``).

    Representations: ``"indices"`` (default) and ``"quantized"``.

    Example:
        >>> import torch
        >>> from disentkit.models import build_model
        >>> model = build_model("fq_ae", image_shape=(1, 32, 32), teacher="random_conv")
        >>> x = torch.rand(4, 1, 32, 32)
        >>> total, terms = model.loss(x, model(x), step=0)
        >>> sorted(t for t in terms if "/" not in t)
        ['align', 'codebook', 'commitment', 'disentangle', 'entropy', 'reconstruction']
        >>> model.representation(x).shape, model.representation(x, "quantized").shape
        (torch.Size([4, 2]), torch.Size([4, 16]))
    """

    representation_kinds = ("indices", "quantized")
    vectorize_refusal = (
        "its cosine quantizers update usage windows and restart dead codes in place during "
        "the forward pass, and its optional PatchGAN trains in an extra optimiser step"
    )

    def __init__(self, config: FQAEConfig) -> None:
        super().__init__(config)
        k, n, d = config.n_codebooks, config.n_tokens, config.code_dim
        self.encoder = build_encoder(
            config.arch, image_shape=config.image_shape, out_features=config.features
        )
        self.adapters = nn.ModuleList(
            Adapter(config.features, n_tokens=n, dim=d, depth=config.adapter_depth)
            for _ in range(k)
        )
        self.quantizers = nn.ModuleList(
            build_quantizer(
                "cosine_vq",
                d,
                n_codes=config.codebook_size,
                temperature=config.entropy_temperature,
                usage_window=config.usage_window,
                init=config.codebook_init,
                restart_threshold=config.restart_threshold,
            )
            for _ in range(k)
        )
        options = {"style_activation": config.style_activation} if config.arch == "qlae" else {}
        self.decoder = build_decoder(
            config.arch, image_shape=config.image_shape, in_features=k * n * d, **options
        )
        self.teacher: FrozenTeacher | None = None
        self.align_head: nn.Module | None = None
        if config.teacher is not None:
            self.teacher = build_teacher(config.teacher)
            probe = self.teacher(torch.zeros(1, *config.image_shape))  # (1, D_t)
            width = probe.shape[1]
            self.align_head = nn.Sequential(
                nn.Linear(n * d, width), nn.ReLU(), nn.Linear(width, width), nn.LayerNorm(width)
            )
        self.discriminator: PatchDiscriminator | None = None
        if config.use_discriminator:
            self.discriminator = PatchDiscriminator(
                config.image_shape[0], ndf=config.disc_channels, n_layers=config.disc_layers
            )

    # -- encode / decode ----------------------------------------------------------------------
    def encode(self, x: torch.Tensor) -> Encoding:
        h = self.encoder(x)  # (B, F)
        batch = h.shape[0]
        codes, indices, pre = [], [], []
        aux: dict[str, torch.Tensor] = {}
        for i, (adapter, quantizer) in enumerate(zip(self.adapters, self.quantizers, strict=True)):
            z = adapter(h)  # (B, n, d)
            c, idx, stats = quantizer(z)  # (B, n, d), (B, n)
            codes.append(c)
            indices.append(idx)
            pre.append(z)
            for name in ("codebook", "commitment", "entropy", "perplexity"):
                aux[f"{name}/{i}"] = stats[name]
            aux[f"usage/{i}"] = stats["window_usage"]
            aux[f"batch_usage/{i}"] = stats["usage"]
            aux[f"restarted/{i}"] = stats["restarted"]
        z = torch.stack(codes, 1).reshape(batch, -1)  # (B, k, n, d) -> (B, k·n·d)
        return Encoding(
            z=z,
            mean=torch.stack(pre, 1).reshape(batch, -1).float(),  # (B, k·n·d)
            quantized=z,
            indices=torch.stack(indices, 1).reshape(batch, -1),  # (B, k, n) -> (B, k·n)
            aux=aux,
        )

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.decoder(z)

    def split_codes(self, z: torch.Tensor) -> torch.Tensor:
        """The decoder input ``(B, k·n·d)`` viewed as ``(B, n_tokens, k, code_dim)``."""
        cfg = self.config
        return z.view(-1, cfg.n_codebooks, cfg.n_tokens, cfg.code_dim).transpose(1, 2)

    # -- losses -------------------------------------------------------------------------------
    def _reconstruction(self, logits: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        logits, x = logits.float(), x.float()
        if self.config.reconstruction == "bernoulli":
            return F.binary_cross_entropy_with_logits(logits, x)
        # MSE between images mapped to [−1, 1], the reference's scale
        return F.mse_loss(2 * torch.sigmoid(logits) - 1, 2 * x - 1)

    def _frozen_discriminator(self, images: torch.Tensor) -> torch.Tensor:
        """Discriminator logits with detached parameters (gradient reaches only ``images``)."""
        assert self.discriminator is not None
        frozen = {n: p.detach() for n, p in self.discriminator.named_parameters()}
        return functional_call(self.discriminator, frozen, (images,))

    def loss(
        self, x: torch.Tensor, out: Output, step: int = 0
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The generator objective (see the module docstring) and its unweighted terms."""
        cfg = self.config
        enc = out.encoding
        k = cfg.n_codebooks
        reconstruction = self._reconstruction(out.logits, x)
        codebook = sum(enc.aux[f"codebook/{i}"] for i in range(k))
        commitment = sum(enc.aux[f"commitment/{i}"] for i in range(k))
        entropy = sum(enc.aux[f"entropy/{i}"] for i in range(k))
        codes = self.split_codes(enc.z)  # (B, n, k, d), straight-through
        disentangle = codebook_disentanglement_loss(codes)
        total = (
            cfg.reconstruction_weight * reconstruction
            + cfg.codebook_weight * codebook
            + cfg.commitment_weight * commitment
            + cfg.entropy_weight * entropy
            + cfg.disentangle_weight * disentangle
        )
        terms: dict[str, torch.Tensor] = {
            "reconstruction": reconstruction.detach(),
            "codebook": codebook.detach(),
            "commitment": commitment.detach(),
            "entropy": entropy.detach(),
            "disentangle": disentangle.detach(),
        }
        if self.teacher is not None and self.align_head is not None:
            target = self.teacher(x)  # (B, D_t), no gradient
            chosen = codes[:, :, cfg.align_codebook].reshape(x.shape[0], -1)  # (B, n·d)
            align = info_nce(self.align_head(chosen), target, temperature=cfg.align_temperature)
            total = total + cfg.align_weight * align
            terms["align"] = align.detach()
        if self.discriminator is not None:
            if step >= cfg.disc_start:
                fake = 2 * torch.sigmoid(out.logits.float()) - 1  # (B, C, H, W) in [−1, 1]
                generator = -self._frozen_discriminator(fake).float().mean()
            else:
                generator = torch.zeros((), device=x.device)
            total = total + cfg.generator_weight * generator
            terms["generator"] = generator.detach()
        for i in range(k):
            for name in ("usage", "batch_usage", "perplexity", "restarted"):
                terms[f"{name}/{i}"] = enc.aux[f"{name}/{i}"].detach()
        return total, terms

    @contextmanager
    def _quantizers_in_eval(self) -> Iterator[None]:
        """Quantizers in eval mode (no window, count or restart updates), then restored."""
        modes = [q.training for q in self.quantizers]
        try:
            for q in self.quantizers:
                q.train(False)
            yield
        finally:
            for q, mode in zip(self.quantizers, modes, strict=True):
                q.train(mode)

    def discriminator_loss(
        self, x: torch.Tensor, step: int = 0
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """``disc_weight · 0.5·(mean relu(1 − D(x)) + mean relu(1 + D(x̂)))`` from ``disc_start``.

        Before ``disc_start``: ``0·Σθ`` (zero gradients, no forward pass).
        """
        cfg = self.config
        assert self.discriminator is not None
        if step < cfg.disc_start:
            zero = sum(p.sum() for p in self.discriminator.parameters()) * 0.0
            return zero, {"hinge": zero.detach()}
        with torch.no_grad(), self._quantizers_in_eval():
            fake = torch.sigmoid(self(x).logits.float())  # (B, C, H, W) in [0, 1]
        logits_real = self.discriminator(2 * x.float() - 1).float()
        logits_fake = self.discriminator(2 * fake - 1).float()
        hinge = 0.5 * (F.relu(1 - logits_real).mean() + F.relu(1 + logits_fake).mean())
        return cfg.disc_weight * hinge, {
            "hinge": hinge.detach(),
            "logits_real": logits_real.mean().detach(),
            "logits_fake": logits_fake.mean().detach(),
        }

    # -- optimisation -------------------------------------------------------------------------
    def param_groups(self) -> list[dict[str, Any]]:
        """One Adam group (lr 2e-4, betas (0.9, 0.95), no decay, element-wise clipping).

        Leaves out the discriminator (its own step) and the frozen teacher.
        """
        params = [
            p
            for name, p in self.named_parameters()
            if p.requires_grad and not name.startswith(("discriminator.", "teacher."))
        ]
        return [
            {
                "name": "model",
                "params": params,
                "optimizer": "adam",
                "lr": self.config.lr,
                "betas": tuple(self.config.betas),
                "weight_decay": 0.0,
                "clip_value": self.config.clip_value,
            }
        ]

    def extra_steps(self) -> list[ExtraStep]:
        """The discriminator's Adam step each iteration, with ``use_discriminator``."""
        if self.discriminator is None:
            return []
        discriminator = self.discriminator
        return [
            ExtraStep(
                name="discriminator",
                parameters=lambda: list(discriminator.parameters()),
                loss=self.discriminator_loss,
                every=1,
                optimizer={
                    "lr": self.config.lr,
                    "betas": tuple(self.config.betas),
                    "weight_decay": 0.0,
                },
            )
        ]
