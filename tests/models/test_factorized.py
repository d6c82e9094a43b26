"""``fq_ae`` and its parts: the disentanglement regulariser, the cosine quantizer, InfoNCE
alignment with a frozen teacher, the delayed discriminator step, the index representation,
and a tiny training run with evaluation."""

from __future__ import annotations

import csv
import json
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file

from disentkit.models import build_model
from disentkit.models.factorized import (
    FQAEConfig,
    PatchDiscriminator,
    codebook_disentanglement_loss,
    info_nce,
)
from disentkit.quantizers import QUANTIZERS, build_quantizer
from disentkit.quantizers.cosine import CosineQuantizer, entropy_loss

SMALL = {
    "image_shape": (1, 32, 32),
    "features": 32,
    "codebook_size": 16,
    "usage_window": 64,
}


pytestmark = pytest.mark.usefixtures("torch_one_thread")


def _model(**options):
    torch.manual_seed(0)
    return build_model("fq_ae", **{**SMALL, **options})


def _batch(n: int = 6, shape=(1, 32, 32)) -> torch.Tensor:
    return torch.rand(n, *shape, generator=torch.Generator().manual_seed(1))


# -- the disentanglement regulariser --------------------------------------------------------
def test_regulariser_orthogonal_identical_and_a_known_angle():
    e = torch.eye(4)
    orthogonal = torch.stack([e[:2], e[2:]], dim=1)  # (B=2, k=2, d=4), a ⟂ b
    assert float(codebook_disentanglement_loss(orthogonal)) == 0.0
    v = torch.randn(5, 3, 1, 4)
    identical = torch.cat([v, 2.5 * v], dim=2)  # (5, 3, 2, 4): parallel codes
    assert float(codebook_disentanglement_loss(identical)) == pytest.approx(1.0, abs=1e-6)
    angle = math.pi / 3  # cos² 60° = 1/4
    a = torch.tensor([1.0, 0.0])
    b = torch.tensor([math.cos(angle), math.sin(angle)])
    pair = torch.stack([a, b]).unsqueeze(0)  # (1, 2, 2)
    assert float(codebook_disentanglement_loss(pair)) == pytest.approx(0.25, abs=1e-6)
    # k = 3: pairs (0, 1) cos² 60° = 1/4, (0, 2) 0, (1, 2) cos² 30° = 3/4 → mean 1/3
    c = torch.tensor([0.0, 1.0])
    triple = torch.stack([a, b, c]).unsqueeze(0)  # (1, 3, 2)
    assert float(codebook_disentanglement_loss(triple)) == pytest.approx(1 / 3, abs=1e-6)
    assert float(codebook_disentanglement_loss(torch.randn(4, 1, 8))) == 0.0  # no pairs
    with pytest.raises(ValueError, match=r"\(\.\.\., k, dim\)"):
        codebook_disentanglement_loss(torch.randn(8))


def test_regulariser_gradient_reaches_the_encoder_side_not_the_codebook():
    torch.manual_seed(0)
    qa, qb = CosineQuantizer(4, n_codes=8), CosineQuantizer(4, n_codes=8)
    za = torch.randn(10, 4, requires_grad=True)
    zb = torch.randn(10, 4, requires_grad=True)
    codes = torch.stack([qa(za).codes, qb(zb).codes], dim=1)  # (10, 2, 4)
    codebook_disentanglement_loss(codes).backward()
    assert za.grad is not None and za.grad.abs().sum() > 0
    assert zb.grad is not None and zb.grad.abs().sum() > 0
    assert qa.codebook.grad is None and qb.codebook.grad is None
    # and in the model: the term moves the adapters and encoder, never the codebooks
    model = _model()
    x = _batch()
    enc = model(x).encoding
    codebook_disentanglement_loss(model.split_codes(enc.z)).backward()
    assert all(q.codebook.grad is None for q in model.quantizers)
    assert model.encoder.head[-1].weight.grad.abs().sum() > 0
    assert all(a.out.weight.grad.abs().sum() > 0 for a in model.adapters)
    assert all(p.grad is None for p in model.decoder.parameters())


# -- the cosine quantizer --------------------------------------------------------------------
def test_cosine_quantizer_is_registered_and_picks_the_max_cosine_entry():
    assert QUANTIZERS["cosine_vq"] is CosineQuantizer
    torch.manual_seed(0)
    q = build_quantizer("cosine_vq", 5, n_codes=12)
    with torch.no_grad():
        q.codebook.mul_(torch.rand(12, 1) * 3 + 0.1)  # entries of different norms
    z = 4 * torch.randn(40, 5)
    codes, indices, _ = q(z)
    cos = F.cosine_similarity(z[:, None, :], q.codebook.detach()[None], dim=-1)  # (40, 12)
    for i in range(40):  # brute force, one vector at a time
        best = max(range(12), key=lambda j: float(cos[i, j]))
        assert float(cos[i, indices[i]]) == pytest.approx(float(cos[i, best]), abs=1e-6)
        expected = q.codebook.detach()[indices[i]] / q.codebook.detach()[indices[i]].norm()
        torch.testing.assert_close(codes[i], expected)
    assert torch.equal(q.indices_to_codes(indices), codes)


def test_cosine_quantizer_init_and_straight_through():
    torch.manual_seed(0)
    q = CosineQuantizer(3, n_codes=50)
    torch.testing.assert_close(q.codebook.detach().norm(dim=-1), torch.ones(50))
    z = torch.randn(7, 3, requires_grad=True)
    upstream = torch.randn(7, 3)
    (q(z).codes * upstream).sum().backward()
    # straight-through: the gradient is the one of F.normalize(z), the codebook gets none
    z2 = z.detach().clone().requires_grad_(True)
    (F.normalize(z2, dim=-1) * upstream).sum().backward()
    torch.testing.assert_close(z.grad, z2.grad)
    assert q.codebook.grad is None


def test_cosine_quantizer_losses_against_hand_values():
    q = CosineQuantizer(2, n_codes=2, temperature=0.5)
    with torch.no_grad():
        q.codebook.copy_(torch.tensor([[1.0, 0.0], [0.0, 1.0]]))
    s = 1 / math.sqrt(2)
    z = torch.tensor([[2.0, 0.0], [1.0, 1.0]])  # normalised: (1, 0) and (s, s)
    _, indices, aux = q(z)
    aux = {k: v.detach() for k, v in aux.items()}
    assert indices.tolist() == [0, 0]  # a tie in the second row goes to the lower index
    # squared distances ‖ẑ − ê_k‖²: row 0: (0, 2); row 1: (2 − 2s, 2 − 2s)
    d = [[0.0, 2.0], [2 - 2 * s, 2 - 2 * s]]
    probs = []
    for row in d:
        w = [math.exp(-v / 0.5) for v in row]
        probs.append([v / sum(w) for v in w])
    sample_h = -sum(p * math.log(p) for row in probs for p in row) / 2
    mean = [(probs[0][k] + probs[1][k]) / 2 for k in range(2)]
    mean_h = -sum(p * math.log(p) for p in mean)
    assert float(aux["entropy"]) == pytest.approx(sample_h - mean_h, abs=1e-6)
    # codebook and commitment: mean over N·dim of (ê − ẑ)²: row 0 exact, row 1 (s−1)² + s²
    hand = ((s - 1) ** 2 + s**2) / 4
    assert float(aux["codebook"]) == pytest.approx(hand, abs=1e-6)
    assert float(aux["commitment"]) == pytest.approx(hand, abs=1e-6)
    # the pure function: confident and spread → −log K
    assert float(entropy_loss(torch.tensor([[50.0, 0.0], [0.0, 50.0]]))) == pytest.approx(
        -math.log(2), abs=1e-6
    )


def test_cosine_quantizer_data_init_takes_the_first_training_batch():
    torch.manual_seed(0)
    q = CosineQuantizer(4, n_codes=8, init="data")
    assert not bool(q.initialized)
    z = torch.randn(20, 4)
    q.eval()(z)  # evaluation does not initialise
    assert not bool(q.initialized)
    _, indices, _ = q.train()(z)
    assert bool(q.initialized)
    unit = F.normalize(z, dim=-1)
    cos = unit @ q.normalized_codebook().detach().T  # (20, 8)
    # every entry is one of the batch's vectors, and those vectors quantize to themselves
    assert torch.allclose(cos.max(0).values, torch.ones(8), atol=1e-6)
    assert len(set(indices.tolist())) == 8
    before = q.codebook.detach().clone()
    q(torch.randn(20, 4))
    assert torch.equal(q.codebook.detach(), before)  # only the first batch
    with pytest.raises(ValueError, match=r"init must be one of \['uniform', 'data'\]"):
        CosineQuantizer(4, init="kmeans")


def test_cosine_quantizer_restarts_dead_entries_from_the_batch():
    torch.manual_seed(0)
    q = CosineQuantizer(4, n_codes=8, restart_threshold=1.0, decay=0.5)
    z = torch.randn(20, 4)
    _, indices, aux = q(z)  # counts start at 1: nothing is dead yet
    assert float(aux["restarted"]) == 0.0
    used = set(indices.tolist())
    expected = torch.full((8,), 0.5)
    for k in used:
        expected[k] += 0.5 * (indices == k).sum()
    torch.testing.assert_close(q.cluster_size, expected)
    before = q.normalized_codebook().detach().clone()
    _, indices, aux = q(z)  # the unused entries (count 0.5) are reset to vectors of z
    assert float(aux["restarted"]) == 8 - len(used)
    after = q.normalized_codebook().detach()
    for k in range(8):
        if k in used:
            assert torch.equal(after[k], before[k])
        else:  # a reset entry is one of the batch's normalised vectors
            assert float((F.normalize(z, dim=-1) @ after[k]).max()) == pytest.approx(1.0)
            assert float(q.cluster_size[k]) == pytest.approx(
                0.5 * 1.0 + 0.5 * float((indices == k).sum())
            )
    q.eval()
    assert float(q(torch.randn(5, 4)).aux["restarted"]) == 0.0  # only in training
    # the model default: a batch spreads over many entries from the second step
    model = _model()
    assert FQAEConfig().restart_threshold == 1.0
    x = _batch(16)
    first = model(x).encoding
    second = model(x).encoding
    for i in range(2):
        assert float(second.aux[f"batch_usage/{i}"]) > float(first.aux[f"batch_usage/{i}"])


def test_usage_window_counts_unique_indices_over_the_last_assignments():
    q = CosineQuantizer(8, n_codes=8, usage_window=4)
    with torch.no_grad():
        q.codebook.copy_(torch.eye(8))

    def feed(*idx):
        return float(q(torch.eye(8)[list(idx)]).aux["window_usage"])

    assert float(q.window_usage()) == 0.0  # empty slots are not counted
    assert feed(0, 1) == pytest.approx(2 / 8)
    assert feed(2, 3) == pytest.approx(4 / 8)
    assert feed(4) == pytest.approx(4 / 8)  # window (4, 1, 2, 3): 0 left it
    assert sorted(q.window.tolist()) == [1, 2, 3, 4]
    assert feed(5, 6, 7, 7, 7) == pytest.approx(2 / 8)  # more than the window: last 4 kept
    assert sorted(q.window.tolist()) == [6, 7, 7, 7]
    q.eval()
    assert feed(0, 1, 2, 3) == pytest.approx(2 / 8)  # evaluation leaves the window alone
    q.train()
    assert feed(0, 1, 2, 3) == pytest.approx(4 / 8)


# -- InfoNCE and the teacher -------------------------------------------------------------------
def test_info_nce_equals_cross_entropy_of_cosine_similarities():
    g = torch.Generator().manual_seed(0)
    pred = torch.randn(6, 5, generator=g, requires_grad=True)
    target = torch.randn(6, 5, generator=g, requires_grad=True)
    for tau in (1.0, 0.3):
        sim = F.cosine_similarity(pred[:, None], target[None], dim=-1) / tau  # (6, 6)
        expected = F.cross_entropy(sim, torch.arange(6))
        torch.testing.assert_close(info_nce(pred, target, temperature=tau), expected)
    info_nce(pred, target).backward()
    assert pred.grad is not None and target.grad is None  # the target is detached
    # all similarities equal → log B
    assert float(info_nce(torch.ones(4, 3), torch.ones(4, 3))) == pytest.approx(math.log(4))
    with pytest.raises(ValueError, match=r"\(B, D\)"):
        info_nce(torch.ones(4, 3), torch.ones(4, 2))


def test_teacher_is_frozen_outside_the_optimiser_and_the_saved_weights():
    model = _model(teacher="random_conv")
    teacher_params = list(model.teacher.parameters())
    assert teacher_params and not any(p.requires_grad for p in teacher_params)
    grouped = {id(p) for g in model.param_groups() for p in g["params"]}
    assert not grouped & {id(p) for p in teacher_params}
    assert {id(p) for p in model.align_head.parameters()} <= grouped
    assert not any(k.startswith("teacher.") for k in model.state_dict())
    model.train()
    assert not model.teacher.training and not model.teacher.net.training
    x = _batch()
    out = model(x)
    total, terms = model.loss(x, out, step=0)
    total.backward()
    assert all(p.grad is None for p in teacher_params)
    assert all(p.grad is not None for p in model.align_head.parameters())
    # the alignment term is the InfoNCE of the head's prediction against the teacher
    enc = out.encoding
    pred = model.align_head(model.split_codes(enc.z)[:, :, 1].reshape(6, -1))
    torch.testing.assert_close(terms["align"], info_nce(pred, model.teacher(x)).detach())
    # a state dict without the teacher loads strictly; the teacher keeps its weights
    other = build_model("fq_ae", **{**SMALL, "teacher": "random_conv"})
    before = [p.clone() for p in other.teacher.parameters()]
    other.load_state_dict(model.state_dict())
    assert all(torch.equal(a, b) for a, b in zip(before, other.teacher.parameters(), strict=True))


def test_teacher_by_name_by_import_path_and_bad_names():
    by_path = _model(teacher="disentkit.nn.teachers:random_conv")
    by_name = _model(teacher="random_conv")
    x = _batch()
    torch.testing.assert_close(by_path.teacher(x), by_name.teacher(x))
    local = _model(teacher="tests.nn.test_teachers:small_teacher")
    assert local.align_head[-1].normalized_shape == (5,)  # the teacher's feature width
    with pytest.raises(ValueError, match=r"unknown teacher 'nope'.*known teachers: .*random_conv"):
        _model(teacher="nope")
    with pytest.raises(ValueError, match="cannot import module 'no_such_module_xyz'"):
        _model(teacher="no_such_module_xyz:factory")
    with pytest.raises(ValueError, match="align_codebook must be in"):
        _model(teacher="random_conv", n_codebooks=1)


# -- the discriminator --------------------------------------------------------------------------
def test_discriminator_step_only_from_disc_start():
    model = _model(use_discriminator=True, disc_start=3, disc_channels=8)
    (step,) = model.extra_steps()
    assert step.name == "discriminator" and step.every == 1
    disc = model.discriminator
    assert {id(p) for p in step.parameters()} == {id(p) for p in disc.parameters()}
    grouped = {id(p) for g in model.param_groups() for p in g["params"]}
    assert not grouped & {id(p) for p in disc.parameters()}
    x = _batch()
    stats = {k: v.clone() for k, v in disc.state_dict().items()}
    window = [q.window.clone() for q in model.quantizers]

    loss, terms = step.loss(x, 2)
    loss.backward()
    assert float(loss.detach()) == 0.0 and float(terms["hinge"]) == 0.0
    assert all(not p.grad.any() for p in disc.parameters())
    assert all(torch.equal(v, disc.state_dict()[k]) for k, v in stats.items())  # no BN update
    _, main = model.loss(x, model(x), step=2)
    assert float(main["generator"]) == 0.0

    for p in disc.parameters():
        p.grad = None
    window = [q.window.clone() for q in model.quantizers]
    loss, terms = step.loss(x, 3)
    loss.backward()
    assert float(loss.detach()) == pytest.approx(0.5 * float(terms["hinge"]))
    assert any(p.grad.abs().sum() > 0 for p in disc.parameters())
    assert all(torch.equal(w, q.window) for w, q in zip(window, model.quantizers, strict=True))
    total, main = model.loss(x, model(x), step=3)
    assert float(main["generator"]) != 0.0
    for p in disc.parameters():
        p.grad = None
    total.backward()
    assert all(p.grad is None for p in disc.parameters())  # the generator term spares D


def test_patch_discriminator_shape_and_init():
    torch.manual_seed(0)
    d = PatchDiscriminator(3, ndf=16, n_layers=3)
    assert d(torch.zeros(2, 3, 64, 64)).shape == (2, 1, 6, 6)
    convs = [m for m in d.modules() if isinstance(m, torch.nn.Conv2d)]
    assert len(convs) == 5
    weights = torch.cat([m.weight.detach().flatten() for m in convs])
    assert abs(float(weights.std()) - 0.02) < 0.002
    with pytest.raises(ValueError, match="at least 48×48"):
        FQAEConfig(image_shape=(1, 32, 32), use_discriminator=True, disc_layers=4)


# -- representations and config ---------------------------------------------------------------
def test_indices_representation_shape_dtype_and_range():
    model = _model(n_codebooks=3, n_tokens=2, code_dim=4).eval()
    x = _batch(5)
    idx = model.representation(x)
    assert idx.shape == (5, 6) and idx.dtype == torch.int64
    assert int(idx.min()) >= 0 and int(idx.max()) < 16
    quantized = model.representation(x, "quantized")
    assert quantized.shape == (5, 24) and quantized.dtype == torch.float32
    # column i·n_tokens + t holds sub-codebook i, token t
    codes = quantized.view(5, 3, 2, 4)
    for i, q in enumerate(model.quantizers):
        torch.testing.assert_close(q.indices_to_codes(idx[:, 2 * i : 2 * i + 2]), codes[:, i])
    assert model.representation_kinds == ("indices", "quantized")


def test_config_validation_names_expected_and_received():
    cases = [
        ({"n_codebooks": 0}, "n_codebooks must be an integer >= 1; received 0"),
        ({"codebook_size": 1}, "codebook_size must be an integer >= 2"),
        ({"reconstruction": "l1"}, r"reconstruction must be one of \['mse', 'bernoulli'\]"),
        ({"disentangle_weight": -1}, "disentangle_weight must be a number >= 0"),
        ({"align_temperature": 0}, "align_temperature must be a number > 0"),
        ({"betas": (0.9,)}, r"betas must be two numbers in \[0, 1\)"),
        ({"teacher": ""}, "teacher must be None"),
        ({"arch": "resnet"}, "arch must be one of"),
        ({"use_discriminator": 1}, "use_discriminator must be True or False"),
    ]
    for options, message in cases:
        with pytest.raises(ValueError, match=message):
            FQAEConfig(**options)


def test_bernoulli_reconstruction_option():
    model = _model(reconstruction="bernoulli")
    x = _batch()
    out = model(x)
    _, terms = model.loss(x, out)
    expected = F.binary_cross_entropy_with_logits(out.logits, x)
    torch.testing.assert_close(terms["reconstruction"], expected.detach())
    mse = _model()
    out = mse(x)
    _, terms = mse.loss(x, out)
    expected = 4 * (torch.sigmoid(out.logits) - x).square().mean()
    torch.testing.assert_close(terms["reconstruction"], expected.detach())


# -- a tiny training run -------------------------------------------------------------------------
def test_tiny_run_with_teacher_discriminator_and_evaluation(tmp_path):
    from disentkit.train import evaluate_run, fit, load_model
    from disentkit.train.checkpoint import load_checkpoint
    from disentkit.viz.arrays import reconstruction_grid, traversal_grid

    options = {
        "features": 32,
        "codebook_size": 16,
        "usage_window": 32,
        "teacher": "random_conv",
        "use_discriminator": True,
        "disc_start": 2,
        "disc_channels": 8,
    }
    run = fit(
        {
            "model": "fq_ae",
            "data": "xyobject_tiny",
            "steps": 4,
            "batch_size": 8,
            "seed": 0,
            "log_every": 1,
            "checkpoint_every": 4,
            "accelerator": "cpu",
            "model_options": options,
        },
        run_dir=tmp_path / "run",
        progress=False,
    )
    with (run / "log" / "metrics.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert [float(r["discriminator/hinge"]) for r in rows][:2] == [0.0, 0.0]
    assert all(float(r["discriminator/hinge"]) > 0 for r in rows[2:])
    assert all(float(r["generator"]) == 0.0 for r in rows[:2])
    assert {"align", "disentangle", "usage/0", "usage/1", "entropy"} <= set(rows[0])
    assert all(0 < float(r["usage/0"]) <= 1 for r in rows)
    assert not any(k.startswith("teacher.") for k in load_file(run / "model.safetensors"))

    model = load_model(run)
    assert model.config.teacher == "random_conv" and not model.training
    state = load_checkpoint(run / "checkpoints" / "last.ckpt")["model"]
    assert state.keys() == model.state_dict().keys()
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in state.items())
    result = evaluate_run(run, n_samples=64, metrics=["mig"], mode="fast")
    assert set(result["representations"]) == {"indices", "quantized"}
    assert result["representations"]["indices"]["n_latents"] == 2
    assert 0.0 <= result["representations"]["indices"]["scores"]["mig"] <= 1.0
    assert json.loads((run / "metrics.json").read_text())["model"]["name"] == "fq_ae"

    # the viz falls back to continuous sweeps of the code dimensions
    images = (np.random.default_rng(0).random((2, 32, 32, 3)) * 255).astype(np.uint8)
    assert traversal_grid(model, images, n_steps=3).ndim == 3
    assert reconstruction_grid(model, images).ndim == 3
