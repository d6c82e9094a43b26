"""An encoder that is also a Wasserstein critic: one image network, two linear heads.

Hsu, Dorrell, Whittington, Wu, Finn, "Disentanglement via Latent Quantization", NeurIPS
2023; reference code ``kylehkhsu/latent_quantization`` (JAX): ``encoders/critic.py``
(METHODS.md §2). The InfoGAN-style models use one feature network for both jobs: its
features feed ``Linear(→ n_latents)`` (the latent head, which infers the generator's code)
and ``Linear(→ 1)`` (the critic's value ``D(x)``).

Here the two heads are the two slices of one ``Linear(→ n_latents + 1)``: the last layer of
the architecture's encoder (:func:`disentkit.nn.build_encoder`). A linear map to
``n_latents + 1`` outputs *is* the two maps side by side (rows ``0..n_latents−1`` and row
``n_latents``), so the function class, the gradients and the weight-decay split (weights
decayed, biases not) are those of two separate heads; the initialisation of every row
depends only on the layer's fan-in, so the critic row starts like a latent row. No
architecture in :mod:`disentkit.nn` normalises across the batch, so ``D`` is a function of
each image alone, as a gradient penalty needs.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from disentkit.nn import build_encoder


class CriticEncoder(nn.Module):
    """Images ``(B, C, H, W)`` → (latent head ``(B, n_latents)``, critic value ``(B,)``).

    Args:
        arch: encoder architecture, one of :data:`disentkit.nn.ARCHITECTURES`.
        image_shape: ``(C, H, W)`` of the input images.
        n_latents: width of the latent head.
        **options: architecture options passed to :func:`disentkit.nn.build_encoder`.

    Example:
        >>> critic = CriticEncoder("dlib", image_shape=(1, 16, 16), n_latents=3)
        >>> latents, value = critic(torch.zeros(2, 1, 16, 16))
        >>> tuple(latents.shape), tuple(value.shape)
        ((2, 3), (2,))
    """

    def __init__(
        self, arch: str, *, image_shape: tuple[int, int, int], n_latents: int, **options: Any
    ) -> None:
        super().__init__()
        if isinstance(n_latents, bool) or not isinstance(n_latents, int) or n_latents < 1:
            raise ValueError(f"n_latents must be a positive integer; received {n_latents!r}")
        self.n_latents = n_latents
        self.net = build_encoder(
            arch, image_shape=image_shape, out_features=n_latents + 1, **options
        )

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        out = self.net(x)  # (B, n_latents + 1)
        return out[:, : self.n_latents], out[:, self.n_latents]  # (B, n_latents), (B,)

    def value(self, x: torch.Tensor) -> torch.Tensor:
        """The critic's value ``D(x)`` ``(B,)`` alone."""
        return self.forward(x)[1]
