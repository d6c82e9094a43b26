"""The AE and VAE-family models: each loss against its definition, options and errors."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from disentkit.models import MODELS, build_model
from disentkit.models._losses import (
    dip_covariance,
    dip_regularizer,
    gaussian_kl,
    gaussian_log_density,
    reconstruction_loss,
)
from disentkit.models.vae import permute_dims

NAMES = (
    "ae",
    "bioae",
    "vae",
    "beta_vae",
    "annealed_vae",
    "beta_tcvae",
    "factor_vae",
    "dip_vae_i",
    "dip_vae_ii",
)
SHAPE = (1, 32, 32)
TINY = {"n_latents": 3, "image_shape": SHAPE}


pytestmark = pytest.mark.usefixtures("torch_one_thread")


def _model(name: str, **overrides):
    torch.manual_seed(0)
    return build_model(name, **{**TINY, **overrides})


def _x(n: int = 6, seed: int = 1) -> torch.Tensor:
    return torch.rand(n, *SHAPE, generator=torch.Generator().manual_seed(seed))


def _run(model, x, step=0, seed=7):
    torch.manual_seed(seed)
    out = model(x)
    total, terms = model.loss(x, out, step=step)
    return out, total, terms


def test_all_registered():
    assert set(NAMES) <= set(MODELS)
    for name in NAMES:
        assert MODELS[name].cls.representation_kinds == (
            ("mean",) if name in ("ae", "bioae") else ("mean", "sampled")
        )


def test_defaults():
    model = build_model("vae")
    assert model.config.n_latents == 10 and model.config.image_shape == (1, 64, 64)
    assert model.config.arch == "dlib" and model.config.reconstruction == "bernoulli"
    assert build_model("ae").config.weight_decay == 0.0
    assert build_model("bioae").config.weight_decay == 1e-4
    assert build_model("dip_vae_i").config.lambda_d_factor == 10.0
    assert build_model("dip_vae_ii").config.lambda_d_factor == 1.0
    assert build_model("beta_tcvae").config.estimator == "mws"
    assert build_model("factor_vae").config.tc_batch == "independent"


# -- autoencoders -------------------------------------------------------------------------
def test_ae_is_deterministic_with_per_pixel_loss():
    model = _model("ae")
    x = _x()
    out, total, _ = _run(model, x)
    out2 = model(x)
    torch.testing.assert_close(out.logits, out2.logits)
    assert out.encoding.logvar is None
    expected = reconstruction_loss(out.logits, x, reduction="mean").mean()
    torch.testing.assert_close(total, expected)
    assert len(model.param_groups()) == 1


def test_bioae_penalties():
    model = _model("bioae", nonneg_weight=2.0, activity_weight=0.5)
    x = _x()
    out, total, terms = _run(model, x)
    z = out.encoding.z
    nonneg = torch.clamp(-z, min=0).mean(1)
    activity = (z**2).mean(1)
    recon = reconstruction_loss(out.logits, x, reduction="mean")
    torch.testing.assert_close(total, (recon + 2.0 * nonneg + 0.5 * activity).mean())
    torch.testing.assert_close(terms["nonneg"], nonneg.mean())
    torch.testing.assert_close(terms["activity"], activity.mean())


def test_weight_decay_groups():
    model = _model("bioae")
    decay, no_decay = model.param_groups()
    assert decay["weight_decay"] == 1e-4 and no_decay["weight_decay"] == 0.0
    names = {id(p): n for n, p in model.named_parameters()}
    assert all(names[id(p)].endswith("bias") for p in no_decay["params"])
    assert all(names[id(p)].endswith("weight") for p in decay["params"])
    assert len(decay["params"]) + len(no_decay["params"]) == len(list(model.parameters()))


@pytest.mark.parametrize("name", ["ae", "vae", "beta_tcvae"])
def test_clip_value_clips_weights_only(name):
    from disentkit.train._loop import build_optimizer, clip_gradients

    assert len(_model(name).param_groups()) == 1  # default: no decay, no clipping
    model = _model(name, clip_value=0.5)
    decay, no_decay = model.param_groups()
    assert decay["clip_value"] == 0.5 and no_decay["clip_value"] is None
    assert decay["weight_decay"] == 0.0 == no_decay["weight_decay"]
    optimizer = build_optimizer(model.param_groups(), what="test")
    for p in model.parameters():
        p.grad = torch.full_like(p, 3.0)
    clip_gradients(optimizer)
    names = {id(p): n for n, p in model.named_parameters()}
    for p in model.parameters():
        want = 3.0 if names[id(p)].endswith("bias") else 0.5
        assert torch.all(p.grad == want), names[id(p)]


def test_softplus_posterior_scale():
    x = _x()
    model = _model("beta_vae", posterior_scale="softplus")
    mean, raw = model.encoder(x).chunk(2, dim=1)
    torch.manual_seed(5)
    enc = model.encode(x)
    torch.manual_seed(5)
    eps = torch.randn_like(mean)
    sigma = torch.nn.functional.softplus(raw)
    torch.testing.assert_close(enc.mean, mean)
    torch.testing.assert_close(enc.logvar, 2 * torch.log(sigma))
    torch.testing.assert_close(enc.z, mean + eps * sigma)
    default = _model("beta_vae")  # same weights (seed 0), σ = exp(raw / 2)
    torch.testing.assert_close(default.encode(x).logvar, raw)
    assert not torch.allclose(enc.logvar, raw)


# -- VAE, β-VAE ---------------------------------------------------------------------------
def test_vae_sampling_and_loss():
    model = _model("vae")
    x = _x()
    torch.manual_seed(3)
    out = model(x)
    enc = out.encoding
    torch.manual_seed(3)
    eps = torch.randn_like(enc.mean)
    torch.testing.assert_close(enc.z, enc.mean + eps * torch.exp(0.5 * enc.logvar))
    total, terms = model.loss(x, out)
    recon = reconstruction_loss(out.logits, x).mean()
    kl = gaussian_kl(enc.mean, enc.logvar).sum(1).mean()
    torch.testing.assert_close(total, recon + kl)
    torch.testing.assert_close(terms["kl"], kl)
    model.eval()
    assert not torch.allclose(model.representation(x, "sampled"), model.representation(x, "mean"))


@pytest.mark.parametrize("beta", [0.0, 1.0, 4.0])
def test_beta_vae_weights_the_kl(beta):
    model = _model("beta_vae", beta=beta)
    x = _x()
    _, total, terms = _run(model, x)
    torch.testing.assert_close(total, terms["reconstruction"] + beta * terms["kl"])


def test_beta_vae_equals_lq_per_pixel_form_times_x_dim():
    beta = 3.0
    model = _model("beta_vae", beta=beta)
    x = _x()
    out, total, _ = _run(model, x)
    x_dim, n_z = x[0].numel(), 3
    bce_mean = reconstruction_loss(out.logits, x, reduction="mean").mean()
    kl_mean = gaussian_kl(out.encoding.mean, out.encoding.logvar).mean()
    lq = bce_mean + (n_z / x_dim) * beta * kl_mean  # LQ models/vae.py L42-61
    torch.testing.assert_close(total, lq * x_dim)


def test_gaussian_reconstruction_option():
    model = _model("vae", reconstruction="gaussian")
    x = _x()
    out, _, terms = _run(model, x)
    expected = ((torch.sigmoid(out.logits) - x) ** 2).flatten(1).sum(1).mean()
    torch.testing.assert_close(terms["reconstruction"], expected)


# -- annealed VAE -------------------------------------------------------------------------
def test_annealed_vae_capacity_follows_the_step():
    model = _model("annealed_vae", c_max=20.0, anneal_steps=1000, gamma=100.0)
    assert model.capacity(0) == 0.0
    assert model.capacity(500) == pytest.approx(10.0)
    assert model.capacity(1000) == pytest.approx(20.0)
    assert model.capacity(5000) == pytest.approx(20.0)
    assert float(model.capacity(torch.tensor(250))) == pytest.approx(5.0)
    x = _x()
    for step in (0, 500, 2000):
        _, total, terms = _run(model, x, step=step)
        expected = terms["reconstruction"] + 100.0 * (terms["kl"] - model.capacity(step)).abs()
        torch.testing.assert_close(total, expected)
        torch.testing.assert_close(terms["capacity"], torch.tensor(model.capacity(step)))
    # no hidden counter: the same step gives the same loss
    with torch.no_grad():
        assert float(_run(model, x, step=500)[1]) == float(_run(model, x, step=500)[1])
        assert float(_run(model, x, step=0)[1]) != float(_run(model, x, step=1000)[1])


# -- β-TCVAE ------------------------------------------------------------------------------
@pytest.mark.parametrize("estimator", ["mws", "mss"])
def test_beta_tcvae_unit_weights_give_the_kl_estimate(estimator):
    model = _model("beta_tcvae", beta=1.0, estimator=estimator, dataset_size=1000)
    x = _x()
    out, total, terms = _run(model, x)
    enc = out.encoding
    log_qz_x = gaussian_log_density(enc.z, enc.mean, enc.logvar).sum(1)
    log_pz = gaussian_log_density(enc.z, torch.zeros(()), torch.zeros(())).sum(1)
    torch.testing.assert_close(total, terms["reconstruction"] + (log_qz_x - log_pz).mean())
    assert {"mi", "tc", "dim_kl", "kl"} <= set(terms)


@pytest.mark.parametrize("estimator", ["mws", "mss"])
def test_beta_tcvae_beta_weights_the_tc(estimator):
    x = _x()
    one = _run(_model("beta_tcvae", beta=1.0, estimator=estimator), x)
    six = _run(_model("beta_tcvae", beta=6.0, estimator=estimator), x)
    # totals are ~700 nats in float32: compare differences to 1e-3
    torch.testing.assert_close(six[1] - one[1], 5.0 * one[2]["tc"], atol=1e-3, rtol=1e-3)
    two_mi = _run(_model("beta_tcvae", beta=1.0, mi_weight=2.0, estimator=estimator), x)
    torch.testing.assert_close(two_mi[1] - one[1], one[2]["mi"], atol=1e-3, rtol=1e-3)


def test_beta_tcvae_estimators_differ_and_mss_needs_two_samples():
    x = _x()
    mws = _run(_model("beta_tcvae", estimator="mws", dataset_size=100), x)[2]
    mss = _run(_model("beta_tcvae", estimator="mss", dataset_size=100), x)[2]
    assert float(mws["tc"]) != pytest.approx(float(mss["tc"]))
    with pytest.raises(ValueError, match="batch of >= 2"):
        _run(_model("beta_tcvae", estimator="mss"), _x(1))


# -- FactorVAE ----------------------------------------------------------------------------
def test_factor_vae_discriminator_and_optimiser():
    model = _model("factor_vae")
    linears = [m for m in model.discriminator if isinstance(m, nn.Linear)]
    assert [m.out_features for m in linears] == [1000] * 6 + [2]
    assert linears[0].in_features == 3
    acts = [m for m in model.discriminator if isinstance(m, nn.LeakyReLU)]
    assert len(acts) == 6 and all(a.negative_slope == 0.2 for a in acts)
    (step,) = model.extra_steps()
    assert step.name == "discriminator" and step.every == 1
    assert dict(step.optimizer) == {"lr": 1e-4, "betas": (0.5, 0.9)}
    disc = {id(p) for p in model.discriminator.parameters()}
    assert {id(p) for p in step.parameters()} == disc
    main = {id(p) for g in model.param_groups() for p in g["params"]}
    assert not main & disc


def test_factor_vae_tc_term_and_frozen_discriminator():
    model = _model("factor_vae", gamma=7.0)
    x = _x(7)  # odd: the first half has 4 samples
    out, total, _ = _run(model, x)
    n = 4
    enc = out.encoding
    logits = model.discriminator(enc.z[:n])
    tc = (logits[:, 0] - logits[:, 1]).mean()
    recon = reconstruction_loss(out.logits[:n], x[:n]).mean()
    kl = gaussian_kl(enc.mean[:n], enc.logvar[:n]).sum(1).mean()
    torch.testing.assert_close(total, recon + kl + 7.0 * tc)
    total.backward()
    assert all(p.grad is None for p in model.discriminator.parameters())
    assert all(p.grad is not None for p in model.encoder.parameters())


def test_factor_vae_independent_halves():
    model = _model("factor_vae")
    x = _x(6)
    x2 = x.clone()
    x2[3:] = _x(3, seed=9)  # a different second half
    torch.testing.assert_close(_run(model, x)[1], _run(model, x2)[1])  # VAE loss: first half
    torch.manual_seed(0)
    d1 = model.discriminator_loss(x)[0].detach()
    torch.manual_seed(0)
    d2 = model.discriminator_loss(x2)[0].detach()
    assert float(d1) != float(d2)  # the permuted codes come from the second half
    with pytest.raises(ValueError, match="at least 2 samples"):
        model.loss(x[:1], model(x[:1]))


def test_factor_vae_same_batch_option():
    model = _model("factor_vae", tc_batch="same")
    x = _x(6)
    x2 = x.clone()
    x2[3:] = _x(3, seed=9)
    assert float(_run(model, x)[1].detach()) != float(_run(model, x2)[1].detach())
    _, total, _ = _run(model, x[:1])  # one sample is enough
    assert torch.isfinite(total)


class _CorrelatedCodes(nn.Module):
    """An encoder whose 3 latent means are the same number (the image mean ×10)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        t = 10 * x.flatten(1).mean(1, keepdim=True)  # (B, 1)
        return torch.cat([t.expand(-1, 3), torch.full_like(t, -10.0).expand(-1, 3)], 1)


def test_factor_vae_discriminator_learns():
    model = _model("factor_vae", discriminator_lr=1e-3, discriminator_hidden=64, tc_batch="same")
    model.encoder = _CorrelatedCodes()  # total correlation the discriminator can detect
    x = torch.rand(32, 1, 1, 1) * torch.ones(32, *SHAPE)  # uniform images of random level
    (step,) = model.extra_steps()
    optimizer = torch.optim.Adam(step.parameters(), **dict(step.optimizer))

    def loss_at(seed: int) -> float:
        torch.manual_seed(seed)
        return float(step.loss(x, 0)[0].detach())

    before = sum(loss_at(s) for s in range(3))
    for i in range(30):
        optimizer.zero_grad()
        torch.manual_seed(100 + i)
        step.loss(x, 0)[0].backward()
        optimizer.step()
    assert sum(loss_at(s) for s in range(3)) < before


def test_permute_dims_shuffles_columns_independently():
    torch.manual_seed(0)
    z = torch.arange(200.0).view(100, 2)
    p = permute_dims(z)
    torch.testing.assert_close(p.sort(0).values, z)
    assert not torch.equal(p, z)
    assert not torch.equal(p[:, 0].argsort(), p[:, 1].argsort())


# -- DIP-VAE ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "dip_type", "factor"), [("dip_vae_i", "i", 10.0), ("dip_vae_ii", "ii", 1.0)]
)
def test_dip_vae_penalty(name, dip_type, factor):
    model = _model(name, lambda_od=3.0)
    x = _x()
    out, total, terms = _run(model, x)
    enc = out.encoding
    cov = dip_covariance(enc.mean, enc.logvar, dip_type=dip_type)
    dip = dip_regularizer(cov, lambda_od=3.0, lambda_d=factor * 3.0)
    torch.testing.assert_close(terms["dip"], dip)
    torch.testing.assert_close(total, terms["reconstruction"] + terms["kl"] + dip)


# -- architecture option and config errors ------------------------------------------------
@pytest.mark.parametrize("name", ["beta_vae", "ae"])
def test_qlae_architecture(name):
    model = _model(name, arch="qlae")
    x = _x(4)
    out, total, _ = _run(model, x)
    assert out.logits.shape == x.shape and torch.isfinite(total)


@pytest.mark.parametrize(
    ("name", "overrides", "match"),
    [
        ("vae", {"n_latents": 0}, "n_latents"),
        ("vae", {"n_latents": 2.0}, "n_latents"),
        ("vae", {"image_shape": (64, 64)}, "image_shape"),
        ("vae", {"arch": "resnet"}, "arch must be one of"),
        ("vae", {"reconstruction": "poisson"}, "reconstruction must be one of"),
        ("ae", {"weight_decay": -1.0}, "weight_decay"),
        ("ae", {"clip_value": 0.0}, "clip_value"),
        ("vae", {"posterior_scale": "relu"}, "posterior_scale must be one of"),
        ("beta_vae", {"beta": -1.0}, "beta"),
        ("annealed_vae", {"anneal_steps": 0}, "anneal_steps"),
        ("beta_tcvae", {"estimator": "exact"}, "estimator must be one of"),
        ("beta_tcvae", {"dataset_size": 1}, "dataset_size"),
        ("factor_vae", {"tc_batch": "other"}, "tc_batch must be one of"),
        ("factor_vae", {"discriminator_betas": (1.0, 0.5)}, "discriminator_betas"),
        ("factor_vae", {"discriminator_layers": 0}, "discriminator_layers"),
        ("dip_vae_i", {"lambda_od": -2.0}, "lambda_od"),
        ("bioae", {"activity_weight": -0.1}, "activity_weight"),
    ],
)
def test_bad_config(name, overrides, match):
    with pytest.raises(ValueError, match=match):
        build_model(name, **overrides)


def test_bad_image_size_for_arch():
    with pytest.raises(ValueError, match="powers of two"):
        build_model("vae", image_shape=(1, 48, 48))
