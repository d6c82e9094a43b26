"""The ``disentkit`` command line and the demo data."""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import replace

import numpy as np
import pytest
from typer.testing import CliRunner

from disentkit import __version__
from disentkit._demo import DEMO_FACTOR_SIZES, demo_data
from disentkit.cli import app, parse_metric_list, parse_options
from disentkit.cli import score as cli_score
from disentkit.metrics import METRICS, Evaluation, default_suite

runner = CliRunner()


def _flat(text: str) -> str:
    """Output with line breaks and runs of spaces collapsed (rich wraps long lines)."""
    return re.sub(r"\s+", " ", text)


@pytest.fixture
def run_npz(tmp_path):
    data = demo_data(seed=1, n_samples=400)
    latents, factors = data["disentangled"]
    path = tmp_path / "run.npz"
    np.savez(path, latents=latents, factors=factors)
    return path


# --------------------------------------------------------------------------- demo data


def test_demo_data_structure_and_determinism():
    data = demo_data(seed=3, n_samples=300)
    assert list(data) == ["disentangled", "entangled", "random"]
    factors = data["disentangled"][1]
    assert factors.dtype == np.int64 and factors.shape == (300, len(DEMO_FACTOR_SIZES))
    assert (factors.max(axis=0) < np.array(DEMO_FACTOR_SIZES)).all() and factors.min() >= 0
    for latents, fac in data.values():
        assert latents.shape == (300, len(DEMO_FACTOR_SIZES) + 1)
        assert fac is factors
    again = demo_data(seed=3, n_samples=300)
    for name in data:
        np.testing.assert_array_equal(data[name][0], again[name][0])
    other = demo_data(seed=4, n_samples=300)
    assert not np.array_equal(other["random"][0], data["random"][0])


def test_demo_data_representations():
    data = demo_data(seed=0, n_samples=2000)
    dis, factors = data["disentangled"]
    ent = data["entangled"][0]
    assert np.ptp(dis[:, -1]) == 0.0  # dead latent
    sizes = np.asarray(DEMO_FACTOR_SIZES)
    np.testing.assert_allclose(dis[:, :-1], 2 * factors / (sizes - 1) - 1, atol=0.3)
    # A rotation: same row norms and Gram matrix, but mixed coordinates.
    np.testing.assert_allclose(np.linalg.norm(ent, axis=1), np.linalg.norm(dis, axis=1))
    np.testing.assert_allclose(ent[:50] @ ent[:50].T, dis[:50] @ dis[:50].T, atol=1e-12)
    assert np.ptp(ent, axis=0).min() > 0  # the dead direction is mixed in
    corr = np.corrcoef(data["random"][0].T, factors.T)[:6, 6:]
    assert np.abs(corr).max() < 0.1


def test_demo_data_rejects_tiny_n():
    with pytest.raises(ValueError, match="n_samples"):
        demo_data(n_samples=3)


# --------------------------------------------------------------------------- parsing


def test_parse_options_values():
    parsed = parse_options(
        ["mig.n_bins=30", "mig.estimator=knn", "dci.flag=true", "dci.x=null", 'a.b="7"',
         "a.c=[1, 2]", "a.d=0.5", "a.e=x=y"]
    )
    assert parsed == {
        "mig": {"n_bins": 30, "estimator": "knn"},
        "dci": {"flag": True, "x": None},
        "a": {"b": "7", "c": [1, 2], "d": 0.5, "e": "x=y"},
    }


def test_parse_options_selects_the_infomec_protocol():
    assert parse_options(["infomec.protocol=training"]) == {"infomec": {"protocol": "training"}}


@pytest.mark.parametrize("item", ["mig", "mig=3", "n_bins=3", ".n_bins=3", "mig.=3", "mig.a b=1"])
def test_parse_options_malformed(item):
    with pytest.raises(ValueError, match=r"METRIC\.NAME=VALUE"):
        parse_options([item])


def test_parse_metric_list():
    assert parse_metric_list(None) is None
    assert parse_metric_list(" mig ,mig,") == ["mig"]
    assert parse_metric_list("all") == [n for n, i in METRICS.items() if i.kind == "array"]
    with pytest.raises(ValueError, match=r"known metrics: .*mig"):
        parse_metric_list("nope")
    with pytest.raises(ValueError, match="at least one"):
        parse_metric_list(" , ")


# --------------------------------------------------------------------------- commands


def test_version():
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.stdout.strip() == f"disentkit {__version__}"


def test_metrics_lists_registry():
    result = runner.invoke(app, ["metrics"])
    assert result.exit_code == 0, result.output
    assert "mig@" in result.stdout and "array" in result.stdout
    result = runner.invoke(app, ["metrics", "--json"])
    entries = json.loads(result.stdout)
    assert [e["name"] for e in entries] == list(METRICS)
    mig = next(e for e in entries if e["name"] == "mig")
    assert mig["scores"][0] == {"name": "score", "bounds": [0.0, 1.0], "higher_is_better": True}
    assert mig["kind"] == "array" and mig["in_default_suite"] is True


def test_score_json_dash_writes_only_the_json_to_stdout(tmp_path, run_npz, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["score", str(run_npz), "-m", "mig", "--json", "-"])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)  # nothing but the JSON on stdout
    assert payload["metrics"]["mig"]["metric_id"] == "mig/hist20@1"
    assert "mig/hist20@1" in result.stderr  # the table went to stderr
    assert not (tmp_path / "-").exists()


def test_score_end_to_end_json(tmp_path, run_npz):
    out = tmp_path / "results" / "scores.json"
    args = ["score", str(run_npz), "-m", "mig", "--json", str(out), "-o", "mig.n_bins=30"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "mig/hist30@1" in result.stdout
    assert "scoring mig" in result.stderr
    payload = json.loads(out.read_text())
    assert payload["disentkit_version"] == __version__
    digest = hashlib.sha256(run_npz.read_bytes()).hexdigest()
    assert payload["inputs"]["latents"] == {
        "path": str(run_npz), "key": "latents", "shape": [400, 6], "dtype": "float64",
        "sha256": digest,
    }
    assert payload["inputs"]["factors"]["key"] == "factors"
    assert payload["inputs"]["factors"]["sha256"] == digest
    assert payload["requested"]["options"] == {"mig": {"n_bins": 30}}
    mig = payload["metrics"]["mig"]
    assert mig["metric_id"] == "mig/hist30@1"
    assert mig["options.n_bins"] == 30
    assert mig["n_samples"] == 400
    assert 0.5 < mig["score"] <= 1.0
    assert [p.name for p in out.parent.iterdir()] == ["scores.json"]  # no temp file left
    # Same inputs and seed: the same numbers.
    runner.invoke(app, [*args[:-4], "--json", str(tmp_path / "again.json"), *args[-2:]])
    again = json.loads((tmp_path / "again.json").read_text())
    assert again["metrics"]["mig"]["score"] == mig["score"]


def test_score_default_suite_two_files(tmp_path, monkeypatch):
    # The default suite's wiring, with a cheap suite (the real one runs in the slow demo test).
    monkeypatch.setattr("disentkit.metrics.default_suite", lambda: ["mig"])  # read per call
    latents, factors = demo_data(seed=0, n_samples=300)["entangled"]
    np.save(tmp_path / "z.npy", latents)
    np.savetxt(tmp_path / "s.csv", factors, fmt="%d", delimiter=",", header="a,b,c,d,e",
               comments="")
    out = tmp_path / "out.json"
    result = runner.invoke(
        app, ["score", str(tmp_path / "z.npy"), str(tmp_path / "s.csv"), "--mode", "fast",
              "--json", str(out)],
    )
    assert result.exit_code == 0, result.output
    payload = json.loads(out.read_text())
    assert payload["mode"] == "fast"
    assert payload["requested"]["metrics"] == ["mig"]
    assert list(payload["metrics"]) == ["mig"]
    assert payload["inputs"]["factors"]["key"] is None
    assert payload["inputs"]["factors"]["shape"] == [300, 5]
    assert payload["metrics"]["mig"]["n_samples"] == 300


def test_score_bootstrap_and_baselines(tmp_path, run_npz):
    out = tmp_path / "out.json"
    result = runner.invoke(
        app, ["score", str(run_npz), "-m", "mig", "--n-bootstrap", "3", "--baselines",
              "--json", str(out)],
    )
    assert result.exit_code == 0, result.output
    assert "95% CI" in result.stdout and "random" in result.stdout
    mig = json.loads(out.read_text())["metrics"]["mig"]
    low, high = mig["intervals"]["score"]
    assert low <= high
    assert set(mig["baselines"]) == {"random", "ground_truth"}
    assert mig["baselines"]["random"]["score"] < 0.1 < mig["baselines"]["ground_truth"]["score"]


def test_score_reports_skipped_factor_once(tmp_path, run_npz):
    with np.load(run_npz) as f:
        latents, factors = f["latents"], f["factors"].copy()
    factors[:, 2] = 7
    np.savez(tmp_path / "c.npz", latents=latents, factors=factors)
    result = runner.invoke(app, ["score", str(tmp_path / "c.npz"), "-m", "mig"])
    assert result.exit_code == 0, result.output
    assert result.stderr.count("warning:") == 1
    assert "skipping factor(s) [2]" in _flat(result.stderr)


def _bad(args: list[str]) -> str:
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert result.stderr.splitlines()[-1].startswith("error: ")
    return _flat(result.stderr)


def test_score_nan_latents(tmp_path, run_npz):
    with np.load(run_npz) as f:
        latents = f["latents"].copy()
        factors = f["factors"]
    latents[5, 1] = np.nan
    np.save(tmp_path / "z.npy", latents)
    np.save(tmp_path / "s.npy", factors)
    err = _bad(["score", str(tmp_path / "z.npy"), str(tmp_path / "s.npy")])
    assert "finite" in err and "row 5, column 1" in err


def test_score_mismatched_rows(tmp_path, run_npz):
    with np.load(run_npz) as f:
        np.save(tmp_path / "z.npy", f["latents"])
        np.save(tmp_path / "s.npy", f["factors"][:100])
    err = _bad(["score", str(tmp_path / "z.npy"), str(tmp_path / "s.npy")])
    assert "(400, 6)" in err and "(100, 5)" in err


def test_score_unknown_metric_lists_known(run_npz):
    err = _bad(["score", str(run_npz), "--metrics", "mig,nosuchmetric"])
    assert "nosuchmetric" in err
    for name in METRICS:
        assert name in err


@pytest.mark.parametrize(
    "extra, message",
    [
        (["-o", "mig.nosuch=1"], "unknown option"),
        (["-o", "mig.n_bins=0"], "n_bins"),
        (["-o", "oops"], "METRIC.NAME=VALUE"),
        (["--n-bootstrap", "-1"], "n_bootstrap"),
        (["--seed", "-1"], "seed"),
    ],
)
def test_score_bad_options(run_npz, extra, message):
    assert message in _bad(["score", str(run_npz), "-m", "mig", *extra])


def test_score_unknown_option_fails_before_any_metric_runs(run_npz, monkeypatch):
    def must_not_run(*args, **kwargs):
        raise AssertionError("dci ran before the options were checked")

    monkeypatch.setitem(METRICS._entries, "dci", replace(METRICS["dci"], func=must_not_run))
    err = _bad(["score", str(run_npz), "-m", "dci,mig", "-o", "mig.nbins=5"])
    assert "unknown option 'nbins' for metric 'mig' (did you mean 'n_bins'?)" in err
    assert "known options: estimator, n_bins, n_neighbors, seed" in err


def test_score_missing_file(tmp_path):
    err = _bad(["score", str(tmp_path / "nope.npz")])
    assert "nope.npz" in err and "no such file" in err


def test_score_debug_raises(tmp_path):
    result = runner.invoke(app, ["score", str(tmp_path / "nope.npz"), "--debug"])
    assert result.exit_code == 1
    assert isinstance(result.exception, FileNotFoundError)


def _run_demo(tmp_path, monkeypatch, n_samples: int) -> dict:
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["demo", "--n-samples", str(n_samples)])
    assert result.exit_code == 0, result.output
    assert "Takeaway:" in result.stdout
    assert "demo-results.json" in result.stdout
    payload = json.loads((tmp_path / "demo-results.json").read_text())
    assert payload["demo"]["n_samples"] == n_samples and payload["demo"]["mode"] == "fast"
    assert list(payload["results"]) == ["disentangled", "entangled", "random"]
    return payload


def test_demo_runs_and_writes_results(tmp_path, monkeypatch):
    monkeypatch.setattr("disentkit.metrics.default_suite", lambda: ["mig"])  # read per call
    payload = _run_demo(tmp_path, monkeypatch, 600)
    for evaluation in payload["results"].values():
        assert list(evaluation["metrics"]) == ["mig"]
    mig = {rep: ev["metrics"]["mig"]["score"] for rep, ev in payload["results"].items()}
    assert mig["disentangled"] > 0.8 > mig["entangled"] > mig["random"]


def test_takeaway_counts_directions_and_ties():
    def fake(value: float) -> Evaluation:
        result = METRICS["mig"].func(*demo_data(n_samples=50)["random"])
        return Evaluation(results={"mig": replace(result, score=value)})

    compared, wins = cli_score._comparison(
        {"disentangled": fake(0.9), "entangled": fake(0.90004), "random": fake(0.1)}
    )
    assert compared["mig"][1] == ["disentangled", "entangled"]  # equal at 3 decimals
    assert wins == {"disentangled": 1, "entangled": 1, "random": 0}
    assert "on 1 of 1 scores" in cli_score._takeaway(wins, 1)


@pytest.mark.slow
def test_demo_default_suite(tmp_path, monkeypatch):
    payload = _run_demo(tmp_path, monkeypatch, 2000)
    for evaluation in payload["results"].values():
        assert list(evaluation["metrics"]) == default_suite()
    results = payload["results"]
    for name, entry in results["disentangled"]["metrics"].items():
        for score in METRICS[name].scores:
            good = entry[score.name]
            bad = results["random"]["metrics"][name][score.name]
            if score.zero_when_independent:  # the factors are recoverable, noise is not
                assert good > bad, (name, score.name)


def test_text_labels_in_a_factors_csv_are_refused_with_a_hint_or_label_encoded(tmp_path):
    rng = np.random.default_rng(0)
    colours = np.array(["red", "green", "blue"])[rng.integers(0, 3, 300)]
    size = rng.integers(0, 4, 300)
    z = np.column_stack([(colours == "red") + 0.1 * rng.normal(size=300),
                         size + 0.1 * rng.normal(size=300)])
    np.save(tmp_path / "z.npy", z)
    csv_path = tmp_path / "y.csv"
    csv_path.write_text("colour,size\n" + "".join(f"{c},{s}\n" for c, s in zip(
        colours, size, strict=True)))
    refused = runner.invoke(app, ["score", str(tmp_path / "z.npy"), str(csv_path), "-m", "mig"])
    assert refused.exit_code == 2 and "--label-encode" in " ".join(refused.output.split())
    out = tmp_path / "s.json"
    result = runner.invoke(app, ["score", str(tmp_path / "z.npy"), str(csv_path), "-m", "mig",
                                 "--label-encode", "--json", str(out)])
    assert result.exit_code == 0, result.output
    payload = json.loads(out.read_text())
    assert payload["inputs"]["factors"]["label_encoding"] == {"0": ["blue", "green", "red"]}
    codes = np.searchsorted(["blue", "green", "red"], colours)  # the same numbering by hand
    np.save(tmp_path / "s.npy", np.column_stack([codes, size]))
    direct = runner.invoke(app, ["score", str(tmp_path / "z.npy"), str(tmp_path / "s.npy"),
                                 "-m", "mig", "--json", "-"])
    assert direct.exit_code == 0, direct.output
    assert json.loads(direct.stdout)["metrics"]["mig"]["score"] == payload["metrics"]["mig"][
        "score"]
