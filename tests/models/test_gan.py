"""QLInfoWGAN-GP and InfoWGAN-GP: the gradient penalty, codes, losses, optimiser split and
the critic:generator step ratio under the real trainer.

The registry-wide contract (shapes, finite losses, backward, round trips) is in
``test_registry_models.py``; these tests check what is specific to the GANs.
"""

from __future__ import annotations

import csv
import math

import numpy as np
import pytest
import torch

from disentkit.models import build_model
from disentkit.models.gan import CriticEncoding, QLInfoWGANGP, gradient_penalty
from disentkit.nn.critic import CriticEncoder
from disentkit.train import evaluate_run, fit, load_model
from disentkit.train.checkpoint import load_checkpoint

SMALL = {"image_shape": (1, 16, 16), "arch": "dlib", "n_latents": 3}
GANS = ("qlinfowgan_gp", "infowgan_gp")


pytestmark = pytest.mark.usefixtures("torch_one_thread")


def _model(name: str = "qlinfowgan_gp", **overrides):
    torch.manual_seed(0)
    return build_model(name, **{**SMALL, **overrides})


def _images(n: int = 6, shape=(1, 16, 16), seed: int = 1) -> torch.Tensor:
    return torch.rand(n, *shape, generator=torch.Generator().manual_seed(seed))


def _ids(params) -> set[int]:
    return {id(p) for p in params}


# -- the gradient penalty ------------------------------------------------------------------
def test_gradient_penalty_of_a_linear_critic_is_the_weight_norm_penalty():
    # D(x) = w·x + b has ∇D = w everywhere, so GP = (‖w‖ − 1)² whatever ε, x and x_fake
    g = torch.Generator().manual_seed(0)
    w = torch.randn(2, 3, 4, generator=g, dtype=torch.float64, requires_grad=True)
    b = torch.tensor(0.7, dtype=torch.float64)

    def critic(x):
        return (x * w).flatten(1).sum(1) + b  # (B,)

    real = torch.rand(5, 2, 3, 4, generator=g, dtype=torch.float64)
    fake = torch.rand(5, 2, 3, 4, generator=g, dtype=torch.float64)
    norm = float(torch.linalg.vector_norm(w.detach()))
    penalty = gradient_penalty(critic, real, fake)
    assert float(penalty.detach()) == pytest.approx((norm - 1) ** 2, rel=1e-12)
    # differentiable w.r.t. the critic's parameters (create_graph): d/dw = 2(‖w‖ − 1)·w/‖w‖
    (grad,) = torch.autograd.grad(penalty, w)
    torch.testing.assert_close(grad, 2 * (norm - 1) * w.detach() / norm)


def test_gradient_penalty_of_a_quadratic_critic_at_given_interpolates():
    # D(x) = ½ Σ a x² has ∇D(x̂) = a·x̂ with x̂ = εx + (1 − ε)x_fake
    a = torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64)
    real = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 1.0]], dtype=torch.float64)
    fake = torch.tensor([[0.0, 1.0, 0.0], [1.0, 1.0, 0.0]], dtype=torch.float64)
    eps = torch.tensor([0.25, 0.5], dtype=torch.float64)

    def critic(x):
        return 0.5 * (a * x.square()).sum(1)

    # sample 0: x̂ = (0.25, 0.75, 0) → ∇ = (0.25, 1.5, 0)
    # sample 1: x̂ = (0.5, 1, 0.5) → ∇ = (0.5, 2, 1.5)
    norms = [math.sqrt(0.25**2 + 1.5**2), math.sqrt(0.5**2 + 2**2 + 1.5**2)]
    expected = sum((n - 1) ** 2 for n in norms) / 2
    penalty = gradient_penalty(critic, real, fake, epsilon=eps)
    assert float(penalty.detach()) == pytest.approx(expected, rel=1e-12)
    # ε = 1 puts x̂ on the real images, ε = 0 on the fakes
    on_real = gradient_penalty(critic, real, fake, epsilon=torch.ones(2, dtype=torch.float64))
    grad_norms = torch.linalg.vector_norm(a * real, dim=1)
    assert float(on_real.detach()) == pytest.approx(
        float(((grad_norms - 1) ** 2).mean()), rel=1e-12
    )


def test_gradient_penalty_runs_in_float32_under_mixed_precision():
    # under autocast the penalty's pass is taken in float32: the same value as without
    # autocast, to float32 rounding, where a bfloat16 pass would be off in the 3rd digit
    g = torch.Generator().manual_seed(3)
    critic = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 4, 2), torch.nn.Tanh(),
                                 torch.nn.Flatten(), torch.nn.Linear(8 * 7 * 7, 1))
    real, fake = torch.rand(6, 3, 16, 16, generator=g), torch.rand(6, 3, 16, 16, generator=g)
    eps = torch.rand(6, generator=g)

    def values(x):
        return critic(x).squeeze(1)

    expected = gradient_penalty(values, real, fake, epsilon=eps)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        mixed = gradient_penalty(values, real.bfloat16(), fake.bfloat16(), epsilon=eps)
        in_bf16 = values(real.bfloat16())
    assert in_bf16.dtype == torch.bfloat16  # autocast is on around the penalty
    assert mixed.dtype == torch.float32
    inputs_rounded = gradient_penalty(values, real.bfloat16().float(),
                                      fake.bfloat16().float(), epsilon=eps)
    torch.testing.assert_close(mixed, inputs_rounded, rtol=1e-6, atol=1e-7)
    assert float(mixed.detach()) == pytest.approx(float(expected.detach()), rel=1e-2)


def test_gradient_penalty_under_no_grad_is_the_same_value_detached():
    w = torch.tensor([3.0, 4.0], requires_grad=True)
    real, fake = torch.zeros(4, 2), torch.ones(4, 2)
    with torch.no_grad():
        penalty = gradient_penalty(lambda x: x @ w, real, fake)
    assert float(penalty) == 16.0 and not penalty.requires_grad
    assert gradient_penalty(lambda x: x @ w, real, fake).requires_grad


def test_gradient_penalty_rejects_mismatched_inputs():
    with pytest.raises(ValueError, match="one shape"):
        gradient_penalty(lambda x: x.sum(1), torch.zeros(2, 3), torch.zeros(2, 4))
    with pytest.raises(ValueError, match="epsilon must have shape"):
        gradient_penalty(
            lambda x: x.sum(1), torch.zeros(2, 3), torch.zeros(2, 3), epsilon=torch.zeros(3)
        )


def test_critic_encoder_heads_are_slices_of_one_linear_layer():
    torch.manual_seed(0)
    critic = CriticEncoder("dlib", image_shape=(1, 16, 16), n_latents=3)
    x = _images(4)
    latents, value = critic(x)
    full = critic.net(x)  # (4, 4)
    assert torch.equal(latents, full[:, :3]) and torch.equal(value, full[:, 3])
    assert torch.equal(critic.value(x), value)
    with pytest.raises(ValueError, match="n_latents"):
        CriticEncoder("dlib", image_shape=(1, 16, 16), n_latents=0)


# -- codes ---------------------------------------------------------------------------------
def test_ql_codes_are_the_current_codebook_values_drawn_uniformly():
    model = _model(n_values=4)
    with torch.no_grad():  # move the values off their linspace initialisation
        model.quantizer.values.add_(0.1 * torch.randn_like(model.quantizer.values))
    values = model.quantizer.values.detach()  # (3, 4)
    z = model.sample_prior(4000, generator=torch.Generator().manual_seed(0))
    assert z.shape == (4000, 3) and z.dtype == torch.float32
    for j in range(3):
        hits = (z[:, j, None] == values[j]).sum(0)  # (4,) exact matches per value
        assert int(hits.sum()) == 4000  # every code is one of latent j's values
        assert (hits > 800).all()  # and each value is drawn (≈ 1000 each)
    again = model.sample_prior(4000, generator=torch.Generator().manual_seed(0))
    assert torch.equal(z, again)


def test_continuous_codes_are_uniform_on_the_prior_range():
    model = _model("infowgan_gp")
    z = model.sample_prior(2000, generator=torch.Generator().manual_seed(0))
    assert z.shape == (2000, 3) and 0 <= float(z.min()) and float(z.max()) < 1
    assert abs(float(z.mean()) - 0.5) < 0.03
    shifted = _model("infowgan_gp", prior_range=(-1.0, 1.0)).sample_prior(2000)
    assert float(shifted.min()) < -0.9 and float(shifted.max()) > 0.9


# -- losses and gradients ------------------------------------------------------------------
@pytest.mark.parametrize("name", GANS)
def test_critic_loss_is_the_weighted_sum_of_its_terms(name):
    model = _model(name)
    x = _images()
    out = model(x)
    assert isinstance(out.encoding, CriticEncoding) and out.encoding.critic.shape == (6,)
    total, terms = model.loss(x, out)
    for key, value in terms.items():
        assert value.ndim == 0 and torch.isfinite(value), key
    assert terms["latent"] > 0 and terms["gradient_penalty"] > 0
    expected = terms["critic_loss"] + 10 * terms["gradient_penalty"] + 200 * terms["latent"]
    if name == "qlinfowgan_gp":
        expected = expected + 0.01 * (terms["quantization"] + terms["commitment"])
    else:
        assert "quantization" not in terms and "commitment" not in terms
    torch.testing.assert_close(total.detach(), expected)


@pytest.mark.parametrize("name", GANS)
def test_critic_step_reaches_only_the_critic(name):
    model = _model(name)
    x = _images()
    total, _ = model.loss(x, model(x), step=0)
    total.backward()
    main = [p for group in model.param_groups() for p in group["params"]]
    assert _ids(main) == _ids(model.encoder.parameters())
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in main)
    # the generator and the codebook values get no gradient from the critic step
    assert all(p.grad is None for p in model.generator_parameters())
    assert all(p.grad is None for p in model.decoder.parameters())


@pytest.mark.parametrize("name", GANS)
def test_generator_step_reaches_the_generator_and_codebook_only(name):
    model = _model(name)
    (step,) = model.extra_steps()
    assert (step.name, step.every) == ("generator", 5)
    assert dict(step.optimizer) == {"lr": 2e-4, "betas": (0.0, 0.9)}
    decay = 1e-3 if name == "qlinfowgan_gp" else 1e-4
    assert [g["weight_decay"] for g in step.param_groups()] == [decay, 0.0]
    params = step.parameters()
    expected = list(model.decoder.parameters())
    if name == "qlinfowgan_gp":
        expected.append(model.quantizer.values)
    assert _ids(params) == _ids(expected)
    assert not _ids(params) & _ids(model.encoder.parameters())
    loss, terms = step.loss(_images(), 0)
    assert torch.isfinite(loss) and terms["latent"] > 0
    loss.backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in params)
    # the critic/encoder is evaluated with detached parameters
    assert all(p.grad is None for p in model.encoder.parameters())


def test_generator_loss_gradient_reaches_the_codebook_through_the_codes():
    model = _model(quantization_weight=0.0, commitment_weight=0.0)
    torch.manual_seed(3)
    loss, _ = model.generator_loss(_images())
    loss.backward()
    grad = model.quantizer.values.grad
    assert grad is not None and grad.abs().sum() > 0  # only the sampled codes carry it
    fixed = _model(optimize_values=False)
    assert _ids(fixed.extra_steps()[0].parameters()) == _ids(fixed.decoder.parameters())


def test_generator_param_groups_are_the_reference_split():
    model = _model()
    regularized, unregularized = model.generator_param_groups()
    assert (regularized["name"], regularized["optimizer"]) == ("regularized", "adamw")
    assert regularized["weight_decay"] == 1e-3 and regularized["clip_value"] == 1.0
    assert unregularized["weight_decay"] == 0.0 and unregularized["clip_value"] is None
    named = dict(model.decoder.named_parameters())
    assert _ids(regularized["params"]) == _ids(
        p for n, p in named.items() if not n.endswith("bias")
    )
    assert _ids(unregularized["params"]) == _ids(
        [p for n, p in named.items() if n.endswith("bias")] + [model.quantizer.values]
    )
    main = model.param_groups()
    assert [g["name"] for g in main] == ["regularized", "unregularized"]
    assert all(g["lr"] == 2e-4 and g["betas"] == (0.0, 0.9) for g in main)


# -- representations -----------------------------------------------------------------------
def test_ql_representations_are_the_encoders_quantized_latent():
    model = _model().eval()
    x = _images()
    assert model.representation_kinds == ("quantized", "indices", "mean")
    enc = model.encode(x)
    quantized = model.representation(x)
    indices = model.representation(x, "indices")
    assert quantized.shape == indices.shape == model.representation(x, "mean").shape == (6, 3)
    assert indices.dtype == torch.int64
    with torch.no_grad():
        assert torch.equal(quantized, model.quantizer.indices_to_codes(indices.clone()))
    assert torch.equal(enc.z, enc.quantized)
    assert model(x).logits.shape == x.shape  # forward: encoder → generator


def test_continuous_representation_is_the_latent_head():
    model = _model("infowgan_gp").eval()
    x = _images()
    assert model.representation_kinds == ("mean",)
    latents, _ = model.encoder(x)
    torch.testing.assert_close(model.representation(x), latents)


# -- configs -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"generator_every": 0}, "generator_every"),
        ({"betas": (0.0, 1.0)}, "betas"),
        ({"betas": (0.5,)}, "betas"),
        ({"lr": 0.0}, "lr"),
        ({"gp_weight": -1.0}, "gp_weight"),
        ({"clip_value": 0.0}, "clip_value"),
        ({"arch": "resnet"}, "arch"),
        ({"n_values": 1}, "n_values"),
        ({"init_range": (0.5, -0.5)}, "init_range"),
    ],
)
def test_bad_options_are_rejected(options, match):
    with pytest.raises(ValueError, match=match):
        build_model("qlinfowgan_gp", **options)


def test_config_defaults_follow_the_reference():
    ql = build_model("qlinfowgan_gp", **SMALL).config
    assert (ql.gp_weight, ql.latent_weight, ql.quantization_weight, ql.commitment_weight) == (
        10.0,
        200.0,
        0.01,
        0.01,
    )
    assert (ql.generator_every, ql.lr, ql.betas, ql.weight_decay, ql.clip_value) == (
        5,
        2e-4,
        (0.0, 0.9),
        1e-3,
        1.0,
    )
    info = build_model("infowgan_gp", **SMALL).config
    assert (info.weight_decay, info.prior_range, info.latent_weight) == (1e-4, (0.0, 1.0), 200.0)
    with pytest.raises(ValueError, match="prior_range"):
        build_model("infowgan_gp", prior_range=(1.0, 1.0))


# -- under the trainer ---------------------------------------------------------------------
def _snapshot(model) -> dict[str, torch.Tensor]:
    def flat(params):
        return torch.cat([p.detach().reshape(-1).clone() for p in params])

    return {
        "generator": flat(model.generator_parameters()),
        "encoder": flat(model.encoder.parameters()),
    }


def test_trainer_steps_the_critic_every_iteration_and_the_generator_every_fifth(
    tmp_path, monkeypatch
):
    """Ten iterations: critic steps at t = 0..9, generator steps at t = 0 and 5 only."""
    seen: dict[str, list[int]] = {"critic": [], "generator": []}
    before: list[dict[str, torch.Tensor]] = []  # parameters as each critic step starts
    loss, generator_loss = QLInfoWGANGP.loss, QLInfoWGANGP.generator_loss

    def recording_loss(self, x, out, step=0):
        seen["critic"].append(step)
        before.append(_snapshot(self))
        return loss(self, x, out, step)

    def recording_generator_loss(self, x, step=0):
        seen["generator"].append(step)
        return generator_loss(self, x, step)

    monkeypatch.setattr(QLInfoWGANGP, "loss", recording_loss)
    monkeypatch.setattr(QLInfoWGANGP, "generator_loss", recording_generator_loss)
    config = {
        "model": "qlinfowgan_gp",
        "data": "xyobject_tiny",
        "steps": 10,
        "batch_size": 8,
        "seed": 0,
        "accelerator": "cpu",
        "checkpoint_every": 10,
        "log_every": 5,
        "model_options": {"arch": "dlib", "n_latents": 3},
    }
    run = fit(config, run_dir=tmp_path / "run", progress=False)
    model = load_model(run)
    after = _snapshot(model)

    assert seen == {"critic": list(range(10)), "generator": [0, 5]}
    states = [*before, after]  # states[t] → states[t + 1]: iteration t's steps
    for t in range(10):
        generator_moved = not torch.equal(states[t]["generator"], states[t + 1]["generator"])
        assert generator_moved == (t in (0, 5)), t
        assert not torch.equal(states[t]["encoder"], states[t + 1]["encoder"]), t

    state = load_checkpoint(run / "checkpoints" / "last.ckpt")
    assert set(state["optimizers"]) == {"main", "generator"}
    main, gen = state["optimizers"]["main"], state["optimizers"]["generator"]
    assert {int(s["step"]) for s in main["state"].values()} == {10}
    assert {int(s["step"]) for s in gen["state"].values()} == {2}
    n_generator = len(model.generator_parameters())
    assert len(gen["state"]) == n_generator  # the codebook values are in the generator's
    assert len(main["state"]) == len(list(model.encoder.parameters()))
    assert [g["clip_value"] for g in main["param_groups"]] == [1.0, None]
    # the generator step has the reference's split too: decayed, clipped weights; plain
    # Adam for biases and codebook values
    assert [(g["clip_value"], g["weight_decay"]) for g in gen["param_groups"]] == [
        (1.0, model.config.weight_decay), (None, 0.0)]
    assert [bool(g["decoupled_weight_decay"]) for g in gen["param_groups"]] == [True, False]

    with (run / "log" / "metrics.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert [int(r["step"]) for r in rows] == [5, 10]
    assert {"loss", "gradient_penalty", "latent", "generator/loss", "generator/latent"} <= set(
        rows[0]
    )
    assert all(math.isfinite(float(r["loss"])) for r in rows)


def test_a_trained_run_evaluates_and_draws_pictures(tmp_path):
    from disentkit.viz import prior_samples, traversal_grid

    config = {
        "model": "qlinfowgan_gp",
        "data": "xyobject_tiny",
        "steps": 3,
        "batch_size": 8,
        "seed": 1,
        "accelerator": "cpu",
        "checkpoint_every": 3,
        "log_every": 3,
        "model_options": {"arch": "dlib", "n_latents": 3},
    }
    run = fit(config, run_dir=tmp_path / "run", progress=False)
    result = evaluate_run(run, n_samples=100, metrics=["mig"], mode="fast")
    assert set(result["representations"]) == {"quantized", "indices", "mean"}
    assert all(0.0 <= entry["scores"]["mig"] <= 1.0 for entry in result["representations"].values())
    model = load_model(run)
    samples = prior_samples(model, n=4, n_cols=4)
    assert samples is not None and samples.dtype == np.uint8
    images = np.zeros((2, 32, 32, 3), np.uint8)
    assert traversal_grid(model, images, n_steps=4).dtype == np.uint8
