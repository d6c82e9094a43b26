"""Finite scalar quantization (FSQ): bound each dimension, round it to one of ``L`` levels.

Mentzer, Minnen, Agustsson, Tschannen, "Finite Scalar Quantization: VQ-VAE Made Simple",
ICLR 2024; reference code ``google-research/google-research`` ``fsq/fsq.ipynb``
(METHODS.md §6); cf. ``lucidrains/vector-quantize-pytorch``
``finite_scalar_quantization.py``.

For a dimension with ``L`` levels, ``h = (L − 1)(1 − ε)/2`` and ``offset = 0.5`` when ``L``
is even (0 when odd):

- bound: ``f(z) = tanh(z + shift)·h − offset``, with ``shift`` chosen so that ``f(0) = 0``;
- quantize: ``ẑ = round(f(z)) / ⌊L/2⌋`` with a straight-through round, so codes lie in
  ``[−1, 1]`` (``{−1, …, (L/2 − 1)/(L/2)}`` when ``L`` is even);
- index of a group of dimensions with levels ``(L_1, …, L_g)``:
  ``Σ_i (ẑ_i·⌊L_i/2⌋ + ⌊L_i/2⌋)·basis_i`` with ``basis = cumprod([1, L_1, …, L_{g−1}])``.

There are no codebook parameters and no auxiliary losses (``aux`` holds only the ``usage``
and ``perplexity`` statistics).

Choices:

- ``shift`` (METHODS.md §6 ⚠): the notebook writes ``shift = tan(offset/h)``. ``f(0) = 0``
  needs ``tanh(shift) = offset/h``, i.e. ``shift = atanh(offset/h)``, as the lucidrains port
  computes. Default ``"atanh"`` (the mathematically right one); ``"tan"`` reproduces the
  notebook (for ``L = 8`` the two differ by 0.0003, so the choice rarely changes a code).
- ``eps = 1e-3`` as in the notebook. A negative ``eps`` gives the lucidrains port's
  ``h = (L − 1)(1 + |ε|)/2`` (``eps=-1e-3``); it is the only way to have ``L = 2`` with
  ``"atanh"``, since ``atanh(offset/h)`` needs ``h > 0.5``.
- Grouping: ``levels`` describes one group; a ``z`` with ``dim = n_groups·len(levels)`` is
  split into consecutive groups with one index each. ``levels=8`` (an int) means one level
  count per dimension, i.e. per-dimension indices.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from disentkit.quantizers._base import (
    Quantizer,
    QuantizerOutput,
    check_float,
    check_int,
    register_quantizer,
    straight_through,
    usage_stats,
)

#: ways to compute the bound's shift (see the module docstring)
SHIFTS = ("atanh", "tan")


@register_quantizer("fsq")
class FSQ(Quantizer):
    """Finite scalar quantization of ``z`` ``(..., dim)`` in groups of ``len(levels)``.

    ``codes`` ``(..., dim)`` in ``[−1, 1]``; ``indices`` ``(..., dim // len(levels))``, one
    per group, in ``[0, prod(levels))``.

    Args:
        dim: size of ``z``'s last axis, a multiple of ``len(levels)``.
        levels: levels per dimension of a group (each ≥ 2; the paper recommends ≥ 5, e.g.
            ``(8, 5, 5, 5)`` for 2^10 codes), or one int for per-dimension quantization.
        eps: the bound's margin ``ε`` (reference 1e-3; negative: the ``(1 + |ε|)`` form).
        shift: ``"atanh"`` (default, exact ``f(0) = 0``) or ``"tan"`` (the notebook's).

    Example:
        >>> q = FSQ(2, levels=(3, 5))
        >>> codes, indices, aux = q(torch.tensor([[0.0, 0.0], [5.0, -5.0]]))
        >>> codes.tolist(), indices.tolist()
        ([[0.0, 0.0], [1.0, -1.0]], [[7], [2]])
        >>> q.indices_to_codes(indices).tolist()
        [[0.0, 0.0], [1.0, -1.0]]
    """

    def __init__(
        self,
        dim: int,
        *,
        levels: int | Sequence[int] = 8,
        eps: float = 1e-3,
        shift: str = "atanh",
    ) -> None:
        super().__init__(dim)
        levels_t = (levels,) if isinstance(levels, int) else tuple(levels)
        if not levels_t:
            raise ValueError("levels must name at least one level count; received ()")
        for value in levels_t:
            check_int("every entry of levels", value, minimum=2)
        if dim % len(levels_t):
            raise ValueError(
                f"dim must be a multiple of len(levels) = {len(levels_t)}; received dim={dim}"
            )
        check_float("eps", eps, low=-1.0, high=1.0)
        if shift not in SHIFTS:
            raise ValueError(f"shift must be one of {list(SHIFTS)}; received {shift!r}")
        top = max(levels_t)
        if eps <= -1 / (top - 1):
            # the bound would reach the next integer beyond the outermost level
            raise ValueError(
                f"eps must be > -1/(max(levels) - 1) = {-1 / (top - 1):.4g}; received {eps!r}"
            )
        if shift == "atanh" and 2 in levels_t and eps >= 0:
            raise ValueError(
                "L = 2 with shift='atanh' needs eps < 0 (atanh(offset/h) needs h > 0.5, i.e. "
                "the (1 + |eps|) form); use eps=-1e-3, shift='tan', or levels >= 3; "
                f"received levels={levels_t}, eps={eps!r}"
            )
        self.levels = levels_t
        self.group_size = len(levels_t)
        self.n_groups = dim // len(levels_t)
        self.eps = float(eps)
        self.shift_fn = shift
        self.n_codes = math.prod(levels_t)
        if self.n_codes >= 2**62:
            raise ValueError(f"prod(levels) must fit int64 indices; received {levels_t}")

        lv = torch.tensor(levels_t, dtype=torch.float64)  # (g,)
        half_l = (lv - 1) * (1 - self.eps) / 2
        offset = torch.where(lv.remainder(2) == 0, 0.5, 0.0)
        ratio = offset / half_l
        shift_t = torch.atanh(ratio) if shift == "atanh" else torch.tan(ratio)
        basis = torch.cumprod(torch.tensor((1, *levels_t[:-1]), dtype=torch.int64), 0)
        # constants derived from the options: not part of the state dict
        self.register_buffer("_half_l", half_l.float(), persistent=False)  # (g,)
        self.register_buffer("_offset", offset.float(), persistent=False)  # (g,)
        self.register_buffer("_shift", shift_t.float(), persistent=False)  # (g,)
        self.register_buffer(
            "_half_width", torch.tensor([v // 2 for v in levels_t]), persistent=False
        )  # (g,) int64
        self.register_buffer("_levels", torch.tensor(levels_t), persistent=False)  # (g,) int64
        self.register_buffer("_basis", basis, persistent=False)  # (g,) int64

    def bound(self, z: torch.Tensor) -> torch.Tensor:
        """``tanh(z + shift)·h − offset`` for ``z`` ``(..., g)`` float32."""
        return torch.tanh(z + self._shift) * self._half_l - self._offset

    def quantize(self, z: torch.Tensor) -> QuantizerOutput:
        batch_shape = z.shape[:-1]
        z = z.reshape(*batch_shape, self.n_groups, self.group_size)  # (..., G, g)
        bounded = self.bound(z)
        rounded = torch.round(bounded)  # (..., G, g) integers in [−⌊L/2⌋, ⌈L/2⌉ − 1]
        codes = straight_through(rounded, bounded) / self._half_width  # (..., G, g)
        digits = rounded.long() + self._half_width  # (..., G, g) in [0, L)
        indices = (digits * self._basis).sum(-1)  # (..., G)
        aux = usage_stats(indices.reshape(-1, self.n_groups), self.n_codes)
        return QuantizerOutput(codes.reshape(*batch_shape, self.dim), indices, aux)

    def indices_to_codes(self, indices: torch.Tensor) -> torch.Tensor:
        """Codes ``(..., dim)`` float32 of group indices ``(..., dim // len(levels))``."""
        if indices.ndim < 1 or indices.shape[-1] != self.n_groups:
            raise ValueError(
                f"indices must have shape (..., {self.n_groups}); received {tuple(indices.shape)}"
            )
        digits = (indices.long().unsqueeze(-1) // self._basis) % self._levels  # (..., G, g)
        codes = (digits - self._half_width).float() / self._half_width  # (..., G, g)
        return codes.reshape(*indices.shape[:-1], self.dim)

    def codebook_values(self) -> tuple[torch.Tensor, ...]:
        """The grid of each dimension: ``(k − ⌊L/2⌋) / ⌊L/2⌋`` for ``k = 0 … L − 1``.

        Example:
            >>> [v.tolist() for v in FSQ(2, levels=(3, 4)).codebook_values()]
            [[-1.0, 0.0, 1.0], [-1.0, -0.5, 0.0, 0.5]]
        """
        device = self._half_width.device
        grids = [
            (torch.arange(levels, device=device) - levels // 2).float() / (levels // 2)
            for levels in self.levels
        ]  # one (L_i,) grid per dimension of a group
        return tuple(grids[j % self.group_size] for j in range(self.dim))

    def extra_repr(self) -> str:
        return f"dim={self.dim}, levels={self.levels}, eps={self.eps}, shift={self.shift_fn!r}"
