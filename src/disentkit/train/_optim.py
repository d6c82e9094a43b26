"""The optimiser behind the trainer's ``"adam"``/``"adamw"`` parameter groups."""

from __future__ import annotations

from typing import Any

import torch

__all__ = ["DecoupledAdam"]


class DecoupledAdam(torch.optim.Adam):
    """``torch.optim.Adam`` whose groups with ``decoupled_weight_decay=True`` are AdamW.

    torch honours Adam's per-group ``decoupled_weight_decay`` only from release 2.7 on;
    an older torch ignores the key and would turn AdamW's decay into coupled L2. Here each
    decoupled group is decayed before the Adam update, exactly as ``torch.optim.AdamW``
    does (``w ← w·(1 − lr·λ)`` on every parameter with a gradient, then Adam's update with
    the group's ``weight_decay`` set to 0 for the call), so the step is the same on every
    torch. Groups without the flag keep Adam's coupled L2. The state dict is Adam's:
    checkpoints written with a plain ``torch.optim.Adam`` load unchanged.

    Example:
        >>> w = torch.nn.Parameter(torch.ones(3))
        >>> opt = DecoupledAdam([{"params": [w], "lr": 0.1, "weight_decay": 0.5,
        ...                       "decoupled_weight_decay": True}])
        >>> w.grad = torch.zeros(3)
        >>> opt.step()
        >>> w.detach()  # 1 − 0.1·0.5·1; the Adam update of a zero gradient is 0
        tensor([0.9500, 0.9500, 0.9500])
    """

    @torch.no_grad()
    def step(self, closure: Any = None) -> Any:
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        decoupled = [g for g in self.param_groups
                     if g.get("decoupled_weight_decay") and g["weight_decay"] != 0]
        for g in decoupled:
            for p in g["params"]:
                if p.grad is not None:
                    p.mul_(1.0 - g["lr"] * g["weight_decay"])
        saved = [g["weight_decay"] for g in decoupled]
        try:
            for g in decoupled:
                g["weight_decay"] = 0.0
            super().step()
        finally:
            for g, value in zip(decoupled, saved, strict=True):
                g["weight_decay"] = value
        return loss
