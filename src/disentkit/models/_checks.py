"""Config validation shared by the model modules: one clear ``ValueError`` per bad field,
naming the field, what it accepts and what it received."""

from __future__ import annotations

from typing import Any

from disentkit.nn import ARCHITECTURES
from disentkit.quantizers._base import check_float, check_int


def check_nonnegative(config: Any, *names: str) -> None:
    """Each field ``names`` of ``config`` is a number ≥ 0 (not a bool)."""
    for name in names:
        value = getattr(config, name)
        if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
            raise ValueError(f"{name} must be a number >= 0; received {value!r}")


def check_choice(name: str, value: Any, choices: tuple[str, ...]) -> None:
    """``value`` is one of ``choices``."""
    if value not in choices:
        raise ValueError(f"{name} must be one of {list(choices)}; received {value!r}")


def check_image_model(config: Any) -> None:
    """``image_shape`` (normalised to a tuple), ``arch`` and ``n_latents`` of an image model."""
    shape = tuple(config.image_shape)
    if len(shape) != 3 or not all(isinstance(v, int) and v > 0 for v in shape):
        raise ValueError(f"image_shape must be (C, H, W) positive ints; received {shape!r}")
    config.image_shape = shape
    check_choice("arch", config.arch, ARCHITECTURES)
    check_int("n_latents", config.n_latents, minimum=1)


def check_clip(config: Any) -> None:
    """``clip_value`` is ``None`` or a number > 0."""
    if config.clip_value is not None:
        check_float("clip_value", config.clip_value, low=0.0)
