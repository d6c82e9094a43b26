"""Scores during training (``eval.every``): columns of ``log/metrics.csv``, the same
weights as without them, the same numbers as scoring the saved model, exact resume."""

from __future__ import annotations

import csv

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from disentkit.data import get_dataset
from disentkit.metrics import evaluate
from disentkit.train import fit, load_model
from disentkit.train.evaluate_run import EvaluationSet, extract_representations
from tests.train import TINY, tiny_config

EVERY = {"every": 6, "every_n_samples": 120, "every_metrics": ["mig", "dci"],
         "options": {"mig": {"n_bins": 7}, "infomec": {"n_neighbors": 5}}}


pytestmark = pytest.mark.usefixtures("tiny_model")


def _config(**eval_fields):
    base = tiny_config(steps=12, log_every=4, checkpoint_every=4,
                       model_options={"kind": "ae"})
    return {**base, "eval": {**base["eval"], **eval_fields}}


def _rows(run):
    with (run / "log" / "metrics.csv").open() as fh:
        return list(csv.DictReader(fh))


@pytest.fixture(scope="module")
def scored_run(tmp_path_factory):
    return fit(_config(**EVERY), run_dir=tmp_path_factory.mktemp("s") / "run", progress=False)


def test_scores_are_logged_every_n_steps_beside_or_apart_from_losses(scored_run):
    rows = _rows(scored_run)
    assert [int(r["step"]) for r in rows] == [4, 6, 8, 12]
    columns = [c for c in rows[0] if c.startswith("eval/")]
    assert columns == ["eval/mean/mig", "eval/mean/dci.disentanglement",
                       "eval/mean/dci.completeness", "eval/mean/dci.informativeness_train",
                       "eval/mean/dci.informativeness_test"]
    by_step = {int(r["step"]): r for r in rows}
    assert by_step[6]["loss"] == "" and by_step[6]["eval/mean/mig"] != ""  # a row of its own
    assert by_step[12]["loss"] != "" and by_step[12]["eval/mean/mig"] != ""  # merged
    assert all(by_step[s]["eval/mean/mig"] == "" for s in (4, 8))  # not at step 0 or off-N
    assert all(0 <= float(by_step[s][c]) <= 1 for s in (6, 12) for c in columns)


def test_a_quantized_model_is_scored_on_its_quantized_representation(tmp_path):
    config = _config(every=2, every_n_samples=100, every_metrics=["mig"])
    run = fit({**config, "steps": 4, "model_options": {"kind": "quantized"}},
              run_dir=tmp_path / "q", progress=False)
    rows = _rows(run)
    assert [c for c in rows[0] if c.startswith("eval/")] == ["eval/quantized/mig"]
    assert [int(r["step"]) for r in rows if r["eval/quantized/mig"]] == [2, 4]


def test_scores_reach_every_configured_logger(tmp_path, monkeypatch):
    import disentkit.train._loop as loop

    calls = []

    class Recorder:
        name = "recorder"

        def log_metrics(self, values, step):
            calls.append((step, dict(values)))

        def finish(self, status="success"):
            pass

    monkeypatch.setattr(loop, "open_trackers", lambda cfg, run_dir, start_step: [Recorder()])
    fit({**_config(every=3, every_n_samples=100, every_metrics=["mig"]), "steps": 6},
        run_dir=tmp_path / "l", progress=False)
    scored = {step: v["eval/mean/mig"] for step, v in calls if "eval/mean/mig" in v}
    assert sorted(scored) == [3, 6]  # a call of its own at 3, with the losses at 6
    assert [step for step, v in calls if "loss" in v] == [4, 6]
    rows = {int(r["step"]): r for r in _rows(tmp_path / "l")}
    assert all(float(rows[s]["eval/mean/mig"]) == scored[s] for s in (3, 6))


def test_scores_match_scoring_the_saved_model(scored_run):
    """The step-12 scores are those of the final weights on the documented set: the same
    sampled factors, encoder, metric mode, seed and options."""
    model = load_model(scored_run)
    dataset = get_dataset("xyobject_tiny")
    eval_set = EvaluationSet.sample(dataset, 120, 0)
    latents = extract_representations(model, eval_set, ["mean"])["mean"]
    ev = evaluate(latents, eval_set.factors, metrics=["mig", "dci"], mode="fast", seed=0,
                  options={"mig": {"n_bins": 7}})
    last = _rows(scored_run)[-1]
    for row in ev.rows():
        assert float(last[f"eval/mean/{row.key}"]) == pytest.approx(row.value, abs=1e-12)


def test_scoring_leaves_the_training_stream_alone(scored_run, tmp_path):
    # the tiny VAE draws from torch's RNG each step: scoring must not shift it
    plain = fit({**_config(), "model_options": {"kind": "vae"}}, run_dir=tmp_path / "plain",
                progress=False)
    scored = fit({**_config(**EVERY), "model_options": {"kind": "vae"}},
                 run_dir=tmp_path / "scored", progress=False)
    a, b = load_file(plain / "model.safetensors"), load_file(scored / "model.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert any(c.startswith("eval/mean/") for c in _rows(scored)[0])
    assert not any(c.startswith("eval/") for c in _rows(plain)[0])


def test_resume_scores_the_dropped_steps_again(scored_run, tmp_path):
    run = fit({**_config(**EVERY), "steps": 8}, run_dir=tmp_path / "r", progress=False)
    # a run killed after logging step 10 but before its step-12 checkpoint: the rows after
    # the checkpoint (step 8) are dropped on resume and logged again
    with (run / "log" / "metrics.csv").open("a") as fh:
        fh.write("10,1.0,1.0,1.0,0.5,0.5,0.5,0.5,0.5\n")
    fit(_config(**EVERY), run_dir=run, resume=True, progress=False)
    got, want = _rows(run), _rows(scored_run)
    assert [r["step"] for r in got] == [r["step"] for r in want]
    for g, w in zip(got, want, strict=True):
        assert {k: v for k, v in g.items() if k.startswith("eval/")} == {
            k: v for k, v in w.items() if k.startswith("eval/")}


@pytest.mark.parametrize(
    ("fields", "error", "match"),
    [
        ({"every": 2, "every_metrics": ["beta_vae"]}, ValueError, "score an array of latents"),
        ({"every": 2, "every_metrics": ["migg"]}, KeyError, "known metrics"),
        ({"every": 2, "every_n_samples": 1}, ValueError, "every_n_samples' must be an integer"),
        ({"every": -1}, ValueError, r"'eval.every' must be an integer ≥ 0"),
        ({"every": 2, "options": {"nope": {}}}, KeyError, "known metrics"),
    ],
)
def test_bad_settings_fail_before_training(tmp_path, fields, error, match):
    with pytest.raises(error, match=match):
        fit(_config(**fields), run_dir=tmp_path / "bad", progress=False)
    assert not (tmp_path / "bad").exists()


def test_cli_writes_score_columns_and_a_progress_line(tmp_path):
    from typer.testing import CliRunner

    from disentkit.cli import app

    run = tmp_path / "cli"
    result = CliRunner().invoke(app, [
        "train", "--model", TINY, "--data", "xyobject_tiny", "--steps", "8", "--run-dir",
        str(run), "--no-evaluate", "--no-report", "--set", "eval.every=4", "--set",
        "eval.every_n_samples=200", "--set", "log_every=4", "--set", "model.kind=ae"])
    assert result.exit_code == 0, result.output
    rows = _rows(run)
    scored = [r for r in rows if r.get("eval/mean/infomec.infom")]
    assert [int(r["step"]) for r in scored] == [4, 8]  # the default suite: InfoMEC, DCI, MIG
    assert {"eval/mean/infomec.infoe", "eval/mean/infomec.infoc",
            "eval/mean/dci.disentanglement", "eval/mean/mig"} <= set(rows[0])
    assert "step 4/8 scores: mean/infomec.infom" in result.output
    assert np.isfinite([float(r["eval/mean/mig"]) for r in scored]).all()


@pytest.mark.slow
def test_the_documented_command_logs_scores_twice(tmp_path):
    """``disentkit train --model ae --data xyobject_tiny --steps 40 --set eval.every=20``
    (the real AE and the default during-training suite and sample size)."""
    from typer.testing import CliRunner

    from disentkit.cli import app

    run = tmp_path / "ae"
    result = CliRunner().invoke(app, [
        "train", "--model", "ae", "--data", "xyobject_tiny", "--steps", "40", "--set",
        "eval.every=20", "--run-dir", str(run), "--no-evaluate", "--no-report"])
    assert result.exit_code == 0, result.output
    scored = [r for r in _rows(run) if r.get("eval/mean/infomec.infom")]
    assert [int(r["step"]) for r in scored] == [20, 40]
    assert all(0 <= float(r[k]) <= 1 for r in scored for k in
               ("eval/mean/infomec.infom", "eval/mean/infomec.infoe",
                "eval/mean/infomec.infoc", "eval/mean/dci.disentanglement", "eval/mean/mig"))
