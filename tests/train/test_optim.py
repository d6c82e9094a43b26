"""Weight decay as a behaviour: AdamW's decoupled decay on QLAE's decayed weights, no
decay on its biases and codebook values, coupled L2 for ``"adam"`` groups, on any torch."""

from __future__ import annotations

import pytest
import torch

from disentkit.models import build_model
from disentkit.train._loop import build_optimizer

LR = 1e-3


def _qlae(weight_decay: float = 0.1):
    torch.manual_seed(0)
    model = build_model("qlae", image_shape=(1, 16, 16), arch="dlib", n_latents=4,
                        weight_decay=weight_decay)
    names = {id(p): n for n, p in model.named_parameters()}
    return model, names


def _one_step(opt, model, grad: float = 0.0) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    for p in model.parameters():
        p.grad = torch.full_like(p, grad)
    opt.step()
    return {n: (before[n], p.detach().clone()) for n, p in model.named_parameters()}


@pytest.fixture(params=["this torch", "torch < 2.7"])
def torch_release(request, monkeypatch):
    """Run a test as is, and as on a torch before 2.7, whose Adam ignores the
    ``decoupled_weight_decay`` group key (its functional ``adam`` never sees it)."""
    if request.param == "torch < 2.7":
        import torch.optim.adam as adam_module

        functional = adam_module.adam

        def old_adam(*args, **kwargs):
            kwargs["decoupled_weight_decay"] = False
            return functional(*args, **kwargs)

        monkeypatch.setattr(adam_module, "adam", old_adam)
    return request.param


def test_zero_gradient_step_shrinks_decayed_weights_by_lr_lambda_w(torch_release):
    model, names = _qlae(weight_decay=0.1)
    regularized, unregularized = model.param_groups()
    opt = build_optimizer(model.param_groups(), what="qlae", lr=LR)
    changes = _one_step(opt, model, grad=0.0)
    decayed = {names[id(p)] for p in regularized["params"]}
    kept = {names[id(p)] for p in unregularized["params"]}
    assert any(n.startswith("quantizer.") for n in kept)  # the codebook values
    assert any(n.endswith("bias") for n in kept)
    assert decayed and decayed.isdisjoint(kept)
    for name in decayed:
        before, after = changes[name]
        # AdamW: w ← w − lr·λ·w; Adam's own update is 0 for a zero gradient
        torch.testing.assert_close(after, before - LR * 0.1 * before)  # float32 tolerance
        assert not torch.equal(before, after) or not before.any()
    for name in kept:
        before, after = changes[name]
        assert torch.equal(before, after), name


def test_decoupled_groups_step_as_torch_adamw(torch_release, monkeypatch):
    """A few steps with random gradients: the same weights as ``torch.optim.AdamW``."""
    model, _ = _qlae(weight_decay=0.1)
    regularized, _ = model.param_groups()
    params = regularized["params"]
    reference = [p.detach().clone().requires_grad_(True) for p in params]
    gen = torch.Generator().manual_seed(1)
    grads = [[torch.randn(p.shape, generator=gen) for p in params] for _ in range(3)]
    opt = build_optimizer([regularized], what="qlae", lr=LR)
    for step_grads in grads:
        for p, g in zip(params, step_grads, strict=True):
            p.grad = g.clone()
        opt.step()
    monkeypatch.undo()  # the reference runs on this torch's own AdamW
    ref = torch.optim.AdamW(reference, lr=LR, weight_decay=0.1)
    for step_grads in grads:
        for q, g in zip(reference, step_grads, strict=True):
            q.grad = g.clone()
        ref.step()
    for p, q in zip(params, reference, strict=True):
        torch.testing.assert_close(p.detach(), q.detach(), rtol=1e-6, atol=1e-8)


def test_coupled_l2_adam_group_is_adam_normalised(torch_release):
    """An ``"adam"`` group's decay is L2 added to the gradient: with a zero loss gradient
    the Adam step is ``lr·λw/(|λw| + eps)`` ≈ ``lr·sign(w)``, not ``lr·λ·w``."""
    w = torch.nn.Parameter(torch.tensor([0.5, -2.0, 3.0]))
    opt = build_optimizer([{"params": [w], "optimizer": "adam", "weight_decay": 0.1}],
                           what="l2", lr=LR)
    before = w.detach().clone()
    w.grad = torch.zeros_like(w)
    opt.step()
    g = 0.1 * before
    expected = before - LR * g / (g.abs() + 1e-8)
    torch.testing.assert_close(w.detach(), expected, rtol=0, atol=1e-7)
    decoupled = before - LR * 0.1 * before
    assert not torch.allclose(w.detach(), decoupled, rtol=0, atol=1e-6)


def test_state_dict_round_trip_keeps_decay_settings():
    model, _ = _qlae(weight_decay=0.1)
    opt = build_optimizer(model.param_groups(), what="qlae", lr=LR)
    _one_step(opt, model, grad=0.5)
    state = opt.state_dict()
    model2, _ = _qlae(weight_decay=0.1)
    opt2 = build_optimizer(model2.param_groups(), what="qlae", lr=LR)
    opt2.load_state_dict(state)
    assert [(g["weight_decay"], g["decoupled_weight_decay"]) for g in opt2.param_groups] == [
        (0.1, True), (0.0, False)]
