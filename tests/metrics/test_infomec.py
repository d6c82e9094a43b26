"""InfoMEC: closed-form cases, a per-pair re-implementation, sklearn InfoE loop, options."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from sklearn.feature_selection import mutual_info_classif
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import log_loss, mutual_info_score
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from disentkit import DisentkitWarning
from disentkit.metrics import METRICS
from disentkit.metrics._mi import MutualInfo, mutual_info_matrix
from disentkit.metrics._mi_cache import MICache
from disentkit.metrics.infomec import InfoMECResult, _null_log_loss, infomec


def grid(*sizes: int, repeat: int = 5) -> np.ndarray:
    """Every combination of factor values, ``repeat`` times: factors exactly independent."""
    return np.indices(sizes).reshape(len(sizes), -1).T.repeat(repeat, axis=0)


MEMORISE = "InfoE is fit and scored on the same"  # the few-rows-per-feature warning


def run(latents: np.ndarray, factors: np.ndarray, **kwargs) -> InfoMECResult:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no convergence/deprecation noise
        # small fixtures have few rows per feature; that warning has its own tests
        warnings.filterwarnings("ignore", message=f"infomec: {MEMORISE}")
        return infomec(latents, factors, **kwargs)


# ---------------------------------------------------------------- closed-form cases


def test_perfect_discrete_codes() -> None:
    s = grid(4, 3, 5)
    r = run(s * 0.1 - 0.3, s)  # quantized-looking values, one latent per factor
    assert r.latent_type == "discrete"
    assert r.infom == 1.0 and r.infoc == 1.0
    assert r.infoe > 0.99
    np.testing.assert_allclose(r.nmi, np.eye(3), atol=1e-12)
    assert r.metric_id == "infomec/discrete-prune20-insample@1"
    assert r.active.all() and r.unencoded_factors == ()


def test_perfect_continuous_codes() -> None:
    s = grid(4, 3, 5, repeat=20)
    rng = np.random.default_rng(0)
    r = run(s + 0.05 * rng.standard_normal(s.shape), s, seed=0)
    assert r.latent_type == "continuous"
    assert r.metric_id == "infomec/knn10std-prune20-insample@1"
    assert r.infom > 0.97 and r.infoc > 0.97 and r.infoe > 0.9


def test_latent_copying_two_factors() -> None:
    s = grid(3, 4, 2)
    z = np.stack([s[:, 0] * 10 + s[:, 1], s[:, 2]], axis=1).astype(float)
    r = run(z, s)
    # z0 carries s0 and s1 fully: ratio 1/2; z1 carries s2 only: ratio 1.
    k = 3
    expected_m = np.mean([(0.5 - 1 / k) / (1 - 1 / k), 1.0])
    assert r.infom == pytest.approx(expected_m, abs=1e-12)
    np.testing.assert_allclose(r.infom_per_latent, [(0.5 - 1 / k) / (1 - 1 / k), 1.0])
    assert r.infoc == pytest.approx(1.0, abs=1e-12)  # each factor lives in one latent


def test_factor_encoded_by_no_latent_scores_zero_and_is_recorded() -> None:
    s = grid(3, 4)
    r = run(s[:, :1] * 1.0, s)  # only factor 0 is encoded
    assert r.unencoded_factors == (1,)
    np.testing.assert_allclose(r.infoc_per_factor, [1.0, 0.0])  # one active latent: 1
    assert r.infoc == pytest.approx(0.5)
    assert np.isfinite(r.infoc)


def test_single_active_latent_and_single_factor_are_defined() -> None:
    s = grid(4, 3)
    one = run(s[:, :1] * 1.0, s[:, :1])  # K = 1 and n_a = 1
    assert one.infom == 1.0 and one.infoc == 1.0
    dead = run(np.zeros((s.shape[0], 2)), s)  # no active latent at all
    assert dead.infom == 0.0 and dead.infoc == 0.0 and dead.infoe == 0.0
    assert not dead.active.any() and dead.unencoded_factors == (0, 1)


def test_independent_latents_baseline() -> None:
    rng = np.random.default_rng(1)
    s = rng.integers(0, 4, (2000, 3))
    r = run(rng.standard_normal((2000, 5)), s, seed=0)
    # Documented: InfoM/InfoC of noise are far from 0; InfoE is ≈ 0.
    assert 0.15 < r.infom < 0.95 and 0.15 < r.infoc < 0.95
    assert 0.0 <= r.infoe < 0.02


# ---------------------------------------------------------------- pruning


def test_pruning_rules() -> None:
    rng = np.random.default_rng(2)
    s = rng.integers(0, 3, (600, 2))
    z = np.stack(
        [
            s[:, 0] + 0.1 * rng.standard_normal(600),  # range ≈ 2.6
            s[:, 1] + 0.1 * rng.standard_normal(600),
            0.01 * rng.standard_normal(600),  # near-constant: < 1/20 of the max range
            0.1 * rng.uniform(-1, 1, 600),  # range ≈ 0.2: between 1/20 and 1/8 of the max
        ],
        axis=1,
    )
    standalone = run(z, s, seed=0)
    training = run(z, s, seed=0, pruning="training")
    none = run(z, s, seed=0, pruning="none")
    np.testing.assert_array_equal(standalone.active, [True, True, False, True])
    np.testing.assert_array_equal(training.active, [True, True, False, False])
    assert none.active.all()
    assert training.metric_id == "infomec/knn10std-prune8-insample@1"
    assert none.metric_id == "infomec/knn10std-noprune-insample@1"
    # Noise latents dilute compactness when they count as active.
    assert training.infoc >= standalone.infoc >= none.infoc
    np.testing.assert_array_equal(standalone.nmi, none.nmi)  # pruning does not touch NMI


def test_discrete_standalone_pruning_keeps_any_nonconstant_latent() -> None:
    s = grid(3, 2, repeat=10)
    z = np.stack([s[:, 0] * 100.0, s[:, 1] * 0.1, np.zeros(len(s))], axis=1)
    r = run(z, s)
    np.testing.assert_array_equal(r.active, [True, True, False])
    np.testing.assert_array_equal(run(z, s, pruning="training").active, [True, False, False])


# ---------------------------------------------------------------- per-pair re-implementation


def classic_infom_infoc(nmi_kd: np.ndarray, active: np.ndarray) -> tuple[float, float]:
    """LQ's formulas on the (factors, latents) NMI matrix, written out with loops."""
    k, _ = nmi_kd.shape
    cols = [j for j in range(nmi_kd.shape[1]) if active[j]]
    n_a = len(cols)
    ratios_m = []
    for j in cols:
        col = [nmi_kd[i, j] for i in range(k)]
        if sum(col) > 0:
            ratios_m.append(max(col) / sum(col))
    infom = (sum(ratios_m) / len(ratios_m) - 1 / k) / (1 - 1 / k)
    ratios_c = []
    for i in range(k):
        row = [nmi_kd[i, j] for j in cols]
        ratios_c.append(max(row) / sum(row) if sum(row) > 0 else 1 / n_a)
    infoc = (sum(ratios_c) / k - 1 / n_a) / (1 - 1 / n_a)
    return infom, infoc


def test_discrete_matches_per_pair_mutual_info_score() -> None:
    rng = np.random.default_rng(3)
    s = rng.integers(0, 4, (800, 3))
    z = np.stack(
        [s[:, 0], (s[:, 1] + (rng.random(800) < 0.3)) % 4, s[:, 2] // 2, rng.integers(0, 5, 800),
         s[:, 0] * 4 + s[:, 2]],
        axis=1,
    ) * 0.5
    r = run(z, s)
    codes = (z * 2).astype(int)
    nmi = np.array(
        [[mutual_info_score(s[:, i], codes[:, j]) / mutual_info_score(s[:, i], s[:, i])
          for j in range(z.shape[1])] for i in range(s.shape[1])]
    )
    np.testing.assert_allclose(r.nmi.T, nmi, atol=1e-12)
    infom, infoc = classic_infom_infoc(nmi, np.ones(z.shape[1], dtype=bool))
    assert r.infom == pytest.approx(infom, abs=1e-12)
    assert r.infoc == pytest.approx(infoc, abs=1e-12)


def test_continuous_matches_per_pair_mutual_info_classif() -> None:
    rng = np.random.default_rng(4)
    s = rng.integers(0, 3, (500, 3))
    mixing = rng.standard_normal((3, 4)) * (rng.random((3, 4)) < 0.5)
    z = s @ mixing + 0.5 * rng.standard_normal((500, 4))
    z[:, 3] *= 0.01  # pruned
    r = run(z, s, seed=0)
    zs = StandardScaler().fit_transform(z)
    nmi = np.array(
        [[mutual_info_classif(zs[:, [j]], s[:, i], n_neighbors=10, random_state=0)[0]
          / mutual_info_score(s[:, i], s[:, i]) for j in range(4)] for i in range(3)]
    )
    nmi = np.clip(nmi, 0, 1)
    # Different jitter draws: equal up to the 1e-10 jitter on tie-free data.
    np.testing.assert_allclose(r.nmi.T, nmi, atol=1e-8)
    infom, infoc = classic_infom_infoc(nmi, r.active)
    assert r.infom == pytest.approx(infom, abs=1e-7)
    assert r.infoc == pytest.approx(infoc, abs=1e-7)
    # And exactly, from the same MI matrix.
    h = np.array([mutual_info_score(s[:, i], s[:, i]) for i in range(3)])
    mi = MutualInfo(
        matrix=nmi.T * h, factor_entropy=h, estimator="knn",
        options={"n_neighbors": 10, "standardize": True}, n_samples=500,
    )
    exact = run(z, s, seed=0, mi=mi)
    assert exact.infom == pytest.approx(infom, abs=1e-12)
    assert exact.infoc == pytest.approx(infoc, abs=1e-12)


# ---------------------------------------------------------------- InfoE against sklearn


def sklearn_infoe(features, s: np.ndarray) -> np.ndarray:
    out = []
    for i in range(s.shape[1]):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            kw = dict(C=np.inf, solver="lbfgs", max_iter=100, tol=1e-4, class_weight="balanced")
            model = LogisticRegression(**kw).fit(features, s[:, i])
            ce = log_loss(s[:, i], model.predict_proba(features))
            zeros = np.zeros((s.shape[0], 3))
            null = LogisticRegression(**kw).fit(zeros, s[:, i])
            h = log_loss(s[:, i], null.predict_proba(zeros))
        out.append((h - ce) / h)
    return np.array(out)


def test_infoe_continuous_matches_a_plain_sklearn_loop() -> None:
    rng = np.random.default_rng(5)
    s = rng.integers(0, 5, (700, 3))
    z = s @ rng.standard_normal((3, 4)) + rng.standard_normal((700, 4))
    r = run(z, s, seed=0)
    expected = sklearn_infoe(StandardScaler().fit_transform(z), s)
    np.testing.assert_allclose(r.infoe_per_factor, expected, atol=1e-9)
    assert r.infoe == pytest.approx(expected.mean(), abs=1e-9)
    np.testing.assert_allclose(r.null_entropy, np.log(5), atol=1e-12)  # balanced weights


def test_null_entropy_equals_a_fitted_null_model_on_imbalanced_classes() -> None:
    # The closed form log C against the reference's fitted null model, with very unequal
    # class sizes, and scored on held-out rows whose class mix differs from the fit rows.
    rng = np.random.default_rng(8)
    y = rng.choice(4, size=900, p=[0.7, 0.2, 0.07, 0.03])
    fit, score = y[:600], np.sort(y[600:])
    kw = dict(C=np.inf, solver="lbfgs", max_iter=100, tol=1e-4, class_weight="balanced")
    null = LogisticRegression(**kw).fit(np.zeros((600, 1)), fit)
    fitted = log_loss(score, null.predict_proba(np.zeros((300, 1))), labels=null.classes_)
    assert _null_log_loss(np.unique(fit).size) == pytest.approx(fitted, abs=1e-12)
    z = np.column_stack([y + rng.standard_normal(900), rng.standard_normal(900)])
    r = run(z, y[:, None], seed=0, infoe_split="heldout", train_fraction=2 / 3)
    np.testing.assert_allclose(r.null_entropy, fitted, atol=1e-12)


def test_infoe_discrete_matches_a_plain_sklearn_loop() -> None:
    rng = np.random.default_rng(6)
    s = rng.integers(0, 3, (600, 2))
    z = np.stack([s[:, 0], (s[:, 1] + rng.integers(0, 2, 600)) % 3, rng.integers(0, 4, 600)], 1)
    r = run(z * 0.25, s)
    assert r.latent_type == "discrete"
    expected = sklearn_infoe(OneHotEncoder().fit_transform(z), s)
    np.testing.assert_allclose(r.infoe_per_factor, expected, atol=1e-6)


def test_heldout_infoe_and_clipping() -> None:
    rng = np.random.default_rng(7)
    s = rng.integers(0, 3, (200, 2))
    noise = rng.standard_normal((200, 12))
    same = run(noise, s, seed=0)
    held = run(noise, s, seed=0, infoe_split="heldout")
    assert held.metric_id == "infomec/knn10std-prune20-heldout80@1"
    assert held.options["n_train"] == 160 and held.options["n_test"] == 40
    assert same.infoe > 0 and same.infoe_clipped == ()  # in-sample: a little above the null
    worse = tuple(np.flatnonzero(held.cross_entropy > held.null_entropy).tolist())
    assert worse and held.infoe_clipped == worse  # out of sample, noise does worse
    assert np.all(held.infoe_per_factor[list(worse)] == 0.0)
    assert held.infoe < same.infoe


def test_heldout_needs_every_test_class_in_training() -> None:
    s = np.array([[0], [1]] * 20 + [[2]] * 10)
    z = np.random.default_rng(0).standard_normal((50, 2))
    with pytest.raises(ValueError, match="held-out rows"):
        run(z, s, infoe_split="heldout")
    run(z, s, infoe_split="heldout", shuffle=True, seed=1)  # shuffled: fine


def test_infoe_max_samples_uses_a_subsample() -> None:
    rng = np.random.default_rng(8)
    s = rng.integers(0, 3, (900, 2))
    z = s + 0.8 * rng.standard_normal((900, 2))
    full = run(z, s, seed=0)
    fast = run(z, s, seed=0, infoe_max_samples=300)
    assert fast.metric_id.endswith("-insample-max300@1")
    assert (fast.infom, fast.infoc) == (full.infom, full.infoc)
    expected = sklearn_infoe(StandardScaler().fit_transform(z)[:300], s[:300])
    # Standardised with all rows here vs the subsample there: same model up to lbfgs.
    np.testing.assert_allclose(fast.infoe_per_factor, expected, atol=1e-4)
    assert fast.infoe == pytest.approx(full.infoe, abs=0.05)


def test_rows_per_feature_floor_raises_the_cap() -> None:
    rng = np.random.default_rng(10)
    s = rng.integers(0, 3, (3000, 2))
    z = np.clip(s * 4 + rng.integers(-1, 2, s.shape), 0, 9)  # 2 latents, 8 values each
    r = run(z, s, seed=0, infoe_max_samples=300, infoe_rows_per_feature=50)
    assert r.options["infoe_n_features"] == 16  # one-hot columns
    assert r.options["infoe_rows_fit"] == 800  # max(300, 50 × 16)
    assert r.metric_id.endswith("-insample-max300-min50perfeature@1")
    capped = run(z, s, seed=0, infoe_max_samples=800)
    np.testing.assert_array_equal(r.infoe_per_factor, capped.infoe_per_factor)
    continuous = run(z + 0.1 * rng.standard_normal(z.shape), s, latent_type="continuous",
                     infoe_max_samples=300, infoe_rows_per_feature=50)
    assert continuous.options["infoe_rows_fit"] == 300  # 2 features: the cap stands


@pytest.mark.parametrize("n_values", [10, 20])
def test_fast_mode_infoe_stays_near_the_reference_on_wide_discrete_codes(n_values) -> None:
    # Quantized codes (2 noisy copies of each of 5 factors) and random codes of the same
    # width, 10,000 rows. A fixed 2,000-row cap moved in-sample InfoE by 0.07 (10 values)
    # to 0.14–0.18 (20 values) here; the rows-per-feature floor keeps fast mode close.
    rng = np.random.default_rng(11)
    sizes = np.array([4, 6, 8, 10, 12])
    s = np.stack([rng.integers(0, c, 10_000) for c in sizes], axis=1)
    scaled = s / (sizes - 1) * (n_values - 1)
    z = np.concatenate([np.clip(np.round(scaled + rng.normal(0, 0.1 * n_values, s.shape)),
                                0, n_values - 1) for _ in range(2)], axis=1).astype(int)
    for latents in (z, rng.integers(0, n_values, z.shape)):
        ref = run(latents, s)
        fast = run(latents, s, **METRICS["infomec"].fast_options)
        assert abs(fast.infoe - ref.infoe) <= 0.01


def test_few_rows_per_feature_in_sample_warns() -> None:
    rng = np.random.default_rng(12)
    s = rng.integers(0, 4, (1000, 1))
    codes = rng.integers(0, 10, (1000, 3))  # 30 one-hot columns: 33 rows per feature
    with pytest.warns(DisentkitWarning, match=r"1000 rows with 30 one-hot features \(33\.3"):
        infomec(codes, s)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        infomec(codes, s, infoe_split="heldout")  # scored on unseen rows: no warning
        infomec(rng.standard_normal((1000, 3)), s)  # 333 rows per latent
        infomec(codes, s, infoe=False)


def test_parallel_fits_are_identical() -> None:
    rng = np.random.default_rng(9)
    s = rng.integers(0, 4, (400, 3))
    z = s @ rng.standard_normal((3, 3)) + rng.standard_normal((400, 3))
    a = run(z, s, seed=0, n_jobs=1)
    b = run(z, s, seed=0, n_jobs=2)
    np.testing.assert_array_equal(a.infoe_per_factor, b.infoe_per_factor)


# ---------------------------------------------------------------- invariances


def test_invariances() -> None:
    rng = np.random.default_rng(10)
    s = rng.integers(0, 4, (600, 3))
    z = s @ rng.standard_normal((3, 4)) + 0.7 * rng.standard_normal((600, 4))
    base = run(z, s, seed=0).scores()
    perm = [2, 0, 3, 1]
    relabelled = np.stack([s[:, 0] * 7 - 3, 3 - s[:, 1], s[:, 2] + 100], axis=1)
    # One common scale (pruning compares raw ranges across latents), any shifts and signs.
    affine = z * np.array([2.0, -2.0, 2.0, 2.0]) + np.array([5.0, 0.0, -3.0, 1e3])
    for z2, s2 in ((z[:, perm], s), (z, relabelled), (affine, s), (z, s[:, [2, 0, 1]])):
        other = run(z2, s2, seed=0).scores()
        for key, value in base.items():
            assert other[key] == pytest.approx(value, abs=1e-6), key


def test_discrete_invariant_to_relabelling_latent_values() -> None:
    s = np.random.default_rng(11).integers(0, 3, (300, 2))
    z = np.stack([s[:, 0], s[:, 1] * (s[:, 0] > 0)], axis=1).astype(float)
    a = run(z, s).scores()
    b = run(np.stack([np.array([0.3, -1.0, 9.0])[s[:, 0]], -z[:, 1]], 1), s).scores()
    assert a == pytest.approx(b, abs=1e-9)


# ---------------------------------------------------------------- options and inputs


def test_latent_type_detection() -> None:
    rng = np.random.default_rng(12)
    s = rng.integers(0, 3, (400, 2))
    codebook = np.linspace(-0.5, 0.5, 10) + 0.013  # trained, non-integral values
    quantized = codebook[rng.integers(0, 10, (400, 3))]
    assert run(quantized, s).latent_type == "discrete"
    assert run(rng.standard_normal((400, 3)), s, seed=0).latent_type == "continuous"
    many = rng.integers(0, 65, (400, 1)).astype(float)  # 65 values > 64
    assert run(many, s, seed=0).latent_type == "continuous"
    forced = run(quantized, s, latent_type="continuous", seed=0)
    assert forced.latent_type == "continuous" and forced.options["estimator"] == "knn"


def test_estimator_choices_and_ids() -> None:
    s = grid(3, 4, repeat=10)
    z = s + 0.1 * np.random.default_rng(0).standard_normal(s.shape)
    hist = run(z, s, estimator="histogram")
    assert hist.metric_id == "infomec/hist20-prune20-insample@1"
    knn3 = run(z, s, n_neighbors=3, standardize=False, pruning="training", seed=0)
    assert knn3.metric_id == "infomec/knn3-prune8-insample@1"
    d = knn3.to_dict()
    assert d["options.n_neighbors"] == 3 and d["options.pruning"] == "training"
    assert isinstance(d["infom"], float) and isinstance(d["nmi"], list)


def test_precomputed_mi_and_cache() -> None:
    rng = np.random.default_rng(13)
    s = rng.integers(0, 3, (300, 2))
    z = s + rng.standard_normal((300, 2))
    direct = run(z, s, seed=3)
    pre = mutual_info_matrix(z, s, estimator="knn", n_neighbors=10, standardize=True, seed=3)
    assert run(z, s, seed=3, mi=pre).scores() == direct.scores()
    cache = MICache()
    assert run(z, s, seed=3, mi=cache).scores() == direct.scores()
    assert len(cache) == 1
    wrong = mutual_info_matrix(z, s, estimator="knn", n_neighbors=3, seed=3)
    with pytest.raises(ValueError, match="precomputed mi"):
        run(z, s, mi=wrong)
    with pytest.raises(ValueError, match="shape"):
        run(z[:, :1], s, mi=pre)
    with pytest.raises(TypeError, match="mi must be"):
        run(z, s, mi=np.zeros((2, 2)))


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"latent_type": "binary"}, "latent_type"),
        ({"pruning": "strict"}, "pruning"),
        ({"infoe_split": "test"}, "infoe_split"),
        ({"estimator": "kde"}, "estimator"),
        ({"n_neighbors": 0}, "n_neighbors"),
        ({"n_bins": 1}, "n_bins"),
        ({"train_fraction": 1.5}, "train_fraction"),
        ({"infoe_max_samples": 1}, "infoe_max_samples"),
        ({"infoe_rows_per_feature": 0}, "infoe_rows_per_feature"),
        ({"standardize": "yes"}, "standardize"),
        ({"shuffle": 1}, "shuffle"),
    ],
)
def test_bad_options(kwargs: dict, match: str) -> None:
    s = grid(2, 2)
    with pytest.raises(ValueError, match=match):
        infomec(s * 1.0, s, **kwargs)


def test_inputs_and_skipped_factors() -> None:
    s = grid(3, 2, repeat=10)
    with pytest.raises(ValueError, match="same number of samples"):
        infomec(np.zeros((5, 2)), s)
    with_constant = np.concatenate([s, np.full((len(s), 1), 4)], axis=1)
    with (pytest.warns(DisentkitWarning, match="single value"),
          pytest.warns(DisentkitWarning, match="12.0 rows per feature")):  # 60 rows, 5 features
        r = infomec(s * 1.0, with_constant)
    assert r.skipped_factors == (2,) and r.nmi.shape == (2, 2)
    one_class_in_subsample = np.concatenate([np.zeros((50, 1)), np.ones((10, 1))]).astype(int)
    with pytest.raises(ValueError, match="at least 2 classes"):
        infomec(np.random.default_rng(0).standard_normal((60, 2)), one_class_in_subsample,
                infoe_max_samples=40)


def test_registry_entry() -> None:
    info = METRICS["infomec"]
    assert info.score_names == ("infom", "infoc", "infoe")
    assert all(sc.bounds == (0.0, 1.0) and sc.higher_is_better for sc in info.scores)
    flags = {sc.name: sc.zero_when_independent for sc in info.scores}
    assert flags == {"infom": False, "infoc": False, "infoe": True}
    assert info.fast_options == {"infoe_max_samples": 2000, "infoe_rows_per_feature": 200}


def test_infoe_can_be_skipped_for_large_inputs() -> None:
    rng = np.random.default_rng(0)
    s = rng.integers(0, 4, size=(600, 2))
    z = s + 0.2 * rng.standard_normal(s.shape)
    full = infomec(z, s)
    skipped = infomec(z, s, infoe=False)
    assert np.isnan(skipped.infoe) and skipped.metric_id.endswith("-noinfoe@1")
    assert (skipped.infom, skipped.infoc) == (full.infom, full.infoc)


def test_infoe_on_a_subsample_equals_infoe_on_those_rows_alone() -> None:
    rng = np.random.default_rng(1)
    s = rng.integers(0, 3, size=(900, 2))
    z = s + 0.5 * rng.standard_normal(s.shape)
    sub = infomec(z, s, infoe_max_samples=300)
    alone = infomec(z[:300], s[:300])
    np.testing.assert_allclose(sub.infoe_per_factor, alone.infoe_per_factor, atol=1e-12)


def test_float32_latents_with_the_histogram_estimator_are_not_copied_and_agree() -> None:
    rng = np.random.default_rng(2)
    s = rng.integers(0, 4, size=(500, 2))
    z = (s + 0.3 * rng.standard_normal(s.shape)).astype(np.float32)
    a = infomec(z, s, estimator="histogram", latent_type="continuous", infoe=False)
    b = infomec(z.astype(np.float64), s, estimator="histogram", latent_type="continuous",
                infoe=False)
    assert (a.infom, a.infoc) == (b.infom, b.infoc)
