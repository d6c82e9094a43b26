"""Run configuration: files, dotted overrides, type coercion, errors, resolution."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pytest
from hypothesis import given
from hypothesis import strategies as st

from disentkit.train.config import (
    EvalConfig,
    OptimizerConfig,
    RunConfig,
    coerce,
    coerce_options,
    load_config,
    parse_overrides,
)
from tests.train import TINY, registered_tiny


@pytest.fixture(scope="module", autouse=True)
def _tiny():
    with registered_tiny():
        yield


def cfg(overrides=(), **fields):
    return RunConfig.from_dict({"model": "m", "data": "d", **fields}, overrides,
                               check_names=False)


def test_defaults_and_round_trip_write_every_field():
    c = cfg()
    d = c.to_dict()
    assert d["steps"] == 10_000 and d["batch_size"] == 64 and d["precision"] == "32"
    assert d["loggers"] == ["csv"]
    assert set(d["optimizer"]) == {"name", "betas", "eps", "weight_decay", "momentum",
                                   "clip_value"}
    assert set(d["eval"]) == {
        "n_samples", "metrics", "mode", "seed", "batch_size", "n_bootstrap", "baselines",
        "options", "every", "every_n_samples", "every_metrics", "every_mode",
    }
    assert RunConfig.from_dict(json.loads(json.dumps(d)), check_names=False) == c


def test_cli_strings_are_coerced_to_field_types():
    c = cfg([
        "steps=2e3", "lr=1e-3", "deterministic=true", "optimizer.betas=0.5,0.9",
        "optimizer.clip_value=1", "eval.metrics=mig,sap", "devices=2", "precision=bf16-mixed",
        "seed=7", "loggers=[csv]",
    ])
    assert c.steps == 2000 and isinstance(c.steps, int)
    assert c.lr == pytest.approx(1e-3) and c.deterministic is True
    assert c.optimizer.betas == (0.5, 0.9) and c.optimizer.clip_value == 1.0
    assert c.eval.metrics == ["mig", "sap"] and c.devices == 2
    assert c.precision == "bf16-mixed" and c.seed == 7 and c.loggers == ["csv"]
    assert cfg(["devices=auto"]).devices == "auto"
    assert cfg(["lr=none", "eval.metrics=null"]).lr is None
    assert cfg(["optimizer.betas=[0.0, 0.9]"]).optimizer.betas == (0.0, 0.9)
    assert cfg(precision=32).precision == "32"  # a YAML number for a string choice


@pytest.mark.parametrize(
    ("override", "words"),
    [
        ("steps=abc", ["'steps'", "int", "'abc'"]),
        ("steps=1.5", ["'steps'", "int", "'1.5'"]),
        ("deterministic=maybe", ["'deterministic'", "bool", "'maybe'"]),
        ("precision=64", ["'precision'", "'32'", "'bf16-mixed'", "'64'"]),
        ("optimizer.betas=0.9", ["'optimizer.betas'", "tuple[float, float]"]),
        ("lr=fast", ["'lr'", "float or null", "'fast'"]),
        ("devices=many", ["'devices'", "int", "'auto'"]),
    ],
)
def test_bad_types_name_field_type_and_value(override, words):
    with pytest.raises(ValueError) as info:
        cfg([override])
    for word in words:
        assert word in str(info.value)


def test_bad_type_in_a_file_value():
    with pytest.raises(ValueError, match=r"'batch_size' expects int; received True"):
        cfg(batch_size=True)
    with pytest.raises(ValueError, match="'eval' expects a mapping"):
        cfg(eval=3)


def test_unknown_keys_list_the_valid_ones():
    with pytest.raises(ValueError, match=r"unknown config key 'stepz' \(did you mean 'steps'\?\)"
                       r"; valid keys: model, data, model_options"):
        cfg(["stepz=3"])
    with pytest.raises(ValueError, match=r"'optimizer.lrr'.*valid keys: optimizer.name"):
        cfg(["optimizer.lrr=3"])
    with pytest.raises(ValueError, match=r"'eval.n_sample'.*did you mean 'eval.n_samples'"):
        cfg(eval={"n_sample": 3})


@pytest.mark.parametrize("item", ["steps", "=3", "a..b=1", "steps 3", "9x=1"])
def test_malformed_overrides(item):
    with pytest.raises(ValueError, match="--set expects KEY=VALUE"):
        parse_overrides([item])


@pytest.mark.parametrize(
    ("override", "match"),
    [
        ("steps=0", "'steps' must be an integer ≥ 1"),
        ("batch_size=-1", "'batch_size' must be an integer ≥ 1"),
        ("seed=-3", "'seed' must be an integer ≥ 0"),
        ("lr=0", "'lr' must be a finite number > 0"),
        ("optimizer.betas=0.9,1.5", r"'optimizer.betas' must lie in \[0, 1\)"),
        ("optimizer.clip_value=-1", "'optimizer.clip_value' must be a number > 0"),
        ("loggers=csv,neptune", r"'loggers' takes names from .*\['neptune'\]"),
        ("eval.n_samples=1", "'eval.n_samples' must be an integer ≥ 2"),
        ("devices=0", "'devices' must be an integer ≥ 1"),
    ],
)
def test_out_of_range_values(override, match):
    with pytest.raises(ValueError, match=match):
        cfg([override])


def test_unknown_metric_lists_known_ones():
    with pytest.raises(KeyError, match=r"known metrics: .*mig"):
        cfg(["eval.metrics=mig,nope"])


def test_csv_logger_is_always_on():
    assert cfg(loggers=["tensorboard"]).loggers == ["csv", "tensorboard"]
    assert cfg(loggers=[]).loggers == ["csv"]


def test_model_and_data_sections_and_dotted_options():
    a = cfg(["model.weight_decay=0.1", "data.image_size=32"])
    assert a.model_options == {"weight_decay": 0.1} and a.data_options == {"image_size": 32}
    b = RunConfig.from_dict({"model": {"name": "m", "weight_decay": 0.1},
                             "data": {"name": "d", "image_size": 32}}, check_names=False)
    assert b.model == "m" and b.model_options == a.model_options
    assert b.data == "d" and b.data_options == a.data_options
    c = cfg(["model.name=other", "model_options.hidden=4"])
    assert c.model == "other" and c.model_options == {"hidden": 4}


def test_model_options_checked_against_the_model_config():
    c = RunConfig.from_dict({"model": TINY, "data": "xyobject_tiny"},
                            ["model.hidden=16", "model.image_shape=3,32,32"])
    assert c.model_options == {"hidden": 16, "image_shape": (3, 32, 32)}
    with pytest.raises(ValueError, match=r"unknown option\(s\) \['hiden'\] for model "
                       r"'_test_tiny_ae' \(did you mean 'hidden'\?\); valid options: .*n_latents"):
        RunConfig.from_dict({"model": TINY, "data": "xyobject_tiny"}, ["model.hiden=16"])
    with pytest.raises(ValueError, match=r"option 'hidden' expects int; received 'wide'"):
        RunConfig.from_dict({"model": TINY, "data": "xyobject_tiny"}, ["model.hidden=wide"])


def test_unknown_model_and_dataset_names():
    with pytest.raises(KeyError, match=rf"known models: .*{TINY}"):
        RunConfig.from_dict({"model": "no_such_model", "data": "xyobject_tiny"})
    with pytest.raises(KeyError, match=r"known datasets: .*xyobject_tiny"):
        RunConfig.from_dict({"model": TINY, "data": "no_such_data"})


def test_required_keys():
    with pytest.raises(ValueError, match="config key 'data' is required"):
        RunConfig.from_dict({"model": "m"}, check_names=False)


def test_yaml_and_json_files_then_fields_then_overrides(tmp_path):
    y = tmp_path / "run.yaml"
    y.write_text("model:\n  name: m\n  width: 8\ndata: d\nsteps: 50\n"
                 "optimizer:\n  clip_value: 1.0\neval: {mode: fast}\n")
    c = load_config(y, ["steps=60"], check_names=False, seed=4)
    assert (c.model, c.model_options, c.steps, c.seed) == ("m", {"width": 8}, 60, 4)
    assert c.optimizer == OptimizerConfig(clip_value=1.0) and c.eval == EvalConfig(mode="fast")
    j = tmp_path / "run.json"
    j.write_text(json.dumps(c.to_dict()))
    assert load_config(j, check_names=False) == c


def test_bad_files(tmp_path):
    with pytest.raises(ValueError, match="cannot read config file"):
        load_config(tmp_path / "missing.yaml", check_names=False)
    bad = tmp_path / "list.yaml"
    bad.write_text("- 1\n- 2\n")
    with pytest.raises(ValueError, match="must hold a mapping"):
        load_config(bad, check_names=False)
    broken = tmp_path / "broken.json"
    broken.write_text("{steps: ")
    with pytest.raises(ValueError, match="cannot parse config file"):
        load_config(broken, check_names=False)


def test_coerce_options_on_a_dataclass():
    @dataclass
    class C:
        shape: tuple[int, int] = (1, 2)
        scale: float | None = None
        mode: str = "a"

    assert coerce_options(C, {"shape": [3, 4], "scale": "2"}) == {"shape": (3, 4), "scale": 2.0}
    with pytest.raises(ValueError, match=r"option 'shape' expects tuple\[int, int\]; "
                       r"received \[1, 2, 3\]"):
        coerce_options(C, {"shape": [1, 2, 3]})
    with pytest.raises(ValueError, match="option 'mode' expects str; received 3"):
        coerce_options(C, {"mode": 3})


@given(st.integers(min_value=-(10**12), max_value=10**12))
def test_integer_strings_round_trip(n):
    assert coerce(str(n), int) == n


@given(st.floats(allow_nan=False, allow_infinity=False))
def test_float_strings_round_trip(x):
    assert coerce(repr(x), float) == x


def test_eval_options_and_every_from_dotted_overrides():
    c = cfg(["eval.options.infomec.protocol=training", "eval.options.infomec.k=3",
             "eval.every=500", "eval.every_metrics=infomec,mig", "eval.every_mode=reference"])
    assert c.eval.options == {"infomec": {"protocol": "training", "k": 3}}
    assert (c.eval.every, c.eval.every_n_samples, c.eval.every_mode) == (500, 2000, "reference")
    assert c.eval.every_metrics == ["infomec", "mig"]
    assert RunConfig.from_dict(c.to_dict(), check_names=False).eval == c.eval
