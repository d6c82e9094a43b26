"""Frozen teachers: feature extractors a model aligns its codes with.

FQGAN (Bai et al., "Factorized Visual Tokenization and Generation", arXiv 2411.16681;
METHODS.md §5.3) aligns one sub-codebook with a frozen CLIP or DINOv2 encoder. disentkit
needs no download, so a teacher is any ``nn.Module`` mapping images ``(B, C, H, W)`` in
``[0, 1]`` to features ``(B, D_t)``, named by a string:

- a registered name (:data:`TEACHERS`, :func:`register_teacher`); built in:

  - ``random_conv``: a fixed random convolutional network (seed 0), deterministic and
    offline. Its features keep low-level image statistics (where and how bright things
    are) but carry no learned semantics: it is meant for tests and for exercising the
    alignment pipeline, not as a real teacher.

- an import path ``"package.module:factory"`` (``factory`` may be a dotted attribute
  path), called with no arguments and returning the module. This is how a real teacher is
  plugged in, e.g. a module ``my_teachers.py`` on ``sys.path`` with
  ``def dino(): ...`` and ``teacher="my_teachers:dino"``;
  :func:`disentkit.models.disentkit_model_teacher` turns a trained disentkit run (say, a
  β-VAE trained on the same data) into a teacher in one line of such a factory (it wraps
  the loaded model in :class:`ModelTeacher`).

Teachers get images in ``[0, 1]`` at the dataset's size and channel count; each teacher
resizes and converts channels itself (the reference resizes to 224 with nearest
interpolation and applies the teacher's mean/std normalisation).

:func:`build_teacher` returns the teacher wrapped in :class:`FrozenTeacher`: parameters
with ``requires_grad=False``, always in eval mode (``.train()`` does not reach it), features
computed under ``no_grad`` as float32 ``(B, D_t)``, and **no entries in the state dict**: a
model's saved weights hold its own parameters only, and loading fills the teacher's entries
from the teacher built by the factory. A teacher factory must therefore be deterministic
(same weights on every call) for a resumed run to continue exactly.

Example:
    >>> import torch
    >>> teacher = build_teacher("random_conv")
    >>> teacher(torch.rand(2, 1, 32, 32)).shape
    torch.Size([2, 256])
    >>> teacher.state_dict()
    OrderedDict()
"""

from __future__ import annotations

import importlib
import math
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from disentkit.registry import Registry

__all__ = [
    "TEACHERS",
    "FrozenTeacher",
    "ModelTeacher",
    "RandomConvTeacher",
    "build_teacher",
    "register_teacher",
    "resolve_teacher",
]

#: teacher factories (called with no arguments) by registry name
TEACHERS: Registry[Callable[[], nn.Module]] = Registry("teacher")


def register_teacher(name: str) -> Callable[[Callable[[], nn.Module]], Callable[[], nn.Module]]:
    """Register a no-argument teacher factory under ``name`` (decorator)."""
    return TEACHERS.register(name)


def resolve_teacher(spec: str) -> nn.Module:
    """Build the (unfrozen) teacher named by ``spec``.

    Args:
        spec: a registered teacher name, or ``"package.module:factory"``.

    Raises:
        TypeError: ``spec`` is not a string, or the factory does not return an ``nn.Module``.
        ValueError: an unknown name (lists the registered ones) or an import path that does
            not resolve (says which part failed).
    """
    if not isinstance(spec, str) or not spec:
        raise TypeError(
            f"teacher must be a registered name or 'package.module:factory'; received {spec!r}"
        )
    if ":" not in spec:
        try:
            factory = TEACHERS[spec]
        except KeyError as error:
            raise ValueError(f"{error}; or give an import path 'package.module:factory'") from None
    else:
        module_name, _, attr = spec.partition(":")
        if not module_name or not attr:
            raise ValueError(
                f"teacher import path must be 'package.module:factory'; received {spec!r}"
            )
        try:
            obj: Any = importlib.import_module(module_name)
        except ImportError as error:
            raise ValueError(
                f"teacher {spec!r}: cannot import module {module_name!r} ({error})"
            ) from None
        for part in attr.split("."):
            if not hasattr(obj, part):
                raise ValueError(f"teacher {spec!r}: {module_name!r} has no attribute {attr!r}")
            obj = getattr(obj, part)
        if not callable(obj):
            raise TypeError(f"teacher {spec!r} is not callable; received {type(obj).__name__}")
        factory = obj
    teacher = factory()
    if not isinstance(teacher, nn.Module):
        raise TypeError(
            f"teacher {spec!r} must build an nn.Module; its factory returned "
            f"{type(teacher).__name__}"
        )
    return teacher


def build_teacher(spec: str) -> FrozenTeacher:
    """The teacher named by ``spec`` (see :func:`resolve_teacher`), frozen."""
    return FrozenTeacher(resolve_teacher(spec))


class FrozenTeacher(nn.Module):
    """A teacher network, frozen and kept out of the state dict.

    - every parameter has ``requires_grad=False`` (no optimiser sees it);
    - the module is always in eval mode: ``train(True)`` is ignored;
    - :meth:`forward` runs under ``no_grad`` and returns float32 features ``(B, D_t)``;
    - :meth:`state_dict` adds nothing (the weights come from the factory); when a state
      dict without the teacher's entries is loaded into a parent module, the teacher's
      current tensors are used for them, so ``strict`` loading succeeds. A state dict that
      does hold them loads them as usual.

    Args:
        net: the teacher network, images ``(B, C, H, W)`` in ``[0, 1]`` → ``(B, D_t)``.
    """

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net
        net.requires_grad_(False)
        self.train(False)
        self.register_load_state_dict_pre_hook(_fill_teacher_entries)

    def train(self, mode: bool = True) -> FrozenTeacher:
        """Always eval mode, whatever ``mode`` (so a parent's ``train()`` leaves it alone)."""
        return super().train(False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Features ``(B, D_t)`` float32 of images ``x`` ``(B, C, H, W)`` in ``[0, 1]``."""
        with torch.no_grad():
            features = self.net(x)
        if not isinstance(features, torch.Tensor) or features.ndim != 2:
            got = tuple(features.shape) if isinstance(features, torch.Tensor) else type(features)
            raise ValueError(
                f"a teacher must return features (B, D_t); {type(self.net).__name__} returned {got}"
            )
        if features.shape[0] != x.shape[0]:
            raise ValueError(
                f"a teacher must return one feature vector per image; received "
                f"{features.shape[0]} for {x.shape[0]} images"
            )
        return features.detach().float()

    def state_dict(
        self, *args: Any, destination: Any = None, prefix: str = "", keep_vars: bool = False
    ) -> Any:
        """Nothing: the teacher's weights are not part of a model's saved state."""
        return OrderedDict() if destination is None else destination


def _fill_teacher_entries(module: nn.Module, state_dict: dict[str, Any], prefix: str,
                          *args: Any) -> None:
    """Load pre-hook of :class:`FrozenTeacher` (torch's public hook API): runs before the
    children load from ``state_dict`` and supplies the teacher's own tensors for the
    entries a saved model leaves out, so strict loading finds every key."""
    own = nn.Module.state_dict(module, prefix=prefix, keep_vars=True)  # the real tensors
    for key, value in own.items():
        state_dict.setdefault(key, value.detach())


def _three_channels(x: torch.Tensor) -> torch.Tensor:
    """``(B, C, H, W)`` → ``(B, 3, H, W)``: 1 channel repeated, 3 kept, others averaged."""
    c = x.shape[1]
    if c == 3:
        return x
    grey = x if c == 1 else x.mean(1, keepdim=True)  # (B, 1, H, W)
    return grey.expand(-1, 3, -1, -1)


def _resize(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Bilinear resize to ``size`` (anti-aliased when shrinking); no-op at that size."""
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=True)


class RandomConvTeacher(nn.Module):
    """A fixed random conv net: images ``(B, C, H, W)`` in ``[0, 1]`` → ``(B, 4·widths[-1])``.

    The images are converted to 3 channels (:func:`_three_channels`), resized to
    ``size × size`` (bilinear), mapped to ``[−1, 1]``, and passed through
    ``Conv(k4, s2) + ReLU`` layers of the given widths and a 2×2 average pooling, flattened.
    Kernels are He-normal from a ``torch.Generator`` seeded with ``seed`` and biases zero:
    the same seed gives the same network on every call, and building it leaves the global
    torch RNG untouched.

    Meant for tests and pipelines: random features carry no semantics.

    Args:
        seed: seed of the weights.
        size: side the images are resized to (a multiple of ``2**len(widths)``).
        widths: channels of the conv layers.

    Example:
        >>> a, b = RandomConvTeacher(), RandomConvTeacher()
        >>> x = torch.rand(2, 3, 64, 64)
        >>> bool(torch.equal(a(x), b(x))), tuple(a(x).shape)
        (True, (2, 256))
    """

    def __init__(self, seed: int = 0, size: int = 64, widths: tuple[int, ...] = (16, 32, 64)):
        super().__init__()
        if size % (2 ** len(widths)):
            raise ValueError(
                f"size must be a multiple of 2**len(widths) = {2 ** len(widths)}; received {size}"
            )
        self.size = size
        layers: list[nn.Module] = []
        c = 3
        for width in widths:
            # built on the meta device: no draw from the global RNG
            layers += [nn.Conv2d(c, width, 4, stride=2, padding=1, device="meta"), nn.ReLU()]
            c = width
        self.convs = nn.Sequential(*layers).to_empty(device="cpu")
        gen = torch.Generator().manual_seed(int(seed))
        with torch.no_grad():
            for m in self.convs:
                if isinstance(m, nn.Conv2d):
                    fan_in = m.in_channels * m.kernel_size[0] * m.kernel_size[1]
                    m.weight.copy_(
                        torch.randn(m.weight.shape, generator=gen) * math.sqrt(2.0 / fan_in)
                    )
                    m.bias.zero_()
        self.out_features = 4 * c

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = _resize(_three_channels(x.float()), (self.size, self.size))  # (B, 3, s, s)
        h = self.convs(2 * x - 1)  # (B, widths[-1], s/2^L, s/2^L)
        return F.adaptive_avg_pool2d(h, 2).flatten(1)  # (B, 4·widths[-1])


@register_teacher("random_conv")
def random_conv() -> nn.Module:
    """The built-in random teacher: :class:`RandomConvTeacher` with seed 0 (256 features)."""
    return RandomConvTeacher(seed=0)


class ModelTeacher(nn.Module):
    """A trained disentkit model's continuous encoding as teacher features.

    Features are ``encode(x).mean`` (the posterior mean of a VAE, the pre-quantization
    encoder output of a quantized model) or ``encode(x).z``, flattened to ``(B, D_t)``.
    Images are resized (bilinear) to the model's ``config.image_shape`` and converted to its
    channel count. :func:`disentkit.models.disentkit_model_teacher` builds one from a saved
    run.
    """

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model
        shape = tuple(getattr(model.config, "image_shape", ()))
        if len(shape) != 3:
            raise ValueError(f"the teacher model's config has no image_shape; found {shape!r}")
        self.image_shape = shape

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c, h, w = self.image_shape
        x = _resize(x.float(), (h, w))
        if x.shape[1] != c:
            if c not in (1, 3):
                raise ValueError(
                    f"cannot convert {x.shape[1]}-channel images for a teacher model with "
                    f"{c} channels"
                )
            x = x.mean(1, keepdim=True) if c == 1 else _three_channels(x)
        enc = self.model.encode(x)
        features = enc.mean if enc.mean is not None else enc.z
        return features.reshape(x.shape[0], -1)  # (B, D_t)
