"""Experiment trackers, read back with each tracker's own reader: TensorBoard event files
(``EventAccumulator``), an MLflow file store (``MlflowClient``) and W&B offline run folders
(the ``.wandb`` records parsed with W&B's protobufs). Each holds the losses, the scores
during training, the final scores with their metric IDs and the figures; a resumed run
continues the same tracker runs because of ``log/trackers.json``."""

from __future__ import annotations

import csv
import json
import shutil
import struct
from pathlib import Path

import pytest
from PIL import Image

from disentkit._validation import DisentkitWarning
from disentkit.rundir import RunDir
from disentkit.train import evaluate_run, fit
from disentkit.train.config import build_config
from disentkit.train.trackers import (
    check_trackers,
    finish_trackers,
    log_run_outputs,
    open_trackers,
    score_values,
)
from tests.train import tiny_config

pytest.importorskip("tensorboard")
pytest.importorskip("mlflow")
pytest.importorskip("wandb")

pytestmark = pytest.mark.usefixtures("tiny_model")

ALL = {"tensorboard": {}, "mlflow": {"experiment": "tests"},
       "wandb": {"project": "tests", "mode": "offline", "tags": ["tiny"]}}


@pytest.fixture(scope="module", autouse=True)
def wandb_offline(tmp_path_factory):
    """W&B never touches the network: offline, silent, its folders in a temporary one."""
    mp = pytest.MonkeyPatch()
    home = tmp_path_factory.mktemp("wandb_home")
    for key, value in {"WANDB_MODE": "offline", "WANDB_SILENT": "true",
                       "WANDB_DIR": home, "WANDB_CONFIG_DIR": home, "WANDB_CACHE_DIR": home,
                       "WANDB_DATA_DIR": home, "WANDB_DISABLE_GIT": "true"}.items():
        mp.setenv(key, str(value))
    mp.delenv("WANDB_API_KEY", raising=False)
    yield
    mp.undo()


def _config(**changes):
    base = tiny_config(steps=8, log_every=2, checkpoint_every=4, loggers=ALL,
                       model_options={"kind": "ae"})
    base["eval"] = {**base["eval"], "every": 4, "every_n_samples": 100,
                    "every_metrics": ["mig"]}
    base.update(changes)
    return base


def _finish(run: Path) -> None:
    """What `disentkit train` does after fit: score, draw a figure, log them."""
    evaluate_run(run, n_samples=100, metrics=["mig"], mode="fast")
    RunDir(run).figures.mkdir(exist_ok=True)
    Image.new("RGB", (12, 8), (200, 10, 10)).save(RunDir(run).figures / "traversals.png")
    assert log_run_outputs(run) == ["tensorboard", "mlflow", "wandb"]


def _csv(run: Path) -> dict[int, dict[str, str]]:
    with RunDir(run).metrics_csv.open() as fh:
        return {int(r["step"]): r for r in csv.DictReader(fh)}


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    run = fit(_config(), run_dir=tmp_path_factory.mktemp("t") / "run", progress=False)
    _finish(run)
    return run


# --------------------------------------------------------------------------- readers


def _tensorboard(folder: Path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(folder), size_guidance={"scalars": 0, "images": 0,
                                                        "tensors": 0})
    acc.Reload()
    return acc


def _mlflow(run: Path):
    from mlflow import MlflowClient

    ids = json.loads(RunDir(run).trackers.read_text())["mlflow"]
    return MlflowClient(tracking_uri=ids["tracking_uri"]), ids["run_id"]


_BLOCK = 32 * 1024


def _wandb_records(path: Path):
    """The protobuf records of a ``.wandb`` file (W&B's LevelDB-style log: a 7-byte file
    header, then 32 KiB blocks of records with a 7-byte header each: CRC, length, type
    full/first/middle/last)."""
    from wandb.proto import wandb_internal_pb2

    data = path.read_bytes()
    assert data[:4] == b":W&B"
    pos, pending = 7, b""
    while pos + 7 <= len(data):
        left = _BLOCK - pos % _BLOCK
        if left < 7:  # block trailer
            pos += left
            continue
        _crc, length, kind = struct.unpack("<IHB", data[pos:pos + 7])
        pos += 7
        chunk, pos = data[pos:pos + length], pos + length
        if kind in (1, 2):
            pending = chunk
        else:
            pending += chunk
        if kind in (1, 4):
            record = wandb_internal_pb2.Record()
            record.ParseFromString(pending)
            yield record


def _wandb_runs(run: Path) -> list[dict]:
    """Per offline run folder (in start order): the run id, history rows and summary."""
    out = []
    for folder in sorted((RunDir(run).log / "wandb").glob("offline-run-*")):
        (file,) = folder.glob("run-*.wandb")
        entry = {"folder": folder, "id": None, "history": [], "summary": {}, "config": {}}
        for record in _wandb_records(file):
            kind = record.WhichOneof("record_type")
            if kind == "run":
                entry["id"] = record.run.run_id
                entry["tags"] = list(record.run.tags)
            elif kind == "config":
                entry["config"].update({i.key: json.loads(i.value_json)
                                        for i in record.config.update})
            elif kind == "history":
                entry["history"].append({"/".join(i.nested_key) or i.key: json.loads(i.value_json)
                                         for i in record.history.item})
            elif kind == "summary":
                entry["summary"].update({"/".join(i.nested_key) or i.key:
                                         json.loads(i.value_json) for i in record.summary.update})
        out.append(entry)
    return out


# --------------------------------------------------------------------------- what reaches them


def test_tensorboard_holds_losses_scores_and_a_figure(finished):
    acc = _tensorboard(RunDir(finished).tensorboard)
    rows = _csv(finished)
    tags = acc.Tags()
    loss = [(e.step, e.value) for e in acc.Scalars("loss")]
    assert loss == [(s, pytest.approx(float(rows[s]["loss"]), rel=1e-6)) for s in (2, 4, 6, 8)]
    assert [e.step for e in acc.Scalars("eval/mean/mig")] == [4, 8]
    final = json.loads(RunDir(finished).metrics.read_text())
    mig = final["representations"]["mean"]["scores"]["mig"]
    assert [(e.step, e.value) for e in acc.Scalars("scores/mean/mig")] == [
        (8, pytest.approx(mig, rel=1e-6))]
    assert "scores/reconstruction/bce_per_image" in tags["scalars"]
    (image,) = acc.Images("figures/traversals")
    assert (image.step, image.width, image.height) == (8, 12, 8)
    texts = {t: acc.Tensors(t)[-1].tensor_proto.string_val[0].decode() for t in tags["tensors"]}
    assert "scores/mean/mig.metric_id" in texts["metric_ids/text_summary"]
    assert "mig/hist20@1" in texts["metric_ids/text_summary"]
    assert '"steps": 8' in texts["config/text_summary"]


def test_mlflow_file_store_holds_losses_scores_ids_and_a_figure(finished):
    client, run_id = _mlflow(finished)
    rows = _csv(finished)
    history = client.get_metric_history(run_id, "loss")
    assert [(m.step, m.value) for m in history] == [
        (s, pytest.approx(float(rows[s]["loss"]), rel=1e-12)) for s in (2, 4, 6, 8)]
    assert [m.step for m in client.get_metric_history(run_id, "eval/mean/mig")] == [4, 8]
    run = client.get_run(run_id)
    assert run.info.status == "FINISHED" and run.info.run_name == "run"
    assert run.data.tags["scores/mean/mig.metric_id"] == "mig/hist20@1"
    assert run.data.metrics["scores/mean/mig"] == pytest.approx(
        json.loads(RunDir(finished).metrics.read_text())["representations"]["mean"]["scores"]
        ["mig"])
    assert run.data.params["steps"] == "8" and run.data.params["model_options.kind"] == "ae"
    assert client.get_experiment(run.info.experiment_id).name == "tests"
    assert [a.path for a in client.list_artifacts(run_id, "figures")] == [
        "figures/traversals.png"]


def test_wandb_offline_run_holds_losses_scores_ids_and_a_figure(finished):
    training, outputs = _wandb_runs(finished)  # fit's run, then log_run_outputs' reopening
    ids = json.loads(RunDir(finished).trackers.read_text())["wandb"]
    assert training["id"] == outputs["id"] == ids["id"]
    assert ids["project"] == "tests" and training["tags"] == ["tiny"]
    assert training["config"]["steps"] == 8 and training["config"]["model_options"]["kind"] == "ae"
    rows = _csv(finished)
    losses = [(h["_step"], h["loss"]) for h in training["history"] if "loss" in h]
    assert losses == [(s, pytest.approx(float(rows[s]["loss"]), rel=1e-12)) for s in (2, 4, 6, 8)]
    assert [h["_step"] for h in training["history"] if "eval/mean/mig" in h] == [4, 8]
    assert outputs["summary"]["scores/mean/mig.metric_id"] == "mig/hist20@1"
    assert 0 <= outputs["summary"]["scores/mean/mig"] <= 1
    (figure,) = [h for h in outputs["history"] if "figures/traversals/path" in h]
    assert figure["_step"] == 8 and figure["figures/traversals/_type"] == "image-file"
    assert (outputs["folder"] / "files" / figure["figures/traversals/path"]).is_file()


def test_score_keys_carry_their_metric_ids(finished):
    values = score_values(json.loads(RunDir(finished).metrics.read_text()))
    assert values["scores/mean/mig.metric_id"] == "mig/hist20@1"
    assert isinstance(values["scores/mean/mig"], float)
    assert all(isinstance(v, float) for k, v in values.items() if not k.endswith("metric_id"))


def test_a_run_without_trackers_logs_nowhere(tmp_path):
    run = fit(tiny_config(steps=2), run_dir=tmp_path / "plain", progress=False)
    assert log_run_outputs(run) == []
    assert not RunDir(run).trackers.exists() and sorted(p.name for p in RunDir(run).log.iterdir()
                                                        ) == ["metrics.csv"]


# --------------------------------------------------------------------------- resume


def test_a_resumed_run_continues_its_tracker_runs(tmp_path):
    run = fit(_config(steps=6), run_dir=tmp_path / "r", progress=False)
    # the process is killed after logging step 6, before its step-8 checkpoint: the
    # checkpoint on disk is step 4's, the trackers hold steps 2, 4 and 6
    ckpt = RunDir(run).checkpoint
    shutil.move(ckpt.with_name("previous.ckpt"), ckpt)
    before = json.loads(RunDir(run).trackers.read_text())
    fit(_config(), run_dir=run, resume=True, progress=False)
    _finish(run)
    after = json.loads(RunDir(run).trackers.read_text())
    assert after == before  # same TensorBoard folder, MLflow run, W&B id

    acc = _tensorboard(RunDir(run).tensorboard)  # step 6 of the killed process is purged
    assert [e.step for e in acc.Scalars("loss")] == [2, 4, 6, 8]
    client, run_id = _mlflow(run)
    (only,) = client.search_runs([before["mlflow"]["experiment_id"]])
    assert only.info.run_id == run_id and only.info.status == "FINISHED"
    steps = [m.step for m in client.get_metric_history(run_id, "loss")]
    assert sorted(set(steps)) == [2, 4, 6, 8]  # MLflow keeps the killed process's step 6
    assert "scores/mean/mig" in client.get_run(run_id).data.metrics
    first, resumed, outputs = _wandb_runs(run)
    assert first["id"] == resumed["id"] == outputs["id"] == before["wandb"]["id"]
    assert [h["_step"] for h in resumed["history"] if "loss" in h] == [6, 8]

    # the saved ids are what continues them: without the file, new tracker runs start
    RunDir(run).trackers.unlink()
    log_run_outputs(run, figures=False)
    fresh = json.loads(RunDir(run).trackers.read_text())
    assert fresh["mlflow"]["run_id"] != run_id and fresh["wandb"]["id"] != before["wandb"]["id"]
    assert len(client.search_runs([before["mlflow"]["experiment_id"]])) == 2


def test_trackers_pointed_elsewhere_start_new_runs_there(tmp_path):
    run = tmp_path / "run"
    cfg = build_config(_config(loggers={"mlflow": {}}))
    (first,) = open_trackers(cfg, run, start_step=0)
    first.finish()
    moved = build_config(_config(loggers={"mlflow": {"tracking_uri": "elsewhere"}}))
    (second,) = open_trackers(moved, run, start_step=0)
    second.finish()
    assert second.run_id != first.run_id
    assert second.tracking_uri == (run / "elsewhere").resolve().as_uri()
    assert json.loads(RunDir(run).trackers.read_text())["mlflow"]["run_id"] == second.run_id


def test_finishing_marks_the_status_and_never_raises(tmp_path):
    cfg = build_config(_config(loggers={"mlflow": {}}))
    (tracker,) = open_trackers(cfg, tmp_path, start_step=0)
    finish_trackers([tracker], status="failed")
    assert tracker.client.get_run(tracker.run_id).info.status == "FAILED"

    class Broken:
        name = "broken"

        def finish(self, status):
            raise OSError("disk full")

    with pytest.warns(DisentkitWarning, match="could not close the broken run: disk full"):
        finish_trackers([Broken()])


def test_vectorised_members_get_tracker_runs_of_their_own(tmp_path):
    from disentkit.train.vectorized import expand_configs, fit_vectorized

    configs = expand_configs({"model": "beta_vae", "data": "xyobject_tiny", "steps": 4,
                              "batch_size": 4, "accelerator": "cpu", "log_every": 2,
                              "model_options": {"n_latents": 2}, "loggers": ALL}, seeds="0-1")
    paths = fit_vectorized(configs, tmp_path / "members", progress=False)
    ids = [json.loads(RunDir(p).trackers.read_text()) for p in paths]
    assert ids[0]["mlflow"]["run_id"] != ids[1]["mlflow"]["run_id"]
    assert ids[0]["wandb"]["id"] != ids[1]["wandb"]["id"]
    for path in paths:
        rows = _csv(path)
        acc = _tensorboard(RunDir(path).tensorboard)
        assert [(e.step, e.value) for e in acc.Scalars("loss")] == [
            (s, pytest.approx(float(rows[s]["loss"]), rel=1e-6)) for s in (2, 4)]
        client, run_id = _mlflow(path)
        assert client.get_run(run_id).data.params["seed"] == str(
            json.loads(RunDir(path).config.read_text())["seed"])
        (training,) = _wandb_runs(path)
        assert [h["_step"] for h in training["history"] if "loss" in h] == [2, 4]


# --------------------------------------------------------------------------- packages


def test_a_missing_tracker_package_is_a_clear_error_before_training(tmp_path, monkeypatch):
    from disentkit.train import trackers

    monkeypatch.setitem(trackers._PACKAGES, "wandb",
                        ("disentkit_no_such_module", "pip install wandb"))
    with pytest.raises(ValueError, match=r"logger 'wandb' needs .* pip install wandb"):
        fit(_config(), run_dir=tmp_path / "r", progress=False)
    assert not (tmp_path / "r").exists()
    check_trackers(build_config(_config(loggers=["mlflow"])).loggers)  # installed: passes


# --------------------------------------------------------------------------- command line


def test_cli_train_and_evaluate_send_scores_and_figures(tmp_path):
    import yaml
    from typer.testing import CliRunner

    from disentkit.cli import app
    from tests.train import TINY

    runner = CliRunner()
    train = ["train", "--model", TINY, "--data", "xyobject_tiny", "--batch-size", "8",
             "--steps", "2", "--no-progress", "--set", "eval.n_samples=100",
             "--set", "eval.metrics=mig", "--set", "loggers.mlflow.experiment=cli"]
    printed = runner.invoke(app, [*train, "--print-config"])
    assert printed.exit_code == 0, printed.output
    assert yaml.safe_load(printed.stdout)["loggers"]["mlflow"]["experiment"] == "cli"
    (tmp_path / "c.yaml").write_text(printed.stdout)
    run = tmp_path / "run"
    result = runner.invoke(app, ["train", "--config", str(tmp_path / "c.yaml"), "--run-dir",
                                 str(run), "--no-progress"])
    assert result.exit_code == 0, result.output
    assert "logged the scores and figures to mlflow" in result.output
    client, run_id = _mlflow(run)
    logged = client.get_run(run_id)
    assert logged.data.tags["scores/mean/mig.metric_id"] == "mig/hist20@1"
    figures = {Path(a.path).name for a in client.list_artifacts(run_id, "figures")}
    assert figures == {p.name for p in RunDir(run).figures.glob("*.png")} and figures
    again = runner.invoke(app, ["evaluate", str(run), "--no-report", "--metrics", "sap"])
    assert again.exit_code == 0, again.output
    assert "logged the scores to mlflow" in again.output
    assert client.get_run(run_id).data.tags["scores/mean/sap.metric_id"].startswith("sap/")
