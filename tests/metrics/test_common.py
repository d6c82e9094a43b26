"""Properties every registered array metric declares, checked over the whole registry.

In the spirit of scikit-learn's ``metrics/cluster/tests/test_common.py``: bounds, Python
floats, determinism, invariance to permuting latents and relabelling factors, NaN rejection,
and the documented level for perfect and independent representations.
"""

from __future__ import annotations

import inspect
import warnings

import numpy as np
import pytest

from disentkit import DisentkitWarning
from disentkit.metrics import METRICS, MetricResult, ScoreInfo, register_metric, score_label
from tests.conftest import make_factors

ARRAY_METRICS = sorted(n for n, i in METRICS.items() if i.kind == "array")
# Invariance tolerances. Gradient-boosted trees (DCI) break ties between equally good
# splits by the order in which features (and, multi-class, classes) are visited, so
# permuting columns or relabelling classes can pick a different split in a small node:
# the scores move by up to ~0.01 on these 600-row noisy codes (exact on tie-free codes,
# see tests/metrics/test_dci.py). Every other metric is exactly invariant.
INVARIANCE_TOL = {"dci": 0.02}
# Small inputs keep the classifier-based metrics fast.
N = 600
SIZES = (3, 4, 5)


def _run(name: str, latents: np.ndarray, factors: np.ndarray, **kwargs) -> MetricResult:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no deprecation/convergence noise from any metric
        warnings.simplefilter("ignore", DisentkitWarning)
        return METRICS[name].func(latents, factors, seed=0, **kwargs)


@pytest.fixture(scope="module")
def data() -> dict[str, np.ndarray]:
    factors = make_factors(N, SIZES, seed=11)
    rng = np.random.default_rng(12)
    perfect = np.concatenate(
        [factors + 0.05 * rng.standard_normal(factors.shape), np.zeros((N, 1))], axis=1
    )
    mixed = (factors + 0.3 * rng.standard_normal(factors.shape)) @ rng.standard_normal((3, 4))
    independent = rng.standard_normal((N, 4))
    return {"factors": factors, "perfect": perfect, "mixed": mixed, "independent": independent}


def test_registry_is_populated() -> None:
    expected = {"mig", "dci", "sap", "modularity", "explicitness", "unsupervised", "infomec"}
    missing = expected - set(METRICS)
    assert not missing, f"metrics not registered: {missing}"


@pytest.mark.parametrize("name", ARRAY_METRICS)
def test_metadata_is_complete(name: str) -> None:
    info = METRICS[name]
    assert info.scores, "a metric reports at least one score"
    assert info.func.__doc__ and "Example" in info.func.__doc__
    for s in info.scores:
        lo, hi = s.bounds
        assert lo < hi


@pytest.mark.parametrize("name", ARRAY_METRICS)
@pytest.mark.parametrize("which", ["perfect", "mixed", "independent"])
def test_scores_are_floats_within_bounds(name: str, which: str, data) -> None:
    result = _run(name, data[which], data["factors"])
    assert result.metric_id.startswith(f"{name}") and "@" in result.metric_id
    assert result.n_samples == N
    scores = result.scores()
    assert set(scores) == set(METRICS[name].score_names)
    for s in METRICS[name].scores:
        value = scores[s.name]
        assert type(value) is float
        assert np.isfinite(value), f"{name}.{s.name} is {value} on {which} latents"
        assert s.bounds[0] - 1e-9 <= value <= s.bounds[1] + 1e-9, (name, s.name, value)


@pytest.mark.parametrize("name", ARRAY_METRICS)
def test_deterministic_for_a_seed(name: str, data) -> None:
    a = _run(name, data["mixed"], data["factors"]).scores()
    b = _run(name, data["mixed"], data["factors"]).scores()
    assert a == b


@pytest.mark.parametrize("name", ARRAY_METRICS)
def test_invariant_to_permuting_latents(name: str, data) -> None:
    perm = np.array([2, 0, 3, 1])
    a = _run(name, data["mixed"], data["factors"]).scores()
    b = _run(name, data["mixed"][:, perm], data["factors"]).scores()
    for key in a:
        assert a[key] == pytest.approx(b[key], abs=INVARIANCE_TOL.get(name, 1e-6)), key


@pytest.mark.parametrize("name", ARRAY_METRICS)
def test_invariant_to_relabelling_factor_classes(name: str, data) -> None:
    factors = data["factors"]
    relabelled = factors.copy()
    relabelled[:, 0] = np.array([7, -2, 30])[factors[:, 0]]  # any distinct labels
    relabelled[:, 2] = 4 - factors[:, 2]
    a = _run(name, data["mixed"], factors).scores()
    b = _run(name, data["mixed"], relabelled).scores()
    for key in a:
        assert a[key] == pytest.approx(b[key], abs=INVARIANCE_TOL.get(name, 1e-6)), key


@pytest.mark.parametrize("name", ARRAY_METRICS)
def test_rejects_nan_and_inf(name: str, data) -> None:
    bad = data["mixed"].copy()
    bad[5, 1] = np.nan
    with pytest.raises(ValueError, match="finite"):
        METRICS[name].func(bad, data["factors"])
    bad[5, 1] = np.inf
    with pytest.raises(ValueError, match="finite"):
        METRICS[name].func(bad, data["factors"])


@pytest.mark.parametrize("name", ARRAY_METRICS)
def test_rejects_mismatched_rows(name: str, data) -> None:
    with pytest.raises(ValueError, match="same number of samples"):
        METRICS[name].func(data["mixed"][:-1], data["factors"])


@pytest.mark.parametrize("name", ARRAY_METRICS)
def test_constant_factor_is_skipped_and_recorded(name: str, data) -> None:
    factors = np.concatenate([data["factors"], np.full((N, 1), 3)], axis=1)
    with pytest.warns(DisentkitWarning, match="single value"):
        result = METRICS[name].func(data["mixed"], factors, seed=0)
    assert result.skipped_factors == (3,)
    reference = _run(name, data["mixed"], data["factors"])
    assert result.scores() == pytest.approx(reference.scores(), abs=1e-9)


@pytest.mark.parametrize("name", ARRAY_METRICS)
def test_constant_latent_is_accepted(name: str, data) -> None:
    latents = np.concatenate([data["mixed"], np.full((N, 1), 2.5)], axis=1)
    result = _run(name, latents, data["factors"])
    assert all(np.isfinite(v) for v in result.scores().values())


@pytest.mark.parametrize("name", ARRAY_METRICS)
def test_to_dict_is_flat_and_names_the_metric(name: str, data) -> None:
    d = _run(name, data["mixed"], data["factors"]).to_dict()
    assert d["metric_id"].startswith(name)
    for score in METRICS[name].score_names:
        assert isinstance(d[score], float)
    assert any(k.startswith("options.") for k in d) or not METRICS[name].func.__kwdefaults__


@pytest.mark.parametrize("name", [n for n in ARRAY_METRICS if METRICS[n].in_default_suite])
def test_perfect_beats_independent(name: str, data) -> None:
    # Analyses outside the default suite (e.g. the fraction of active latents) describe the
    # code, not how well it matches the factors, so the comparison applies to suite metrics.
    perfect = _run(name, data["perfect"], data["factors"]).scores()
    independent = _run(name, data["independent"], data["factors"]).scores()
    for s in METRICS[name].scores:
        if s.bounds[1] == np.inf:
            continue  # unbounded scores (e.g. total correlation) describe latents, not factors
        if s.higher_is_better:
            assert perfect[s.name] > independent[s.name], s.name
        else:
            assert perfect[s.name] < independent[s.name], s.name


@pytest.mark.parametrize(
    ("name", "score"),
    [
        (n, s.name)
        for n in ARRAY_METRICS
        for s in METRICS[n].scores
        if s.zero_when_independent
    ],
)
def test_independent_latents_score_near_zero(name: str, score: str) -> None:
    factors = make_factors(3000, SIZES, seed=21)
    latents = np.random.default_rng(22).standard_normal((3000, 4))
    value = _run(name, latents, factors).scores()[score]
    assert abs(value) < 0.1, f"{name}.{score} = {value} for independent latents"


# -- facts declared at registration, over every metric (array and sampling) ---------------

LABEL_METRICS = sorted(n for n in ARRAY_METRICS if METRICS[n].index_options)


@pytest.mark.parametrize("name", sorted(METRICS))
def test_declared_options_are_the_signature_options(name: str) -> None:
    info = METRICS[name]
    params = list(inspect.signature(info.func).parameters)[2:]  # after the two data arguments
    assert info.option_names == tuple(p for p in params if p != "mi")
    assert info.uses_mi_cache == ("mi" in params)
    assert set(info.fast_options) <= set(info.option_names)
    assert set(info.index_options) <= set(info.option_names)


def test_a_misspelt_registered_option_fails_at_registration() -> None:
    def metric(latents, factors, *, estimator="histogram"):
        raise AssertionError("never called")

    for facts in ({"index_options": {"estimater": "discrete"}},
                  {"fast_options": {"n_binz": 5}}):
        with pytest.raises(ValueError, match=r"for metric '_misspelt'.*known options: estimator"):
            register_metric("_misspelt", scores=(ScoreInfo("score"),), **facts)(metric)
        assert "_misspelt" not in METRICS


def test_mutual_information_metrics_declare_how_they_read_labels() -> None:
    assert {"mig", "modularity", "infomec", "dci"} <= set(LABEL_METRICS)


@pytest.mark.parametrize("name", LABEL_METRICS)
def test_index_options_make_scores_independent_of_label_numbering(name: str, data) -> None:
    # codebook indices: labels whose numbering means nothing; more labels per latent
    # than histogram bins, so reading them as numbers would merge unrelated labels
    rng = np.random.default_rng(31)
    mixed = data["mixed"]
    labels = np.floor(8 * (mixed - mixed.min(axis=0))).astype(np.int64)  # (N, 4)
    renumbered = np.stack(
        [rng.permutation(labels[:, j].max() + 1)[labels[:, j]] for j in range(4)], axis=1
    )
    options = {**METRICS[name].fast_options, **METRICS[name].index_options}  # fast mode
    a = _run(name, labels.astype(float), data["factors"], **options)
    b = _run(name, renumbered.astype(float), data["factors"], **options)
    for s in METRICS[name].scores:
        value = a.scores()[s.name]
        assert np.isfinite(value) and s.bounds[0] - 1e-9 <= value <= s.bounds[1] + 1e-9
        assert value == pytest.approx(b.scores()[s.name], abs=INVARIANCE_TOL.get(name, 1e-6))


def test_score_labels_are_declared_once_and_resolve_from_their_keys():
    declared = [(name, s) for name in METRICS for s in METRICS[name].scores if s.label]
    labels = [s.label for _, s in declared]
    assert {"InfoM", "InfoE", "InfoC", "DCI-D", "MIG"} <= set(labels)
    assert len(labels) == len(set(labels))  # one score per label
    for name, s in declared:
        key = name if s.name == "score" else f"{name}.{s.name}"
        assert score_label(key) == score_label(f"score.{key}") == s.label
    assert score_label("dci.informativeness_train") == "dci.informativeness_train"
    assert score_label("not_a_metric.x") == "not_a_metric.x"
