"""evaluate(): the suite, shared MI, bootstrap intervals and baselines."""

from __future__ import annotations

import json

import numpy as np
import pytest

from disentkit import evaluate
from disentkit.metrics import METRICS, check_metric_options, default_suite, mig
from disentkit.metrics._mi import mutual_info_matrix
from disentkit.metrics._mi_cache import MICache, resolve_mi
from tests.conftest import make_factors


@pytest.fixture(scope="module")
def pair():
    factors = make_factors(500, (3, 5), seed=4)
    rng = np.random.default_rng(5)
    latents = factors + 0.4 * rng.standard_normal(factors.shape)
    return latents, factors


def test_scores_equal_the_metric_run_alone(pair) -> None:
    latents, factors = pair
    out = evaluate(latents, factors, metrics=["mig"], seed=3)
    assert out.to_dict()["mig"] == mig(latents, factors, seed=3).score


def test_default_suite_is_every_default_array_metric() -> None:
    names = default_suite()
    assert names == [n for n, i in METRICS.items() if i.in_default_suite and i.kind == "array"]
    assert "mig" in names


def test_bootstrap_interval_is_ordered_and_reproducible(pair) -> None:
    latents, factors = pair
    a = evaluate(latents, factors, metrics=["mig"], n_bootstrap=8, seed=1)
    b = evaluate(latents, factors, metrics=["mig"], n_bootstrap=8, seed=1)
    lo, hi = a.intervals[("mig", "score")]
    assert 0 <= lo <= hi <= 1
    assert a.intervals == b.intervals
    c = evaluate(latents, factors, metrics=["mig"], n_bootstrap=8, seed=2)
    assert c.intervals != a.intervals


def test_baselines_bracket_the_scores(pair) -> None:
    latents, factors = pair
    out = evaluate(latents, factors, metrics=["mig"], baselines=True)
    flat = out.to_dict()
    assert flat["baseline.random.mig"] < flat["mig"] < flat["baseline.ground_truth.mig"]
    assert flat["baseline.ground_truth.mig"] > 0.95
    assert flat["baseline.random.mig"] < 0.05


def test_json_is_serialisable_and_complete(pair) -> None:
    latents, factors = pair
    out = evaluate(latents, factors, metrics=["mig"], n_bootstrap=3, baselines=["random"])
    data = json.loads(json.dumps(out.to_json()))
    entry = data["metrics"]["mig"]
    assert entry["metric_id"] == "mig/hist20@1"
    assert entry["n_samples"] == 500
    assert entry["options.n_bins"] == 20
    assert set(entry["intervals"]) == {"score"}
    assert "random" in entry["baselines"]


def test_options_reach_the_metric_and_its_id(pair) -> None:
    latents, factors = pair
    out = evaluate(latents, factors, metrics=["mig"], options={"mig": {"n_bins": 10}})
    assert out.results["mig"].metric_id == "mig/hist10@1"
    assert out.to_dict()["mig"] == mig(latents, factors, n_bins=10).score


def test_mi_cache_computes_each_estimate_once(pair) -> None:
    latents, factors = pair
    cache = MICache()
    a = resolve_mi(cache, latents, factors, np.array([3, 5]), estimator="histogram", n_bins=20)
    b = resolve_mi(cache, latents, factors, np.array([3, 5]), estimator="histogram", n_bins=20)
    assert a is b and len(cache) == 1
    resolve_mi(cache, latents, factors, np.array([3, 5]), estimator="histogram", n_bins=10)
    assert len(cache) == 2


def test_precomputed_mi_must_match_what_is_asked(pair) -> None:
    latents, factors = pair
    mi = mutual_info_matrix(latents, factors, estimator="histogram", n_bins=10)
    with pytest.raises(ValueError, match="asks for histogram"):
        mig(latents, factors, mi=mi)  # default asks for 20 bins
    assert mig(latents, factors, n_bins=10, mi=mi).score == mig(latents, factors, n_bins=10).score
    with pytest.raises(ValueError, match="expected"):
        mig(latents[:, :1], factors, n_bins=10, mi=mi)
    with pytest.raises(TypeError, match="MutualInfo"):
        mig(latents, factors, mi=np.zeros((2, 2)))


def test_progress_is_reported_per_metric(pair) -> None:
    latents, factors = pair
    seen: list[str] = []
    evaluate(latents, factors, metrics=["mig"], baselines=["random"], progress=seen.append)
    assert seen == ["mig", "baseline random: mig"]


def test_fast_mode_applies_registered_fast_options(pair) -> None:
    latents, factors = pair
    for name, info in METRICS.items():
        if info.kind != "array" or not info.fast_options:
            continue
        ref = evaluate(latents, factors, metrics=[name], mode="reference")
        fast = evaluate(latents, factors, metrics=[name], mode="fast")
        assert ref.results[name].metric_id != fast.results[name].metric_id, name


def test_basic_interval_reflects_the_percentile_one_around_the_estimate(pair) -> None:
    latents, factors = pair
    pct = evaluate(latents, factors, metrics=["mig"], n_bootstrap=6, seed=1)
    basic = evaluate(latents, factors, metrics=["mig"], n_bootstrap=6, seed=1, ci_method="basic")
    est = pct.to_dict()["mig"]
    lo, hi = pct.intervals[("mig", "score")]
    assert basic.intervals[("mig", "score")] == pytest.approx((2 * est - hi, 2 * est - lo))



def test_per_factor_scores_get_intervals_and_baselines(pair) -> None:
    latents, factors = pair
    out = evaluate(latents, factors, metrics=["mig"], n_bootstrap=6, baselines=True, seed=3)
    entry = out.to_json()["metrics"]["mig"]["per_factor"]["score"]
    values = np.asarray(entry["values"])
    np.testing.assert_array_equal(values, mig(latents, factors, seed=3).per_factor)
    assert entry["factors"] == [0, 1]
    lo, hi = np.asarray(entry["ci_low"]), np.asarray(entry["ci_high"])
    assert lo.shape == hi.shape == values.shape and np.all(lo <= hi)
    assert np.all(np.asarray(entry["baselines"]["ground_truth"]) > values)
    assert np.all(np.asarray(entry["baselines"]["random"]) < values)


def test_knn_scores_get_no_bootstrap_interval_and_say_why(pair) -> None:
    latents, factors = pair
    out = evaluate(latents, factors, metrics=["mig", "infomec"], n_bootstrap=3)
    assert ("mig", "score") in out.intervals  # histogram estimator: resampling is fine
    assert not [k for k in out.intervals if k[0] == "infomec"]  # kNN on continuous latents
    entry = out.to_json()["metrics"]["infomec"]
    assert entry["intervals"] == {} and "kNN" in entry["intervals_note"]


def test_random_baseline_keeps_each_columns_values_and_cardinality() -> None:
    from disentkit.metrics.evaluate import _random_baseline

    rng = np.random.default_rng(0)
    labels = np.stack([rng.integers(0, 5, 400), rng.integers(10, 13, 400)], 1).astype(float)
    base = _random_baseline(labels, np.random.default_rng(1))
    assert base.shape == labels.shape
    for j in range(2):
        assert set(np.unique(base[:, j])) == set(np.unique(labels[:, j]))
    codebook = np.array([-1.3, -0.2, 0.4, 2.5])  # float codebook values, as QLAE's
    quantized = codebook[rng.integers(0, 4, (400, 3))]
    drawn = _random_baseline(quantized, np.random.default_rng(1))
    for j in range(3):
        assert set(np.unique(drawn[:, j])) == set(codebook)
    assert not np.array_equal(drawn, quantized)
    continuous = rng.standard_normal((400, 2))
    gauss = _random_baseline(continuous, np.random.default_rng(1))
    assert len(np.unique(gauss[:, 0])) == 400
    mixed = np.column_stack([continuous[:, 0], np.zeros(400)])  # a dead latent stays dead
    m = _random_baseline(mixed, np.random.default_rng(1))
    assert len(np.unique(m[:, 0])) == 400 and np.all(m[:, 1] == 0)
    wide = rng.integers(0, 150, (400, 1)).astype(float)  # 150-entry codebook indices
    assert set(np.unique(_random_baseline(wide, np.random.default_rng(1)))) <= set(
        np.unique(wide))
    many = np.arange(400.0)[:, None]  # each row its own value: not discrete
    assert len(np.unique(_random_baseline(many, np.random.default_rng(1)))) == 400


@pytest.mark.parametrize("kind", ["quantized", "indices", "continuous"])
def test_random_baseline_carries_the_metric_ids_of_its_representation(kind) -> None:
    rng = np.random.default_rng(4)
    factors = rng.integers(0, 6, (2000, 3))
    codebook = np.linspace(-1.5, 1.5, 10)
    idx = np.clip(factors * 2 + rng.integers(0, 2, factors.shape), 0, 9)
    latents = {
        "quantized": codebook[idx],
        "indices": idx.astype(float),
        "continuous": factors + 0.3 * rng.standard_normal(factors.shape),
    }[kind]
    out = evaluate(latents, factors, metrics=["infomec", "mig", "dci"], mode="fast",
                   baselines=["random"])
    for name, result in out.results.items():
        assert out.baselines["random"][name].metric_id == result.metric_id, name
    # the null level is that of the same estimator: random labels carry almost no MI
    if kind != "continuous":
        assert out.baselines["random"]["infomec"].infom < 0.2 < out.results["infomec"].infom


# -- options checked up front ------------------------------------------------------------


def test_unknown_option_of_a_later_metric_fails_before_any_metric_runs(pair) -> None:
    latents, factors = pair
    seen: list[str] = []
    with pytest.raises(ValueError, match="unknown option 'nbins' for metric 'mig'") as err:
        evaluate(latents, factors, metrics=["dci", "mig"], options={"mig": {"nbins": 5}},
                 progress=seen.append)
    assert seen == []  # progress is reported before each metric: none ran
    msg = str(err.value)
    assert "did you mean 'n_bins'?" in msg
    assert "known options: estimator, n_bins, n_neighbors, seed" in msg


def test_every_unknown_option_is_named_with_its_closest_match(pair) -> None:
    latents, factors = pair
    with pytest.raises(ValueError, match="unknown options 'nbins', 'zzz' for metric 'mig'"
                       r" \(did you mean 'n_bins' for 'nbins'\?\)"):
        evaluate(latents, factors, metrics=["mig"], options={"mig": {"nbins": 5, "zzz": 1}})


def test_options_for_a_metric_not_run_are_rejected(pair) -> None:
    latents, factors = pair
    with pytest.raises(ValueError, match="options given for 'dci', which is not among"):
        evaluate(latents, factors, metrics=["mig"], options={"dci": {"backend": "hist"}})
    with pytest.raises(TypeError, match="options of metric 'mig' must be a mapping"):
        evaluate(latents, factors, metrics=["mig"], options={"mig": ["n_bins"]})
    with pytest.raises(TypeError, match="options must be a mapping"):
        evaluate(latents, factors, metrics=["mig"], options=[("mig", {})])


def test_check_metric_options_accepts_every_registered_option() -> None:
    for name, info in METRICS.items():
        assert check_metric_options({name: dict.fromkeys(info.option_names)}, [name]) == {
            name: dict.fromkeys(info.option_names)
        }
    assert check_metric_options(None, ["mig"]) == {}
