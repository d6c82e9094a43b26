"""InfoMEC's two reference protocols: each training-time choice against sklearn or by hand.

``protocol="standalone"`` (the default) follows LQ's standalone ``infomec.py`` and is covered
by ``test_infomec.py``; ``protocol="training"`` follows LQ's training-time evaluation
(``mutual_information.py`` + ``explicitness.py``): kNN MI with k = 3 on raw latents, plug-in
MI on discrete values, NMI not clipped, pruning at range / 8 for every latent type, InfoE on
standardised features unless the latents are an integer array.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from sklearn.feature_selection import mutual_info_classif
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import log_loss, mutual_info_score
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from disentkit.metrics import METRICS, evaluate
from disentkit.metrics._knn import knn_mutual_info
from disentkit.metrics.infomec import PROTOCOL_SETTINGS, InfoMECResult, infomec


def run(latents: np.ndarray, factors: np.ndarray, **kwargs) -> InfoMECResult:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no convergence/deprecation noise
        warnings.filterwarnings("ignore", message="infomec: InfoE is fit and scored on the same")
        return infomec(latents, factors, **kwargs)


def sklearn_cross_entropy(features, y: np.ndarray) -> float:
    """The reference's classifier, fit and scored in-sample, as a plain sklearn call."""
    kw = dict(C=np.inf, solver="lbfgs", max_iter=100, tol=1e-4, class_weight="balanced")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = LogisticRegression(**kw).fit(features, y)
    return log_loss(y, model.predict_proba(features))


@pytest.fixture
def continuous() -> tuple[np.ndarray, np.ndarray]:
    """Tie-free continuous latents mixing three factors, one latent pure noise."""
    rng = np.random.default_rng(0)
    s = rng.integers(0, 4, (600, 3))
    z = s @ rng.standard_normal((3, 4)) + 0.6 * rng.standard_normal((600, 4))
    return z * 3.0 + 5.0, s  # offset and scale: "raw" is not already standardised


@pytest.fixture
def quantized() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """QLAE-like codes: float codebook values, their integer indices, and the factors."""
    rng = np.random.default_rng(1)
    s = rng.integers(0, 3, (900, 2))
    codebook = np.linspace(-0.5, 0.5, 6)
    idx = np.stack(
        [s[:, 0] * 2 + rng.integers(0, 2, 900), np.clip(s[:, 1] * 2 + rng.integers(-1, 2, 900),
                                                       0, 5), rng.integers(0, 6, 900)],
        axis=1,
    )
    return codebook[idx], idx, s


# ---------------------------------------------------------------- defaults and IDs


def test_standalone_is_the_default_and_keeps_its_ids(continuous, quantized) -> None:
    z, s = continuous
    default = run(z, s, seed=0)
    old_defaults = run(z, s, seed=0, protocol="standalone", n_neighbors=10, standardize=True,
                       pruning="standalone")
    assert default.metric_id == old_defaults.metric_id == "infomec/knn10std-prune20-insample@1"
    assert default.scores() == old_defaults.scores()
    np.testing.assert_array_equal(default.nmi, old_defaults.nmi)
    assert default.options["protocol"] == "standalone"
    assert default.options["nmi_clipped"] is True
    values, _, sq = quantized
    assert run(values, sq).metric_id == "infomec/discrete-prune20-insample@1"


def test_metric_ids_name_the_protocol(continuous, quantized) -> None:
    z, s = continuous
    values, idx, sq = quantized
    ids = {
        "continuous": run(z, s, seed=0, protocol="training").metric_id,
        "values": run(values, sq, protocol="training").metric_id,
        "indices": run(idx, sq, protocol="training").metric_id,
        "fast": run(z, s, seed=0, protocol="training",
                    **METRICS["infomec"].fast_options).metric_id,
        "noinfoe": run(z, s, seed=0, protocol="training", infoe=False).metric_id,
    }
    assert ids == {
        "continuous": "infomec/training-knn3-prune8-std-insample@1",
        "values": "infomec/training-discrete-prune8-std-insample@1",
        "indices": "infomec/training-discrete-prune8-onehot-insample@1",
        "fast": "infomec/training-knn3-prune8-std-insample-max2000-min200perfeature@1",
        "noinfoe": "infomec/training-knn3-prune8-noinfoe@1",
    }
    # The standalone protocol with the training protocol's MI options is still another ID:
    # the two differ in NMI clipping and InfoE's features.
    near = run(z, s, seed=0, n_neighbors=3, standardize=False, pruning="training")
    assert near.metric_id == "infomec/knn3-prune8-insample@1" != ids["continuous"]


# ---------------------------------------------------------------- MI estimators


def test_training_knn_is_k3_on_raw_latents_as_mutual_info_classif(continuous) -> None:
    z, s = continuous
    r = run(z, s, seed=0, protocol="training")
    assert r.options["n_neighbors"] == 3 and r.options["standardize"] is False
    # The reference: mutual_info_classif with its default k = 3 on the raw column.
    expected = np.array(
        [[mutual_info_classif(z[:, [d]], s[:, k], n_neighbors=3, random_state=0)[0]
          for k in range(3)] for d in range(4)]
    )
    # Different jitter draws: equal up to the 1e-10 jitter on tie-free data.
    np.testing.assert_allclose(r.mutual_info, expected, atol=1e-8)
    # The shared kNN code path with the training options, bit for bit.
    same = knn_mutual_info(z, s, n_neighbors=3, standardize=False, seed=0)
    np.testing.assert_array_equal(r.mutual_info, same)
    assert not np.allclose(r.mutual_info, run(z, s, seed=0).mutual_info, atol=1e-3)  # k = 10


def test_training_plugin_mi_on_discrete_values(quantized) -> None:
    values, idx, s = quantized
    r = run(values, s, protocol="training")
    assert r.latent_type == "discrete" and r.options["estimator"] == "discrete"
    expected = np.array(
        [[mutual_info_score(s[:, k], idx[:, d]) / mutual_info_score(s[:, k], s[:, k])
          for k in range(2)] for d in range(3)]  # idx ↔ values one to one
    )
    np.testing.assert_allclose(r.nmi, expected, atol=1e-12)


def test_training_nmi_is_not_clipped() -> None:
    """A perfectly separated factor: the kNN estimate ψ(N) − ψ(N/2) + … exceeds H(s).

    The standalone protocol clips that NMI at 1 (a disentkit choice, recorded); the
    training-time reference divides and keeps the value, and so does its protocol.
    """
    rng = np.random.default_rng(2)
    s = rng.integers(0, 2, (200, 2))
    z = s + 0.01 * rng.standard_normal(s.shape)
    standalone = run(z, s, seed=0)
    training = run(z, s, seed=0, protocol="training")
    assert standalone.nmi.max() == 1.0
    assert training.nmi[0, 0] > 1.0 and training.nmi[1, 1] > 1.0
    np.testing.assert_array_equal(
        training.nmi, training.mutual_info / training.factor_entropy[None, :]
    )
    assert training.options["nmi_clipped"] is False
    for value in training.scores().values():
        assert 0.0 <= value <= 1.0


# ---------------------------------------------------------------- pruning


def test_training_prunes_at_an_eighth_of_the_largest_range_for_every_type() -> None:
    s = np.indices((3, 4)).reshape(2, -1).T.repeat(10, axis=0)  # (120, 2)
    # Ranges 8; 1 (exactly 1/8: inactive, the rule is strict); 1.0001; 0.5 (between 1/20
    # and 1/8 of the largest: active for the standalone rule only).
    scale = np.array([8 / 2, 1 / 3, 1.0001 / 3, 0.5 / 2])
    z = np.stack([s[:, 0], s[:, 1], s[:, 1], s[:, 0]], axis=1) * scale  # discrete values
    exact = run(z, s, protocol="training")
    assert exact.latent_type == "discrete"
    assert exact.latent_range[1] == exact.latent_range[0] / 8
    assert exact.active.tolist() == [True, False, True, False]
    assert run(z, s).active.all()  # standalone, discrete: range > 0

    wiggle = z + 1e-3 * np.sin(np.arange(120))[:, None]  # continuous, ranges ≈ the same
    r = run(wiggle, s, seed=0, protocol="training")
    assert r.latent_type == "continuous"
    np.testing.assert_array_equal(r.active, r.latent_range > r.latent_range.max() / 8)
    assert r.active[[0, 2]].all() and not r.active[3]
    assert run(wiggle, s, seed=0).active.all()  # standalone, continuous: > 1/20


# ---------------------------------------------------------------- InfoE features


def test_training_infoe_standardises_float_codes_and_one_hots_integer_arrays(quantized) -> None:
    values, idx, s = quantized
    floats = run(values, s, protocol="training")
    assert floats.options["infoe_features"] == "standardized"
    assert floats.options["infoe_n_features"] == 3
    expected = [sklearn_cross_entropy(StandardScaler().fit_transform(values), s[:, k])
                for k in range(2)]
    np.testing.assert_allclose(floats.cross_entropy, expected, atol=1e-6)

    ints = run(idx, s, protocol="training")
    assert ints.options["infoe_features"] == "onehot"
    assert ints.options["infoe_n_features"] == 18  # 6 values × 3 latents
    onehot = OneHotEncoder().fit_transform(idx)
    expected = [sklearn_cross_entropy(onehot, s[:, k]) for k in range(2)]
    np.testing.assert_allclose(ints.cross_entropy, expected, atol=1e-6)

    # The standalone protocol one-hots discrete latents whatever their dtype.
    standalone = run(values, s)
    assert standalone.options["infoe_features"] == "onehot"
    np.testing.assert_allclose(standalone.infoe_per_factor, ints.infoe_per_factor, atol=1e-12)
    # MI and pruning do not depend on the dtype: InfoM and InfoC agree.
    assert (floats.infom, floats.infoc) == (ints.infom, ints.infoc)


def test_infoe_features_option_stands_in_for_a_lost_dtype(quantized) -> None:
    values, idx, s = quantized
    as_float = idx.astype(np.float64)  # what evaluate() and the run evaluation pass on
    declared = run(as_float, s, protocol="training", infoe_features="onehot")
    ints = run(idx, s, protocol="training")
    assert declared.metric_id == ints.metric_id
    np.testing.assert_array_equal(declared.infoe_per_factor, ints.infoe_per_factor)
    # Under standalone, a choice other than its rule is named in the ID.
    std = run(values, s, infoe_features="standardized")
    assert std.metric_id == "infomec/discrete-prune20-std-insample@1"
    np.testing.assert_array_equal(
        std.infoe_per_factor, run(values, s, protocol="training").infoe_per_factor
    )


def test_factor_on_non_adjacent_codebook_values_scores_lower_infoe_under_training() -> None:
    """The issue's check: factor A spread over non-adjacent values of a scalar codebook.

    Latent 0 takes the codebook's two ends (−0.5 or 0.5, at random) when A = 0 and its
    middle value (0) when A = 1; latent 1 holds factor B on its five values in order.
    Latent 0 determines A, so the plug-in MI is the same in both protocols and so are InfoM
    and InfoC. InfoE differs: the standalone protocol one-hot encodes the values, so a
    linear classifier reads A perfectly (InfoE_A ≈ 1); the training protocol standardises
    the float values into one feature per latent, and no logit linear in latent 0 puts its
    middle apart from both ends, so A is read at chance (InfoE_A ≈ 0). B, on values in
    order, is linearly readable either way. The same codes on *adjacent* values (A = 0 on
    the two lowest) are linearly readable, so the drop is the non-adjacency's.
    """
    rng = np.random.default_rng(3)
    n = 2000
    a, b = rng.integers(0, 2, n), rng.integers(0, 5, n)
    codebook = np.linspace(-0.5, 0.5, 5)
    s = np.stack([a, b], axis=1)
    spread = np.where(a == 0, rng.choice([0, 4], n), 2)  # non-adjacent: 0 and 4 vs 2
    z = codebook[np.stack([spread, b], axis=1)]
    standalone = run(z, s)
    training = run(z, s, protocol="training")
    assert standalone.infoe_per_factor[0] > 0.95
    assert training.infoe_per_factor[0] < 0.05
    assert standalone.infoe_per_factor[1] > 0.95 and training.infoe_per_factor[1] > 0.95
    assert (standalone.infom, standalone.infoc) == (training.infom, training.infoc)

    adjacent = np.where(a == 0, rng.choice([0, 1], n), 2)
    za = codebook[np.stack([adjacent, b], axis=1)]
    assert run(za, s, protocol="training").infoe_per_factor[0] > 0.95


# ---------------------------------------------------------------- options


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"n_neighbors": 10}, "fixes n_neighbors=3; received 10"),
        ({"standardize": True}, "fixes standardize=False; received True"),
        ({"pruning": "standalone"}, "fixes pruning='training'; received 'standalone'"),
        ({"pruning": "none"}, "fixes pruning='training'"),
        ({"estimator": "discrete", "latent_type": "continuous"}, "received 'discrete'"),
        ({"estimator": "knn", "latent_type": "discrete"}, "received 'knn'"),
    ],
)
def test_training_fixes_its_options(continuous, kwargs: dict, match: str) -> None:
    z, s = continuous
    with pytest.raises(ValueError, match=match):
        infomec(z, s, protocol="training", **kwargs)


def test_training_accepts_its_own_values_and_the_histogram_variant(continuous) -> None:
    z, s = continuous
    implicit = run(z, s, seed=0, protocol="training")
    explicit = run(z, s, seed=0, protocol="training", n_neighbors=3, standardize=False,
                   pruning="training", estimator="knn")
    assert explicit.metric_id == implicit.metric_id
    assert explicit.scores() == implicit.scores()
    binned = run(z, s, protocol="training", estimator="histogram")
    assert binned.metric_id == "infomec/training-hist20-prune8-std-insample@1"


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [({"protocol": "paper"}, "protocol must be one of"),
     ({"infoe_features": "dense"}, "infoe_features must be one of")],
)
def test_bad_protocol_options(kwargs: dict, match: str) -> None:
    s = np.indices((2, 2)).reshape(2, -1).T.repeat(5, axis=0)
    with pytest.raises(ValueError, match=match):
        infomec(s * 1.0, s, **kwargs)


def test_protocol_settings_are_the_documented_ones() -> None:
    training = PROTOCOL_SETTINGS["training"]
    assert (training.n_neighbors, training.standardize, training.pruning) == (3, False, "training")
    assert training.fixed and not training.clip_nmi
    standalone = PROTOCOL_SETTINGS["standalone"]
    assert (standalone.n_neighbors, standalone.standardize, standalone.pruning) == (
        10, True, "standalone")
    assert not standalone.fixed and standalone.clip_nmi


def test_evaluate_options_select_the_protocol(continuous) -> None:
    z, s = continuous
    options = {"infomec": {"protocol": "training"}}  # `score -o infomec.protocol=training`
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ev = evaluate(z, s, metrics=["infomec"], mode="fast", options=options, n_jobs=1)
    flat = ev.to_dict()
    assert flat["infomec.metric_id"] == (
        "infomec/training-knn3-prune8-std-insample-max2000-min200perfeature@1"
    )
    direct = run(z, s, seed=0, protocol="training", **METRICS["infomec"].fast_options)
    assert flat["infomec.infom"] == direct.infom and flat["infomec.infoe"] == direct.infoe


def test_registered_index_options_one_hot_indices_under_both_protocols(quantized) -> None:
    _, idx, s = quantized
    as_float = idx.astype(np.float64)  # the run evaluation's representation arrays
    options = METRICS["infomec"].index_options
    standalone = run(as_float, s, **options)
    assert standalone.metric_id == "infomec/discrete-prune20-insample@1"  # unchanged
    assert standalone.scores() == run(as_float, s, latent_type="discrete").scores()
    training = run(as_float, s, protocol="training", **options)
    assert training.metric_id == "infomec/training-discrete-prune8-onehot-insample@1"
    assert training.scores() == run(idx, s, protocol="training").scores()
