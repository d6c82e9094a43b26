"""Contract tests run for every registered model (each new registration gets them for free).

Every public module of ``disentkit.models`` is imported first, so a model registered in any
of them is covered even before the package's ``__init__`` imports it. Models are built from
their default config with tiny overrides (fields a config does not have are left alone):
``n_latents=3``, ``image_shape=(1, 32, 32)``, ``arch="dlib"``.
"""

from __future__ import annotations

import dataclasses
import importlib
import json
import pkgutil

import pytest
import torch

import disentkit.models
from disentkit.models import MODELS, Output, build_model


def _import_model_modules() -> dict[str, str]:
    errors = {}
    for info in pkgutil.iter_modules(disentkit.models.__path__):
        if info.name.startswith("_"):
            continue
        module = f"disentkit.models.{info.name}"
        try:
            importlib.import_module(module)
        except Exception as error:  # reported by test_model_modules_import
            errors[module] = f"{type(error).__name__}: {error}"
    return errors


IMPORT_ERRORS = _import_model_modules()
NAMES = sorted(MODELS)
TINY = {"n_latents": 3, "image_shape": (1, 32, 32), "arch": "dlib"}
BATCH = 6


pytestmark = pytest.mark.usefixtures("torch_one_thread")


def _tiny(name: str, **extra) -> disentkit.models.Model:
    fields = {f.name for f in dataclasses.fields(MODELS[name].config_cls)}
    overrides = {k: v for k, v in TINY.items() if k in fields}
    torch.manual_seed(0)
    return build_model(name, **overrides, **extra)


def _shape(model) -> tuple[int, int, int]:
    return tuple(getattr(model.config, "image_shape", (1, 64, 64)))


def _batch(model, n: int = BATCH) -> torch.Tensor:
    g = torch.Generator().manual_seed(1)
    return torch.rand(n, *_shape(model), generator=g)


def _n_latents(model) -> int | None:
    return getattr(model.config, "n_latents", None)


def _main_params(model) -> list[torch.nn.Parameter]:
    return [p for group in model.param_groups() for p in group["params"]]


def _extra_params(model) -> list[torch.nn.Parameter]:
    return [p for step in model.extra_steps() for p in step.parameters()]


def test_model_modules_import():
    assert not IMPORT_ERRORS, IMPORT_ERRORS


def test_registry_is_not_empty():
    assert {"ae", "vae", "beta_vae", "beta_tcvae", "factor_vae"} <= set(NAMES)


@pytest.mark.parametrize("name", NAMES)
def test_registration_metadata(name):
    info = MODELS[name]
    assert info.cls.name == name
    assert info.description and info.reference
    assert dataclasses.is_dataclass(info.config_cls)
    kinds = info.cls.representation_kinds
    assert kinds and set(kinds) <= set(disentkit.models._base.REPRESENTATION_KINDS)


@pytest.mark.parametrize("name", NAMES)
def test_forward_shapes_and_finite(name):
    model = _tiny(name)
    x = _batch(model)
    out = model(x)
    assert isinstance(out, Output)
    assert out.logits.shape == x.shape
    assert torch.isfinite(out.logits).all()
    z = out.encoding.z
    assert z.ndim == 2 and z.shape[0] == BATCH and torch.isfinite(z).all()
    assert model.decode(z).shape == x.shape
    assert model.device == torch.device("cpu")


@pytest.mark.parametrize("name", NAMES)
def test_loss_and_backward(name):
    model = _tiny(name)
    x = _batch(model)
    total, terms = model.loss(x, model(x), step=0)
    assert total.ndim == 0 and torch.isfinite(total) and total.requires_grad
    assert terms, "loss terms are logged; return at least one"
    for key, value in terms.items():
        assert isinstance(value, torch.Tensor) and value.ndim == 0, key
        assert torch.isfinite(value), key
    total.backward()
    params = _main_params(model)
    missing = [
        n for n, p in model.named_parameters() if any(p is q for q in params) and p.grad is None
    ]
    assert not missing, f"parameters in param_groups the loss does not reach: {missing}"
    assert all(torch.isfinite(p.grad).all() for p in params)


@pytest.mark.parametrize("name", NAMES)
def test_param_groups_cover_parameters_once(name):
    model = _tiny(name)
    main, extra = _main_params(model), _extra_params(model)
    ids = [id(p) for p in main + extra]
    assert len(ids) == len(set(ids)), "a parameter is in two groups or steps"
    trainable = {id(p) for p in model.parameters() if p.requires_grad}
    assert set(ids) == trainable, "every trainable parameter has exactly one optimiser"


@pytest.mark.parametrize("name", NAMES)
def test_representation_kinds(name):
    model = _tiny(name).eval()
    x = _batch(model)
    n_latents = _n_latents(model)
    for kind in model.representation_kinds:
        r = model.representation(x, kind)
        assert r.ndim == 2 and r.shape[0] == BATCH, kind
        if n_latents is not None:
            assert r.shape[1] == n_latents, kind
        if kind == "indices":
            assert r.dtype == torch.int64
        else:
            assert r.is_floating_point() and torch.isfinite(r).all(), kind
    default = model.representation(x)
    torch.testing.assert_close(default, model.representation(x, model.representation_kinds[0]))
    if "mean" in model.representation_kinds:  # deterministic
        torch.testing.assert_close(model.representation(x, "mean"), model.representation(x, "mean"))
    with pytest.raises(ValueError, match="offers representations"):
        model.representation(x, "no_such_kind")


@pytest.mark.parametrize("name", NAMES)
def test_extra_steps(name):
    model = _tiny(name)
    x = _batch(model)
    for step in model.extra_steps():
        assert step.every >= 1
        params = step.parameters()
        assert params
        groups = step.param_groups() if step.param_groups is not None else [{"params": params}]
        grouped = [p for g in groups for p in g["params"]]
        assert {id(p) for p in grouped} == {id(p) for p in params}, "groups cover parameters()"
        optimizer = torch.optim.Adam([{"params": g["params"]} for g in groups],
                                     lr=float(step.optimizer.get("lr", 1e-3)))
        loss, terms = step.loss(x, 0)
        assert loss.ndim == 0 and torch.isfinite(loss)
        assert all(torch.isfinite(v) for v in terms.values())
        optimizer.zero_grad()
        loss.backward()
        assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in params)
        optimizer.step()


@pytest.mark.parametrize("name", NAMES)
def test_a_few_steps_lower_the_loss(name):
    model = _tiny(name)
    x = _batch(model)
    optimizer = torch.optim.Adam(model.param_groups(), lr=1e-3)

    def evaluate() -> torch.Tensor:
        torch.manual_seed(123)  # same sampling noise at every evaluation
        return model.loss(x, model(x), step=0)[0]

    with torch.no_grad():
        before = float(evaluate())
    for _ in range(8):
        optimizer.zero_grad()
        loss = evaluate()
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        after = float(evaluate())
    assert after < before, (before, after)


@pytest.mark.parametrize("name", NAMES)
def test_config_round_trip(name):
    model = _tiny(name)
    config = dataclasses.asdict(model.config)
    assert build_model(name, **config).config == model.config
    # through JSON (model.json): lists come back and must be accepted as tuples
    assert build_model(name, **json.loads(json.dumps(config))).config == model.config
    assert model.config_dict() == config


@pytest.mark.parametrize("name", NAMES)
def test_state_dict_round_trip(name):
    model = _tiny(name).eval()
    other = build_model(name, **dataclasses.asdict(model.config)).eval()
    other.load_state_dict(model.state_dict())
    x = _batch(model)
    kind = model.representation_kinds[0]
    torch.manual_seed(0)
    a = model.representation(x, kind)
    torch.manual_seed(0)
    b = other.representation(x, kind)
    torch.testing.assert_close(a, b)


@pytest.mark.parametrize("name", NAMES)
def test_unknown_option_rejected(name):
    with pytest.raises(ValueError, match="unknown option"):
        build_model(name, no_such_option=1)
