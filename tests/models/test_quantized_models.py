"""QLAE, VQ-VAE, FSQ-AE and FactorQVAE: losses, representations, optimiser groups, training.

The registry-wide contract (shapes, finite losses, backward, round trips) is in
``test_registry_models.py``; these tests check what is specific to the quantized models.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from disentkit.models import build_model
from disentkit.models.quantized import FactorQVAE, _permute_dims
from disentkit.nn import QLAEDecoder, QLAEEncoder

SMALL = {"image_shape": (1, 16, 16), "arch": "dlib", "n_latents": 4}
QUANTIZED_AES = ("qlae", "vq_vae", "fsq_ae")


pytestmark = pytest.mark.usefixtures("torch_one_thread")


def _model(name: str, **overrides):
    torch.manual_seed(0)
    options = {**SMALL, **overrides}
    if name == "factor_qvae":
        options.setdefault("disc_hidden", 32)
    return build_model(name, **options)


def _images(n: int = 8, shape=(1, 16, 16), seed: int = 1) -> torch.Tensor:
    return torch.rand(n, *shape, generator=torch.Generator().manual_seed(seed))


# -- shared by the three encoder → quantizer → decoder models ------------------------------
@pytest.mark.parametrize("name", QUANTIZED_AES)
def test_quantized_representation_is_the_codebook_lookup(name: str) -> None:
    model = _model(name).eval()
    enc = model.encode(_images())
    assert enc.indices.dtype == torch.int64
    n_latents = SMALL["n_latents"]
    batch_codes = model.quantizer.indices_to_codes(enc.indices)  # (8, 4) or (8, 4, d)
    assert torch.equal(batch_codes.reshape(8, -1), enc.quantized)
    assert torch.equal(enc.z, enc.quantized)  # the decoder sees the quantized values
    for kind in model.representation_kinds:
        rep = model.representation(_images(), kind)
        assert rep.shape == (8, n_latents)


@pytest.mark.parametrize("name", QUANTIZED_AES)
def test_loss_is_reconstruction_plus_weighted_quantizer_losses(name: str) -> None:
    model = _model(name)
    x = _images()
    out = model(x)
    total, terms = model.loss(x, out)
    expected = F.binary_cross_entropy_with_logits(out.logits, x)
    torch.testing.assert_close(terms["reconstruction"], expected.detach())
    weights = {
        "qlae": {"quantization": 0.01, "commitment": 0.01},
        "vq_vae": {"codebook": 1.0, "commitment": 0.25},
        "fsq_ae": {},
    }[name]
    assert set(weights) == set(model.quantizer.loss_names)
    for term, weight in weights.items():
        expected = expected + weight * out.encoding.aux[term]
    torch.testing.assert_close(total, expected)
    assert {"usage", "perplexity"} <= set(terms)
    assert all(torch.isfinite(v) and not v.requires_grad for v in terms.values())


@pytest.mark.parametrize("name", QUANTIZED_AES)
def test_a_few_steps_lower_the_loss_with_the_reference_optimiser(name: str) -> None:
    """AdamW over the two groups, clipping gradient values on the regularized group only."""
    model = _model(name)
    x = _images(16)
    groups = model.param_groups()
    optimizer = torch.optim.AdamW(
        [{"params": g["params"], "weight_decay": g["weight_decay"]} for g in groups], lr=1e-3
    )
    losses = []
    for _ in range(15):
        optimizer.zero_grad()
        total, _ = model.loss(x, model(x))
        total.backward()
        for group in groups:
            if group["clip_value"] is not None:
                torch.nn.utils.clip_grad_value_(group["params"], group["clip_value"])
        optimizer.step()
        losses.append(float(total.detach()))
    assert all(math.isfinite(v) for v in losses)
    assert losses[-1] < losses[0] - 1e-3, losses


# -- QLAE -----------------------------------------------------------------------------------
def test_qlae_defaults_follow_the_reference() -> None:
    config = build_model("qlae", image_shape=(3, 16, 16)).config
    assert (config.n_latents, config.n_values, config.init_range) == (10, 10, (-0.5, 0.5))
    assert (config.quantization_weight, config.commitment_weight) == (0.01, 0.01)
    assert (config.weight_decay, config.clip_value, config.arch) == (0.1, 1.0, "dlib")


def test_qlae_param_group_split() -> None:
    model = build_model("qlae", image_shape=(3, 16, 16), n_latents=4, arch="qlae")
    assert isinstance(model.encoder, QLAEEncoder) and isinstance(model.decoder, QLAEDecoder)
    groups = {g["name"]: g for g in model.param_groups()}
    assert set(groups) == {"regularized", "unregularized"}
    reg, unreg = groups["regularized"], groups["unregularized"]
    assert (reg["weight_decay"], reg["clip_value"], reg["optimizer"]) == (0.1, 1.0, "adamw")
    assert (unreg["weight_decay"], unreg["clip_value"], unreg["optimizer"]) == (0.0, None, "adam")

    def names(group):
        ids = {id(p) for p in group["params"]}
        return {n for n, p in model.named_parameters() if id(p) in ids}

    reg_names, unreg_names = names(reg), names(unreg)
    every = {n for n, _ in model.named_parameters()}
    assert reg_names | unreg_names == every and not reg_names & unreg_names
    assert len(reg["params"]) + len(unreg["params"]) == len(every)
    assert "quantizer.values" in unreg_names  # the codebook: Adam, no decay, no clip
    convs = (torch.nn.Conv2d, torch.nn.ConvTranspose2d)
    conv_weights = {f"{n}.weight" for n, m in model.named_modules() if isinstance(m, convs)}
    assert conv_weights and conv_weights <= reg_names
    assert "decoder.input_map" in reg_names
    norm_scales = {
        f"{n}.weight" for n, m in model.named_modules() if isinstance(m, torch.nn.GroupNorm)
    }
    assert norm_scales and norm_scales <= reg_names
    assert {n for n in every if n.endswith("bias")} <= unreg_names
    assert build_model("qlae", image_shape=(3, 16, 16), weight_decay=0.001).param_groups()[0][
        "weight_decay"
    ] == pytest.approx(0.001)


def test_qlae_options() -> None:
    shared = _model("qlae", global_codebook=True, n_values=6)
    assert tuple(shared.quantizer.values.shape) == (1, 6)
    fixed = _model("qlae", optimize_values=False)
    assert "quantizer.values" not in dict(fixed.named_parameters())
    wide = _model("qlae", init_range=(-1.0, 1.0))
    assert float(wide.quantizer.values.detach().min()) == -1.0
    with pytest.raises(ValueError, match="arch must be one of"):
        build_model("qlae", arch="resnet")
    with pytest.raises(ValueError, match="n_latents must be"):
        build_model("qlae", n_latents=0)
    with pytest.raises(ValueError, match="weight_decay"):
        build_model("qlae", weight_decay=-1.0)


def test_qlae_representation_kinds() -> None:
    model = _model("qlae").eval()
    x = _images()
    assert model.representation_kinds == ("quantized", "indices", "mean")
    values = model.quantizer.values.detach()
    quantized = model.representation(x)
    indices = model.representation(x, "indices")
    mean = model.representation(x, "mean")
    assert indices.dtype == torch.int64 and quantized.dtype == torch.float32
    assert torch.equal(quantized, values[torch.arange(4), indices])
    # "mean" is the pre-quantization value: the quantized one is its nearest codebook value
    nearest = (mean.unsqueeze(-1) - values).abs().argmin(-1)
    assert torch.equal(nearest, indices)


def test_qlae_under_bfloat16_autocast() -> None:
    model = _model("qlae")
    x = _images()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(x)
        total, _terms = model.loss(x, out)
    assert out.encoding.quantized.dtype == torch.float32
    assert out.encoding.aux["quantization"].dtype == torch.float32
    assert torch.isfinite(total)
    total.backward()
    assert model.quantizer.values.grad is not None


# -- VQ-VAE ---------------------------------------------------------------------------------
def test_vq_vae_layout_and_defaults() -> None:
    model = _model("vq_vae", code_dim=8, n_codes=32)
    assert model.config.commitment_weight == 0.25 and model.config.weight_decay == 0.01
    assert build_model("vq_vae").config.n_codes == 512
    enc = model.encode(_images())
    assert enc.indices.shape == (8, 4) and enc.quantized.shape == (8, 32)
    assert enc.mean.shape == (8, 32)
    assert model.representation_kinds == ("indices",)
    groups = {g["name"]: g for g in model.param_groups()}
    unreg = {id(p) for p in groups["unregularized"]["params"]}
    assert id(model.quantizer.codebook) in unreg


def test_vq_vae_ema_variant() -> None:
    model = _model("vq_vae", code_dim=8, n_codes=32, ema=True, restart_threshold=1.0)
    assert model.quantizer.loss_names == ("commitment",)
    assert "quantizer.codebook" not in dict(model.named_parameters())
    before = model.quantizer.codebook.clone()
    x = _images()
    _total, terms = model.loss(x, model.train()(x))
    assert "codebook" not in terms and "restarted" in terms
    assert not torch.equal(model.quantizer.codebook, before)  # EMA update in training
    after = model.quantizer.codebook.clone()
    model.eval()(x)
    assert torch.equal(model.quantizer.codebook, after)  # none in evaluation


# -- FSQ-AE ---------------------------------------------------------------------------------
def test_fsq_ae_layouts() -> None:
    per_latent = _model("fsq_ae")
    assert per_latent.config.levels == (10,)
    enc = per_latent.eval().encode(_images())
    assert enc.indices.shape == (8, 4) and enc.quantized.abs().max() <= 1
    assert len(enc.quantized.unique()) <= 10
    assert not list(per_latent.quantizer.parameters())
    grouped = _model("fsq_ae", levels=(8, 5, 5, 5), n_latents=8)
    enc = grouped.encode(_images())
    assert enc.indices.shape == (8, 2) and int(enc.indices.max()) < 1000
    with pytest.raises(ValueError, match="multiple of len"):
        build_model("fsq_ae", levels=(8, 5, 5), n_latents=4)
    with pytest.raises(ValueError, match="shift"):
        build_model("fsq_ae", shift="sin")


# -- FactorQVAE -----------------------------------------------------------------------------
def test_factor_qvae_temperature_schedule() -> None:
    model = _model("factor_qvae")
    assert model.temperature(0) == 1.0
    assert model.temperature(100_000) == pytest.approx(math.exp(-1))
    assert model.temperature() == 1.0  # buffer starts at step 0
    x = _images()
    model.train().loss(x, model(x), step=41)
    assert int(model.temperature_step) == 42  # the next forward's step
    assert model.temperature() == pytest.approx(math.exp(-42e-5))
    model.eval().loss(x, model(x), step=7)
    assert int(model.temperature_step) == 42  # evaluation leaves it alone
    constant = _model("factor_qvae", temperature_decay=0.0)
    assert constant.temperature(10**6) == 1.0
    state = model.state_dict()
    assert "temperature_step" in state  # resumes with the right temperature


def test_factor_qvae_codes_and_posterior() -> None:
    model = _model("factor_qvae", n_codes=8)
    x = _images()
    values = model.quantizer.values.detach()
    enc = model.eval().encode(x)
    assert torch.equal(enc.z, enc.quantized) and torch.equal(enc.quantized, values[enc.indices])
    nearest = (enc.mean.unsqueeze(-1) - values).abs().argmin(-1)
    assert torch.equal(enc.indices, nearest)
    # KL to the uniform prior, summed over the codebook, mean over latents and batch
    q = torch.softmax(-(enc.mean.unsqueeze(-1) - values).square(), -1)
    kl = (q * torch.log(q * 8)).sum(-1).mean()
    torch.testing.assert_close(enc.aux["kl"], kl)
    # training: relaxed samples; a cold temperature gives nearly one-hot weights
    model.train()
    enc = model.encode(x, step=0)
    assert not torch.equal(enc.z, enc.quantized)
    torch.testing.assert_close(enc.weights.sum(-1), torch.ones(8, 4))
    cold = model.encode(x, step=2_000_000)  # τ = e^−20
    torch.testing.assert_close(cold.z, cold.quantized, atol=1e-4, rtol=0)
    hard = _model("factor_qvae", hard=True).train().encode(x)
    assert set(hard.weights.unique().tolist()) <= {0.0, 1.0}


def test_factor_qvae_tc_gradient_and_groups() -> None:
    model = _model("factor_qvae")
    x = _images()
    total, terms = model.loss(x, model(x), step=0)
    assert {"reconstruction", "kl", "tc", "temperature"} <= set(terms)
    sig = torch.sigmoid(model(x).logits)
    assert terms["reconstruction"] > 0 and sig.shape == x.shape
    total.backward()
    assert all(p.grad is None for p in model.discriminator.parameters())
    assert next(model.encoder.parameters()).grad is not None
    assert model.quantizer.values.grad is not None
    (group,) = model.param_groups()
    main = {id(p) for p in group["params"]}
    assert not main & {id(p) for p in model.discriminator.parameters()}
    (step,) = model.extra_steps()
    assert step.name == "discriminator" and step.every == 1
    assert {id(p) for p in step.parameters()} == {id(p) for p in model.discriminator.parameters()}
    assert step.optimizer == {"lr": 1e-3, "betas": (0.9, 0.999)}
    linear = [m for m in model.discriminator if isinstance(m, torch.nn.Linear)]
    assert len(linear) == 6 and linear[0].in_features == 4 * 64 and linear[-1].out_features == 2


@pytest.mark.parametrize("tc_batch", ["split", "same"])
def test_factor_qvae_discriminator_learns(tc_batch: str) -> None:
    model = _model("factor_qvae", tc_batch=tc_batch, n_codes=4)
    x = _images(16)
    (step,) = model.extra_steps()
    optimizer = torch.optim.Adam(step.parameters(), **step.optimizer)
    losses = []
    for i in range(20):
        torch.manual_seed(i)
        loss, terms = step.loss(x, 0)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(float(loss.detach()))
        assert 0 <= float(terms["discriminator_accuracy"]) <= 1
    assert losses[0] == pytest.approx(math.log(2), abs=0.1)  # chance at the start
    assert min(losses[-5:]) < losses[0]
    assert all(p.grad is None for p in model.encoder.parameters())  # encoder untouched
    if tc_batch == "split":
        with pytest.raises(ValueError, match="at least 2"):
            step.loss(x[:1], 0)


def test_permute_dims_permutes_each_latent_independently() -> None:
    torch.manual_seed(0)
    w = torch.arange(10 * 3 * 2, dtype=torch.float32).reshape(10, 3, 2)
    p = _permute_dims(w)
    for j in range(3):
        rows = sorted(map(tuple, p[:, j].tolist()))
        assert rows == sorted(map(tuple, w[:, j].tolist()))  # the same rows, reordered
    assert not torch.equal(p, w)
    order = [p[:, j, 0].argsort() for j in range(3)]
    assert not all(torch.equal(order[0], o) for o in order[1:])  # different per latent


def test_factor_qvae_config_errors() -> None:
    with pytest.raises(ValueError, match="tc_batch must be one of"):
        build_model("factor_qvae", tc_batch="other")
    with pytest.raises(ValueError, match="n_codes"):
        build_model("factor_qvae", n_codes=1)
    with pytest.raises(ValueError, match="temperature"):
        build_model("factor_qvae", temperature=0.0)
    assert isinstance(_model("factor_qvae"), FactorQVAE)
