"""`disentkit recipes list/show`, `disentkit train --recipe` and `train --seeds`."""

from __future__ import annotations

import json

import torch
import yaml
from safetensors.torch import load_file
from typer.testing import CliRunner

from disentkit.cli import app
from disentkit.recipes import list_recipes

runner = CliRunner()
MODELS = ("qlae", "qlinfowgan_gp", "ae", "vae", "beta_vae", "beta_tcvae", "bioae", "vq_vae",
          "infowgan_gp")
DATASETS = ("shapes3d", "mpi3d_complex", "falcor3d", "isaac3d", "shapes3d_procedural")


def test_list_shows_every_cell_of_the_paper() -> None:
    result = runner.invoke(app, ["recipes", "list", "--json"])
    assert result.exit_code == 0, result.output
    rows = {r["recipe"]: r for r in json.loads(result.output)}
    assert set(rows) == {f"qlae2023/{m}/{d}" for m in MODELS for d in DATASETS}
    assert set(rows) == set(list_recipes())
    table = runner.invoke(app, ["recipes", "list"], terminal_width=200)
    assert table.exit_code == 0 and "qlae2023/qlae/shapes3d" in table.output


def test_show_prints_the_reference_values_as_a_config_train_accepts(tmp_path) -> None:
    result = runner.invoke(app, ["recipes", "show", "qlae2023/qlae/shapes3d"])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("#")  # the citations first
    cfg = yaml.safe_load(result.output)
    m = cfg["model_options"]
    assert (cfg["model"], m["arch"], m["n_latents"], m["n_values"]) == ("qlae", "qlae", 12, 10)
    assert (cfg["batch_size"], cfg["steps"], m["weight_decay"]) == (128, 200_000, 0.1)
    assert cfg["recipe"] == "qlae2023/qlae/shapes3d@1"
    mpi = yaml.safe_load(runner.invoke(app, ["recipes", "show",
                                             "qlae2023/qlae/mpi3d_complex"]).output)
    assert (mpi["model_options"]["n_latents"], mpi["model_options"]["weight_decay"]) == (
        14, 0.001)
    twin = runner.invoke(app, ["recipes", "show", "qlae2023/qlae/shapes3d_procedural"])
    path = tmp_path / "qlae.yaml"
    path.write_text(twin.output)  # the official data is not here; its twin renders locally
    again = runner.invoke(app, ["train", "--config", str(path), "--print-config"])
    assert again.exit_code == 0, again.output
    assert yaml.safe_load(again.output)["model_options"]["weight_decay"] == 0.1


def test_unknown_recipe_names_the_close_one() -> None:
    result = runner.invoke(app, ["recipes", "show", "qlae2023/qlae/shapes3"])
    assert result.exit_code == 2
    assert "did you mean 'qlae2023/qlae/shapes3d'" in " ".join(result.output.split())


def test_train_runs_a_procedural_twin_with_steps_overriding(tmp_path) -> None:
    run = tmp_path / "run"
    result = runner.invoke(app, [
        "train", "--recipe", "qlae2023/beta_vae/shapes3d_procedural", "--steps", "2",
        "--set", "data.image_size=32", "--set", "batch_size=16", "--run-dir", str(run),
        "--no-evaluate", "--no-report", "--no-progress"])
    assert result.exit_code == 0, result.output
    config = json.loads((run / "config.json").read_text())
    assert config["recipe"] == "qlae2023/beta_vae/shapes3d_procedural@1"
    assert (config["steps"], config["batch_size"], config["data"]) == (
        2, 16, "shapes3d_procedural")
    assert config["model_options"]["posterior_scale"] == "softplus"  # the recipe's values
    assert config["eval"]["options"] == {"infomec": {"protocol": "training"}}
    both = runner.invoke(app, ["train", "--recipe", "qlae2023/ae/shapes3d", "--config",
                               str(run / "config.json")])
    assert both.exit_code == 2 and "use one" in both.output


def test_train_seeds_writes_one_ordinary_run_directory_per_member(tmp_path) -> None:
    run = tmp_path / "runs"
    result = runner.invoke(app, [
        "train", "--model", "ae", "--data", "xyobject_tiny", "--seeds", "0-1", "--steps", "3",
        "--batch-size", "8", "--run-dir", str(run), "--set", "eval.n_samples=200",
        "--set", "eval.mode=fast", "--set", "eval.metrics=[mig]", "--no-report",
        "--no-progress"])
    assert result.exit_code == 0, result.output
    assert "note: on a CPU, vectorised members train at the speed of" in " ".join(
        result.output.split())
    for seed in (0, 1):
        member = run / f"seed{seed}"
        assert json.loads((member / "config.json").read_text())["seed"] == seed
        assert (member / "model.safetensors").is_file() and (member / "metrics.json").is_file()
    threaded = runner.invoke(app, [
        "train", "--model", "ae", "--data", "xyobject_tiny", "--seeds", "0-1", "--steps", "3",
        "--batch-size", "8", "--run-dir", str(tmp_path / "threads"), "--vectorize", "threads",
        "--no-evaluate", "--no-report", "--no-progress"])
    assert threaded.exit_code == 0, threaded.output
    assert "note: on a CPU" not in threaded.output  # members side by side, not in turn
    for seed in (0, 1):  # the same runs up to float rounding
        ours = load_file(tmp_path / "threads" / f"seed{seed}" / "model.safetensors")
        theirs = load_file(run / f"seed{seed}" / "model.safetensors")
        assert all(torch.allclose(ours[k], theirs[k], atol=1e-5) for k in theirs)
    for flags, message in ((["--seeds", "0-1", "--vectorize", "fast"], "--vectorize must be "
                            "one of auto, vmap, loop, threads; received 'fast'"),
                           (["--vectorize", "loop"], "--vectorize loop needs members")):
        bad = runner.invoke(app, ["train", "--model", "ae", "--data", "xyobject_tiny",
                                  "--steps", "2", "--run-dir", str(tmp_path / "bad"), *flags])
        assert bad.exit_code == 2 and message in " ".join(bad.output.split()), bad.output
        assert not (tmp_path / "bad").exists()
    refused = runner.invoke(app, ["train", "--model", "vq_vae", "--data", "xyobject_tiny",
                                  "--seeds", "0-1", "--steps", "2", "--run-dir",
                                  str(tmp_path / "vq"), "--no-progress"])
    assert refused.exit_code == 2 and "vq_vae" in refused.output
