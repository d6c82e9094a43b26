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

import inspect
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from torch import nn

from disentkit.nn.dlib import DlibDecoder, DlibEncoder
from disentkit.nn.qlae import QLAEDecoder, QLAEEncoder
from disentkit.registry import Registry


@dataclass(frozen=True)
class Architecture:
    """A registered encoder/decoder pair.

    Attributes:
        name: registry name.
        encoder: ``encoder(image_shape, out_features, **options)``: float images
            ``(B, C, H, W)`` → ``(B, out_features)``.
        decoder: ``decoder(image_shape, in_features, **options)``: ``(B, in_features)`` →
            logits ``(B, C, H, W)``.
        description: one line.
        encoder_options: keyword options of ``encoder``, read from its signature.
        decoder_options: keyword options of ``decoder``, read from its signature.
        channels_last_on_cpu: training on a CPU is faster with channels-last weights and
            images (the trainer's ``memory_format="auto"`` uses it then); a measured fact
            (``benchmarks/train.py --part cpu``), not a guess.
    """

    name: str
    encoder: Callable[..., nn.Module]
    decoder: Callable[..., nn.Module]
    description: str = ""
    encoder_options: tuple[str, ...] = ()
    decoder_options: tuple[str, ...] = ()
    channels_last_on_cpu: bool = False


#: encoder/decoder architectures by name, built by :func:`build_encoder` and
#: :func:`build_decoder`
ARCHITECTURES: Registry[Architecture] = Registry("architecture")


def _keyword_options(builder: Callable[..., nn.Module]) -> tuple[str, ...]:
    params = inspect.signature(builder).parameters.values()
    return tuple(p.name for p in params if p.kind is p.KEYWORD_ONLY)


def register_architecture(
    name: str,
    *,
    encoder: Callable[..., nn.Module],
    decoder: Callable[..., nn.Module],
    description: str = "",
    channels_last_on_cpu: bool = False,
) -> Architecture:
    """Register an encoder/decoder pair under ``name``; options are their keyword-only
    parameters after ``(image_shape, width)``."""
    return ARCHITECTURES.add(
        name,
        Architecture(
            name=name,
            encoder=encoder,
            decoder=decoder,
            description=description,
            encoder_options=_keyword_options(encoder),
            decoder_options=_keyword_options(decoder),
            channels_last_on_cpu=channels_last_on_cpu,
        ),
    )


register_architecture(
    "dlib",
    encoder=DlibEncoder,
    decoder=DlibDecoder,
    description="the 64×64 convolutional encoder/decoder of the disentanglement_lib studies",
    channels_last_on_cpu=True,  # 1.15-1.25x the steps/s of QLAE and beta-VAE on 2 CPU cores
)
register_architecture(
    "qlae",
    encoder=QLAEEncoder,
    decoder=QLAEDecoder,
    description="QLAE's image encoder and StyleGAN-like decoder (Hsu et al., NeurIPS 2023)",
    channels_last_on_cpu=False,  # 0.95x with channels-last on 2 CPU cores: not used
)


def _architecture(arch: str) -> Architecture:
    if arch in ARCHITECTURES:
        return ARCHITECTURES[arch]
    hint = ARCHITECTURES.suggestion(arch)
    raise ValueError(
        f"arch must be one of {list(ARCHITECTURES)}; received {arch!r}{hint}"
    )


def _check_width(name: str, value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive integer; received {value!r}")


def _check_options(arch: str, part: str, options: dict[str, Any], valid: tuple[str, ...]) -> None:
    unknown = sorted(set(options) - set(valid))
    if not unknown:
        return
    if not valid:
        raise ValueError(f"the {arch!r} {part} takes no options; received {sorted(options)}")
    raise ValueError(
        f"unknown option(s) {unknown} for the {arch!r} {part}; valid options: {list(valid)}"
    )


def build_encoder(
    arch: str, *, image_shape: tuple[int, int, int], out_features: int, **options: Any
) -> nn.Module:
    """The encoder of architecture ``arch``: ``(B, C, H, W)`` float → ``(B, out_features)``.

    Args:
        arch: a name in :data:`ARCHITECTURES`.
        image_shape: ``(C, H, W)`` of the input images.
        out_features: output width (``2·n_latents`` for a Gaussian encoder).
        **options: architecture-specific options (none for ``"dlib"`` and ``"qlae"``).

    Raises:
        ValueError: unknown architecture (with the closest name), bad image shape, width or
            option.
    """
    entry = _architecture(arch)
    _check_width("out_features", out_features)
    _check_options(arch, "encoder", options, entry.encoder_options)
    return entry.encoder(tuple(image_shape), out_features, **options)


def build_decoder(
    arch: str, *, image_shape: tuple[int, int, int], in_features: int, **options: Any
) -> nn.Module:
    """The decoder of architecture ``arch``: ``(B, in_features)`` → logits ``(B, C, H, W)``.

    Args:
        arch: a name in :data:`ARCHITECTURES`.
        image_shape: ``(C, H, W)`` of the output images.
        in_features: latent width.
        **options: architecture-specific options (``"qlae"``: ``style_activation``).

    Raises:
        ValueError: unknown architecture (with the closest name), bad image shape, width or
            option.
    """
    entry = _architecture(arch)
    _check_width("in_features", in_features)
    _check_options(arch, "decoder", options, entry.decoder_options)
    return entry.decoder(tuple(image_shape), in_features, **options)


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
    "Architecture",
    "DlibDecoder",
    "DlibEncoder",
    "QLAEDecoder",
    "QLAEEncoder",
    "build_decoder",
    "build_encoder",
    "register_architecture",
    "split_weight_decay",
]
