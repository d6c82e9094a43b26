"""The ``vectorized`` study executor: compatible runs train as one model, refused models
fall back to sequential runs, and the results table has a sequential study's shape."""

from __future__ import annotations

import pandas as pd
import pytest
import torch

from disentkit.study import run_study
from disentkit.study.results import read_attempts, run_dir


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _spec():
    return {
        "name": "vec",
        "datasets": ["xyobject_tiny"],
        "models": [{"name": "beta_vae", "grid": {"model.beta": [1.0, 4.0]}}, "vq_vae"],
        "seeds": 2,
        "train": {"steps": 4, "batch_size": 8, "checkpoint_every": 2, "log_every": 2,
                  "accelerator": "cpu", "model.n_latents": 3},
        "eval": {"n_samples": 200, "mode": "fast", "metrics": ["mig", "sap"]},
        "resources": {"max_retries": 0},
    }


def test_vectorized_study_has_the_shape_of_a_sequential_one(tmp_path):
    notes: list[str] = []
    vec = run_study(_spec(), tmp_path / "vec", executor="vectorized", progress=False,
                    note=notes.append)
    seq = run_study(_spec(), tmp_path / "seq", executor="local", progress=False)
    a, b = vec.results, seq.results
    assert list(a.columns) == list(b.columns) and len(a) == len(b) == 6
    assert (a["status"] == "done").all()
    pd.testing.assert_frame_equal(a[["model_num", "model", "seed", "hp.model.beta"]],
                                  b[["model_num", "model", "seed", "hp.model.beta"]])
    assert a["score.mig"].notna().all() and a["train_seconds"].notna().all()
    # the four beta-VAE runs trained as one group; the VQ-VAE runs one by one
    groups = {n: read_attempts(run_dir(vec.study_dir, n))[-1].get("group")
              for n in a["model_num"]}
    beta = sorted(int(n) for n in a.loc[a["model"] == "beta_vae", "model_num"])
    vq = [int(n) for n in a.loc[a["model"] == "vq_vae", "model_num"]]
    assert all(groups[n] == beta for n in beta) and all(groups[n] is None for n in vq)
    assert notes == []
    # a second call redoes nothing
    again = run_study(_spec(), tmp_path / "vec", executor="vectorized", progress=False)
    assert again.ran == () and len(again.skipped) == 6
