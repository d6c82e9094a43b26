"""Vectorised training: members equal their single runs, resume exactly after SIGKILL (also
one member alone), refuse what cannot be vectorised, and every registered model declares
whether it can."""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
import textwrap
from contextlib import contextmanager
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from disentkit.models import MODELS, Model, build_model, noise_source
from disentkit.train import fit
from disentkit.train.checkpoint import load_checkpoint, previous_checkpoint
from disentkit.train.vectorized import (
    expand_configs,
    fit_vectorized,
    group_key,
    member_run_dirs,
    parse_seeds,
    parse_set_list,
    vectorize_problem,
)
from tests.train import sigkill_after_checkpoint

ROOT = Path(__file__).resolve().parents[2]
# Float tolerance of a member's weights against its single run after a few steps. vmap
# batches convolutions and matrix products differently (summation order: ~1 ulp per op); one
# Adam step moves a weight by up to lr = 1e-3, so a wrong batch, noise or update is far
# outside this bound. The configs below train contiguous single runs, as the vectorised
# members are; with the default memory_format="auto" a single dlib run on the CPU trains
# channels-last (other convolution kernels, another ulp per op): LAYOUT_ATOL.
ATOL = 2e-5
LAYOUT_ATOL = 1e-4


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@contextmanager
def _torch_threads(n: int):
    """``n`` intra-op threads inside the block (the ``"threads"`` strategy starts a worker
    per thread; this module otherwise runs on one)."""
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _base(model: str, **changes):
    options = {"n_latents": 3}
    if "arch" in {f for f in MODELS[model].config_cls.__dataclass_fields__}:
        options["arch"] = "dlib"
    cfg = {"model": model, "data": "xyobject_tiny", "steps": 6, "batch_size": 8, "seed": 0,
           "accelerator": "cpu", "log_every": 2, "checkpoint_every": 3,
           "memory_format": "contiguous", "model_options": options}
    cfg.update(changes)
    return cfg


def _weights(run: Path) -> dict[str, torch.Tensor]:
    return load_file(run / "model.safetensors")


def _max_diff(a: Path, b: Path) -> float:
    wa, wb = _weights(a), _weights(b)
    assert wa.keys() == wb.keys()
    return max(float((wa[k] - wb[k]).abs().max()) for k in wa)


def _same_weights(a: Path, b: Path) -> bool:
    wa, wb = _weights(a), _weights(b)
    return wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)


def _rows(run: Path) -> list[dict[str, str]]:
    with (run / "log" / "metrics.csv").open() as fh:
        return list(csv.DictReader(fh))


# --------------------------------------------------------------------------- equality


@pytest.mark.parametrize("strategy", ["loop", "vmap"])
@pytest.mark.parametrize("model", ["qlae", "beta_vae"])
def test_members_equal_their_single_runs(model, strategy, tmp_path):
    configs = expand_configs(_base(model), seeds="0,1")
    paths = fit_vectorized(configs, tmp_path / "vec", progress=False, strategy=strategy)
    assert [p.name for p in paths] == ["seed0", "seed1"]
    singles = [fit(c, run_dir=tmp_path / f"single{c.seed}", progress=False) for c in configs]
    for cfg, path, single in zip(configs, paths, singles, strict=True):
        assert json.loads((path / "config.json").read_text()) == json.loads(
            (single / "config.json").read_text())
        assert json.loads((path / "model.json").read_text())["seed"] == cfg.seed
        assert _max_diff(path, single) < ATOL
        assert strategy == "vmap" or _same_weights(path, single)
        state = load_checkpoint(path / "checkpoints" / "last.ckpt")
        assert state["step"] == 6 and set(state["optimizers"]) == {"main"}
        ours, theirs = _rows(path), _rows(single)
        assert [r["step"] for r in ours] == [r["step"] for r in theirs] == ["2", "4", "6"]
        assert set(ours[0]) == set(theirs[0])
        for a, b in zip(ours, theirs, strict=True):
            assert float(a["loss"]) == pytest.approx(float(b["loss"]), rel=1e-4)
    assert _max_diff(paths[0], paths[1]) > 100 * ATOL  # the members are different runs


@pytest.mark.parametrize("model", ["qlae", "beta_vae"])
def test_threaded_members_equal_their_single_runs(model, tmp_path):
    # Two workers, each member's operations on one thread; the single runs on two threads,
    # channels-last (memory_format="auto"): equal up to float rounding of the reductions.
    configs = expand_configs(_base(model, memory_format="auto"), seeds="0-2")
    with _torch_threads(2):
        paths = fit_vectorized(configs, tmp_path / "vec", progress=False, strategy="threads")
        assert torch.get_num_threads() == 2  # the workers' setting does not leak
        for cfg, path in zip(configs, paths, strict=True):
            single = fit(cfg, run_dir=tmp_path / f"single{cfg.seed}", progress=False)
            assert _max_diff(path, single) < LAYOUT_ATOL
            for a, b in zip(_rows(path), _rows(single), strict=True):
                assert float(a["loss"]) == pytest.approx(float(b["loss"]), rel=1e-4)
    assert _max_diff(paths[0], paths[1]) > 100 * ATOL  # the members are different runs


def test_members_equal_channels_last_single_runs(tmp_path):
    configs = expand_configs(_base("beta_vae", memory_format="auto"), seeds="0,1")
    looped = fit_vectorized(configs, tmp_path / "loop", progress=False, strategy="loop")
    mapped = fit_vectorized(configs, tmp_path / "vmap", progress=False, strategy="vmap")
    for cfg, loop, vmap in zip(configs, looped, mapped, strict=True):
        single = fit(cfg, run_dir=tmp_path / f"single{cfg.seed}", progress=False)
        assert _same_weights(loop, single)  # the loop trains in the single run's layout
        assert _max_diff(vmap, single) < LAYOUT_ATOL


def test_looped_members_write_compact_checkpoints_and_weights(tmp_path):
    configs = expand_configs(_base("qlae"), seeds="0-3")
    paths = fit_vectorized(configs, tmp_path / "vec", progress=False, strategy="loop")
    single = fit(configs[0], run_dir=tmp_path / "single", progress=False)
    size = (single / "checkpoints" / "last.ckpt").stat().st_size
    for path in paths:  # a member's checkpoint holds its own weights, not the whole stack
        assert (path / "checkpoints" / "last.ckpt").stat().st_size <= 1.05 * size
        assert (path / "model.safetensors").stat().st_size == (
            single / "model.safetensors").stat().st_size


def test_members_score_during_training_as_their_single_runs(tmp_path):
    every = {"every": 3, "every_n_samples": 200, "every_metrics": ["mig", "infomec"]}
    configs = expand_configs(_base("qlae", eval=every), seeds="0,1")
    paths = fit_vectorized(configs, tmp_path / "vec", progress=False)
    singles = [fit(c, run_dir=tmp_path / f"single{c.seed}", progress=False) for c in configs]
    for path, single in zip(paths, singles, strict=True):
        ours, theirs = _rows(path), _rows(single)
        assert [r["step"] for r in ours] == [r["step"] for r in theirs] == ["2", "3", "4", "6"]
        scored = sorted(k for k in theirs[1] if k.startswith("eval/"))
        assert scored and sorted(k for k in ours[1] if k.startswith("eval/")) == scored
        for a, b in zip(ours, theirs, strict=True):
            for key in scored:
                assert (a[key] == "") == (b[key] == "")  # scored at the same steps
                if b[key]:  # weights equal up to float rounding: scores up to rounding too
                    assert float(a[key]) == pytest.approx(float(b[key]), abs=1e-6)
        assert _max_diff(path, single) < ATOL  # scoring left training untouched


@pytest.mark.parametrize("strategy", ["loop", "vmap"])
def test_hyper_parameter_members_equal_their_single_runs(strategy, tmp_path):
    configs = expand_configs(_base("beta_vae"), seeds="2",
                             set_lists=["model.beta=1,8", "lr=1e-3,3e-3"])
    assert [(float(c.model_options["beta"]), c.lr) for c in configs] == [
        (1.0, 1e-3), (1.0, 3e-3), (8.0, 1e-3), (8.0, 3e-3)]
    assert vectorize_problem(configs) is None
    paths = fit_vectorized(configs, tmp_path / "vec", progress=False, strategy=strategy)
    assert [p.name for p in paths] == ["seed2-lr0.001-beta1.0", "seed2-lr0.003-beta1.0",
                                       "seed2-lr0.001-beta8.0", "seed2-lr0.003-beta8.0"]
    for cfg, path in zip(configs, paths, strict=True):
        single = fit(cfg, run_dir=tmp_path / f"single-{path.name}", progress=False)
        assert _max_diff(path, single) < ATOL, path.name
    # QLAE: decoupled weight decay per member (0 keeps its two parameter groups)
    decays = expand_configs(_base("qlae", steps=4), set_lists=["model.weight_decay=0,0.1"])
    paths = fit_vectorized(decays, tmp_path / "qlae", progress=False, strategy=strategy)
    for cfg, path in zip(decays, paths, strict=True):
        single = fit(cfg, run_dir=tmp_path / f"qlae-{path.name}", progress=False)
        assert _max_diff(path, single) < ATOL, path.name


def test_noise_hook_is_randn_like_by_default_and_redirectable():
    model = build_model("vae", n_latents=2, image_shape=(1, 16, 16))
    like = torch.empty(3, 2)
    torch.manual_seed(5)
    drawn = model.noise(like)
    torch.manual_seed(5)
    assert torch.equal(drawn, torch.randn_like(like))
    with noise_source(lambda t: torch.full_like(t, 7.0)):
        assert torch.equal(model.noise(like), torch.full((3, 2), 7.0))
    assert model.noise(like).shape == (3, 2)  # restored


# --------------------------------------------------------------------------- resume

_KILLED_RUN = textwrap.dedent(
    """
    import json, sys
    import torch
    sys.path.insert(0, sys.argv[3])
    torch.set_num_threads(1)
    from disentkit.train.vectorized import fit_vectorized
    fit_vectorized(json.loads(sys.argv[1]), sys.argv[2], progress=False)
    """
)


def test_sigkill_then_resume_gives_bit_identical_members(tmp_path):
    configs = [c.to_dict() for c in expand_configs(
        _base("beta_vae", steps=60, checkpoint_every=5, log_every=5), seeds="0,1")]
    killed = tmp_path / "killed"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT / "src")}
    proc = subprocess.Popen([sys.executable, "-c", _KILLED_RUN, json.dumps(configs),
                             str(killed), str(ROOT)], env=env, cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    ckpt = killed / "seed1" / "checkpoints" / "last.ckpt"
    assert 10 <= sigkill_after_checkpoint(proc, ckpt, 10, timeout=180, settle=0.15) < 60
    assert not (killed / "seed0" / "model.safetensors").exists()

    resumed = fit_vectorized(configs, killed, resume=True, progress=False)
    straight = fit_vectorized(configs, tmp_path / "straight", progress=False)
    for a, b in zip(resumed, straight, strict=True):
        assert _same_weights(a, b)
        assert [r["step"] for r in _rows(a)] == [str(s) for s in range(5, 61, 5)]
        assert [r["loss"] for r in _rows(a)] == [r["loss"] for r in _rows(b)]
        assert not list(a.rglob(".*.tmp"))


def test_a_member_ahead_by_one_checkpoint_resumes_from_its_previous_one(tmp_path):
    configs = expand_configs(_base("qlae", steps=8, checkpoint_every=4, log_every=4),
                             seeds="0,1")
    straight = fit_vectorized(configs, tmp_path / "straight", progress=False)
    run = tmp_path / "run"
    shutil.copytree(straight[0].parent, run)
    # killed during the checkpoint round of step 8: seed0 wrote it, seed1 did not
    behind = run / "seed1" / "checkpoints" / "last.ckpt"
    previous_checkpoint(behind).replace(behind)
    for member in ("seed0", "seed1"):
        (run / member / "model.safetensors").unlink()
    assert load_checkpoint(run / "seed0" / "checkpoints" / "last.ckpt")["step"] == 8
    assert load_checkpoint(behind)["step"] == 4
    with pytest.warns(UserWarning, match="ahead of the other members"):
        resumed = fit_vectorized(configs, run, resume=True, progress=False)
    for a, b in zip(resumed, straight, strict=True):
        assert _same_weights(a, b)


def test_a_member_resumes_alone_as_a_single_run_and_a_single_run_joins_a_group(tmp_path):
    configs = expand_configs(_base("beta_vae", steps=4, checkpoint_every=2), seeds="0,1")
    paths = fit_vectorized(configs, tmp_path / "vec", progress=False)
    longer = configs[1].replace(steps=8)
    fit(longer, run_dir=paths[1], resume=True, progress=False)  # a single run continues it
    single = fit(longer, run_dir=tmp_path / "single", progress=False)
    assert _max_diff(paths[1], single) < ATOL
    # single runs at step 4 continue as one vectorised run
    singles = [fit(c, run_dir=tmp_path / "singles" / f"seed{c.seed}", progress=False)
               for c in configs]
    longer_all = [c.replace(steps=8) for c in configs]
    joined = fit_vectorized(longer_all, singles, resume=True, progress=False)
    assert _max_diff(joined[1], single) < ATOL


# --------------------------------------------------------------------------- refusals


def test_what_cannot_be_vectorised_is_refused_with_the_reason(tmp_path):
    def problem(model, **changes):
        return vectorize_problem(expand_configs(_base(model, **changes), seeds="0,1"))

    assert "discriminator in an extra optimiser step" in problem("factor_vae")
    assert "usage counts in place" in problem("vq_vae")
    assert "precision" in problem("qlae", precision="bf16-mixed")
    assert "one device" in problem("qlae", devices=2)
    mixed = expand_configs(_base("qlae"), seeds="0") + expand_configs(
        _base("qlae", batch_size=4), seeds="1")
    assert "batch_size" in vectorize_problem(mixed)
    with pytest.raises(ValueError, match=r"cannot train these runs vectorised: .*factor_vae"):
        fit_vectorized(expand_configs(_base("factor_vae"), seeds="0,1"), tmp_path / "f",
                       progress=False)
    decays = expand_configs(_base("vae"), seeds="0", set_lists=["model.weight_decay=0,0.1"])
    assert vectorize_problem(decays) is None  # allowed in principle, but the VAEs' groups
    with pytest.raises(ValueError, match="parameter groups differ"):  # differ at 0
        fit_vectorized(decays, tmp_path / "d", progress=False)
    assert not (tmp_path / "f").exists()
    # a member directory that holds a run: refused before any member is written
    taken = expand_configs(_base("qlae", steps=1), seeds="0,1")
    fit(taken[1], run_dir=tmp_path / "t" / "seed1", progress=False)
    with pytest.raises(ValueError, match="already hold runs"):
        fit_vectorized(taken, tmp_path / "t", progress=False)
    assert not (tmp_path / "t" / "seed0" / "config.json").exists()


def test_an_unknown_strategy_is_refused(tmp_path):
    with pytest.raises(ValueError, match=r"strategy must be one of \['auto', 'vmap', 'loop', "
                                         r"'threads'\]"):
        fit_vectorized(expand_configs(_base("ae"), seeds="0,1"), tmp_path, strategy="fast")


def test_parsing_seeds_lists_and_member_directories():
    assert parse_seeds("0-2,7") == [0, 1, 2, 7] and parse_seeds(3) == [3]
    for bad in ("", "a", "3-1", "1,1", "0-"):
        with pytest.raises(ValueError, match="seed"):
            parse_seeds(bad)
    with pytest.raises(ValueError, match="KEY=V1,V2"):
        parse_set_list(["model.beta"])
    configs = expand_configs(_base("beta_vae"), seeds="0-1", set_lists=["model.beta=2,4"])
    assert len(configs) == 4
    names = [p.name for p in member_run_dirs(configs)]
    assert names == [f"beta_vae-xyobject_tiny-seed{s}-beta{b}.0" for b in (2, 4) for s in (0, 1)]
    assert group_key(configs[0]) == group_key(configs[3])
    assert group_key(expand_configs(_base("factor_vae"))[0]) is None


# --------------------------------------------------------------------------- the contract


VECTORISABLE = sorted(n for n, info in MODELS.items() if info.cls.vectorize_refusal is None)


def test_every_model_declares_whether_it_trains_vectorised():
    required = {"ae", "vae", "beta_vae", "beta_tcvae", "annealed_vae", "dip_vae_i",
                "dip_vae_ii", "bioae", "qlae", "fsq_ae"}
    assert required <= set(VECTORISABLE)
    for name, info in MODELS.items():
        cls = info.cls
        refusal = cls.vectorize_refusal
        assert refusal is None or (isinstance(refusal, str) and refusal), name
        if cls.extra_steps is not Model.extra_steps:  # an extra optimiser step: refused
            assert refusal is not None, name
        fields = set(info.config_cls.__dataclass_fields__)
        assert set(cls.vectorized_options) <= fields, name


@pytest.mark.parametrize("name", VECTORISABLE)
def test_every_vectorisable_model_matches_its_single_runs(name, tmp_path):
    configs = expand_configs(_base(name, steps=2, batch_size=4, log_every=1,
                                   checkpoint_every=2), seeds="0,1")
    singles = [fit(c, run_dir=tmp_path / f"single{c.seed}", progress=False) for c in configs]
    for strategy in ("loop", "vmap", "threads"):
        with _torch_threads(2 if strategy == "threads" else 1):  # threads: two workers
            paths = fit_vectorized(configs, tmp_path / strategy, progress=False,
                                   strategy=strategy)
        for path, single in zip(paths, singles, strict=True):
            if strategy == "loop":  # the single run's kernels and arithmetic: bit for bit
                assert _same_weights(path, single)
            else:
                assert _max_diff(path, single) < ATOL


def test_usage_stats_batch_under_vmap_with_bincount_counts():
    from disentkit.quantizers._base import usage_stats

    indices = torch.randint(0, 5, (3, 16, 2), generator=torch.Generator().manual_seed(0))
    batched = torch.func.vmap(lambda i: usage_stats(i, 5))(indices)  # (3,) each
    for k in range(3):
        flat = indices[k] + torch.arange(2) * 5
        counts = torch.bincount(flat.reshape(-1), minlength=10).view(2, 5).float()
        assert batched["usage"][k] == (counts > 0).float().mean()
        one = usage_stats(indices[k], 5)
        assert torch.equal(batched["perplexity"][k], one["perplexity"])
