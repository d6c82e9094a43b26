"""Run configuration: files, dotted overrides, type coercion, errors, resolution."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from disentkit.data import get_dataset
from disentkit.models import MODELS
from disentkit.train.config import (
    EvalConfig,
    OptimizerConfig,
    RunConfig,
    apply_overrides,
    build_config,
    coerce,
    coerce_options,
    config_json_schema,
    load_config,
    parse_overrides,
    resolve_config,
    resolved_config_text,
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
    assert d["loggers"] == {"tensorboard": None, "mlflow": None, "wandb": None}
    assert set(d["optimizer"]) == {"name", "betas", "eps", "weight_decay", "momentum",
                                   "clip_value"}
    assert set(d["eval"]) == {
        "n_samples", "metrics", "mode", "seed", "batch_size", "n_bootstrap", "baselines",
        "options", "every", "every_n_samples", "every_metrics", "every_mode",
    }
    assert (d["eval"]["every"], d["eval"]["every_n_samples"], d["eval"]["every_metrics"],
            d["eval"]["every_mode"], d["eval"]["options"]) == (0, 2000, None, "fast", {})
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
    assert c.precision == "bf16-mixed" and c.seed == 7 and c.loggers.names == ["csv"]
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
        ("optimizer.clip_value=-1", "'optimizer.clip_value' must be a finite number > 0 or null"),
        ("loggers=csv,neptune", r"'loggers' takes names from .*\['neptune'\]"),
        ("loggers=[tensorbord]", r"received \['tensorbord'\] \(did you mean 'tensorboard'\?\)"),
        ("loggers.wandb.mode=ofline", "'loggers.wandb.mode' expects one of 'online', "
         "'offline', 'disabled' or null; received 'ofline'"),
        ("loggers.wandb.project=", "'loggers.wandb.project' must be a non-empty project name; "
         "received ''"),
        ("loggers.mlflow.experiment= ", "'loggers.mlflow.experiment' must be a non-empty"),
        ("loggers.tensorboard.dirr=x", r"unknown config key 'loggers.tensorboard.dirr' \(did "
         r"you mean 'loggers.tensorboard.dir'\?\); valid keys: loggers.tensorboard.dir"),
        ("loggers.neptune.x=1", r"unknown config key 'loggers.neptune'; valid keys: "
         "loggers.tensorboard, loggers.mlflow, loggers.wandb"),
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
    assert cfg(loggers=["tensorboard"]).loggers.names == ["csv", "tensorboard"]
    assert cfg(loggers=[]).loggers.names == ["csv"]
    assert cfg(loggers={"csv": {}, "mlflow": {}}).loggers.names == ["csv", "mlflow"]


def test_loggers_section_with_settings():
    c = cfg(loggers={"tensorboard": {"dir": "tb"}, "wandb": {"project": "p", "tags": ["a"],
                                                             "mode": "offline"}})
    assert c.loggers.names == ["csv", "tensorboard", "wandb"]
    assert c.loggers.tensorboard.dir == "tb" and c.loggers.mlflow is None
    assert (c.loggers.wandb.project, c.loggers.wandb.tags, c.loggers.wandb.mode,
            c.loggers.wandb.entity) == ("p", ["a"], "offline", None)
    # the defaults of an empty section; the section survives a JSON round trip
    d = cfg(loggers={"mlflow": {}}).to_dict()["loggers"]
    assert d["mlflow"] == {"tracking_uri": None, "experiment": "disentkit", "run_name": None}
    assert cfg(loggers=d).loggers == cfg(loggers={"mlflow": {}}).loggers


@pytest.mark.parametrize("items", [
    ["loggers=[csv, tensorboard, wandb]"],
    ["loggers=tensorboard,wandb"],
    ["loggers=[tensorboard]", "loggers.wandb.project=disentkit"],
    ["loggers.tensorboard={}", "loggers.wandb={}"],
])
def test_old_list_form_and_dotted_overrides_turn_trackers_on(items):
    assert cfg(items).loggers.names == ["csv", "tensorboard", "wandb"]


def test_dotted_logger_overrides_reach_a_list_from_the_file():
    c = cfg(["loggers.wandb.project=x", "loggers.wandb.tags=a,b",
             "loggers.mlflow.tracking_uri=sqlite:///m.db", "loggers.tensorboard=null"],
            loggers=["tensorboard", "mlflow"])
    assert c.loggers.names == ["csv", "mlflow", "wandb"]
    assert c.loggers.wandb.project == "x" and c.loggers.wandb.tags == ["a", "b"]
    assert c.loggers.mlflow.tracking_uri == "sqlite:///m.db"


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


# --------------------------------------------------------------------------- built once


def test_a_config_is_frozen_and_a_validated_one_passes_build_config_unchanged():
    c = RunConfig.from_dict({"model": TINY, "data": "xyobject_tiny"}, ["model.hidden=16"])
    with pytest.raises(dataclasses.FrozenInstanceError):
        c.steps = 5  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        c.eval.mode = "fast"  # type: ignore[misc]
    assert build_config(c) is c  # names checked, options converted: nothing done twice
    unchecked = cfg()
    assert build_config(unchecked, check_names=False) is unchecked
    with pytest.raises(KeyError, match="known models"):
        build_config(unchecked)  # 'm' was never looked up; it is now
    assert build_config(c, steps=7).steps == 7 and c.steps == 10_000
    with pytest.raises(TypeError, match="must be a RunConfig, a mapping or a file path; "
                       "received int"):
        build_config(3)  # type: ignore[arg-type]


def test_replace_validates_the_changes():
    c = cfg()
    assert c.replace(steps="5").steps == 5 and c.steps == 10_000
    with pytest.raises(ValueError, match="'steps' must be an integer ≥ 1; received 0"):
        c.replace(steps=0)
    with pytest.raises(ValueError, match=r"unknown config key 'stepz' \(did you mean 'steps'"):
        c.replace(stepz=1)


def test_apply_overrides_normalises_a_copy_and_sets_dotted_keys():
    tree = {"model": {"name": "qlae", "weight_decay": 0.1}, "eval": {"mode": "fast"}}
    out = apply_overrides(tree, ["model.n_latents=6", "eval.options.infomec.protocol=training",
                                 "data.name=d"])
    assert out["model"] == "qlae" and out["data"] == "d"
    assert out["model_options"] == {"weight_decay": 0.1, "n_latents": "6"}  # text until built
    assert out["eval"] == {"mode": "fast", "options": {"infomec": {"protocol": "training"}}}
    assert tree == {"model": {"name": "qlae", "weight_decay": 0.1}, "eval": {"mode": "fast"}}
    with pytest.raises(ValueError, match=r"cannot set 'steps\.x': config field 'steps' is not "
                       r"a section"):
        apply_overrides({"steps": 3}, ["steps.x=1"])


def test_eval_fields_of_the_during_training_scores():
    e = cfg().eval
    assert (e.options, e.every, e.every_n_samples, e.every_metrics, e.every_mode) == (
        {}, 0, 2000, None, "fast")
    c = cfg(["eval.options.infomec.protocol=training", "eval.options.dci.backend=gbt",
             "eval.every=500", "eval.every_n_samples=1e3", "eval.every_metrics=infomec,mig",
             "eval.every_mode=reference"])
    assert c.eval.options == {"infomec": {"protocol": "training"}, "dci": {"backend": "gbt"}}
    assert (c.eval.every, c.eval.every_n_samples) == (500, 1000)
    assert c.eval.every_metrics == ["infomec", "mig"] and c.eval.every_mode == "reference"
    assert RunConfig.from_dict(json.loads(json.dumps(c.to_dict())), check_names=False) == c


@pytest.mark.parametrize(
    ("override", "error", "match"),
    [
        ("eval.every=-1", ValueError, "'eval.every' must be an integer ≥ 0; received '-1'"),
        ("eval.every_n_samples=1", ValueError, "'eval.every_n_samples' must be an integer ≥ 2"),
        ("eval.every_metrics=mig,nope", KeyError, "unknown metric 'nope'.*known metrics:.*dci"),
        ("eval.every_metrics=[]", ValueError, "'eval.every_metrics' must name at least one"),
        ("eval.every_mode=slow", ValueError, "'eval.every_mode' expects one of 'reference', "
         "'fast'; received 'slow'"),
        ("eval.options.nope.x=1", KeyError, "unknown metric 'nope'"),
        ("eval.options=3", ValueError, r"'eval.options' expects dict\[str, dict"),
        ("eval.every_n_sample=3", ValueError, r"did you mean 'eval.every_n_samples'\?\)"),
    ],
)
def test_eval_field_errors(override, error, match):
    with pytest.raises(error, match=match):
        cfg([override])


def test_bools_are_not_numbers_and_text_becomes_structure():
    @dataclass
    class C:
        width: int = 8
        scale: float = 1.0
        shape: tuple[int, ...] = (1,)
        name: str | None = "a"

    with pytest.raises(ValueError, match="option 'width' expects int; received True"):
        coerce_options(C, {"width": True})
    with pytest.raises(ValueError, match="option 'scale' expects float; received False"):
        coerce_options(C, {"scale": False})
    assert coerce_options(C, {"width": "1_024", "shape": "(2, 3, 4)", "name": "None"}) == {
        "width": 1024, "shape": (2, 3, 4), "name": None}
    assert coerce_options(C, {"shape": "5"}) == {"shape": (5,)}


def test_json_schema_for_editors():
    schema = config_json_schema()
    assert schema["$schema"].startswith("https://json-schema.org/")
    assert schema["required"] == ["model", "data"] and schema["additionalProperties"] is False
    props = schema["properties"]
    assert props["steps"]["minimum"] == 1 and props["steps"]["type"] == "integer"
    assert "Optimisation iterations" in props["steps"]["description"]
    assert set(props) == {f.name for f in dataclasses.fields(RunConfig)}
    evals = schema["$defs"]["EvalConfig"]["properties"]
    assert evals["every_n_samples"]["minimum"] == 2 and evals["every_mode"]["default"] == "fast"
    assert json.loads(json.dumps(schema)) == schema


@pytest.mark.parametrize("fmt", ["yaml", "json"])
def test_printed_config_is_accepted_by_config_and_gives_the_same_run(tmp_path, fmt):
    built = build_config(model=TINY, data="xyobject_tiny",
                         overrides=["model.hidden=16", "lr=1e-3", "eval.every=10"])
    resolved = resolve_config(built)
    assert resolved.model_options["image_shape"] == (3, 32, 32)  # the dataset's, written out
    assert resolved.model_options["n_latents"] == 4 and resolved.model_options["hidden"] == 16
    assert build_config(resolved) is resolved
    text = resolved_config_text(built, fmt)
    path = tmp_path / f"run.{fmt}"
    path.write_text(text)
    loaded = load_config(path)
    assert loaded == resolved
    assert resolved_config_text(loaded, fmt) == text
    with pytest.raises(ValueError, match="fmt must be 'yaml' or 'json'; received 'toml'"):
        resolved_config_text(built, "toml")  # type: ignore[arg-type]


@pytest.mark.parametrize("model", sorted(MODELS))
def test_every_model_resolves_to_text_that_loads_back_equal(model):
    resolved = resolve_config(build_config(model=model, data="xyobject_tiny"),
                              get_dataset("xyobject_tiny"))
    text = resolved_config_text(resolved)
    assert build_config(yaml.safe_load(text)) == resolved
