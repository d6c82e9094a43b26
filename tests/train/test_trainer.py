"""The trainer: a run lowers its loss, resumes exactly after ``kill -9``, honours parameter
groups and extra steps; evaluation writes metrics.json."""

from __future__ import annotations

import csv
import dataclasses
import json
import math
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from disentkit import DisentkitWarning
from disentkit.models import MODELS, build_model
from disentkit.train import RunConfig, evaluate_run, fit, load_model
from disentkit.train._loop import build_optimizer, clip_gradients
from disentkit.train.checkpoint import load_checkpoint
from disentkit.train.trainer import resolve_config
from tests.train import TINY, tiny_config

pytestmark = pytest.mark.usefixtures("tiny_model")


@pytest.fixture(scope="module")
def vae_run(tmp_path_factory):
    run = tmp_path_factory.mktemp("vae") / "run"
    return fit(tiny_config(steps=40, log_every=5, checkpoint_every=15,
                           model_options={"critic": True}), run_dir=run, progress=False)


def _rows(run):
    with (run / "log" / "metrics.csv").open() as fh:
        return list(csv.DictReader(fh))


def _same_weights(a: Path, b: Path) -> bool:
    ta, tb = load_file(a / "model.safetensors"), load_file(b / "model.safetensors")
    return ta.keys() == tb.keys() and all(torch.equal(ta[k], tb[k]) for k in ta)


def test_a_tiny_run_lowers_its_loss_and_writes_the_run_directory(vae_run):
    names = {p.relative_to(vae_run).as_posix() for p in vae_run.rglob("*") if p.is_file()}
    assert names == {"config.json", "checkpoints/last.ckpt", "checkpoints/previous.ckpt",
                     "log/metrics.csv", "model.safetensors", "model.json", ".lock"}
    rows = _rows(vae_run)
    assert [int(r["step"]) for r in rows] == list(range(5, 41, 5))
    first, last = float(rows[0]["loss"]), float(rows[-1]["loss"])
    assert last < 0.95 * first, (first, last)
    assert {"recon", "kl", "critic/loss", "critic/score", "steps_per_second"} <= set(rows[0])

    config = json.loads((vae_run / "config.json").read_text())
    # every default written out, the image shape filled in from the data set
    assert config["model_options"] == {
        "image_shape": [3, 32, 32], "n_latents": 4, "hidden": 32, "kind": "vae",
        "critic": True, "weight_decay": 0.01, "clip_value": 1.0, "lr": 3e-3}
    assert config["optimizer"]["clip_value"] is None and config["loggers"] == {
        "tensorboard": None, "mlflow": None, "wandb": None}
    info = json.loads((vae_run / "model.json").read_text())
    assert (info["model"], info["data"], info["step"]) == (TINY, "xyobject_tiny", 40)

    state = load_checkpoint(vae_run / "checkpoints" / "last.ckpt")
    assert state["step"] == 40 and set(state["optimizers"]) == {"main", "critic"}
    # the critic (every=2) stepped at t = 0, 2, ..., 38
    assert int(state["optimizers"]["critic"]["state"][0]["step"]) == 20
    assert int(state["optimizers"]["main"]["state"][0]["step"]) == 40
    assert state["rng"]["torch"].dtype == torch.uint8


def test_resume_extends_a_finished_run_exactly(tmp_path, vae_run):
    base = tiny_config(steps=40, log_every=5, checkpoint_every=15,
                       model_options={"critic": True})
    short = fit({**base, "steps": 20}, run_dir=tmp_path / "short", progress=False)
    fit(base, run_dir=short, resume=True, progress=False)
    assert _same_weights(short, vae_run)
    assert json.loads((short / "config.json").read_text())["steps"] == 40


def test_run_directory_rules(tmp_path, vae_run):
    with pytest.raises(ValueError, match="already holds a run; continue it with --resume"):
        fit(tiny_config(steps=40), run_dir=vae_run, progress=False)
    with pytest.raises(ValueError, match=r"cannot resume .*seed: 3 → 4.*only accelerator, "
                       r"checkpoint_every"):
        fit(tiny_config(steps=40, seed=4, model_options={"critic": True}), run_dir=vae_run,
            resume=True, progress=False)
    with pytest.raises(ValueError, match=r"model_options.hidden: 32 → 8"):
        fit(tiny_config(steps=40, model_options={"critic": True, "hidden": 8}),
            run_dir=vae_run, resume=True, progress=False)
    (tmp_path / "orphan" / "checkpoints").mkdir(parents=True)
    (tmp_path / "orphan" / "checkpoints" / "last.ckpt").write_bytes(b"x")
    with pytest.raises(ValueError, match=r"holds a checkpoint but no config\.json"):
        fit(tiny_config(), run_dir=tmp_path / "orphan", resume=True, progress=False)
    with pytest.raises(ValueError, match="needs the run directory"):
        fit(tiny_config(), resume=True, progress=False)
    with pytest.raises(ValueError, match="does not match dataset 'xyobject_tiny'"):
        resolve_config(RunConfig.from_dict(tiny_config(model_options={"image_shape": [1, 8, 8]})))


def test_resume_starts_a_run_where_there_is_none(tmp_path):
    run = fit(tiny_config(steps=2), run_dir=tmp_path / "new", resume=True, progress=False)
    assert (run / "model.safetensors").is_file()


def test_default_run_directory_is_named_after_the_run(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    a = fit(tiny_config(steps=2), progress=False)
    b = fit(tiny_config(steps=2), progress=False)
    assert a == Path("runs") / f"{TINY}-xyobject_tiny-seed3"
    assert b == Path("runs") / f"{TINY}-xyobject_tiny-seed3-2"


def test_missing_logger_package_is_a_clear_error(tmp_path, monkeypatch):
    from disentkit.train import trackers

    monkeypatch.setitem(trackers._PACKAGES, "tensorboard",
                        ("disentkit_no_such_module", "pip install tensorboard"))
    with pytest.raises(ValueError, match="pip install tensorboard"):
        fit(tiny_config(loggers=["tensorboard"]), run_dir=tmp_path / "r", progress=False)
    assert not (tmp_path / "r").exists()


def test_param_groups_optimizer_family_decay_and_clipping():
    model = build_model(TINY, weight_decay=0.2, clip_value=0.5)
    opt = build_optimizer(model.param_groups(), what="tiny")
    assert isinstance(opt, torch.optim.Adam)
    weights, biases = opt.param_groups
    assert (weights["optimizer"], weights["decoupled_weight_decay"]) == ("adamw", True)
    assert (weights["weight_decay"], weights["clip_value"], weights["lr"]) == (0.2, 0.5, 3e-3)
    assert (biases["optimizer"], biases["decoupled_weight_decay"]) == ("adam", False)
    assert biases["weight_decay"] == 0.0 and biases.get("clip_value") is None

    for p in model.parameters():
        p.grad = torch.full_like(p, 3.0)
    clip_gradients(opt)
    assert all(float(p.grad.abs().max()) == 0.5 for p in weights["params"])  # element-wise
    assert all(float(p.grad.min()) == 3.0 for p in biases["params"])  # untouched

    cfg = RunConfig.from_dict(tiny_config(), ["lr=0.1", "optimizer.weight_decay=0",
                                              "optimizer.name=adamw"])
    opt = build_optimizer(model.param_groups(), what="tiny", lr=cfg.lr, overrides=cfg.optimizer)
    assert all(g["lr"] == 0.1 and g["weight_decay"] == 0.0 and g["decoupled_weight_decay"]
               for g in opt.param_groups)
    groups = model.param_groups()
    groups[1]["optimizer"] = "sgd"
    with pytest.raises(ValueError, match="mix SGD with Adam"):
        build_optimizer(groups, what="tiny")
    groups[1]["optimizer"] = "lion"
    with pytest.raises(ValueError, match="asks for optimizer 'lion'"):
        build_optimizer(groups, what="tiny")


def test_bf16_mixed_precision_on_cpu(tmp_path):
    run = fit(tiny_config(steps=4, log_every=2, precision="bf16-mixed",
                          model_options={"kind": "quantized"}), run_dir=tmp_path / "bf16",
              progress=False)
    assert all(float(r["loss"]) == float(r["loss"]) for r in _rows(run))  # finite, not NaN
    assert load_model(run).config.kind == "quantized"


def test_evaluate_run_writes_metrics_json_with_metric_ids(vae_run):
    result = evaluate_run(vae_run, n_samples=150, metrics=["mig"], mode="fast", seed=1)
    saved = json.loads((vae_run / "metrics.json").read_text())
    assert saved["representations"].keys() == {"mean", "sampled"}
    for entry in saved["representations"].values():
        assert entry["scores"]["mig.metric_id"].startswith("mig/")
        assert 0.0 <= entry["scores"]["mig"] <= 1.0
        assert entry["metrics"]["mig"]["n_samples"] == 150
    assert saved["n_samples"] == 150 and saved["seed"] == 1 and saved["mode"] == "fast"
    assert saved["dataset"]["name"] == "xyobject_tiny"
    assert saved["dataset"]["kind"] == "procedural"
    assert saved["model"] == {"name": TINY, "step": 40, "config": saved["model"]["config"]}
    assert saved["active_latents"]["metric_id"].startswith("active_latents/")
    rec = saved["reconstruction"]
    assert rec["bce_per_image"] == pytest.approx(rec["bce_per_pixel"] * 3 * 32 * 32)
    assert 0 < rec["mse_per_pixel"] < 1
    again = evaluate_run(vae_run, n_samples=150, metrics=["mig"], mode="fast", seed=1)
    for kind, entry in result["representations"].items():
        assert again["representations"][kind]["scores"] == entry["scores"]
    assert again["reconstruction"] == result["reconstruction"]


def test_evaluate_run_on_a_quantized_model(tmp_path):
    run = fit(tiny_config(steps=4, model_options={"kind": "quantized"}),
              run_dir=tmp_path / "q", progress=False)
    # 100 rows are few for InfoE's one-hot classifier on the indices: evaluate_run says so
    with pytest.warns(DisentkitWarning, match="rows per feature"):
        result = evaluate_run(run, n_samples=100,
                              metrics=["mig", "infomec", "modularity", "dci"], mode="fast")
    assert set(result["representations"]) == {"quantized", "indices"}
    assert result["active_latents"] is None
    # indices are labels: the MI metrics use the discrete estimator on them
    ids = result["representations"]["indices"]["metrics"]
    assert ids["mig"]["options.estimator"] == "discrete"
    assert ids["modularity"]["options.estimator"] == "discrete"
    assert "discrete" in ids["infomec"]["metric_id"]
    # and DCI's trees split them one category against the rest
    assert ids["dci"]["metric_id"] == "dci/binned-categorical@1"
    quantized = result["representations"]["quantized"]["metrics"]
    assert quantized["mig"]["options.estimator"] == "histogram"
    assert quantized["dci"]["metric_id"] == "dci/binned@1"
    with pytest.raises(ValueError, match="n_samples must be an integer ≥ 2"):
        evaluate_run(run, n_samples=1)
    with pytest.raises(KeyError, match="known metrics"):
        evaluate_run(run, metrics=["nope"])


@pytest.mark.parametrize("name", sorted(n for n in MODELS if n != TINY))
def test_every_registered_model_trains_saves_and_reloads(name, tmp_path):
    has_arch = "arch" in {f.name for f in dataclasses.fields(MODELS[name].config_cls)}
    options = {"arch": "dlib"} if has_arch else {}  # the smallest architecture
    run = fit(tiny_config(model=name, steps=2, batch_size=4, log_every=1,
                          model_options=options), run_dir=tmp_path / name, progress=False)
    loaded = load_model(run)
    assert loaded.name == name and not loaded.training
    state = load_checkpoint(run / "checkpoints" / "last.ckpt")
    assert state["step"] == 2
    ref = loaded.state_dict()
    assert ref.keys() == state["model"].keys()
    assert all(torch.equal(ref[k], v) for k, v in state["model"].items())
    assert all(math.isfinite(float(r["loss"])) for r in _rows(run))


def _dlib_run(**changes):
    return tiny_config(model="beta_vae", steps=8, checkpoint_every=4, log_every=4,
                       model_options={"arch": "dlib", "n_latents": 3}, **changes)


def _max_weight_diff(a: Path, b: Path) -> float:
    wa, wb = load_file(a / "model.safetensors"), load_file(b / "model.safetensors")
    assert wa.keys() == wb.keys()
    return max(float((wa[k] - wb[k]).abs().max()) for k in wa)


def test_channels_last_training_matches_contiguous_within_float_rounding(tmp_path):
    auto = fit(_dlib_run(), run_dir=tmp_path / "auto", progress=False)  # dlib on a CPU
    last = fit(_dlib_run(memory_format="channels_last"), run_dir=tmp_path / "last",
               progress=False)
    flat = fit(_dlib_run(memory_format="contiguous"), run_dir=tmp_path / "flat",
               progress=False)
    # another convolution kernel sums in another order: float rounding, far below the
    # 1e-3 (the learning rate) a step moves a weight by
    assert 0 < _max_weight_diff(last, flat) < 1e-4
    assert _same_weights(auto, last)  # so auto chose channels-last
    reloaded = load_model(last)  # written contiguous, read back as any model
    assert all(p.is_contiguous() for p in reloaded.parameters())


def test_a_channels_last_run_resumes_exactly(tmp_path):
    config = _dlib_run(memory_format="channels_last")
    fit({**config, "steps": 4}, run_dir=tmp_path / "resumed", progress=False)
    fit(config, run_dir=tmp_path / "resumed", resume=True, progress=False)
    straight = fit(config, run_dir=tmp_path / "straight", progress=False)
    assert _same_weights(tmp_path / "resumed", straight)
    with pytest.raises(ValueError, match="memory_format"):
        fit(_dlib_run(memory_format="sideways"), run_dir=tmp_path / "bad", progress=False)
