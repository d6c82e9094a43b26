"""QLAE's image encoder and StyleGAN-like decoder.

Hsu, Dorrell, Whittington, Wu, Finn, "Disentanglement via Latent Quantization", NeurIPS
2023; reference code ``kylehkhsu/latent_quantization`` (JAX): ``encoders/image.py``,
``decoders/style_image.py`` L17-39, ``blocks/conv.py``, ``blocks/style.py`` L11-31 (METHODS.md
§1 Architecture).

Encoder: 12 conv blocks with widths ``[32×3, 64×3, 128×3, 256×3]`` whose
(kernel, stride, padding) cycle through ``(3, 1, 1), (3, 1, 1), (4, 2, 1)``; each block is a
conv without bias → GroupNorm with one group per channel (instance norm; eps 1e-6, affine) →
LeakyReLU(0.2). Then flatten → Dense 256 + ReLU → Dense 256 + ReLU → Linear.

Decoder: ``w = MLP(z)`` with two Dense 256 + ReLU layers; a learned constant ``input_map``
(256 channels, initialised to 0.1) passes through 12 style blocks with widths
``[256×3, 128×3, 64×3, 32×3]`` and transposed convs in the encoder's pattern, each
ConvT without bias → LeakyReLU(0.2) → InstanceNorm (no affine, eps 1e-6) →
``x·scale + shift`` with ``[scale, shift] = act(Linear(w))``; a last 3×3 conv without bias
gives the ``C`` logit channels.

Choices:

- ``style_activation`` (METHODS.md §8 ambiguity 6): the reference passes the style through
  ``DenseBlock``, whose default activation is ReLU, so scale and shift are non-negative
  (``"relu"``, the default); ``"none"`` uses the linear map as StyleGAN does.
- Image size: the reference is written for 64×64 images, four stride-2 stages reaching 4×4.
  Here the number of stride-2 stages is ``log2(min(H, W) / 4)``, at most 4 (H, W powers of two,
  at least 8); the blocks of the stages that do not downsample use ``(3, 1, 1)``. The
  deepest stages are the ones left without downsampling in the encoder (the first ones in
  the decoder), so a 32×32 image also ends at 4×4 and 128×128 at 8×8.
- Initialisation follows the reference, which builds its network with Equinox: every
  ``Linear``, ``Conv2d`` and ``ConvTranspose2d`` draws its weights *and* biases from
  ``U(−1/√fan_in, +1/√fan_in)`` (``equinox.nn.Linear``: ``fan_in = in_features``;
  ``equinox.nn.Conv``/``ConvTranspose``: ``fan_in = in_channels / groups · kh · kw``, with
  ``in_channels`` the layer's input channels for the transposed convs too), see
  :func:`equinox_uniform_`. The reference's convs have no bias; the dense layers (encoder
  head, style MLP, style maps) do. GroupNorm scales start at 1 and shifts at 0 (Equinox's
  ``GroupNorm`` as torch's), the instance norms have no parameters, and ``input_map``
  starts at 0.1. torch's defaults give the same law for ``Linear`` and ``Conv2d``
  (Kaiming-uniform with ``a = √5`` has the bound ``1/√fan_in``) but take a transposed conv's
  ``fan_in`` from its output channels, so every layer is initialised explicitly here.
  (Earlier versions of this module used Flax's truncated LeCun-normal weights, whose
  standard deviation is ``√3`` times the reference's, and zero biases.)
"""

from __future__ import annotations

import math

import torch
from torch import nn

from disentkit.nn.dlib import check_image_shape

#: conv widths of the encoder's 12 blocks (the decoder uses them reversed)
ENCODER_WIDTHS = (32,) * 3 + (64,) * 3 + (128,) * 3 + (256,) * 3
#: width of the dense layers (encoder head, decoder style MLP)
HIDDEN = 256
#: eps of the instance normalisations
NORM_EPS = 1e-6
STYLE_ACTIVATIONS = ("relu", "none")
_SAME = (3, 1, 1)  # (kernel, stride, padding): keeps the size
_DOWN = (4, 2, 1)  # halves the size (doubles it when transposed)


def n_resampling_stages(image_shape: tuple[int, int, int]) -> int:
    """Number of stride-2 stages for ``image_shape``: ``log2(min(H, W) / 4)``, at most 4."""
    _, h, w = image_shape
    return min(4, int(math.log2(min(h, w))) - 2)


def equinox_uniform_(module: nn.Linear | nn.Conv2d | nn.ConvTranspose2d) -> None:
    """Equinox's initialisation of ``module``: weights and bias from ``U(±1/√fan_in)``.

    ``fan_in`` is ``in_features`` for a linear layer and ``in_channels / groups · kh · kw``
    for a (transposed) convolution, ``in_channels`` being the layer's input channels
    (``equinox.nn.Linear``, ``equinox.nn.Conv``, ``equinox.nn.ConvTranspose``).

    Example:
        >>> layer = nn.Linear(16, 4)
        >>> equinox_uniform_(layer)
        >>> bool(layer.weight.abs().max() <= 0.25 and layer.bias.abs().max() <= 0.25)
        True
    """
    if isinstance(module, nn.Linear):
        fan_in = module.in_features
    elif isinstance(module, nn.Conv2d | nn.ConvTranspose2d):
        kh, kw = module.kernel_size
        fan_in = module.in_channels // module.groups * kh * kw
    else:
        raise TypeError(
            f"module must be an nn.Linear, nn.Conv2d or nn.ConvTranspose2d; received "
            f"{type(module).__name__}"
        )
    bound = 1.0 / math.sqrt(fan_in)
    with torch.no_grad():
        nn.init.uniform_(module.weight, -bound, bound)
        if module.bias is not None:
            nn.init.uniform_(module.bias, -bound, bound)


def _init_like_reference(module: nn.Module) -> None:
    for m in module.modules():
        if isinstance(m, nn.Linear | nn.Conv2d | nn.ConvTranspose2d):
            equinox_uniform_(m)


def _block_pattern(n_down: int, *, decoder: bool) -> list[tuple[int, int, int]]:
    """(kernel, stride, padding) of the 12 blocks; the last of each group of 3 resamples."""
    pattern = []
    for k in range(12):
        group, position = divmod(k, 3)
        resamples = group >= 4 - n_down if decoder else group < n_down
        pattern.append(_DOWN if position == 2 and resamples else _SAME)
    return pattern


class QLAEEncoder(nn.Module):
    """Images ``(B, C, H, W)`` → features ``(B, out_features)``.

    Args:
        image_shape: ``(C, H, W)``; ``H`` and ``W`` powers of two, at least 8.
        out_features: output width.

    Example:
        >>> enc = QLAEEncoder((3, 32, 32), out_features=6)
        >>> enc(torch.zeros(2, 3, 32, 32)).shape
        torch.Size([2, 6])
    """

    def __init__(self, image_shape: tuple[int, int, int], out_features: int) -> None:
        super().__init__()
        check_image_shape(image_shape, min_side=8, arch="qlae")
        c, h, w = image_shape
        n_down = n_resampling_stages(image_shape)
        layers: list[nn.Module] = []
        pattern = _block_pattern(n_down, decoder=False)
        for width, (k, s, p) in zip(ENCODER_WIDTHS, pattern, strict=True):
            layers += [
                nn.Conv2d(c, width, kernel_size=k, stride=s, padding=p, bias=False),
                nn.GroupNorm(width, width, eps=NORM_EPS, affine=True),
                nn.LeakyReLU(0.2),
            ]
            c = width
        self.convs = nn.Sequential(*layers)
        self.map_shape = (c, h >> n_down, w >> n_down)
        self.head = nn.Sequential(
            nn.Linear(math.prod(self.map_shape), HIDDEN),
            nn.ReLU(),
            nn.Linear(HIDDEN, HIDDEN),
            nn.ReLU(),
            nn.Linear(HIDDEN, out_features),
        )
        _init_like_reference(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.convs(x)  # (B, 256, H/2^n, W/2^n)
        return self.head(h.flatten(1))  # (B, 256·H/2^n·W/2^n) -> (B, out_features)


class StyleBlock(nn.Module):
    """ConvT (no bias) → LeakyReLU(0.2) → InstanceNorm → ``x·scale + shift`` from ``w``."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_stride_padding: tuple[int, int, int],
        *,
        style_features: int,
        style_activation: str,
    ) -> None:
        super().__init__()
        k, s, p = kernel_stride_padding
        self.conv = nn.ConvTranspose2d(
            in_channels, out_channels, kernel_size=k, stride=s, padding=p, bias=False
        )
        self.act = nn.LeakyReLU(0.2)
        self.norm = nn.InstanceNorm2d(out_channels, eps=NORM_EPS, affine=False)
        self.style = nn.Linear(style_features, 2 * out_channels)
        self.style_act = nn.ReLU() if style_activation == "relu" else nn.Identity()

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        h = self.norm(self.act(self.conv(x)))  # (B, C_out, H', W')
        style = self.style_act(self.style(w))  # (B, 2·C_out)
        scale, shift = style[:, :, None, None].chunk(2, dim=1)  # 2 × (B, C_out, 1, 1)
        return h * scale + shift


class QLAEDecoder(nn.Module):
    """Latents ``(B, in_features)`` → logits ``(B, C, H, W)``.

    Args:
        image_shape: ``(C, H, W)``; ``H`` and ``W`` powers of two, at least 8.
        in_features: latent width.
        style_activation: ``"relu"`` (reference: non-negative scale and shift) or ``"none"``.

    Example:
        >>> dec = QLAEDecoder((3, 32, 32), in_features=6)
        >>> dec(torch.zeros(2, 6)).shape
        torch.Size([2, 3, 32, 32])
    """

    def __init__(
        self,
        image_shape: tuple[int, int, int],
        in_features: int,
        *,
        style_activation: str = "relu",
    ) -> None:
        super().__init__()
        check_image_shape(image_shape, min_side=8, arch="qlae")
        if style_activation not in STYLE_ACTIVATIONS:
            raise ValueError(
                f"style_activation must be one of {list(STYLE_ACTIVATIONS)}; "
                f"received {style_activation!r}"
            )
        c, h, w = image_shape
        n_down = n_resampling_stages(image_shape)
        widths = ENCODER_WIDTHS[::-1]  # 256×3, 128×3, 64×3, 32×3
        self.mapping = nn.Sequential(
            nn.Linear(in_features, HIDDEN), nn.ReLU(), nn.Linear(HIDDEN, HIDDEN), nn.ReLU()
        )
        # (1, 256, H/2^n, W/2^n), broadcast over the batch
        self.input_map = nn.Parameter(torch.full((1, widths[0], h >> n_down, w >> n_down), 0.1))
        blocks = []
        width_in = widths[0]
        for width, ksp in zip(widths, _block_pattern(n_down, decoder=True), strict=True):
            blocks.append(
                StyleBlock(
                    width_in,
                    width,
                    ksp,
                    style_features=HIDDEN,
                    style_activation=style_activation,
                )
            )
            width_in = width
        self.blocks = nn.ModuleList(blocks)
        self.out = nn.Conv2d(width_in, c, kernel_size=3, stride=1, padding=1, bias=False)
        _init_like_reference(self)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        w = self.mapping(z)  # (B, 256)
        h = self.input_map.expand(z.shape[0], -1, -1, -1)  # (B, 256, H/2^n, W/2^n)
        for block in self.blocks:
            h = block(h, w)
        return self.out(h)  # (B, C, H, W)
