"""Study overrides: ``run_study(..., overrides=[...])`` and ``study run --set``."""

from __future__ import annotations

import json

import pytest
import yaml
from typer.testing import CliRunner

from disentkit.cli import app
from disentkit.study import collect, expand, load_spec, run_study
from disentkit.study.overrides import (
    STATE_NAME,
    normalise_overrides,
    override_runs,
    read_overrides,
)
from disentkit.study.results import run_dir


def _spec(**changes):
    base = {
        "name": "tiny",
        "datasets": ["xyobject_tiny"],
        "models": ["ae", {"name": "beta_vae", "grid": {"model.beta": [2.0]}}],
        "seeds": 1,
        "train": {"steps": 6, "batch_size": 8, "checkpoint_every": 3, "log_every": 3,
                  "accelerator": "cpu", "model.n_latents": 3},
        "eval": {"n_samples": 200, "mode": "fast", "metrics": ["mig"]},
        "resources": {"max_retries": 0},
    }
    base.update(changes)
    return base


def test_train_prefix_maps_to_the_run_config_and_other_keys_pass_through():
    assert normalise_overrides(["train.steps=4", "train.model.arch=dlib", "lr=0.01",
                                "eval.n_samples=100"]) == [
        "steps=4", "model.arch=dlib", "lr=0.01", "eval.n_samples=100"]
    runs = override_runs(expand(load_spec(_spec())),
                         ["train.steps=4", "eval.n_samples=100", "model.n_latents=5"])
    for run in runs:
        assert run.config["steps"] == 4  # converted to the field's type
        assert run.config["eval"]["n_samples"] == 100
        assert run.config["eval"]["mode"] == "fast"  # the spec's other eval settings stay
        assert run.config["model_options"]["n_latents"] == 5
    assert runs[1].config["model_options"]["beta"] == 2.0 and runs[1].hparams == {
        "model.beta": 2.0}


@pytest.mark.parametrize("item, match", [
    ("train.model=vae", "must not set 'train.model'"),
    ("seed=3", "must not set 'seed'"),
    ("data.name=dsprites", "must not set 'data.name'"),
    ("steps", "KEY=VALUE"),
])
def test_overrides_may_not_change_what_a_run_trains(item, match):
    with pytest.raises(ValueError, match=match):
        normalise_overrides([item])


def test_a_swept_key_or_a_bad_value_is_refused_naming_the_run():
    runs = expand(load_spec(_spec()))
    with pytest.raises(ValueError, match=r"sweeps; received \['model.beta'\]"):
        override_runs(runs, ["model.beta=8"])
    with pytest.raises(ValueError, match=r"run 0 \(ae on xyobject_tiny, seed 0\).*'steps'"):
        override_runs(runs, ["train.steps=many"])


def test_overrides_reach_every_config_json_and_the_table(tmp_path):
    out = tmp_path / "s"
    outcome = run_study(_spec(), out, executor="local", progress=False,
                        overrides=["train.steps=4", "eval.n_samples=150"])
    assert list(outcome.results["status"]) == ["done", "done"]
    assert list(outcome.results["steps"]) == [4, 4]
    for num in (0, 1):
        saved = json.loads((run_dir(out, num) / "config.json").read_text())
        assert saved["steps"] == 4 and saved["eval"]["n_samples"] == 150
        assert json.loads(outcome.results.loc[num, "config"])["steps"] == 4
    assert read_overrides(out) == ["steps=4", "eval.n_samples=150"]
    # collect rebuilds the table with the recorded overrides
    assert list(collect(out)["steps"]) == [4, 4]
    # same overrides (other order, other spelling of the key): accepted, nothing rerun
    again = run_study(_spec(), out, executor="local", progress=False,
                      overrides=["eval.n_samples=150", "steps=4"])
    assert again.ran == () and again.skipped == (0, 1)
    # other overrides, or none: refused before anything runs
    with pytest.raises(ValueError, match=r"overrides \['steps=4', 'eval.n_samples=150'\]; "
                                         r"received \['steps=5'\].*--set steps=4"):
        run_study(_spec(), out, executor="local", progress=False, overrides=["train.steps=5"])
    with pytest.raises(ValueError, match=r"received \[\]"):
        run_study(_spec(), out, executor="local", progress=False)


def test_a_study_started_without_overrides_refuses_them_later(tmp_path):
    out = tmp_path / "s"
    run_study(_spec(models=["ae"]), out, executor="local", progress=False)
    assert read_overrides(out) == []
    (out / STATE_NAME).unlink()  # a study directory from before the state file
    with pytest.raises(ValueError, match=r"overrides \[\]; received \['steps=2'\]"):
        run_study(_spec(models=["ae"]), out, executor="local", progress=False,
                  overrides=["steps=2"])


def test_cli_run_with_set(tmp_path):
    spec_file = tmp_path / "s.yaml"
    spec_file.write_text(yaml.safe_dump(_spec(models=["ae"])))
    out = tmp_path / "study"
    runner = CliRunner()
    result = runner.invoke(app, ["study", "run", str(spec_file), "--out", str(out),
                                 "--executor", "local", "--no-report",
                                 "--set", "train.steps=3", "--set", "eval.n_samples=120"])
    assert result.exit_code == 0, result.output
    saved = json.loads((run_dir(out, 0) / "config.json").read_text())
    assert saved["steps"] == 3 and saved["eval"]["n_samples"] == 120
    result = runner.invoke(app, ["study", "run", str(spec_file), "--out", str(out),
                                 "--executor", "local", "--no-report"])
    assert result.exit_code == 2
    assert "--set steps=3 --set eval.n_samples=120" in " ".join(result.output.split())
    result = runner.invoke(app, ["study", "run", str(spec_file), "--out", str(out),
                                 "--executor", "local", "--set", "seed=1"])
    assert result.exit_code == 2 and "must not set 'seed'" in result.output
