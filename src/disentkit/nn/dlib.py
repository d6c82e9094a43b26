"""The convolutional encoder and decoder of the disentanglement_lib studies.

Locatello et al., "Challenging Common Assumptions in the Unsupervised Learning of
Disentangled Representations", ICML 2019, Table 1; reference code
``google-research/disentanglement_lib``: ``methods/shared/architectures.py``
(``conv_encoder``, ``deconv_decoder``).

Encoder: four ``Conv(k=4, s=2)`` + ReLU with 32, 32, 64, 64 channels, flatten, Dense 256 +
ReLU, Linear to ``out_features`` (a VAE reads means and log-variances from its two halves).
Decoder, mirrored: Dense 256 + ReLU, Dense ``64·h·w`` + ReLU, three ``ConvT(k=4, s=2)`` + ReLU
with 64, 32, 32 channels and a last ``ConvT(k=4, s=2)`` to ``C`` logits.

TensorFlow's ``padding="same"`` with kernel 4 and stride 2 on an even size pads one pixel on
each side, which is ``padding=1`` here; the transposed convolutions with ``padding=1`` double
the size exactly. The reference is written for 64×64 images (a 4×4 map after the encoder);
here any power-of-two ``H, W ≥ 16`` is accepted and the map after the encoder is
``(H/16, W/16)`` (2×2 for 32×32 images). Parameters keep PyTorch's default initialisation
(the reference uses TensorFlow's Glorot-uniform kernels and zero biases).
"""

from __future__ import annotations

import itertools
import math

import torch
from torch import nn

#: encoder conv widths (the decoder uses them reversed)
CONV_WIDTHS = (32, 32, 64, 64)
#: width of the dense hidden layer
HIDDEN = 256


def check_image_shape(image_shape: tuple[int, int, int], *, min_side: int, arch: str) -> None:
    """Raise ``ValueError`` unless ``image_shape`` is ``(C, H, W)`` with power-of-two sides."""
    if len(tuple(image_shape)) != 3 or any(int(s) != s or s < 1 for s in image_shape):
        raise ValueError(
            f"image_shape must be (C, H, W) positive integers; received {tuple(image_shape)!r}"
        )
    _, h, w = image_shape
    for side in (h, w):
        if side < min_side or side & (side - 1):
            raise ValueError(
                f"the {arch!r} architecture needs H and W powers of two >= {min_side}; "
                f"received image_shape {tuple(image_shape)!r}"
            )


class DlibEncoder(nn.Module):
    """Images ``(B, C, H, W)`` → features ``(B, out_features)``.

    Args:
        image_shape: ``(C, H, W)``; ``H`` and ``W`` powers of two, at least 16.
        out_features: output width (``2·n_latents`` for a Gaussian encoder).

    Example:
        >>> enc = DlibEncoder((1, 64, 64), out_features=20)
        >>> enc(torch.zeros(2, 1, 64, 64)).shape
        torch.Size([2, 20])
    """

    def __init__(self, image_shape: tuple[int, int, int], out_features: int) -> None:
        super().__init__()
        check_image_shape(image_shape, min_side=16, arch="dlib")
        c, h, w = image_shape
        layers: list[nn.Module] = []
        for width in CONV_WIDTHS:
            layers += [nn.Conv2d(c, width, kernel_size=4, stride=2, padding=1), nn.ReLU()]
            c = width
        self.convs = nn.Sequential(*layers)
        self.map_shape = (c, h // 16, w // 16)  # after four stride-2 convs
        self.head = nn.Sequential(
            nn.Linear(math.prod(self.map_shape), HIDDEN),
            nn.ReLU(),
            nn.Linear(HIDDEN, out_features),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.convs(x)  # (B, 64, H/16, W/16)
        return self.head(h.flatten(1))  # (B, 64·H/16·W/16) -> (B, out_features)


class DlibDecoder(nn.Module):
    """Latents ``(B, in_features)`` → logits ``(B, C, H, W)``.

    Args:
        image_shape: ``(C, H, W)``; ``H`` and ``W`` powers of two, at least 16.
        in_features: latent width.

    Example:
        >>> dec = DlibDecoder((3, 32, 32), in_features=10)
        >>> dec(torch.zeros(2, 10)).shape
        torch.Size([2, 3, 32, 32])
    """

    def __init__(self, image_shape: tuple[int, int, int], in_features: int) -> None:
        super().__init__()
        check_image_shape(image_shape, min_side=16, arch="dlib")
        c, h, w = image_shape
        widths = CONV_WIDTHS[::-1]  # 64, 64, 32, 32
        self.map_shape = (widths[0], h // 16, w // 16)
        self.head = nn.Sequential(
            nn.Linear(in_features, HIDDEN),
            nn.ReLU(),
            nn.Linear(HIDDEN, math.prod(self.map_shape)),
            nn.ReLU(),
        )
        layers: list[nn.Module] = []
        for width_in, width_out in itertools.pairwise(widths):
            layers += [
                nn.ConvTranspose2d(width_in, width_out, kernel_size=4, stride=2, padding=1),
                nn.ReLU(),
            ]
        layers.append(nn.ConvTranspose2d(widths[-1], c, kernel_size=4, stride=2, padding=1))
        self.deconvs = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = self.head(z).view(-1, *self.map_shape)  # (B, 64·H/16·W/16) -> (B, 64, H/16, W/16)
        return self.deconvs(h)  # (B, C, H, W)
