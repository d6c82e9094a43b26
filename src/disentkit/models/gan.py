"""InfoGAN-style Wasserstein GANs with a gradient penalty: QLInfoWGAN-GP and InfoWGAN-GP.

Hsu, Dorrell, Whittington, Wu, Finn, "Disentanglement via Latent Quantization", NeurIPS
2023; reference code ``kylehkhsu/latent_quantization`` (JAX): ``models/info_gan.py``,
``models/quantized_info_gan.py`` L70-116, ``encoders/critic.py``, ``latents/quantized.py``,
``latents/continuous.py``, ``scripts/train_gan.py`` L203-209 (METHODS.md §2). The
Wasserstein loss with a gradient penalty is Gulrajani et al., "Improved Training of
Wasserstein GANs", NeurIPS 2017; the latent-code reconstruction is InfoGAN's (Chen et al.,
NeurIPS 2016) with a squared error.

- ``qlinfowgan_gp``: codes are drawn from a learnable scalar codebook per latent, the
  critic's latent head is quantized onto the same codebooks (QLAE's latent quantization).
- ``infowgan_gp``: the baseline with continuous codes ``z ~ U(0, 1)^n_latents``.

Parts (names as in the rest of disentkit):

- generator = ``decoder`` (:func:`disentkit.nn.build_decoder`, the architecture of QLAE and
  the dlib models); ``x_fake = sigmoid(decoder(z_fake))``.
- critic and encoder = ``encoder``, a :class:`~disentkit.nn.critic.CriticEncoder`: one image
  network whose features feed the latent head ``(B, n_latents)`` and the critic value
  ``D(x)`` ``(B,)``. ``encode(x)`` is the latent head (quantized for QLInfoWGAN-GP) and
  carries ``D(x)`` in :attr:`CriticEncoding.critic`.

Losses, each term a mean over the batch (and over latents for the latent terms), weights
from the config (reference values):

- critic/encoder (the trainer's main step, every iteration: :meth:`loss`):
  ``D(x_fake) − D(x) + 10·GP + 200·latent + 0.01·quantization + 0.01·commitment``, with
  ``GP = (‖∇_x̂ D(x̂)‖₂ − 1)²`` at ``x̂ = εx + (1 − ε)x_fake``, ``ε ~ U(0, 1)`` per image
  (:func:`gradient_penalty`), ``latent = mean (ẑ(x_fake) − z_fake)²`` on the encoder's
  straight-through code ``ẑ``, and the quantizer's losses on the fake images.
- generator (an :class:`~disentkit.models.ExtraStep` named ``"generator"`` every
  ``generator_every`` = 5 iterations: :meth:`generator_loss`):
  ``−D(x_fake) + 200·latent + 0.01·quantization + 0.01·commitment``.

Choices where the reference or the spec leaves room, each deliberate:

- The critic step draws its codes and fake images without gradient, and adds the
  quantization term detached. Both only carry gradient to the generator and the codebook
  values, which this step does not update (the reference differentiates it w.r.t. the
  encoder only), so the encoder's gradients are the reference's and the step leaves the
  generator's and codebook's gradients untouched, and costs no generator backward pass.
- The generator step evaluates the critic/encoder with detached parameters
  (:func:`torch.func.functional_call`): the gradient still flows through it to the fake
  images, but the encoder's parameters, which this step does not update, get none.
- The interpolates ``x̂`` are detached from ``x_fake``: the penalty trains the critic only.
  The gradient norm is over ``C×H×W`` per image, computed in float32 with
  ``create_graph=True`` (double backward) and grad mode forced on, so :meth:`loss` also
  evaluates under ``torch.no_grad()`` (not under ``torch.inference_mode()``).
- Ratio: the trainer takes an extra step when ``every`` divides the step, so the generator
  steps at ``t = 0, 5, 10, …``, after that iteration's critic step; the reference steps it
  when ``(t + 1) % 5 == 0`` (``t = 4, 9, …``). Same 1:5 ratio, offset by one generator step.
- Optimiser (reference ``info_gan.py`` L163-214): Adam, ``lr`` 2e-4, betas ``(0, 0.9)``,
  for both steps, each with the reference's weight-decay split: every weight AdamW with
  ``weight_decay`` and element-wise gradient clipping at ``clip_value``, every bias Adam.
  The critic step (:meth:`param_groups`) covers the critic/encoder; the generator step
  (:meth:`generator_param_groups`, handed to the trainer as the extra step's
  ``param_groups``) covers the decoder's weights (decayed, clipped) and its biases and the
  codebook values (Adam, undecayed).
- ``weight_decay``: 1e-3 for QLInfoWGAN-GP (the reference's Shapes3D and MPI3D value and
  the one its active sweep uses for all four data sets; 1e-4 for Falcor3D, ⚠ 7: no Isaac3D
  file) and 1e-4 for InfoWGAN-GP.
- Codes: QLInfoWGAN-GP draws each latent's index uniformly and looks the value up in the
  codebook (:meth:`QLInfoWGANGP.sample_prior`), so the generator loss reaches the values.
  InfoWGAN-GP draws ``U(prior_range)`` = ``U(0, 1)`` (``latents/continuous.py``
  ``UniformLatent``) and its latent head is an unbounded linear output, as in the
  reference (``ContinuousLatent``: no squashing).
- ``forward(x)`` is encoder → generator, a round trip for reports and the reconstruction
  error; a GAN is not trained to reconstruct, so expect it to be worse than an
  autoencoder's.
- Reference batch size 64 and 2e5 iterations are the run config's (``batch_size``,
  ``steps``); the run-level ``lr`` and ``optimizer.*`` overrides reach the critic's
  groups only (the trainer's rule for extra steps).

Randomness (codes, ``ε``) comes from torch's global RNG, which the trainer seeds.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.func import functional_call

from disentkit.models._base import Encoding, ExtraStep, Model, Output, register_model
from disentkit.models._checks import check_clip, check_image_model, check_nonnegative
from disentkit.nn import build_decoder, split_weight_decay
from disentkit.nn.critic import CriticEncoder
from disentkit.quantizers import ScalarQuantizer, build_quantizer
from disentkit.quantizers._base import check_float, check_int

__all__ = [
    "CriticEncoding",
    "InfoWGANGP",
    "InfoWGANGPConfig",
    "QLInfoWGANGP",
    "QLInfoWGANGPConfig",
    "gradient_penalty",
]


# -- the gradient penalty ------------------------------------------------------------------


def gradient_penalty(
    critic: Callable[[torch.Tensor], torch.Tensor],
    real: torch.Tensor,
    fake: torch.Tensor,
    *,
    epsilon: torch.Tensor | None = None,
) -> torch.Tensor:
    """Two-sided WGAN-GP penalty ``mean_i (‖∇_x D(x̂_i)‖₂ − 1)²`` (Gulrajani et al. 2017).

    ``x̂ = ε·real + (1 − ε)·fake`` with one ``ε ~ U(0, 1)`` per sample, detached from
    ``real`` and ``fake`` (the penalty trains the critic only). The gradient is taken with
    ``create_graph=True``, so the penalty is differentiable w.r.t. the critic's parameters.
    Under ``torch.no_grad()`` grad mode is switched on for the inner gradient only and the
    penalty comes back detached.

    Mixed precision. The penalty's critic pass and inner gradient run with autocast switched
    off, in float32 (or the inputs' wider float type): under ``16-mixed`` the inner gradient
    is taken before the gradient scaler sees the loss, so in float16 its small values would
    underflow to zero and the norm would be wrong; the rest of the step keeps autocast.

    Args:
        critic: ``D``: ``(B, ...)`` → ``(B,)`` values, each depending on its own sample.
        real: ``(B, ...)`` real samples.
        fake: ``(B, ...)`` generated samples, the shape of ``real``.
        epsilon: ``(B,)`` interpolation weights; default ``U(0, 1)`` from torch's RNG.

    Returns:
        the penalty, a scalar (float32, or float64 for float64 gradients).

    Example:
        >>> w = torch.tensor([3.0, 4.0])  # D(x) = w·x: ‖∇D‖ = 5 everywhere
        >>> float(gradient_penalty(lambda x: x @ w, torch.zeros(4, 2), torch.ones(4, 2)))
        16.0
    """
    if real.shape != fake.shape:
        raise ValueError(
            f"real and fake must have one shape; received {tuple(real.shape)} and "
            f"{tuple(fake.shape)}"
        )
    batch = real.shape[0]
    if epsilon is None:
        epsilon = torch.rand(batch, device=real.device)
    if epsilon.shape != (batch,):
        raise ValueError(f"epsilon must have shape ({batch},); received {tuple(epsilon.shape)}")
    dtype = torch.promote_types(real.dtype, torch.float32)
    eps = epsilon.to(dtype).view(batch, *([1] * (real.ndim - 1)))  # (B, 1, ...)
    differentiable = torch.is_grad_enabled()
    with torch.enable_grad(), torch.autocast(real.device.type, enabled=False):
        x_hat = (eps * real.detach().to(dtype) + (1 - eps) * fake.detach().to(dtype))
        x_hat.requires_grad_(True)
        values = critic(x_hat)  # (B,)
        (grad,) = torch.autograd.grad(values.sum(), x_hat, create_graph=differentiable)
        grad = grad.to(torch.promote_types(grad.dtype, torch.float32))  # float32 or wider
        norm = torch.linalg.vector_norm(grad.reshape(batch, -1), dim=1)  # (B,)
        penalty = (norm - 1).square().mean()
    return penalty if differentiable else penalty.detach()


# -- configs -------------------------------------------------------------------------------


def _check_range(name: str, value: Any) -> tuple[float, float]:
    try:
        low, high = (float(v) for v in value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be two numbers (low, high); received {value!r}") from None
    if not low < high:
        raise ValueError(f"{name} must have low < high; received {value!r}")
    return low, high


def _check_gan(config: Any) -> None:
    """Validate (and normalise) the fields both GAN configs share."""
    check_image_model(config)
    check_int("generator_every", config.generator_every, minimum=1)
    check_nonnegative(config, "gp_weight", "latent_weight", "weight_decay")
    check_float("lr", config.lr, low=0.0)
    try:
        betas = tuple(float(b) for b in config.betas)
    except (TypeError, ValueError):
        betas = ()
    if len(betas) != 2 or not all(0.0 <= b < 1.0 for b in betas):
        raise ValueError(f"betas must be two numbers in [0, 1); received {config.betas!r}")
    config.betas = betas
    check_clip(config)


@dataclass
class QLInfoWGANGPConfig:
    """QLInfoWGAN-GP options; defaults are the reference's (METHODS.md §2)."""

    image_shape: tuple[int, int, int] = (3, 64, 64)  # (C, H, W) of the images
    arch: str = "dlib"  # critic/generator ("dlib": fast default; "qlae": the paper's recipe)
    n_latents: int = 10  # latent dimensions; the reference uses 2 × the number of factors
    n_values: int = 10  # values per latent's scalar codebook
    init_range: tuple[float, float] = (-0.5, 0.5)  # linspace init of the values (⚠ 1)
    optimize_values: bool = True  # learn the codebook values (generator step)
    gp_weight: float = 10.0  # weight of the two-sided gradient penalty
    latent_weight: float = 200.0  # weight of mean (ẑ(x_fake) − z_fake)²
    quantization_weight: float = 0.01  # weight of mean (sg(z) − z_q)² on fake images
    commitment_weight: float = 0.01  # weight of mean (z − sg(z_q))² on fake images
    generator_every: int = 5  # one generator step every this many critic steps
    lr: float = 2e-4  # Adam learning rate of both steps
    betas: tuple[float, float] = (0.0, 0.9)  # Adam betas of both steps
    weight_decay: float = 1e-3  # AdamW decay of the weights; 1e-4 Falcor3D (⚠ 7)
    clip_value: float | None = 1.0  # element-wise gradient clip of the weights; None: off
    style_activation: str = "relu"  # qlae decoder: activation of style scale/shift (⚠ 6)

    def __post_init__(self) -> None:
        _check_gan(self)
        check_int("n_values", self.n_values, minimum=2)
        self.init_range = _check_range("init_range", self.init_range)
        check_nonnegative(self, "quantization_weight", "commitment_weight")


@dataclass
class InfoWGANGPConfig:
    """InfoWGAN-GP options; defaults are the reference's baseline (METHODS.md §2)."""

    image_shape: tuple[int, int, int] = (3, 64, 64)  # (C, H, W) of the images
    arch: str = "dlib"  # critic/generator ("dlib": fast default; "qlae": the paper's recipe)
    n_latents: int = 10  # latent dimensions; the reference uses 2 × the number of factors
    prior_range: tuple[float, float] = (0.0, 1.0)  # codes z ~ U(low, high)^n_latents
    gp_weight: float = 10.0  # weight of the two-sided gradient penalty
    latent_weight: float = 200.0  # weight of mean (ẑ(x_fake) − z_fake)²
    generator_every: int = 5  # one generator step every this many critic steps
    lr: float = 2e-4  # Adam learning rate of both steps
    betas: tuple[float, float] = (0.0, 0.9)  # Adam betas of both steps
    weight_decay: float = 1e-4  # AdamW decay of the weights (reference baseline)
    clip_value: float | None = 1.0  # element-wise gradient clip of the weights; None: off
    style_activation: str = "relu"  # qlae decoder: activation of style scale/shift (⚠ 6)

    def __post_init__(self) -> None:
        _check_gan(self)
        self.prior_range = _check_range("prior_range", self.prior_range)


# -- the shared model ----------------------------------------------------------------------


@dataclass
class CriticEncoding(Encoding):
    """An :class:`Encoding` with the critic's value of the encoded images.

    Attributes:
        critic: ``D(x)`` ``(B,)``, the Wasserstein critic's value.
    """

    critic: torch.Tensor | None = None


class _InfoWGANGP(Model):
    """Critic/encoder + generator shared by both GANs; subclasses set the latent space.

    Subclasses implement :meth:`sample_prior` and :meth:`_latent` (the latent head's output
    ``(B, D)`` → an :class:`Encoding` without ``critic``), and set ``_aux_weights`` (weight
    per auxiliary loss of the encoding, empty for continuous codes).
    """

    vectorize_refusal = (
        "it trains its generator in an extra optimiser step and draws its prior and "
        "gradient-penalty samples outside Model.noise"
    )

    def __init__(self, config: Any) -> None:
        super().__init__(config)
        self.encoder = CriticEncoder(
            config.arch, image_shape=config.image_shape, n_latents=config.n_latents
        )
        options = {"style_activation": config.style_activation} if config.arch == "qlae" else {}
        self.decoder = build_decoder(
            config.arch, image_shape=config.image_shape, in_features=config.n_latents, **options
        )
        self._aux_weights: dict[str, float] = {}

    # -- latent space (subclasses) -------------------------------------------------------
    def sample_prior(self, n: int, *, generator: torch.Generator | None = None) -> torch.Tensor:
        """``n`` codes ``(n, n_latents)`` float32 from the generator's prior."""
        raise NotImplementedError

    def _latent(self, pre: torch.Tensor) -> Encoding:
        raise NotImplementedError

    def _generator_extra_params(self) -> list[nn.Parameter]:
        """Parameters besides the decoder's that the generator step updates."""
        return []

    # -- contract ------------------------------------------------------------------------
    def _encode(self, x: torch.Tensor, *, frozen: bool = False) -> CriticEncoding:
        if frozen:
            params = {n: p.detach() for n, p in self.encoder.named_parameters()}
            pre, value = functional_call(self.encoder, params, (x,))
        else:
            pre, value = self.encoder(x)  # (B, D), (B,)
        enc = self._latent(pre)
        return CriticEncoding(
            z=enc.z,
            mean=enc.mean,
            quantized=enc.quantized,
            indices=enc.indices,
            aux=enc.aux,
            critic=value.float(),
        )

    def encode(self, x: torch.Tensor) -> CriticEncoding:
        """The latent head's code of ``x`` ``(B, C, H, W)`` and the critic value ``D(x)``."""
        return self._encode(x)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """The generator: codes ``(B, n_latents)`` → logits ``(B, C, H, W)``."""
        return self.decoder(z)

    def critic(self, x: torch.Tensor) -> torch.Tensor:
        """The critic's value ``D(x)`` ``(B,)`` of images ``(B, C, H, W)``."""
        return self.encoder.value(x).float()

    def generate(self, z: torch.Tensor) -> torch.Tensor:
        """Fake images ``sigmoid(decoder(z))`` ``(B, C, H, W)`` float32 in ``[0, 1]``."""
        return torch.sigmoid(self.decoder(z).float())

    def loss(
        self, x: torch.Tensor, out: Output, step: int = 0
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The critic/encoder loss on real images ``x`` ``(B, C, H, W)`` (module docstring).

        ``D(x)`` is read from ``out.encoding.critic`` (``forward(x)`` computed it), or
        computed when ``out`` does not carry it. ``terms``: ``critic_loss``
        (``D(x_fake) − D(x)``, minus the critic's Wasserstein estimate),
        ``gradient_penalty``, ``latent``, the quantizer's losses and statistics on the
        fake images, all unweighted.
        """
        enc = out.encoding
        real = enc.critic if isinstance(enc, CriticEncoding) else None
        if real is None:
            real = self.critic(x)
        with torch.no_grad():
            z_fake = self.sample_prior(x.shape[0])  # (B, D)
            x_fake = self.generate(z_fake)  # (B, C, H, W)
        fake = self.encode(x_fake)
        critic_loss = fake.critic.mean() - real.float().mean()
        penalty = gradient_penalty(self.critic, x.float(), x_fake)
        latent = (fake.z.float() - z_fake).square().mean()
        total = critic_loss + self.config.gp_weight * penalty + self.config.latent_weight * latent
        for name, weight in self._aux_weights.items():
            value = fake.aux[name]
            # the quantization loss reaches only the codebook values, not updated here
            total = total + weight * (value.detach() if name == "quantization" else value)
        terms = {
            "critic_loss": critic_loss.detach(),
            "gradient_penalty": penalty.detach(),
            "latent": latent.detach(),
        }
        terms.update({k: v.detach() for k, v in fake.aux.items()})
        return total, terms

    def generator_loss(
        self, x: torch.Tensor, step: int = 0
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The generator loss ``−D(x_fake) + latent and quantizer terms`` (module docstring).

        ``x`` only sets the batch size. The critic/encoder runs with detached
        parameters; the gradient reaches the generator and, for QLInfoWGAN-GP, the codebook
        values (through the sampled codes and the quantization loss). ``terms``:
        ``critic_fake`` (mean ``D(x_fake)``), ``latent``, the quantizer's losses.
        """
        z_fake = self.sample_prior(x.shape[0])  # (B, D), differentiable w.r.t. the values
        fake = self._encode(self.generate(z_fake), frozen=True)
        critic_fake = fake.critic.mean()
        latent = (fake.z.float() - z_fake).square().mean()
        total = -critic_fake + self.config.latent_weight * latent
        for name, weight in self._aux_weights.items():
            total = total + weight * fake.aux[name]
        terms = {"critic_fake": critic_fake.detach(), "latent": latent.detach()}
        terms.update({k: fake.aux[k].detach() for k in self._aux_weights})
        return total, terms

    def _group(self, name: str, params: list[nn.Parameter], *, decay: bool) -> dict[str, Any]:
        return {
            "name": name,
            "params": params,
            "optimizer": "adamw" if decay else "adam",
            "lr": self.config.lr,
            "betas": self.config.betas,
            "weight_decay": self.config.weight_decay if decay else 0.0,
            "clip_value": self.config.clip_value if decay else None,
        }

    def param_groups(self) -> list[dict[str, Any]]:
        """The critic/encoder's optimiser groups (the main step): QLAE's split.

        ``"regularized"``: every weight of the critic/encoder (AdamW with ``weight_decay``,
        element-wise clipping at ``clip_value``); ``"unregularized"``: its biases (Adam).
        The generator and the codebook values are left to :meth:`extra_steps`.
        """
        decay, no_decay = split_weight_decay(self.encoder)
        return [
            self._group("regularized", decay, decay=True),
            self._group("unregularized", no_decay, decay=False),
        ]

    def generator_parameters(self) -> list[nn.Parameter]:
        """What the generator step updates: the decoder's parameters and the codebook values."""
        params = [p for p in self.decoder.parameters() if p.requires_grad]
        return params + self._generator_extra_params()

    def generator_param_groups(self) -> list[dict[str, Any]]:
        """The reference's split of :meth:`generator_parameters` into two groups.

        ``"regularized"``: the decoder's weights (AdamW, clipping); ``"unregularized"``: its
        biases and the codebook values (Adam). The trainer builds the generator step's
        optimiser from these groups.
        """
        decay, no_decay = split_weight_decay(self.decoder)
        return [
            self._group("regularized", decay, decay=True),
            self._group("unregularized", no_decay + self._generator_extra_params(), decay=False),
        ]

    def extra_steps(self) -> list[ExtraStep]:
        """The generator step every ``generator_every`` iterations.

        Its settings are ``torch.optim.Adam`` keyword arguments (``lr``, ``betas``,
        ``weight_decay``), one group over :meth:`generator_parameters`; the trainer applies
        the decay decoupled (AdamW, its default family). No gradient clipping.
        """
        return [
            ExtraStep(
                name="generator",
                parameters=self.generator_parameters,
                loss=self.generator_loss,
                every=self.config.generator_every,
                optimizer={"lr": self.config.lr, "betas": self.config.betas},
                param_groups=self.generator_param_groups,
            )
        ]


# -- QLInfoWGAN-GP -------------------------------------------------------------------------


@register_model(
    "qlinfowgan_gp",
    config=QLInfoWGANGPConfig,
    description="InfoWGAN-GP whose codes and inferred latents live on learnable scalar codebooks",
    reference="Hsu et al., Disentanglement via Latent Quantization, NeurIPS 2023",
)
class QLInfoWGANGP(_InfoWGANGP):
    """QLInfoWGAN-GP (Hsu et al., NeurIPS 2023; METHODS.md §2): see the module docstring.

    Each latent has its own ``n_values`` learnable scalars
    (:class:`~disentkit.quantizers.ScalarQuantizer`, ``self.quantizer``). The generator's
    codes take each latent's value uniformly at random; the critic's latent head is snapped
    to the nearest value (straight-through) and trained to recover the code.

    Representations: ``"quantized"`` (the encoder's quantized latent, default: what the
    paper scores), ``"indices"``, ``"mean"`` (the pre-quantization latent head).

    Example:
        >>> import torch
        >>> from disentkit.models import build_model
        >>> model = build_model("qlinfowgan_gp", image_shape=(1, 16, 16), n_latents=3)
        >>> x = torch.rand(4, 1, 16, 16)
        >>> total, terms = model.loss(x, model(x))
        >>> sorted(terms)  # doctest: +NORMALIZE_WHITESPACE
        ['commitment', 'critic_loss', 'gradient_penalty', 'latent', 'perplexity',
         'quantization', 'usage']
        >>> [(s.name, s.every) for s in model.extra_steps()]
        [('generator', 5)]
        >>> model.representation(x, "indices").shape
        torch.Size([4, 3])
    """

    representation_kinds = ("quantized", "indices", "mean")

    def __init__(self, config: QLInfoWGANGPConfig) -> None:
        super().__init__(config)
        quantizer = build_quantizer(
            "scalar",
            config.n_latents,
            n_values=config.n_values,
            init_range=config.init_range,
            optimize_values=config.optimize_values,
        )
        assert isinstance(quantizer, ScalarQuantizer)
        self.quantizer = quantizer
        self._aux_weights = {
            "quantization": config.quantization_weight,
            "commitment": config.commitment_weight,
        }

    def sample_prior(self, n: int, *, generator: torch.Generator | None = None) -> torch.Tensor:
        """``n`` codes ``(n, n_latents)``: each latent's value uniform over its codebook.

        The values are looked up with random indices, so the codes carry the gradient of
        the codebook values.
        """
        device = self.quantizer.values.device
        shape = (n, self.config.n_latents)
        indices = torch.randint(self.config.n_values, shape, device=device, generator=generator)
        return self.quantizer.indices_to_codes(indices)  # (n, D) float32

    def _latent(self, pre: torch.Tensor) -> Encoding:
        codes, indices, aux = self.quantizer(pre)  # (B, D) each
        return Encoding(z=codes, mean=pre, quantized=codes, indices=indices, aux=aux)

    def _generator_extra_params(self) -> list[nn.Parameter]:
        return [p for p in self.quantizer.parameters() if p.requires_grad]


# -- InfoWGAN-GP ---------------------------------------------------------------------------


@register_model(
    "infowgan_gp",
    config=InfoWGANGPConfig,
    description="InfoGAN-style WGAN-GP with continuous uniform codes (the QLInfoWGAN-GP baseline)",
    reference="Hsu et al., Disentanglement via Latent Quantization, NeurIPS 2023 (baseline)",
)
class InfoWGANGP(_InfoWGANGP):
    """InfoWGAN-GP, QLInfoWGAN-GP's baseline (METHODS.md §2): see the module docstring.

    Codes ``z ~ U(prior_range)^n_latents`` (default ``U(0, 1)``); the critic's latent head
    is a plain linear output trained to recover them (weight 200); no quantizer losses.

    Representation: ``"mean"``, the latent head's output.

    Example:
        >>> import torch
        >>> from disentkit.models import build_model
        >>> model = build_model("infowgan_gp", image_shape=(1, 16, 16), n_latents=3)
        >>> z = model.sample_prior(5)
        >>> tuple(z.shape), bool(((z >= 0) & (z < 1)).all())
        ((5, 3), True)
        >>> model.representation(torch.rand(2, 1, 16, 16)).shape
        torch.Size([2, 3])
    """

    representation_kinds = ("mean",)

    def sample_prior(self, n: int, *, generator: torch.Generator | None = None) -> torch.Tensor:
        """``n`` codes ``(n, n_latents)`` float32 from ``U(prior_range)``."""
        low, high = self.config.prior_range
        device = next(self.decoder.parameters()).device
        u = torch.rand(n, self.config.n_latents, device=device, generator=generator)
        return low + (high - low) * u

    def _latent(self, pre: torch.Tensor) -> Encoding:
        return Encoding(z=pre, mean=pre)
