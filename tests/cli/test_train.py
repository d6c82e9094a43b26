"""``disentkit train`` and ``disentkit evaluate``."""

from __future__ import annotations

import json
import re

import pytest
import yaml
from typer.testing import CliRunner

from disentkit.cli import app
from tests.train import TINY

runner = CliRunner()


def _flat(text: str) -> str:
    return re.sub(r"\s+", " ", text)


pytestmark = pytest.mark.usefixtures("tiny_model")


TRAIN = ["train", "--model", TINY, "--data", "xyobject_tiny", "--batch-size", "8",
         "--seed", "1", "--checkpoint-every", "3", "--no-progress",
         "--set", "eval.n_samples=120", "--set", "eval.metrics=mig", "--set", "eval.mode=fast",
         "--set", "log_every=2"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    run = tmp_path_factory.mktemp("cli") / "run"
    result = runner.invoke(app, [*TRAIN, "--steps", "4", "--run-dir", str(run)])
    assert result.exit_code == 0, result.output
    return run, result


def test_train_happy_path_trains_and_evaluates(trained):
    run, result = trained
    out = _flat(result.stdout)
    assert f"Trained model: {(run / 'model.safetensors').resolve()}" in out
    assert "mig/hist20@1" in out and "mean" in out and "sampled" in out
    assert "reconstruction: BCE" in out and "active latents:" in out
    assert f"{(run / 'metrics.json').resolve()}" in out
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["n_samples"] == 120 and metrics["mode"] == "fast"
    assert metrics["representations"]["mean"]["scores"]["mig.metric_id"] == "mig/hist20@1"
    config = json.loads((run / "config.json").read_text())
    assert (config["steps"], config["seed"], config["checkpoint_every"]) == (4, 1, 3)


def test_resume_from_the_run_directory_alone_extends_the_run(trained, tmp_path):
    run, _ = trained
    result = runner.invoke(app, ["train", "--run-dir", str(run), "--resume", "--steps", "6",
                                 "--no-evaluate", "--no-progress"])
    assert result.exit_code == 0, result.output
    assert json.loads((run / "model.json").read_text())["step"] == 6


def test_evaluate_command_with_options(trained):
    run, _ = trained
    result = runner.invoke(app, ["evaluate", str(run), "--n-samples", "100", "--metrics",
                                 "mig,sap", "--seed", "2"])
    assert result.exit_code == 0, result.output
    saved = json.loads((run / "metrics.json").read_text())
    assert saved["n_samples"] == 100 and saved["seed"] == 2
    assert saved["metrics"] == ["mig", "sap"] and saved["mode"] == "fast"  # run's eval.mode
    assert {"mig", "sap"} <= set(saved["representations"]["sampled"]["scores"])


def test_eval_options_of_the_run_config_reach_the_metrics(tmp_path):
    run = tmp_path / "run"
    result = runner.invoke(app, [*TRAIN, "--steps", "2", "--run-dir", str(run), "--no-report",
                                 "--set", "eval.options.mig.n_bins=5"])
    assert result.exit_code == 0, result.output
    saved = json.loads((run / "metrics.json").read_text())
    assert saved["representations"]["mean"]["scores"]["mig.metric_id"] == "mig/hist5@1"
    # evaluate keeps the run's options for the metrics it scores, and only for those
    result = runner.invoke(app, ["evaluate", str(run), "--n-samples", "60", "--metrics",
                                 "mig,sap", "--no-report"])
    assert result.exit_code == 0, result.output
    saved = json.loads((run / "metrics.json").read_text())
    assert saved["representations"]["mean"]["scores"]["mig.metric_id"] == "mig/hist5@1"
    result = runner.invoke(app, ["evaluate", str(run), "--n-samples", "60", "--metrics", "sap",
                                 "--no-report"])
    assert result.exit_code == 0, result.output


def test_no_evaluate_and_a_config_file(tmp_path):
    cfg = tmp_path / "run.yaml"
    cfg.write_text(f"model: {TINY}\ndata: xyobject_tiny\nsteps: 2\nbatch_size: 4\n"
                   "model_options: {{hidden: 8}}\n".replace("{{", "{").replace("}}", "}"))
    run = tmp_path / "r"
    result = runner.invoke(app, ["train", "--config", str(cfg), "--run-dir", str(run),
                                 "--no-evaluate", "--no-progress"])
    assert result.exit_code == 0, result.output
    assert not (run / "metrics.json").exists() and (run / "model.safetensors").is_file()
    assert json.loads((run / "config.json").read_text())["model_options"]["hidden"] == 8


def test_print_config_is_reusable_with_config_and_trains_the_same_run(tmp_path):
    printed = runner.invoke(app, [*TRAIN, "--steps", "2", "--set", "model.hidden=8",
                                  "--print-config"])
    assert printed.exit_code == 0, printed.output
    resolved = yaml.safe_load(printed.stdout)
    assert resolved["model_options"]["hidden"] == 8
    assert resolved["model_options"]["image_shape"] == [3, 32, 32]  # defaults written out
    assert resolved["steps"] == 2 and resolved["eval"]["metrics"] == ["mig"]
    path = tmp_path / "printed.yaml"
    path.write_text(printed.stdout)
    run = tmp_path / "r"
    result = runner.invoke(app, ["train", "--config", str(path), "--run-dir", str(run),
                                 "--no-evaluate", "--no-report", "--no-progress"])
    assert result.exit_code == 0, result.output
    assert json.loads((run / "config.json").read_text()) == resolved
    again = runner.invoke(app, ["train", "--config", str(path), "--print-config"])
    assert again.exit_code == 0 and again.stdout == printed.stdout


def test_config_schema_is_json_schema():
    result = runner.invoke(app, ["train", "--config-schema"])
    assert result.exit_code == 0, result.output
    schema = json.loads(result.stdout)
    assert schema["required"] == ["model", "data"] and "eval" in schema["properties"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["train", "--data", "xyobject_tiny"], "--model required"),
        (["train"], "--model and --data required"),
        (["train", "--model", "nope", "--data", "xyobject_tiny"], "unknown model 'nope'"),
        ([*TRAIN, "--set", "steps=abc"], "config field 'steps' expects int; received 'abc'"),
        ([*TRAIN, "--set", "stepz=3"], "unknown config key 'stepz' (did you mean 'steps'?)"),
        ([*TRAIN, "--set", "model.hiden=3"], "unknown option(s) ['hiden'] for model"),
        ([*TRAIN, "--set", "steps"], "--set expects KEY=VALUE"),
        ([*TRAIN, "--resume"], "--resume needs --run-dir"),
        (["evaluate", "no/such/run"], "no run directory at 'no/such/run'"),
    ],
)
def test_errors_are_one_red_paragraph_and_exit_2(args, message):
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    assert "error:" in result.stderr and message in _flat(result.stderr)
    assert "Traceback" not in result.output


def test_run_directory_errors(trained, tmp_path):
    run, _ = trained
    result = runner.invoke(app, [*TRAIN, "--steps", "2", "--run-dir", str(run)])
    assert result.exit_code == 2 and "already holds a run" in _flat(result.stderr)
    result = runner.invoke(app, ["evaluate", str(tmp_path)])
    assert result.exit_code == 2 and "no saved model" in _flat(result.stderr)
