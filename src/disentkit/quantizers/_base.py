"""The quantizer contract shared by every disentkit quantizer, and the quantizer registry.

Every quantizer is an ``nn.Module`` mapping a continuous tensor ``z`` of shape ``(..., dim)``
to a :class:`QuantizerOutput` ``(codes, indices, aux)`` (the contract of
vector-quantize-pytorch, so ``codes, indices, aux = q(z)`` unpacks it):

- ``codes``: float32, the shape of ``z``. In the forward pass the values are exactly the
  codebook entries (``q.indices_to_codes(indices)`` gives the same numbers bit for bit); in the
  backward pass the quantization step is the identity (straight-through estimator), so the
  gradient reaching ``z`` through ``codes`` is the gradient reaching ``codes``.
- ``indices``: int64 codebook indices; their shape is the quantizer's own (one index per
  dimension for the scalar codebooks, one per group of ``len(levels)`` dimensions for FSQ,
  one per ``dim``-vector for VQ).
- ``aux``: a dict of named float32 scalars: the unweighted auxiliary losses named in
  ``q.loss_names`` (the model applies the weights) and detached statistics (``usage``: the
  fraction of codebook entries used in the batch; ``perplexity``: ``exp`` of the entropy of
  the batch's code histogram; one codebook per dimension or group is averaged over them).

What the codes can be is public, so users (traversals, plots) need not know the quantizer:
exactly one of :meth:`Quantizer.codebook_values` (quantizers that round each dimension on
its own: the values each dimension takes) and :meth:`Quantizer.codebook_vectors`
(quantizers whose codes are ``dim``-vectors: the entries) returns a tensor, the other
``None``.

Quantization math runs in float32 with autocast disabled, whatever the input's dtype and the
surrounding autocast region. State that changes during training (EMA statistics) lives in
registered buffers and is updated only in training mode, under ``torch.no_grad()``.

Quantizers are registered by name (:data:`QUANTIZERS`) and built with
:func:`build_quantizer`; every constructor takes ``dim`` (the size of ``z``'s last axis) as its
first argument, then keyword-only options.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any, NamedTuple, TypeVar

import torch
from torch import nn

from disentkit.registry import Registry


class QuantizerOutput(NamedTuple):
    """What a quantizer returns; unpacks as ``codes, indices, aux = q(z)``.

    Attributes:
        codes: quantized values, float32, the shape of ``z`` (straight-through gradient).
        indices: codebook indices, int64.
        aux: unweighted auxiliary losses (names in ``q.loss_names``) and detached statistics.
    """

    codes: torch.Tensor
    indices: torch.Tensor
    aux: dict[str, torch.Tensor]


class Quantizer(nn.Module):
    """Base class of every quantizer; see the module docstring for the contract.

    Subclasses implement :meth:`quantize` (float32 input, autocast already disabled) and
    :meth:`indices_to_codes`, and set ``n_codes`` and ``loss_names``.

    Args:
        dim: size of the last axis of the input ``z``.
    """

    #: registry name, set by :func:`register_quantizer`
    name: str = ""

    def __init__(self, dim: int) -> None:
        super().__init__()
        check_int("dim", dim, minimum=1)
        self.dim = dim
        #: entries of ``aux`` that are losses (the others are detached statistics)
        self.loss_names: tuple[str, ...] = ()
        #: codebook size (per dimension or group where the quantizer has several)
        self.n_codes: int = 0

    def forward(self, z: torch.Tensor) -> QuantizerOutput:
        """Quantize ``z`` ``(..., dim)``; see the module docstring."""
        if not isinstance(z, torch.Tensor) or not z.is_floating_point():
            raise TypeError(f"z must be a floating-point tensor; received {type(z).__name__}")
        if z.ndim < 1 or z.shape[-1] != self.dim:
            raise ValueError(
                f"{type(self).__name__} expects z of shape (..., {self.dim}); "
                f"received {tuple(z.shape)}"
            )
        with torch.autocast(device_type=z.device.type, enabled=False):
            return self.quantize(z.float())

    def quantize(self, z: torch.Tensor) -> QuantizerOutput:
        """Quantize float32 ``z`` ``(..., dim)``; autocast is off here."""
        raise NotImplementedError

    def indices_to_codes(self, indices: torch.Tensor) -> torch.Tensor:
        """The float32 codes of ``indices`` (the inverse of the forward pass's indices)."""
        raise NotImplementedError

    def codebook_values(self) -> tuple[torch.Tensor, ...] | None:
        """The values each dimension of ``z`` can be quantized to, for quantizers that round
        every dimension on its own (scalar codebooks, FSQ).

        Returns:
            ``dim`` detached float32 tensors, the ``j``-th ``(V_j,)`` sorted ascending: every
            ``codes[..., j]`` of the forward pass is one of them. ``None`` for quantizers
            whose codes are vectors (see :meth:`codebook_vectors`).
        """
        return None

    def codebook_vectors(self) -> torch.Tensor | None:
        """The entries a vector quantizer's codes are drawn from.

        Returns:
            detached float32 ``(n_codes, dim)``, in index order (``indices_to_codes(k)`` is
            row ``k``). ``None`` for quantizers that round each dimension on its own (see
            :meth:`codebook_values`).
        """
        return None

    def extra_repr(self) -> str:
        return f"dim={self.dim}, n_codes={self.n_codes}"


def straight_through(codes: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """``codes`` in the forward pass, identity w.r.t. ``z`` in the backward pass.

    Written ``sg(codes) + (z − sg(z))`` rather than ``z + sg(codes − z)``: the two have the
    same gradient, but this form returns the codebook values exactly (``x − x`` is exactly
    zero in floating point, ``z + (c − z)`` need not equal ``c``).
    """
    return codes.detach() + (z - z.detach())


def usage_stats(indices: torch.Tensor, n_codes: int) -> dict[str, torch.Tensor]:
    """Codebook usage of a batch: ``usage`` and ``perplexity``, detached float32 scalars.

    Args:
        indices: ``(N, G)`` int64, ``G`` independent codebooks of ``n_codes`` entries each.
        n_codes: entries per codebook.

    Returns:
        ``usage``: fraction of entries used at least once (mean over the ``G`` codebooks);
        ``perplexity``: ``exp(−Σ_k p̄_k log p̄_k)`` of each codebook's batch histogram ``p̄``
        (mean over the codebooks); it equals ``n_codes`` for perfectly uniform usage.

    Example:
        >>> stats = usage_stats(torch.tensor([[0], [1], [2], [3]]), n_codes=4)
        >>> float(stats["usage"]), round(float(stats["perplexity"]), 4)
        (1.0, 4.0)
    """
    with torch.no_grad():
        n_groups = indices.shape[-1]
        flat = indices.reshape(-1, n_groups)  # (N, G)
        offsets = torch.arange(n_groups, device=flat.device) * n_codes  # (G,)
        slots = (flat + offsets).reshape(-1)  # (N·G,)
        # scatter_add rather than bincount: the same counts, and it has a vmap batching rule
        # (vectorised training), where bincount falls back to a slow per-member loop
        counts = torch.zeros(n_groups * n_codes, dtype=slots.dtype, device=slots.device)
        counts = counts.scatter_add(0, slots, torch.ones_like(slots))
        counts = counts.view(n_groups, n_codes).float()  # (G, K)
        probs = counts / counts.sum(-1, keepdim=True).clamp_min(1.0)  # (G, K)
        entropy = -torch.special.xlogy(probs, probs).sum(-1)  # (G,)
        return {
            "usage": (counts > 0).float().mean(),
            "perplexity": entropy.exp().mean(),
        }


def check_int(name: str, value: Any, *, minimum: int) -> None:
    """Raise ``ValueError`` unless ``value`` is an ``int`` (not bool) ``>= minimum``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}; received {value!r}")


def check_float(name: str, value: Any, *, low: float, high: float | None = None) -> None:
    """Raise ``ValueError`` unless ``low < value`` (and ``value < high`` when given)."""
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and value > low
    if ok and high is not None:
        ok = value < high
    if not ok:
        bound = f"in ({low}, {high})" if high is not None else f"> {low}"
        raise ValueError(f"{name} must be a number {bound}; received {value!r}")


QuantizerT = TypeVar("QuantizerT", bound=type[Quantizer])

#: quantizer classes by registry name
QUANTIZERS: Registry[type[Quantizer]] = Registry("quantizer")


def register_quantizer(name: str) -> Callable[[QuantizerT], QuantizerT]:
    """Register a :class:`Quantizer` subclass under ``name`` (decorator)."""

    def decorator(cls: QuantizerT) -> QuantizerT:
        cls.name = name
        QUANTIZERS.add(name, cls)
        return cls

    return decorator


def quantizer_options(name: str) -> dict[str, Any]:
    """The keyword options of quantizer ``name`` and their defaults."""
    params = inspect.signature(QUANTIZERS[name].__init__).parameters
    return {p.name: p.default for p in params.values() if p.kind is p.KEYWORD_ONLY}


def build_quantizer(name: str, dim: int, **options: Any) -> Quantizer:
    """Build the quantizer registered as ``name`` for inputs ``(..., dim)``.

    Raises:
        KeyError: unknown quantizer name (lists the known ones).
        ValueError: an option the quantizer does not take (lists the valid ones), or a bad
            value.

    Example:
        >>> q = build_quantizer("scalar", 3, n_values=5)
        >>> codes, indices, aux = q(torch.tensor([[0.3, -0.1, 0.9]]))
        >>> codes.tolist(), indices.tolist()
        ([[0.25, 0.0, 0.5]], [[3, 2, 4]])
    """
    cls = QUANTIZERS[name]
    valid = quantizer_options(name)
    unknown = sorted(set(options) - set(valid))
    if unknown:
        raise ValueError(
            f"unknown option(s) {unknown} for quantizer {name!r}; valid options: {sorted(valid)}"
        )
    return cls(dim, **options)
