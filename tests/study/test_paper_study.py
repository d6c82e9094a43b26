"""End to end: a tiny study cut down with ``--set``, then ``study report`` writes the
paper-style table as CSV, Markdown and in its HTML page."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import yaml
from PIL import Image
from typer.testing import CliRunner

from disentkit.cli import app
from disentkit.study.results import run_dir
from disentkit.study.tables import FACTOR_COLUMNS, PAIRED_COLUMNS, PAPER_COLUMNS


def test_study_run_with_set_then_report_writes_the_paper_table(tmp_path):
    spec = {
        "name": "paper_tiny",
        "datasets": ["xyobject_tiny"],
        "models": ["ae", "beta_vae"],
        "seeds": 2,
        "train": {"steps": 1000, "batch_size": 8, "checkpoint_every": 1000,
                  "log_every": 2, "accelerator": "cpu", "model.n_latents": 3},
        "eval": {"n_samples": 5000, "mode": "fast", "metrics": ["infomec", "dci", "mig"]},
        "resources": {"max_retries": 0},
    }
    spec_file = tmp_path / "spec.yaml"
    spec_file.write_text(yaml.safe_dump(spec))
    out = tmp_path / "study"
    runner = CliRunner()
    result = runner.invoke(app, ["study", "run", str(spec_file), "--out", str(out),
                                 "--executor", "local", "--no-report",
                                 "--set", "train.steps=4", "--set", "eval.n_samples=200"])
    assert result.exit_code == 0, result.output
    assert "4 done, 0 failed, 0 pending" in result.output
    for num in range(4):
        config = json.loads((run_dir(out, num) / "config.json").read_text())
        assert config["steps"] == 4 and config["eval"]["n_samples"] == 200

    for num in range(4):  # stand-in traversals: the report then draws none (saves time)
        (run_dir(out, num) / "figures").mkdir(exist_ok=True)
        Image.new("RGB", (4, 4)).save(run_dir(out, num) / "figures" / "traversals.png")
    result = runner.invoke(app, ["study", "report", str(out), "--reference", "beta_vae"])
    assert result.exit_code == 0, result.output
    assert (out / "results.csv").is_file()
    table = pd.read_csv(out / "paper_table.csv")
    assert list(table.columns) == list(PAPER_COLUMNS)
    assert table["model"].unique().tolist() == ["ae", "beta_vae"]
    assert table["metric"].unique().tolist()[:4] == [
        "infomec.infom", "infomec.infoe", "infomec.infoc", "dci.disentanglement"]
    assert "mig" in set(table["metric"]) and (table["n"] == 2).all()
    assert (table["ci_low"] <= table["mean"]).all() and (table["mean"] <= table["ci_high"]).all()
    assert table.groupby("metric")["best"].any().all()  # a best cell per column
    paired = pd.read_csv(out / "paired_vs_beta_vae.csv")
    assert list(paired.columns) == list(PAIRED_COLUMNS)
    assert set(paired["model"]) == {"ae"} and set(paired["method"]) == {"paired"}
    markdown = (out / "paper_table.md").read_text()
    assert "| model | n | InfoM | InfoE | InfoC |" in markdown
    # per factor: the per-factor values of every run's metrics.json, by factor name
    results = pd.read_csv(out / "results.csv")
    assert [c for c in results.columns if c.startswith("factor.mig.")] == [
        "factor.mig.x", "factor.mig.y", "factor.mig.scale", "factor.mig.colour"]
    for num in range(4):
        record = json.loads((run_dir(out, num) / "metrics.json").read_text())
        kind = next(iter(record["representations"]))
        entry = record["representations"][kind]["metrics"]["infomec"]["per_factor"]["infoe"]
        assert results.loc[num, "factor.infomec.infoe.colour"] == pytest.approx(
            entry["values"][entry["factors"].index(3)])
    factors = pd.read_csv(out / "factor_table.csv")
    assert list(factors.columns) == list(FACTOR_COLUMNS)
    assert factors["factor"].unique().tolist() == ["x", "y", "scale", "colour"]
    assert {"infomec.infoe", "mig"} <= set(factors["metric"]) and (factors["n"] == 2).all()
    assert "### MIG per factor" in markdown and "| model | n | x | y | scale | colour |" in markdown
    page = (out / "report.html").read_text()
    head = page.index("Mean ± 95 % interval over seeds")
    assert head < page.index("<h2>Runs</h2>")  # near the top
    assert "<table class=\"paper\">" in page and "Difference to beta_vae" in page
    assert "paper_table.csv" in page and "paired by seed" in page
    assert "<summary>Per factor</summary>" in page and "factor_table.csv" in page


@pytest.mark.slow
def test_the_shipped_mini_study_cut_down_runs_and_reports(tmp_path):
    """`study run examples/studies/qlae2023_mini.yaml --executor local --set
    train.steps=20 --set eval.n_samples=1000`, then `study report`: the issue's check."""
    root = Path(__file__).resolve().parents[2]
    out = tmp_path / "mini"
    run = CliRunner().invoke(app, [
        "study", "run", str(root / "examples" / "studies" / "qlae2023_mini.yaml"),
        "--out", str(out), "--executor", "local", "--set", "train.steps=20",
        "--set", "eval.n_samples=1000", "--no-report"])
    assert run.exit_code == 0, run.output
    frame = pd.read_parquet(out / "results.parquet")
    assert len(frame) == 15 and set(frame["status"]) == {"done"}
    assert set(frame["model"]) == {"qlae", "ae", "beta_vae", "beta_tcvae", "bioae"}
    report = CliRunner().invoke(app, ["study", "report", str(out)])
    assert report.exit_code == 0, report.output
    table = pd.read_csv(out / "paper_table.csv")
    assert set(table["model"]) == set(frame["model"]) and set(table["n"]) == {3}
    page = (out / "report.html").read_text()
    assert 'id="paper-table"' in page and "qlae" in page
