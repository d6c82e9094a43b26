"""Encoders and decoders shared by the models, built by architecture name.

- ``"dlib"``: the 64×64 convolutional encoder/decoder of the disentanglement_lib studies
  (:mod:`disentkit.nn.dlib`).
- ``"qlae"``: the image encoder and StyleGAN-like decoder of QLAE (Hsu et al., NeurIPS 2023;
  :mod:`disentkit.nn.qlae`).

An encoder maps float images ``(B, C, H, W)`` to ``(B, out_features)``; a decoder maps
``(B, in_features)`` to logits ``(B, C, H, W)``.

Example:
    >>> import torch
    >>> enc = build_encoder("dlib", image_shape=(1, 32, 32), out_features=8)
    >>> dec = build_decoder("dlib", image_shape=(1, 32, 32), in_features=4)
    >>> dec(enc(torch.zeros(2, 1, 32, 32))[:, :4]).shape
    torch.Size([2, 1, 32, 32])
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from torch import nn

from disentkit.nn.dlib import DlibDecoder, DlibEncoder
from disentkit.nn.qlae import QLAEDecoder, QLAEEncoder

#: architecture names accepted by :func:`build_encoder` and :func:`build_decoder`
ARCHITECTURES = ("dlib", "qlae")


def _check_arch(arch: str) -> None:
    if arch not in ARCHITECTURES:
        raise ValueError(f"arch must be one of {list(ARCHITECTURES)}; received {arch!r}")


def _check_width(name: str, value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive integer; received {value!r}")


def build_encoder(
    arch: str, *, image_shape: tuple[int, int, int], out_features: int, **options: Any
) -> nn.Module:
    """The encoder of architecture ``arch``: ``(B, C, H, W)`` float → ``(B, out_features)``.

    Args:
        arch: one of :data:`ARCHITECTURES`.
        image_shape: ``(C, H, W)`` of the input images.
        out_features: output width (``2·n_latents`` for a Gaussian encoder).
        **options: architecture-specific options (none for ``"dlib"``).

    Raises:
        ValueError: unknown architecture, bad image shape or width.
    """
    _check_arch(arch)
    _check_width("out_features", out_features)
    image_shape = tuple(image_shape)  # type: ignore[assignment]
    if arch == "dlib":
        if options:
            raise ValueError(f"the 'dlib' encoder takes no options; received {sorted(options)}")
        return DlibEncoder(image_shape, out_features)
    return QLAEEncoder(image_shape, out_features, **options)


def build_decoder(
    arch: str, *, image_shape: tuple[int, int, int], in_features: int, **options: Any
) -> nn.Module:
    """The decoder of architecture ``arch``: ``(B, in_features)`` → logits ``(B, C, H, W)``.

    Args:
        arch: one of :data:`ARCHITECTURES`.
        image_shape: ``(C, H, W)`` of the output images.
        in_features: latent width.
        **options: architecture-specific options (``"qlae"``: ``style_activation``).

    Raises:
        ValueError: unknown architecture, bad image shape or width.
    """
    _check_arch(arch)
    _check_width("in_features", in_features)
    image_shape = tuple(image_shape)  # type: ignore[assignment]
    if arch == "dlib":
        if options:
            raise ValueError(f"the 'dlib' decoder takes no options; received {sorted(options)}")
        return DlibDecoder(image_shape, in_features)
    return QLAEDecoder(image_shape, in_features, **options)


def split_weight_decay(
    module: nn.Module, *, exclude: Iterable[str] = ()
) -> tuple[list[nn.Parameter], list[nn.Parameter]]:
    """Split ``module``'s trainable parameters into (decayed, not decayed) lists.

    LQ's optimiser (``models/ae.py`` L54-82, METHODS.md §1 Optimizer) weight-decays every
    weight array — conv kernels, linear weights, the encoder's GroupNorm scale, the
    decoder's learned ``input_map`` — and leaves every bias undecayed. Here a parameter is
    "not decayed" when its name ends in ``bias`` or starts with one of the ``exclude``
    prefixes (e.g. ``"quantizer."`` for codebook values); every other one is decayed.

    Args:
        module: the module whose ``named_parameters()`` are split.
        exclude: name prefixes whose parameters go to the undecayed list.

    Returns:
        ``(decay_params, no_decay_params)``, each in ``named_parameters()`` order.

    Example:
        >>> decay, no_decay = split_weight_decay(nn.Sequential(nn.Linear(2, 3), nn.LayerNorm(3)))
        >>> [tuple(p.shape) for p in decay], [tuple(p.shape) for p in no_decay]
        ([(3, 2), (3,)], [(3,), (3,)])
    """
    prefixes = tuple(exclude)
    decay: list[nn.Parameter] = []
    no_decay: list[nn.Parameter] = []
    for name, param in module.named_parameters():
        if not param.requires_grad:
            continue
        if name.rsplit(".", 1)[-1] == "bias" or (prefixes and name.startswith(prefixes)):
            no_decay.append(param)
        else:
            decay.append(param)
    return decay, no_decay


__all__ = [
    "ARCHITECTURES",
    "DlibDecoder",
    "DlibEncoder",
    "QLAEDecoder",
    "QLAEEncoder",
    "build_decoder",
    "build_encoder",
    "split_weight_decay",
]
