"""Running studies: the local executor, retries, "never redo a finished run", the results
table rebuilt from run directories, and the CLI. Ray itself is tested in test_ray.py."""

from __future__ import annotations

import json
import math
import shutil

import pandas as pd
import pytest
from typer.testing import CliRunner

from disentkit.cli import app
from disentkit.study import collect, read_results, run_study, write_results
from disentkit.study.results import IDENTITY_COLUMNS, read_attempts, run_dir


def _spec(**changes):
    base = {
        "name": "tiny",
        "datasets": ["xyobject_tiny"],
        "models": ["ae", {"name": "beta_vae", "grid": {"model.beta": [2.0]}}],
        "seeds": 1,
        "train": {"steps": 6, "batch_size": 8, "checkpoint_every": 3, "log_every": 3,
                  "accelerator": "cpu", "model.n_latents": 3},
        "eval": {"n_samples": 200, "mode": "fast", "metrics": ["mig", "sap"]},
        "resources": {"max_retries": 1},
    }
    base.update(changes)
    return base


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """A two-run study finished with the local executor."""
    out = tmp_path_factory.mktemp("study") / "tiny"
    outcome = run_study(_spec(), out, executor="local", progress=False)
    return out, outcome


def test_local_study_finishes_and_writes_the_table(finished):
    out, outcome = finished
    assert outcome.ran == (0, 1) and outcome.skipped == ()
    frame = outcome.results
    assert list(frame.columns[: len(IDENTITY_COLUMNS)]) == list(IDENTITY_COLUMNS)
    assert list(frame["status"]) == ["done", "done"]
    assert list(frame["model"]) == ["ae", "beta_vae"]
    assert math.isnan(frame.loc[0, "hp.model.beta"]) and frame.loc[1, "hp.model.beta"] == 2.0
    for column in ("score.mig", "score.sap", "recon.bce_per_pixel", "train_seconds"):
        assert frame[column].notna().all(), column
    assert frame.loc[0, "metric_id.mig"].startswith("mig/")
    config = json.loads(frame.loc[1, "config"])
    assert config["model"] == "beta_vae" and config["model_options"]["beta"] == 2.0
    saved = json.loads((run_dir(out, 1) / "config.json").read_text())  # defaults written out
    assert {k: v for k, v in config.items() if k != "model_options"} == {
        k: v for k, v in saved.items() if k != "model_options"}
    assert config["model_options"].items() <= saved["model_options"].items()
    # the table's scores are metrics.json's
    metrics = json.loads((run_dir(out, 0) / "metrics.json").read_text())
    kind = next(iter(metrics["representations"]))
    assert frame.loc[0, "representation"] == kind
    assert frame.loc[0, "score.mig"] == metrics["representations"][kind]["scores"]["mig"]
    on_disk = read_results(out)
    assert list(on_disk["model_num"]) == [0, 1]
    assert pd.read_csv(out / "results.csv")["score.mig"].tolist() == pytest.approx(
        frame["score.mig"].tolist())


def test_rerunning_a_finished_study_starts_nothing(finished):
    out, _ = finished
    before = {n: (run_dir(out, n) / "model.safetensors").stat().st_mtime_ns for n in (0, 1)}
    again = run_study(_spec(), out, executor="local", progress=False)
    assert again.ran == () and again.skipped == (0, 1)
    assert [len(read_attempts(run_dir(out, n))) for n in (0, 1)] == [1, 1]
    after = {n: (run_dir(out, n) / "model.safetensors").stat().st_mtime_ns for n in (0, 1)}
    assert before == after


def test_the_table_is_rebuilt_from_run_directories(finished, tmp_path):
    out, outcome = finished
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    for name in ("results.parquet", "results.csv"):
        (copy / name).unlink()
    with pytest.raises(FileNotFoundError, match="disentkit study collect"):
        read_results(copy)
    frame = collect(copy)
    write_results(copy, frame)
    pd.testing.assert_frame_equal(frame, outcome.results)
    pd.testing.assert_frame_equal(read_results(copy), read_results(out))


def test_a_different_spec_in_the_same_directory_is_refused(finished):
    out, _ = finished
    with pytest.raises(ValueError, match=r"different spec.*differs in: seeds"):
        run_study(_spec(seeds=2), out, executor="local", progress=False)


def test_model_num_runs_only_those(tmp_path):
    outcome = run_study(_spec(seeds=2), tmp_path / "s", model_nums="2-3", executor="local",
                        progress=False)
    assert outcome.ran == (2, 3)
    assert list(outcome.results["status"]) == ["pending", "pending", "done", "done"]
    assert outcome.count("done") == 2


def test_a_study_run_logs_its_scores_to_its_trackers(tmp_path):
    pytest.importorskip("mlflow")
    from mlflow import MlflowClient

    spec = _spec()
    spec["train"] = {**spec["train"], "loggers": {"mlflow": {"experiment": "study"}}}
    run_study(spec, tmp_path / "s", model_nums="0", executor="local", progress=False)
    ids = json.loads((run_dir(tmp_path / "s", 0) / "log" / "trackers.json").read_text())
    logged = MlflowClient(ids["mlflow"]["tracking_uri"]).get_run(ids["mlflow"]["run_id"])
    assert logged.data.tags["scores/mean/mig.metric_id"].startswith("mig/")
    assert "loss" in logged.data.metrics and "scores/mean/sap" in logged.data.metrics


def test_a_failing_run_is_retried_then_recorded_as_failed(tmp_path, monkeypatch):
    import disentkit.train

    calls = []

    def broken_fit(*args, **kwargs):
        calls.append(1)
        raise RuntimeError("simulated out-of-memory")

    monkeypatch.setattr(disentkit.train, "fit", broken_fit)
    outcome = run_study(_spec(models=["ae"]), tmp_path / "s", executor="local", max_retries=2,
                        progress=False)
    row = outcome.results.iloc[0]
    assert row["status"] == "failed" and len(calls) == 3
    assert row["error"] == "RuntimeError: simulated out-of-memory"
    assert row["attempts"] == 3
    failed = json.loads((run_dir(tmp_path / "s", 0) / "failed.json").read_text())
    assert failed["attempt"] == 3 and failed["stage"] == "training"
    # the next call retries it, and success clears the failure record
    monkeypatch.undo()
    again = run_study(_spec(models=["ae"]), tmp_path / "s", executor="local", progress=False)
    assert again.ran == (0,) and again.results.iloc[0]["status"] == "done"
    assert not (run_dir(tmp_path / "s", 0) / "failed.json").exists()


def test_a_bad_dataset_option_fails_before_any_run_starts(tmp_path):
    spec = _spec(datasets=[{"name": "xyobject_tiny", "options": {"no_such_option": 1}}],
                 models=["ae"], seeds=7)
    with pytest.raises(ValueError, match=r"xyobject_tiny.*cannot be built \(runs \[0, 1, 2, 3, "
                                         r"4\] \.\.\.\).*no_such_option"):
        run_study(spec, tmp_path / "s", executor="local", progress=False)
    assert not (tmp_path / "s").exists()


def test_a_killed_run_resumes_from_its_checkpoint(tmp_path):
    """An interrupted run (no study_run.json) continues from last.ckpt on the next call."""
    from disentkit.study import train_run

    out = tmp_path / "s"
    spec = _spec(models=["ae"])
    run_study(spec, out, executor="local", progress=False)
    path = run_dir(out, 0)
    # make it look killed at step 3: the step-3 checkpoint, no completion record
    from disentkit.train import fit
    from disentkit.train.config import RunConfig

    redo = tmp_path / "redo"
    cfg = RunConfig.from_dict(json.loads((path / "config.json").read_text()))
    fit(cfg.replace(steps=3), run_dir=redo, progress=False)
    shutil.copy(redo / "checkpoints" / "last.ckpt", path / "checkpoints" / "last.ckpt")
    (path / "study_run.json").unlink()
    summary = train_run(out, 0)
    attempts = read_attempts(path)
    assert [a["start_step"] for a in attempts] == [0, 3]
    assert summary["attempts"] == 2


def test_cli_list_count_and_json(tmp_path):
    import yaml

    spec_file = tmp_path / "s.yaml"
    spec_file.write_text(yaml.safe_dump(_spec(seeds=3)))
    runner = CliRunner()
    result = runner.invoke(app, ["study", "list", str(spec_file), "--count"])
    assert result.exit_code == 0, result.output
    assert result.output.strip() == "6"
    result = runner.invoke(app, ["study", "list", str(spec_file), "--model-num", "4", "--json"])
    assert result.exit_code == 0, result.output
    (run,) = json.loads(result.output)
    assert run["model_num"] == 4 and run["model"] == "beta_vae" and run["seed"] == 1
    result = runner.invoke(app, ["study", "list", str(spec_file)])
    assert result.exit_code == 0 and "run-00005" in result.output


def test_cli_errors_are_one_paragraph(tmp_path):
    runner = CliRunner()
    result = runner.invoke(app, ["study", "list", str(tmp_path / "nope.yaml")])
    assert result.exit_code == 2
    assert "no study spec at" in result.output and "Traceback" not in result.output
    result = runner.invoke(app, ["study", "collect", str(tmp_path)])
    assert result.exit_code == 2 and "not a study directory" in result.output


def test_cli_run_local_and_collect(tmp_path):
    import yaml

    spec_file = tmp_path / "s.yaml"
    spec_file.write_text(yaml.safe_dump(_spec(models=["ae"])))
    out = tmp_path / "study"
    runner = CliRunner()
    result = runner.invoke(app, ["study", "run", str(spec_file), "--out", str(out),
                                 "--executor", "local", "--no-report"])
    assert result.exit_code == 0, result.output
    assert "1 done, 0 failed, 0 pending of 1 selected runs" in result.output
    assert (out / "results.parquet").is_file()
    result = runner.invoke(app, ["study", "collect", str(out)])
    assert result.exit_code == 0, result.output
    assert "1 done, 0 failed, 0 pending" in result.output


def test_a_study_directory_has_one_driver_and_job_arrays_share_it(finished):
    from disentkit._lock import DirectoryInUseError, hold_directory

    out, _ = finished
    with hold_directory(out, what="study directory"):  # a live driver elsewhere
        with pytest.raises(DirectoryInUseError, match=r"study directory .* is in use by pid"):
            run_study(_spec(), out, executor="local", progress=False)
    with hold_directory(out, shared=True):  # another process of a job array
        outcome = run_study(_spec(), out, model_nums="0", executor="local", progress=False)
    assert outcome.skipped == (0,)  # done already, never redone
