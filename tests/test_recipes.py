"""Shipped recipes: every one a valid run config holding the reference's values."""

from __future__ import annotations

import pytest
import yaml

from disentkit.data.official_specs import SPECS
from disentkit.recipes import (
    list_recipes,
    load_recipe,
    merge_config,
    recipe_text,
    recipe_version,
    resolve_recipe,
)
from disentkit.train.config import RunConfig

MODELS = ("qlae", "qlinfowgan_gp", "ae", "vae", "beta_vae", "beta_tcvae", "bioae", "vq_vae",
          "infowgan_gp")
OFFICIAL = ("shapes3d", "mpi3d_complex", "falcor3d", "isaac3d")
DATASETS = (*OFFICIAL, "shapes3d_procedural")
GANS = ("qlinfowgan_gp", "infowgan_gp")


def test_every_cell_is_shipped_and_nothing_else():
    want = sorted(f"qlae2023/{m}/{d}" for m in MODELS for d in DATASETS)
    assert list_recipes() == want


@pytest.mark.parametrize("name", list_recipes())
def test_every_recipe_is_a_valid_run_config(name):
    cfg = RunConfig.from_dict(load_recipe(name))  # model options checked against the model
    model, dataset = name.split("/")[1:]
    assert (cfg.model, cfg.data) == (model, dataset)
    assert recipe_version(name) >= 1
    assert cfg.eval.options == {"infomec": {"protocol": "training"}}
    assert cfg.model_options["arch"] == "qlae"
    assert cfg.model_options["clip_value"] == 1.0
    assert cfg.steps == 200_000
    assert cfg.batch_size == (64 if model in GANS else 128)
    text = recipe_text(name)
    assert text.startswith("# Recipe " + name)
    assert "version" not in load_recipe(name) and "extends" not in load_recipe(name)
    assert RunConfig.from_dict(load_recipe(name)).recipe == f"{name}@{recipe_version(name)}"


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("dataset", OFFICIAL)
def test_latents_are_twice_the_factors(model, dataset):
    n_factors = len(SPECS[dataset].factor_sizes)
    assert load_recipe(f"qlae2023/{model}/{dataset}")["model"]["n_latents"] == 2 * n_factors


@pytest.mark.parametrize("model", MODELS)
def test_procedural_twin_is_the_shapes3d_cell_on_procedural_data(model):
    twin = load_recipe(f"qlae2023/{model}/shapes3d_procedural")
    cell = load_recipe(f"qlae2023/{model}/shapes3d")
    assert twin["data"] == {"name": "shapes3d_procedural", "image_size": 64}
    assert {k: v for k, v in twin.items() if k not in ("data", "recipe")} == {
        k: v for k, v in cell.items() if k not in ("data", "recipe")}
    assert (twin["recipe"], cell["recipe"]) == (f"qlae2023/{model}/shapes3d_procedural@1",
                                                f"qlae2023/{model}/shapes3d@1")


def test_qlae_cells_hold_the_reference_values():
    cfg = RunConfig.from_dict(load_recipe("qlae2023/qlae/shapes3d"))
    opts = cfg.model_options
    assert (opts["n_latents"], opts["n_values"], opts["weight_decay"]) == (12, 10, 0.1)
    assert tuple(opts["init_range"]) == (-0.5, 0.5) and opts["optimize_values"]
    assert (opts["quantization_weight"], opts["commitment_weight"]) == (0.01, 0.01)
    assert (cfg.lr, cfg.batch_size, cfg.steps) == (1e-3, 128, 200_000)
    mpi = load_recipe("qlae2023/qlae/mpi3d_complex")["model"]
    assert (mpi["n_latents"], mpi["weight_decay"]) == (14, 0.001)
    assert load_recipe("qlae2023/qlae/isaac3d")["model"]["weight_decay"] == 0.1


@pytest.mark.parametrize(
    ("model", "key", "values"),
    [
        ("beta_vae", "beta", (3.0, 0.1, 10.0, 0.3)),
        ("beta_tcvae", "beta", (3.0, 0.3, 3.0, 1.0)),
        ("beta_tcvae", "dataset_size", tuple(SPECS[d].n_images for d in OFFICIAL)),
        ("bioae", "activity_weight", (0.01, 0.01, 0.01, 0.1)),
        ("ae", "weight_decay", (0.0, 0.001, 0.0, 0.0)),
        ("vq_vae", "weight_decay", (0.01,) * 4),
        ("qlinfowgan_gp", "weight_decay", (0.001, 0.001, 0.0001, 0.001)),
        ("infowgan_gp", "weight_decay", (0.0001,) * 4),
    ],
)
def test_per_dataset_values(model, key, values):
    got = tuple(load_recipe(f"qlae2023/{model}/{d}")["model"][key] for d in OFFICIAL)
    assert got == values


@pytest.mark.parametrize("model", ["vae", "beta_vae", "beta_tcvae"])
def test_vae_cells_use_softplus_scales(model):
    assert load_recipe(f"qlae2023/{model}/falcor3d")["model"]["posterior_scale"] == "softplus"


def test_gan_cells_use_the_gan_optimiser():
    opts = load_recipe("qlae2023/qlinfowgan_gp/shapes3d")["model"]
    assert (opts["lr"], tuple(opts["betas"]), opts["generator_every"]) == (2e-4, (0.0, 0.9), 5)
    assert "lr" not in load_recipe("qlae2023/infowgan_gp/shapes3d")  # the model's own lr


def test_contradictions_are_cited_in_the_comments():
    assert "CONTRADICTION" in recipe_text("qlae2023/ae/shapes3d")
    assert "fixed/mpi3d.yaml" in recipe_text("qlae2023/qlae/mpi3d_complex")
    assert "NO params file" in recipe_text("qlae2023/qlinfowgan_gp/isaac3d")


def test_recipe_text_is_the_yaml_of_the_file():
    raw = yaml.safe_load(recipe_text("qlae2023/qlae/shapes3d"))
    assert raw["extends"] == "qlae2023/_autoencoders" and raw["version"] == 1
    assert raw["model"]["n_latents"] == 12


def test_unknown_names_say_what_exists():
    with pytest.raises(KeyError, match=r"did you mean 'qlae2023/qlae/shapes3d'\?.*known recipes"):
        load_recipe("qlae2023/qlae/shapes3")
    with pytest.raises(KeyError, match="known recipes"):
        recipe_text("qlae2023/_autoencoders")  # shared bases are not recipes
    with pytest.raises(TypeError, match="must be a string"):
        load_recipe(3)


def test_load_recipe_returns_a_fresh_copy():
    cfg = load_recipe("qlae2023/qlae/shapes3d")
    cfg["model"]["n_latents"] = 99
    assert load_recipe("qlae2023/qlae/shapes3d")["model"]["n_latents"] == 12


def test_overrides_go_on_top_of_a_recipe():
    cfg = RunConfig.from_dict(load_recipe("qlae2023/qlae/shapes3d_procedural"),
                              ["steps=20", "model.weight_decay=0.01", "data.image_size=32"])
    assert (cfg.steps, cfg.model_options["weight_decay"]) == (20, 0.01)
    assert cfg.data_options == {"image_size": 32}


def test_resolve_recipe():
    assert resolve_recipe("qlae2023/qlae/isaac3d") == "qlae2023/qlae/isaac3d"
    assert resolve_recipe("qlae2023/qlae", dataset="isaac3d") == "qlae2023/qlae/isaac3d"
    assert resolve_recipe("qlae2023", model="ae", dataset="falcor3d") == "qlae2023/ae/falcor3d"
    with pytest.raises(KeyError, match="families: qlae2023"):
        resolve_recipe("qlae2023", model="fsq_ae", dataset="shapes3d")


def test_merge_config_merges_mappings_and_replaces_the_rest():
    base = {"model": {"name": "ae", "betas": [0.9, 0.99]}, "eval": {"options": {"a": {"x": 1}}}}
    got = merge_config(base, {"model": {"betas": [0.0]}, "eval": {"options": {"a": {"y": 2}}}})
    assert got == {"model": {"name": "ae", "betas": [0.0]},
                   "eval": {"options": {"a": {"x": 1, "y": 2}}}}
    assert base["model"]["betas"] == [0.9, 0.99]


@pytest.mark.parametrize("model", MODELS)
def test_every_procedural_twin_trains(model, tmp_path, torch_one_thread):
    """Two steps of each twin, cut down (dlib network, 32×32, batch 8): the recipe's model
    options build the model and its parameter groups reach the optimiser."""
    import json

    from disentkit.train import fit

    cfg = RunConfig.from_dict(
        load_recipe(f"qlae2023/{model}/shapes3d_procedural"),
        ["steps=2", "batch_size=8", "model.arch=dlib", "data.image_size=32",
         "data.cache_dir=false", "accelerator=cpu", "checkpoint_every=1", "log_every=1"])
    run = fit(cfg, run_dir=tmp_path / "run", progress=False)
    written = json.loads((run / "config.json").read_text())
    assert written["model_options"]["weight_decay"] == cfg.model_options["weight_decay"]
    assert (run / "model.safetensors").is_file()
