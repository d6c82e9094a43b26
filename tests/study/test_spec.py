"""Study specs: loading, checking, expansion into numbered runs, --model-num parsing."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from disentkit.study import expand, load_spec, parse_model_nums, run_name
from disentkit.study.spec import settings

ROOT = Path(__file__).resolve().parents[2]
SMALL = ROOT / "examples" / "studies" / "small.yaml"


def _spec(**changes):
    base = {"name": "t", "datasets": ["xyobject_tiny"], "models": ["ae"], "seeds": 1,
            "train": {"steps": 5, "model.n_latents": 3}}
    base.update(changes)
    return base


def test_small_example_is_two_models_by_two_seeds():
    spec = load_spec(SMALL)
    runs = expand(spec)
    assert spec.name == "small"
    assert len(runs) == 4
    assert sorted({r.model for r in runs}) == ["ae", "beta_vae"]
    assert sorted({r.seed for r in runs}) == [0, 1]
    assert [r.model_num for r in runs] == [0, 1, 2, 3]


def test_order_is_datasets_models_settings_seeds():
    spec = load_spec(_spec(
        datasets=["xyobject_tiny", "dsprites_procedural"],
        models=["ae", {"name": "beta_vae", "grid": {"model.beta": [1.0, 8.0]}}],
        seeds=[3, 5],
    ))
    got = [(r.dataset, r.model, r.hparams.get("model.beta"), r.seed) for r in expand(spec)]
    want = [(d, m, b, s)
            for d in ("xyobject_tiny", "dsprites_procedural")
            for m, betas in (("ae", [None]), ("beta_vae", [1.0, 8.0]))
            for b in betas for s in (3, 5)]
    assert got == want
    assert [r.model_num for r in expand(spec)] == list(range(len(want)))


def test_hyper_parameters_and_shared_settings_reach_the_run_config():
    spec = load_spec(_spec(
        models=[{"name": "beta_vae", "options": {"n_latents": 5},
                 "grid": {"model.beta": [2.0], "lr": [3e-4]}}],
        datasets=[{"name": "xyobject_tiny", "options": {}}],
        eval={"n_samples": 300, "mode": "fast"},
        train={"steps": 7, "batch_size": 8, "model": {"arch": "dlib"}},
    ))
    (run,) = expand(spec)
    cfg = run.config
    assert cfg["model"] == "beta_vae" and cfg["data"] == "xyobject_tiny"
    assert cfg["model_options"]["beta"] == 2.0
    assert cfg["model_options"]["n_latents"] == 5
    assert cfg["model_options"]["arch"] == "dlib"
    assert cfg["lr"] == 3e-4 and cfg["steps"] == 7 and cfg["batch_size"] == 8
    assert cfg["eval"]["n_samples"] == 300 and cfg["eval"]["mode"] == "fast"
    assert run.hparams == {"lr": 3e-4, "model.beta": 2.0}
    assert run.name == "run-00000"


def test_grid_is_the_product_with_sorted_keys():
    spec = load_spec(_spec(models=[{"name": "beta_vae",
                                    "grid": {"model.beta": [1, 2], "lr": [0.1, 0.2, 0.3]}}]))
    got = settings(spec, spec.models[0])
    assert len(got) == 6
    assert got[0] == {"lr": 0.1, "model.beta": 1}
    assert got[1] == {"lr": 0.1, "model.beta": 2}
    assert got[-1] == {"lr": 0.3, "model.beta": 2}


def test_random_draws_are_seeded_and_within_their_ranges():
    space = {"lr": {"loguniform": [1e-4, 1e-2]}, "model.beta": {"uniform": [1, 4]},
             "batch_size": {"randint": [8, 12]}, "model.n_latents": {"choice": [3, 6]}}
    spec = load_spec(_spec(models=[{"name": "beta_vae",
                                    "random": {"n": 20, "seed": 7, "space": space}}]))
    first = [r.hparams for r in expand(spec)]
    again = [r.hparams for r in expand(load_spec(spec.to_dict()))]
    assert first == again and len(first) == 20
    assert all(1e-4 <= h["lr"] <= 1e-2 for h in first)
    assert all(1 <= h["model.beta"] <= 4 for h in first)
    assert all(8 <= h["batch_size"] < 12 and isinstance(h["batch_size"], int) for h in first)
    assert {h["model.n_latents"] for h in first} == {3, 6}
    other = load_spec(_spec(models=[{"name": "beta_vae",
                                     "random": {"n": 20, "seed": 8, "space": space}}]))
    assert [r.hparams for r in expand(other)] != first


def test_global_grid_applies_to_every_model():
    spec = load_spec(_spec(models=["ae", "beta_vae"], grid={"lr": [1e-3, 1e-4]}, seeds=2))
    runs = expand(spec)
    assert len(runs) == 8
    assert {r.hparams["lr"] for r in runs if r.model == "ae"} == {1e-3, 1e-4}


def test_model_num_is_the_same_in_another_process(tmp_path):
    spec_file = tmp_path / "s.yaml"
    spec_file.write_text(yaml.safe_dump(_spec(
        models=[{"name": "beta_vae", "random": {"n": 3, "seed": 1,
                                                "space": {"model.beta": {"uniform": [1, 9]}}}}],
        seeds=2)))
    local = expand(load_spec(spec_file))[4]
    code = (
        "import json, sys; from disentkit.study import expand, load_spec; "
        "r = expand(load_spec(sys.argv[1]))[4]; "
        "print(json.dumps({'h': r.hparams, 'c': r.config, 's': r.seed}))"
    )
    outs = [subprocess.run([sys.executable, "-c", code, str(spec_file)], capture_output=True,
                           text=True, check=True).stdout for _ in range(2)]
    assert outs[0] == outs[1]
    got = json.loads(outs[0])
    assert got == {"h": local.hparams, "c": local.config, "s": local.seed}


@pytest.mark.parametrize(("text", "n", "want"), [
    (None, 3, [0, 1, 2]),
    ("2", 5, [2]),
    ("1-3", 5, [1, 2, 3]),
    ("4,0,2-3", 5, [0, 2, 3, 4]),
    ("1, 1", 5, [1]),
    ([3, 1], 5, [1, 3]),
])
def test_parse_model_nums(text, n, want):
    assert parse_model_nums(text, n) == want


@pytest.mark.parametrize(("text", "match"), [
    ("7", r"outside this study's runs 0\.\.4"),
    ("a", "takes a number"),
    ("3-1", "backwards"),
    ("-1", "takes a number"),
])
def test_parse_model_nums_errors(text, match):
    with pytest.raises(ValueError, match=match):
        parse_model_nums(text, 5)


@pytest.mark.parametrize(("changes", "match"), [
    ({"bogus": 1}, r"unknown study spec key\(s\) \['bogus'\]"),
    ({"datasets": []}, "'datasets' must be a non-empty list"),
    ({"models": [{"options": {}}]}, "registry name or a mapping with 'name'"),
    ({"models": [{"name": "ae", "grids": {}}]}, r"unknown key\(s\) \['grids'\]"),
    ({"seeds": 0}, "count must be ≥ 1"),
    ({"seeds": [1, 1]}, "lists a seed twice"),
    ({"seeds": "two"}, "'seeds' must be a count"),
    ({"name": "a b"}, "study 'name' must be"),
    ({"train": {"seed": 3}}, "'train' may not set 'seed'"),
    ({"train": {"model": "ae"}}, "'train' may not set 'model'"),
    ({"resources": {"cpus": 1}}, r"unknown 'resources' key\(s\) \['cpus'\]"),
    ({"resources": {"cpus_per_trial": 0}}, "cpus_per_trial' must be a number > 0"),
    ({"resources": {"max_retries": -1}}, "max_retries' must be an integer ≥ 0"),
    ({"models": [{"name": "ae", "grid": {"lr": []}}]}, "lists no values"),
    ({"models": [{"name": "ae", "random": {"n": 2, "space": {"lr": {"normal": [0, 1]}}}}]},
     "unknown distribution 'normal'"),
    ({"models": [{"name": "ae", "random": {"n": 2, "space": {"lr": {"loguniform": [0, 1]}}}}]},
     "lo > 0"),
    ({"models": [{"name": "ae", "random": {"n": 0, "space": {"lr": {"uniform": [0, 1]}}}}]},
     r"\.n must be an integer ≥ 1"),
    ({"models": [{"name": "ae", "grid": {"lr": [1.0]}}], "grid": {"lr": [2.0]}},
     "sweep each key in one place"),
    ({"models": [{"name": "ae", "grid": {"model.no_such_option": [1]}}]},
     r"run 0 \(ae on xyobject_tiny.*no_such_option"),
])
def test_bad_specs_say_what_was_expected(changes, match):
    with pytest.raises(ValueError, match=match):
        expand(load_spec(_spec(**changes)))


def test_unknown_model_lists_the_known_ones():
    with pytest.raises(KeyError, match="beta_vae"):
        load_spec(_spec(models=["no_such_model"]))


def test_missing_spec_file(tmp_path):
    with pytest.raises(ValueError, match="no study spec at"):
        load_spec(tmp_path / "missing.yaml")


def test_run_name():
    assert run_name(0) == "run-00000"
    assert run_name(12345) == "run-12345"


# -- recipes ------------------------------------------------------------------------------
def test_a_family_recipe_resolves_per_model_and_dataset_and_the_spec_goes_on_top():
    from disentkit.recipes import load_recipe

    spec = load_spec({
        "name": "r", "seeds": [3],
        "datasets": [{"name": "shapes3d_procedural", "options": {"image_size": 32}},
                     "mpi3d_complex"],
        "models": ["qlae", {"name": "beta_vae", "options": {"n_latents": 4}}],
        "train": {"recipe": "qlae2023", "steps": 50, "model.arch": "dlib"},
        "eval": {"n_samples": 1000},
        "grid": {"lr": [1e-4]},
    })
    runs = {(r.model, r.dataset): r.config for r in expand(spec)}
    qlae = runs["qlae", "shapes3d_procedural"]
    want = load_recipe("qlae2023/qlae/shapes3d_procedural")["model"]
    assert qlae["model_options"]["weight_decay"] == want["weight_decay"] == 0.1
    assert qlae["model_options"]["n_latents"] == 12
    assert qlae["model_options"]["arch"] == "dlib"  # train wins over the recipe
    assert qlae["data_options"] == {"image_size": 32}  # the dataset's options win
    assert (qlae["steps"], qlae["seed"], qlae["lr"], qlae["batch_size"]) == (50, 3, 1e-4, 128)
    assert qlae["eval"]["n_samples"] == 1000
    assert qlae["eval"]["options"] == {"infomec": {"protocol": "training"}}
    assert runs["qlae", "mpi3d_complex"]["model_options"]["weight_decay"] == 0.001
    assert runs["beta_vae", "mpi3d_complex"]["model_options"]["beta"] == 0.1
    assert runs["beta_vae", "mpi3d_complex"]["model_options"]["n_latents"] == 4  # entry wins


def test_a_model_entry_recipe_wins_and_other_models_start_from_defaults():
    spec = load_spec(_spec(models=[{"name": "ae", "recipe": "qlae2023/ae/mpi3d_complex"},
                                   "vae"], train={"steps": 5}))
    ae, vae = expand(spec)
    assert ae.dataset == "xyobject_tiny" and ae.config["data"] == "xyobject_tiny"
    assert ae.config["model_options"]["weight_decay"] == 0.001
    assert "weight_decay" not in vae.config["model_options"]
    assert vae.config["batch_size"] == 64  # RunConfig's default: no recipe for vae


@pytest.mark.parametrize(("changes", "exc", "match"), [
    ({"train": {"recipe": "qlae2023"}}, KeyError, "no recipe 'qlae2023' or .*xyobject_tiny"),
    ({"models": [{"name": "vae", "recipe": "qlae2023/ae/shapes3d"}]}, ValueError,
     "trains 'ae', not model 'vae'"),
    ({"models": [{"name": "ae", "recipe": 3}]}, ValueError, "'recipe' must be a recipe name"),
])
def test_bad_recipes_fail_when_the_spec_is_loaded(changes, exc, match):
    with pytest.raises(exc, match=match):
        load_spec(_spec(**changes))


def test_the_qlae2023_studies_expand_into_valid_runs_from_the_recipes():
    from disentkit.recipes import load_recipe

    full = expand(load_spec(ROOT / "examples" / "studies" / "qlae2023.yaml"))
    assert len(full) == 9 * 4 * 7
    assert {r.dataset for r in full} == {"shapes3d", "mpi3d_complex", "falcor3d", "isaac3d"}
    for r in full[:: 7]:  # one seed of every cell: the cell's recipe, unchanged
        want = load_recipe(f"qlae2023/{r.model}/{r.dataset}")
        assert {k: r.config["model_options"][k] for k in want["model"] if k != "name"} == {
            k: v for k, v in want["model"].items() if k != "name"}
        assert (r.config["steps"], r.config["batch_size"]) == (want["steps"],
                                                               want["batch_size"])
    mini = expand(load_spec(ROOT / "examples" / "studies" / "qlae2023_mini.yaml"))
    assert len(mini) == 5 * 3
    assert {r.model for r in mini} >= {"qlae", "ae", "beta_vae", "beta_tcvae", "bioae"}
    for r in mini:
        assert r.dataset == "shapes3d_procedural"
        assert r.config["eval"]["every"] > 0
        assert r.config["steps"] // r.config["eval"]["every"] >= 5
        assert r.config["eval"]["options"] == {"infomec": {"protocol": "training"}}
