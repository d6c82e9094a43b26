"""The model interface shared by every disentkit model, and the model registry.

Every model is an ``nn.Module`` built from a config dataclass and registered by name:

- ``encode(x) -> Encoding``: the encoder's output (means, log-variances, pre-quantization
  values, quantized codes and indices, auxiliary losses — whichever the model has).
- ``decode(z) -> logits`` ``(B, C, H, W)``: reconstruction logits (Bernoulli) or means.
- ``forward(x) -> Output``: encode, sample/quantize, decode.
- ``loss(x, out, step) -> (total, terms)``: the training objective and a dict of its terms
  (float tensors), for logging.
- ``representation(x, kind) -> (B, D)``: what metrics score: ``"mean"``, ``"sampled"``,
  ``"quantized"`` (codebook values) or ``"indices"`` (codebook indices), as the model has.
- ``param_groups()``: optimiser parameter groups (e.g. QLAE's weight-decay split).
- ``extra_steps()``: models with a critic or discriminator declare their extra optimiser
  steps (which parameters, which loss, how often).

Models keep no hidden per-instance Python state (counters live in buffers; randomness comes
from ``torch.Generator`` or the global torch RNG seeded by the trainer), so several seeds can
be trained as one vectorised model (:mod:`disentkit.train.vectorized`).

Vectorised training. The vectorised trainer stacks the parameters of K members along a
leading axis and calls the model's ``forward`` and ``loss`` under ``torch.func.vmap``
(through ``functional_call``). A model class says whether that is valid:

- ``vectorize_refusal``: ``None`` when one member's ``forward``/``loss`` is a pure function
  of its parameters, buffers, batch, step and noise (no in-place buffer updates, no
  data-dependent Python control flow, no extra optimiser steps); otherwise a sentence naming
  the reason (e.g. "it trains a discriminator in an extra optimiser step"), shown when a
  vectorised run is refused. :meth:`Model.vectorize_problem` may refine it per config.
- ``vectorized_options``: the config fields that may differ between the members of one
  vectorised run. A field used by the loss must be used only arithmetically (the trainer
  puts a per-member 0-d tensor in its place); a field read only by :meth:`param_groups`
  (``weight_decay``) becomes a per-member optimiser setting.
- Noise: every random draw of ``forward``/``loss`` in training goes through
  :meth:`Model.noise` (standard normal noise shaped like a tensor). A single run draws it
  from the global torch RNG, exactly ``torch.randn_like``; the vectorised trainer redirects
  it (:func:`noise_source`) to each member's own ``torch.Generator``, seeded and advanced as
  that member's single run advances the global RNG, so a member's noise, like its batches,
  equals its single run's.

Images enter models as float ``(B, C, H, W)`` in ``[0, 1]``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
from torch import nn

from disentkit.registry import Registry

REPRESENTATION_KINDS = ("mean", "sampled", "quantized", "indices")

#: where :meth:`Model.noise` draws from; ``None``: the global torch RNG
_NOISE_SOURCE: ContextVar[Callable[[torch.Tensor], torch.Tensor] | None] = ContextVar(
    "disentkit_noise_source", default=None
)


@contextmanager
def noise_source(source: Callable[[torch.Tensor], torch.Tensor]) -> Iterator[None]:
    """Within the block, :meth:`Model.noise` returns ``source(like)`` for every model.

    The vectorised trainer uses it to give each member its own random stream.

    Example:
        >>> model = Model(config=None)
        >>> with noise_source(torch.zeros_like):
        ...     model.noise(torch.ones(2, 3)).sum().item()
        0.0
    """
    token = _NOISE_SOURCE.set(source)
    try:
        yield
    finally:
        _NOISE_SOURCE.reset(token)


@dataclass
class Encoding:
    """What an encoder produced for a batch; fields a model does not have stay ``None``.

    Attributes:
        z: the latent passed to the decoder ``(B, D)`` (sampled, quantized with
            straight-through, or deterministic).
        mean: posterior mean ``(B, D)`` (VAE family) or the pre-quantization value.
        logvar: posterior log-variance ``(B, D)`` (VAE family).
        quantized: quantized codebook values ``(B, D)`` (quantized models).
        indices: codebook indices ``(B, D)`` int64 (quantized models).
        aux: auxiliary loss terms from the bottleneck (e.g. quantization, commitment).
    """

    z: torch.Tensor
    mean: torch.Tensor | None = None
    logvar: torch.Tensor | None = None
    quantized: torch.Tensor | None = None
    indices: torch.Tensor | None = None
    aux: dict[str, torch.Tensor] = field(default_factory=dict)


@dataclass
class Output:
    """``forward``'s result: the encoding and the reconstruction logits ``(B, C, H, W)``."""

    encoding: Encoding
    logits: torch.Tensor


@dataclass
class ExtraStep:
    """An additional optimiser step a model declares (critic, discriminator).

    Attributes:
        name: e.g. ``"discriminator"``.
        parameters: the parameters this step updates.
        loss: ``loss(x, step) -> (total, terms)`` computed for this step.
        every: take the step every ``every`` iterations (1: each iteration).
        optimizer: optimiser settings for these parameters (``lr``, ``betas``, ...), the
            keys of a main parameter group (``optimizer``, ``weight_decay``,
            ``clip_value``, ...).
        param_groups: optional torch-style parameter groups for this step (e.g. a
            weight-decay split); each group's keys override ``optimizer``'s. Without it the
            step has one group over ``parameters()``.
    """

    name: str
    parameters: Callable[[], list[nn.Parameter]]
    loss: Callable[[torch.Tensor, int], tuple[torch.Tensor, dict[str, torch.Tensor]]]
    every: int = 1
    optimizer: Mapping[str, Any] = field(default_factory=dict)
    param_groups: Callable[[], list[dict[str, Any]]] | None = None


class Model(nn.Module):
    """Base class of every disentkit model; see the module docstring for the contract."""

    #: registry name, set by :func:`register_model`
    name: str = ""
    #: representation kinds this model supports, first one is the default for metrics
    representation_kinds: tuple[str, ...] = ("mean",)
    #: why training cannot be vectorised; ``None``: it can (see the module docstring)
    vectorize_refusal: ClassVar[str | None] = (
        "its class does not declare that its training can be vectorised"
    )
    #: config fields that may differ between the members of one vectorised run
    vectorized_options: ClassVar[tuple[str, ...]] = ()

    def __init__(self, config: Any) -> None:
        super().__init__()
        self.config = config

    # -- contract ------------------------------------------------------------------------
    def encode(self, x: torch.Tensor) -> Encoding:
        raise NotImplementedError

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> Output:
        enc = self.encode(x)
        return Output(encoding=enc, logits=self.decode(enc.z))

    def loss(
        self, x: torch.Tensor, out: Output, step: int = 0
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        raise NotImplementedError

    def param_groups(self) -> list[dict[str, Any]]:
        """Optimiser parameter groups; default: one group with every parameter."""
        return [{"params": [p for p in self.parameters() if p.requires_grad]}]

    def extra_steps(self) -> list[ExtraStep]:
        """Extra optimiser steps (critics, discriminators); default: none."""
        return []

    def noise(self, like: torch.Tensor) -> torch.Tensor:
        """Standard normal noise shaped like ``like``: every training-time draw goes here.

        ``torch.randn_like(like)`` from the global torch RNG, unless a vectorised trainer
        redirected it (:func:`noise_source`).
        """
        source = _NOISE_SOURCE.get()
        return torch.randn_like(like) if source is None else source(like)

    @classmethod
    def vectorize_problem(cls, config: Any) -> str | None:
        """Why a model of this class with ``config`` cannot train vectorised (``None``: it can).

        Default: :attr:`vectorize_refusal`.
        """
        return cls.vectorize_refusal

    @torch.inference_mode()
    def representation(self, x: torch.Tensor, kind: str | None = None) -> torch.Tensor:
        """The representation metrics score: ``(B, D)`` float (int64 for ``"indices"``)."""
        kind = kind or self.representation_kinds[0]
        if kind not in self.representation_kinds:
            raise ValueError(
                f"{self.name or type(self).__name__} offers representations "
                f"{list(self.representation_kinds)}; received {kind!r}"
            )
        enc = self.encode(x)
        value = {
            "mean": enc.mean if enc.mean is not None else enc.z,
            "sampled": enc.z,
            "quantized": enc.quantized,
            "indices": enc.indices,
        }[kind]
        assert value is not None, f"{kind} representation missing from {type(self).__name__}"
        return value

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    def config_dict(self) -> dict[str, Any]:
        """The model config as a JSON-friendly dict (for ``model.json``)."""
        return dataclasses.asdict(self.config)


@dataclass(frozen=True)
class ModelInfo:
    """A registered model: its class, its config dataclass and a one-line description."""

    name: str
    cls: type[Model]
    config_cls: type
    description: str = ""
    reference: str = ""


#: Every registered model, by name (:class:`ModelInfo` entries); ``disentkit models`` lists
#: them.
MODELS: Registry[ModelInfo] = Registry("model")


def register_model(
    name: str, *, config: type, description: str = "", reference: str = ""
) -> Callable[[type[Model]], type[Model]]:
    """Register a model class under ``name`` with its config dataclass (decorator)."""

    def decorator(cls: type[Model]) -> type[Model]:
        cls.name = name
        MODELS.add(name, ModelInfo(name, cls, config, description, reference))
        return cls

    return decorator


def build_model(name: str, **overrides: Any) -> Model:
    """Build the model registered as ``name`` from its default config with ``overrides``.

    Raises:
        KeyError: unknown model name (lists the known ones).
        ValueError: an override that is not a field of the model's config (lists them).
    """
    info = MODELS[name]
    fields = {f.name for f in dataclasses.fields(info.config_cls)}
    unknown = sorted(set(overrides) - fields)
    if unknown:
        raise ValueError(
            f"unknown option(s) {unknown} for model {name!r}; valid options: {sorted(fields)}"
        )
    return info.cls(info.config_cls(**overrides))
