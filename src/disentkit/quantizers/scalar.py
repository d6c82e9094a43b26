"""Latent quantization: a learnable scalar codebook per latent dimension (QLAE), or one
codebook shared by every dimension (the global-codebook ablation).

Hsu, Dorrell, Whittington, Wu, Finn, "Disentanglement via Latent Quantization", NeurIPS
2023; reference code ``kylehkhsu/latent_quantization`` (JAX):
``disentangle/latents/quantized.py`` L27-49, ``latents/global_quantized.py``,
``models/quantized_ae.py`` L17-36 (METHODS.md §1).

Each dimension ``j`` of ``z`` is replaced by the nearest value of its codebook ``V_j``
(``n_values`` scalars, initialised to ``linspace(−0.5, 0.5, n_values)``, trainable):
``z_q,j = argmin_{v ∈ V_j} |z_j − v|``. The output is ``z + sg(z_q − z)`` (straight-through), so
the decoder's gradient reaches only the encoder, and the codebook values learn only through
the quantization loss, a k-means-like update:

- ``quantization = mean (sg(z) − z_q)²`` (moves the values towards the encoder outputs),
- ``commitment = mean (z − sg(z_q))²`` (keeps the encoder outputs near the values),

means over every element (batch and dimensions), unweighted (QLAE weights both 0.01).

Choices:

- ``init_range`` (METHODS.md §8 ambiguity 1): the reference initialises the values to
  ``linspace(−0.5, 0.5)`` (``latents/quantized.py`` L27); the paper's text suggests
  ``[−1, 1]``. Default ``(−0.5, 0.5)``.
- ``optimize_values=False`` keeps the values fixed (a buffer, not a parameter).
- Ties between two equally near values go to the lower index (``argmin``).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from disentkit.quantizers._base import (
    Quantizer,
    QuantizerOutput,
    check_int,
    register_quantizer,
    straight_through,
    usage_stats,
)


@register_quantizer("scalar")
class ScalarQuantizer(Quantizer):
    """One learnable scalar codebook per latent dimension (QLAE's latent quantization).

    Input ``z`` ``(..., dim)``; ``codes`` ``(..., dim)``; ``indices`` ``(..., dim)`` (the index
    of each dimension's value in its own codebook). ``aux``: losses ``quantization`` and
    ``commitment`` (see the module docstring); statistics ``usage`` and ``perplexity`` per
    dimension's codebook, averaged over the dimensions.

    Args:
        dim: number of latent dimensions.
        n_values: values per codebook (reference 10).
        init_range: ``(low, high)`` of the ``linspace`` initialisation (reference
            ``(−0.5, 0.5)``; ambiguity 1).
        optimize_values: learn the values (reference ``True``).

    Example:
        >>> q = ScalarQuantizer(2, n_values=3)
        >>> q.values.tolist()
        [[-0.5, 0.0, 0.5], [-0.5, 0.0, 0.5]]
        >>> codes, indices, aux = q(torch.tensor([[0.2, -0.4]]))
        >>> codes.tolist(), indices.tolist(), sorted(aux)
        ([[0.0, -0.5]], [[1, 0]], ['commitment', 'perplexity', 'quantization', 'usage'])
    """

    #: one codebook for every dimension (``True`` in :class:`GlobalScalarQuantizer`)
    shared: bool = False

    def __init__(
        self,
        dim: int,
        *,
        n_values: int = 10,
        init_range: Sequence[float] = (-0.5, 0.5),
        optimize_values: bool = True,
    ) -> None:
        super().__init__(dim)
        check_int("n_values", n_values, minimum=2)
        low, high = _check_range(init_range)
        self.n_codes = n_values
        self.init_range = (low, high)
        self.optimize_values = bool(optimize_values)
        self.loss_names = ("quantization", "commitment")
        n_codebooks = 1 if self.shared else dim
        values = torch.linspace(low, high, n_values).repeat(n_codebooks, 1)  # (D or 1, V)
        if self.optimize_values:
            self.values = nn.Parameter(values)
        else:
            self.register_buffer("values", values)

    def _codebooks(self) -> torch.Tensor:
        """The values as float32 ``(dim, n_values)`` (the shared codebook expanded)."""
        return self.values.float().expand(self.dim, -1)

    def codebook_values(self) -> tuple[torch.Tensor, ...]:
        """Each dimension's codebook ``(n_values,)``, ascending (detached float32).

        Example:
            >>> q = GlobalScalarQuantizer(2, n_values=3)
            >>> [v.tolist() for v in q.codebook_values()]
            [[-0.5, 0.0, 0.5], [-0.5, 0.0, 0.5]]
        """
        return tuple(self._codebooks().detach().sort(dim=-1).values.unbind(0))  # D × (V,)

    def quantize(self, z: torch.Tensor) -> QuantizerOutput:
        values = self._codebooks()  # (D, V)
        with torch.no_grad():
            distance = (z.unsqueeze(-1) - values).abs()  # (..., D, V)
            indices = distance.argmin(-1)  # (..., D)
        z_q = self._lookup(values, indices)  # (..., D), carries the values' gradient
        aux = {
            "quantization": (z.detach() - z_q).square().mean(),
            "commitment": (z - z_q.detach()).square().mean(),
        }
        aux.update(self._stats(indices))
        return QuantizerOutput(straight_through(z_q, z), indices, aux)

    def _stats(self, indices: torch.Tensor) -> dict[str, torch.Tensor]:
        return usage_stats(indices.reshape(-1, self.dim), self.n_codes)  # (N, D)

    def _lookup(self, values: torch.Tensor, indices: torch.Tensor) -> torch.Tensor:
        dims = torch.arange(self.dim, device=indices.device)  # (D,)
        return values[dims, indices]  # (..., D): values[j, indices[..., j]]

    def indices_to_codes(self, indices: torch.Tensor) -> torch.Tensor:
        """The values ``(..., dim)`` float32 of per-dimension ``indices`` ``(..., dim)``."""
        if indices.ndim < 1 or indices.shape[-1] != self.dim:
            raise ValueError(
                f"indices must have shape (..., {self.dim}); received {tuple(indices.shape)}"
            )
        with torch.autocast(device_type=indices.device.type, enabled=False):
            return self._lookup(self._codebooks(), indices.long())

    def extra_repr(self) -> str:
        return (
            f"dim={self.dim}, n_values={self.n_codes}, init_range={self.init_range}, "
            f"optimize_values={self.optimize_values}, shared={self.shared}"
        )


@register_quantizer("global_scalar")
class GlobalScalarQuantizer(ScalarQuantizer):
    """One scalar codebook shared by every latent dimension (QLAE's global-codebook ablation).

    Reference: ``kylehkhsu/latent_quantization`` ``disentangle/latents/global_quantized.py``.
    Same arguments, losses and outputs as :class:`ScalarQuantizer`; ``values`` is
    ``(1, n_values)`` and ``indices`` ``(..., dim)`` index that shared codebook. ``usage`` and
    ``perplexity`` pool every dimension's assignments into one histogram.

    Example:
        >>> q = GlobalScalarQuantizer(3, n_values=3)
        >>> tuple(q.values.shape)
        (1, 3)
        >>> q(torch.tensor([[0.4, -0.4, 0.1]])).indices.tolist()
        [[2, 0, 1]]
    """

    shared = True

    def _stats(self, indices: torch.Tensor) -> dict[str, torch.Tensor]:
        return usage_stats(indices.reshape(-1, 1), self.n_codes)  # (N·D, 1)


def _check_range(init_range: Sequence[float]) -> tuple[float, float]:
    try:
        low, high = (float(v) for v in init_range)
    except (TypeError, ValueError):
        raise ValueError(
            f"init_range must be two numbers (low, high); received {init_range!r}"
        ) from None
    if not low < high:
        raise ValueError(f"init_range must have low < high; received {init_range!r}")
    return low, high
