"""evaluate_run's metric options: the registry's index options for label latents, the
run config's ``eval.options`` over them, and every option checked before any work."""

from __future__ import annotations

import pytest
import torch

from disentkit.metrics import METRICS
from disentkit.train import RunConfig, evaluate_run, fit
from tests.train import registered_tiny, tiny_config


@pytest.fixture(scope="module")
def quantized_run(tmp_path_factory):
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    with registered_tiny():
        yield fit(tiny_config(steps=4, model_options={"kind": "quantized"}),
                  run_dir=tmp_path_factory.mktemp("q") / "run", progress=False)
    torch.set_num_threads(threads)


def test_indices_get_each_metrics_registered_index_options(quantized_run) -> None:
    names = [n for n, i in METRICS.items() if i.kind == "array" and i.index_options]
    assert {"mig", "modularity", "infomec", "dci"} <= set(names)
    result = evaluate_run(quantized_run, n_samples=100, metrics=["mig", "modularity"],
                          mode="fast")
    for name in ("mig", "modularity"):
        indices = result["representations"]["indices"]["metrics"][name]
        quantized = result["representations"]["quantized"]["metrics"][name]
        for key, value in METRICS[name].index_options.items():
            assert indices[f"options.{key}"] == value
            assert quantized[f"options.{key}"] != value


def test_user_options_reach_every_representation_and_win(quantized_run) -> None:
    options = {"mig": {"estimator": "histogram", "n_bins": 5}}
    result = evaluate_run(quantized_run, n_samples=100, metrics=["mig"], mode="fast",
                          options=options)
    for kind in ("quantized", "indices"):
        record = result["representations"][kind]["metrics"]["mig"]
        assert record["options.estimator"] == "histogram" and record["options.n_bins"] == 5
        assert record["metric_id"] == "mig/hist5@1"


def test_a_bad_option_fails_before_the_run_is_read(tmp_path) -> None:
    missing = tmp_path / "no-such-run"  # loading it would fail differently
    with pytest.raises(ValueError, match=r"unknown option 'nbins' for metric 'mig' "
                       r"\(did you mean 'n_bins'\?\)"):
        evaluate_run(missing, metrics=["dci", "mig"], options={"mig": {"nbins": 5}})
    with pytest.raises(ValueError, match="options given for 'sap', which is not among"):
        evaluate_run(missing, metrics=["mig"], options={"sap": {"solver": "exact"}})


def test_run_config_carries_eval_options() -> None:
    cfg = RunConfig.from_dict({"model": "qlae", "data": "xyobject_tiny"},
                              overrides=["eval.options.infomec.pruning=training",
                                         "eval.options.mig.n_bins=5"])
    assert cfg.eval.options == {"infomec": {"pruning": "training"}, "mig": {"n_bins": 5}}
    assert RunConfig.from_dict({"model": "qlae", "data": "xyobject_tiny"}).eval.options == {}
