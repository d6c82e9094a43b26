"""BetaVAE and FactorVAE scores and their sampler/representation interface.

Reduced sample sizes keep this file fast; the reference defaults are checked as recorded
options. Chance-level tolerances are 4 binomial standard deviations of the accuracy,
``4·sqrt(p(1 − p)/n_eval)`` with ``p = 1/K``: under a representation independent of the
observations, each evaluation label is uniform and independent of the prediction, so the
accuracy is a binomial proportion with mean exactly ``1/K``, whatever the classifier.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from disentkit import DisentkitWarning
from disentkit._random import as_generator, int_seed
from disentkit.metrics import METRICS
from disentkit.metrics.beta_vae import BetaVAEResult, beta_vae_score
from disentkit.metrics.factor_vae import FactorVAEResult, factor_vae_score
from disentkit.metrics.sampling import (
    POINTS_PER_DRAW,
    GroundTruthSampler,
    IdentityFactors,
    encode_factors,
)

SIZES = (3, 4, 5)
K = len(SIZES)
MIXING = np.random.default_rng(2).normal(size=(3, 4))  # observations mix the factors
SMALL = {"n_train": 300, "n_eval": 200, "batch_size": 16}
FV_SMALL = {**SMALL, "n_variance_estimate": 500}


def identity(x: np.ndarray) -> np.ndarray:
    return x


def noise_representation(seed: int, dim: int = 4):
    """Latents independent of the observations."""
    rng = np.random.default_rng(seed)
    return lambda x: rng.standard_normal((len(x), dim))


def chance_tolerance(n_eval: int, k: int = K) -> float:
    p = 1.0 / k
    return 4.0 * math.sqrt(p * (1 - p) / n_eval)


def grid(sizes) -> np.ndarray:
    """Every factor configuration, ``(prod(sizes), len(sizes))``."""
    axes = np.meshgrid(*[np.arange(s) for s in sizes], indexing="ij")
    return np.stack(axes, axis=-1).reshape(-1, len(sizes))


@pytest.fixture
def data() -> IdentityFactors:
    return IdentityFactors(SIZES)


def run_quiet(fn, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no convergence/deprecation noise either
        return fn(*args, **kwargs)


# --- the interface ---------------------------------------------------------------------------


def test_identity_factors_is_a_ground_truth_sampler(data) -> None:
    assert isinstance(data, GroundTruthSampler)
    f = data.sample_factors(1000, np.random.default_rng(0))
    assert f.shape == (1000, K) and np.issubdtype(f.dtype, np.integer)
    assert (f.min(axis=0) == 0).all() and (f.max(axis=0) == np.array(SIZES) - 1).all()
    np.testing.assert_array_equal(data.images_from_factors(f), f.astype(float))


def test_identity_factors_transforms() -> None:
    f = np.array([[0, 1, 2], [2, 3, 4]])
    perm = IdentityFactors(SIZES, transform=np.array([2, 0, 1]))
    np.testing.assert_array_equal(perm.images_from_factors(f), f[:, [2, 0, 1]])
    a = np.arange(6.0).reshape(3, 2)
    mat = IdentityFactors(SIZES, transform=a)
    np.testing.assert_allclose(mat.images_from_factors(f), f @ a)
    assert mat.observation_dim == 2


def test_identity_factors_noise_is_fixed_per_configuration() -> None:
    data = IdentityFactors(SIZES, noise=0.5, seed=3)
    f = data.sample_factors(20_000, np.random.default_rng(1))
    x = data.images_from_factors(f)
    # Pure: the same configuration gives the same observation, in any batch.
    np.testing.assert_array_equal(data.images_from_factors(f[::-1])[::-1], x)
    np.testing.assert_array_equal(data.images_from_factors(f[:7]), x[:7])
    # The perturbation is standard normal across configurations and changes with the seed.
    big = grid((50, 50, 40))
    e = IdentityFactors((50, 50, 40), noise=1.0).images_from_factors(big) - big
    assert abs(e.mean()) < 0.01 and abs(e.std() - 1.0) < 0.01
    assert abs(np.corrcoef(e.T)[0, 1]) < 0.01
    small = grid(SIZES)
    other = IdentityFactors(SIZES, noise=0.5, seed=4).images_from_factors(small)
    assert not np.allclose(other, data.images_from_factors(small))


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"factor_sizes": []}, "factor_sizes"),
        ({"factor_sizes": [3, 0]}, "factor_sizes"),
        ({"factor_sizes": [3, 4], "noise": -1.0}, "noise"),
        ({"factor_sizes": [3, 4], "transform": np.array([0, 0])}, "permutation"),
        ({"factor_sizes": [3, 4], "transform": np.ones((3, 2))}, r"\(2, M\)"),
    ],
)
def test_identity_factors_rejects_bad_arguments(kwargs, match) -> None:
    with pytest.raises(ValueError, match=match):
        IdentityFactors(**kwargs)


def bad_1d(x):
    return x[:, 0]


def bad_rows(x):
    return x[:-1]


def bad_nan(x):
    out = x.copy()
    out[0, 0] = np.nan
    return out


@pytest.mark.parametrize(
    ("rep", "exc", "match"),
    [
        (bad_1d, ValueError, r"bad_1d must return a 2-D array .* returned shape \(\d+,\)"),
        (bad_rows, ValueError, r"bad_rows .* batch of \d+ observations it returned shape \(\d+, 3"),
        (bad_nan, ValueError, "bad_nan must return finite values"),
        (lambda x: np.array(["a"] * len(x))[:, None], TypeError, "real numeric array"),
    ],
)
@pytest.mark.parametrize("metric", [beta_vae_score, factor_vae_score])
def test_bad_representation_output_is_named(metric, rep, exc, match, data) -> None:
    with pytest.raises(exc, match=match):
        metric(data, rep, **FV_SMALL if metric is factor_vae_score else SMALL)


def test_changing_number_of_latents_is_rejected(data) -> None:
    calls = iter(range(10**6))

    def flaky(x):
        return x if next(calls) == 0 else x[:, :2]

    with pytest.raises(ValueError, match=r"returned 2 latents .* after returning 3"):
        encode_factors(data, flaky, data.sample_factors(50, np.random.default_rng(0)),
                       encode_batch_size=20)


def test_representation_is_called_on_large_batches(data) -> None:
    sizes_seen: list[int] = []

    def counting(x):
        sizes_seen.append(len(x))
        return x

    beta_vae_score(data, counting, **SMALL, encode_batch_size=1000)
    total = 2 * SMALL["batch_size"] * (SMALL["n_train"] + SMALL["n_eval"])
    assert sum(sizes_seen) == total
    assert max(sizes_seen) <= 1000
    # One call per 1000 observations of each draw block, not one per point.
    blocks = [min(POINTS_PER_DRAW, n - s) for n in (300, 200) for s in range(0, n, 256)]
    assert len(sizes_seen) == sum(math.ceil(2 * 16 * m / 1000) for m in blocks)


class _Missing:
    factor_sizes = (3, 4)

    def sample_factors(self, n, rng):
        return rng.integers(0, 3, (n, 2))


class _OutOfRange(IdentityFactors):
    def sample_factors(self, n, rng):
        f = super().sample_factors(n, rng)
        f[0, 1] = 99
        return f


class _WrongShape(IdentityFactors):
    def sample_factors(self, n, rng):
        return super().sample_factors(n, rng)[:, :2]


@pytest.mark.parametrize("metric", [beta_vae_score, factor_vae_score])
def test_bad_samplers_are_rejected(metric) -> None:
    with pytest.raises(TypeError, match="without images_from_factors"):
        metric(_Missing(), identity)
    with pytest.raises(ValueError, match=r"outside \[0, factor_size\) for factor 1"):
        metric(_OutOfRange(SIZES), identity, **SMALL)
    with pytest.raises(ValueError, match=r"must return shape \(\d+, 3\); received shape"):
        metric(_WrongShape(SIZES), identity, **SMALL)


@pytest.mark.parametrize(
    ("option", "value", "match"),
    [
        ("batch_size", 0, "batch_size must be an integer ≥ 1"),
        ("n_train", 1, "n_train must be an integer ≥ 2"),
        ("n_eval", 0, "n_eval"),
        ("encode_batch_size", 0, "encode_batch_size"),
        ("classifier", "svm", "classifier must be one of"),
        ("n_train", 2.5, "n_train"),
    ],
)
def test_beta_vae_rejects_bad_options(option, value, match, data) -> None:
    with pytest.raises(ValueError, match=match):
        beta_vae_score(data, identity, **{**SMALL, option: value})


@pytest.mark.parametrize(
    ("option", "value", "match"),
    [
        ("batch_size", 1, "batch_size must be an integer ≥ 2"),
        ("n_variance_estimate", 1, "n_variance_estimate"),
        ("prune_threshold", -0.1, "prune_threshold"),
        ("prune_threshold", float("nan"), "prune_threshold"),
        ("prune_on", "range", "prune_on must be one of"),
    ],
)
def test_factor_vae_rejects_bad_options(option, value, match, data) -> None:
    with pytest.raises(ValueError, match=match):
        factor_vae_score(data, identity, **{**FV_SMALL, option: value})


def test_seed_type_is_checked(data) -> None:
    with pytest.raises(TypeError, match="seed"):
        beta_vae_score(data, identity, **SMALL, seed="0")


# --- registry --------------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "func"), [("beta_vae", beta_vae_score),
                                            ("factor_vae", factor_vae_score)])
def test_registered_as_sampling_metrics(name, func, data) -> None:
    info = METRICS[name]
    assert info.func is func and info.kind == "sampling"
    assert info.score_names == ("score", "train_accuracy")
    assert all(s.bounds == (0.0, 1.0) and not s.zero_when_independent for s in info.scores)
    assert func.__kwdefaults__["n_train"] == 10_000 and func.__kwdefaults__["n_eval"] == 5_000
    assert func.__kwdefaults__["batch_size"] == 64
    small = FV_SMALL if name == "factor_vae" else SMALL
    result = func(data, identity, **{**small, **info.fast_options, "batch_size": 8})
    d = result.to_dict()
    assert d["metric_id"].startswith(name) and isinstance(d["score"], float)
    assert d["options.n_train"] == info.fast_options["n_train"]


def test_metric_ids_name_the_estimator_choices(data) -> None:
    assert beta_vae_score(data, identity, **SMALL).metric_id == "beta_vae/b16@1"
    lib = beta_vae_score(data, identity, **SMALL, classifier="liblinear_ovr")
    assert lib.metric_id == "beta_vae/b16-liblinear_ovr@1"
    assert factor_vae_score(data, identity, **FV_SMALL).metric_id == "factor_vae/b16-prune0.05@1"
    r = factor_vae_score(data, identity, **FV_SMALL, prune_on="variance", prune_threshold=0.01)
    assert r.metric_id == "factor_vae/b16-prunevar0.01@1"
    assert beta_vae_score.__kwdefaults__["classifier"] == "lbfgs"
    assert factor_vae_score.__kwdefaults__["prune_threshold"] == 0.05
    assert factor_vae_score.__kwdefaults__["prune_on"] == "std"


# --- BetaVAE ---------------------------------------------------------------------------------


def test_beta_vae_identity_is_perfect(data) -> None:
    # The fixed factor's feature is exactly 0 and every other is > 0 unless all 16 pairs
    # agree on it (probability ≤ (1/3)^16): the classes are linearly separable.
    r = run_quiet(beta_vae_score, data, identity, **SMALL)
    assert isinstance(r, BetaVAEResult)
    assert r.score == 1.0 and r.train_accuracy == 1.0 and r.eval_accuracy == r.score
    np.testing.assert_array_equal(np.diag(r.confusion), r.confusion.sum(axis=1))
    assert r.confusion.sum() == SMALL["n_eval"] and r.n_latents == K
    assert r.classifier_n_iter < 100


def test_beta_vae_noise_is_at_chance(data) -> None:
    r = beta_vae_score(data, noise_representation(0), n_train=500, n_eval=2000, batch_size=8)
    assert abs(r.score - 1 / K) < chance_tolerance(2000)


def test_beta_vae_does_not_see_a_missing_factor(data) -> None:
    # Known weakness the FactorVAE score fixes: if one factor is not encoded, "no feature
    # is zero" still identifies it, so the BetaVAE score stays 1.
    r = beta_vae_score(data, lambda x: x[:, :2], **SMALL)
    assert r.score == 1.0


def test_beta_vae_matches_a_per_point_loop() -> None:
    """The vectorised pair construction equals a classic point-by-point computation."""
    sizes = np.array([3, 4, 5])
    data = IdentityFactors(sizes, noise=0.7, transform=np.random.default_rng(5).normal(size=(3, 4)))
    opts = {"n_train": 300, "n_eval": 280, "batch_size": 4}
    r = beta_vae_score(data, identity, **opts, seed=9)

    rng = as_generator(9)

    def classic(n):
        labels = rng.integers(0, 3, n)
        feats = []
        for start in range(0, n, POINTS_PER_DRAW):
            m = min(POINTS_PER_DRAW, n - start)
            f1 = data.sample_factors(m * 4, rng).reshape(m, 4, 3)
            f2 = data.sample_factors(m * 4, rng).reshape(m, 4, 3)
            for i in range(m):  # one point at a time, as disentanglement_lib does
                k = labels[start + i]
                a, b = f1[i].copy(), f2[i].copy()
                b[:, k] = a[:, k]
                za = data.images_from_factors(a)
                zb = data.images_from_factors(b)
                feats.append(np.mean(np.abs(za - zb), axis=0))
        return labels, np.array(feats)

    y_train, x_train = classic(300)
    model = LogisticRegression(random_state=int_seed(rng)).fit(x_train, y_train)
    y_eval, x_eval = classic(280)
    assert r.train_accuracy == pytest.approx(np.mean(model.predict(x_train) == y_train), abs=1e-12)
    assert r.score == pytest.approx(model.score(x_eval, y_eval), abs=1e-12)
    assert 0.5 < r.score < 1.0  # a non-trivial case


def test_beta_vae_is_deterministic_and_batching_free(data) -> None:
    noisy = IdentityFactors(SIZES, noise=1.5)
    a = beta_vae_score(noisy, identity, **SMALL, seed=3)
    b = beta_vae_score(noisy, identity, **SMALL, seed=3, encode_batch_size=77)
    assert a.scores() == b.scores()
    np.testing.assert_array_equal(a.confusion, b.confusion)
    c = beta_vae_score(noisy, identity, **SMALL, seed=4)
    assert not np.array_equal(a.confusion, c.confusion)
    g = beta_vae_score(noisy, identity, **SMALL, seed=np.random.default_rng(3))
    assert g.scores() == a.scores() and g.options["seed"] == "Generator"


def test_beta_vae_liblinear_ovr_classifier(data) -> None:
    r = run_quiet(beta_vae_score, data, identity, **SMALL, classifier="liblinear_ovr")
    assert r.score == 1.0 and r.options["classifier"] == "liblinear_ovr"


def test_beta_vae_skips_a_constant_factor() -> None:
    data = IdentityFactors((3, 1, 4))
    with pytest.warns(DisentkitWarning, match="single value"):
        r = beta_vae_score(data, identity, **SMALL)
    assert r.skipped_factors == (1,) and r.kept_factors == (0, 2)
    assert r.confusion.shape == (2, 2) and r.score == 1.0


def test_beta_vae_needs_two_varying_factors() -> None:
    with pytest.raises(ValueError, match="at least 2 factor"):
        beta_vae_score(IdentityFactors((5, 1)), identity, **SMALL)


def test_beta_vae_single_class_training_set_is_an_error() -> None:
    # With n_train=2 the two points fix the same factor for some seed: a clear error.
    data = IdentityFactors((3, 4))
    for seed in range(50):
        labels = as_generator(seed).integers(0, 2, 2)
        if labels[0] == labels[1]:
            break
    with pytest.raises(ValueError, match="two classes"):
        beta_vae_score(data, identity, n_train=2, n_eval=2, batch_size=4, seed=seed)


# --- FactorVAE -------------------------------------------------------------------------------


def test_factor_vae_identity_is_perfect(data) -> None:
    # Fixing factor k makes latent k constant over the batch (ratio 0); every other latent
    # varies unless all 16 draws agree on it, so the vote is always latent k.
    r = run_quiet(factor_vae_score, data, identity, **FV_SMALL)
    assert isinstance(r, FactorVAEResult)
    assert r.score == 1.0 and r.train_accuracy == 1.0 and r.eval_accuracy == 1.0
    assert r.n_active == K and r.active.all() and r.reason == ""
    np.testing.assert_array_equal(r.latent_to_factor, [0, 1, 2])
    assert (r.eval_votes == np.diag(np.diag(r.eval_votes))).all()
    assert r.eval_votes.sum() == FV_SMALL["n_eval"]
    assert r.train_votes.sum() == FV_SMALL["n_train"]
    # Global std of a uniform factor with s classes: sqrt((s² − 1)/12).
    np.testing.assert_allclose(r.global_std, np.sqrt((np.array(SIZES) ** 2 - 1) / 12), rtol=0.1)


def test_factor_vae_ignoring_one_factor_loses_its_votes(data) -> None:
    n_eval = 3000
    r = factor_vae_score(data, lambda x: x[:, :2], **{**FV_SMALL, "n_eval": n_eval})
    # Votes for the unencoded factor go to latents that predict other factors: exactly the
    # votes with factor 2 are wrong.
    assert r.score == pytest.approx(1 - r.eval_votes[2].sum() / n_eval, abs=1e-12)
    assert abs(r.score - (K - 1) / K) < chance_tolerance(n_eval)  # same binomial spread


def test_factor_vae_noise_is_at_chance(data) -> None:
    r = factor_vae_score(data, noise_representation(1), n_train=500, n_eval=2000,
                         batch_size=8, n_variance_estimate=500)
    assert abs(r.score - 1 / K) < chance_tolerance(2000)


def test_factor_vae_dead_latent_never_votes(data) -> None:
    def with_dead(x):
        return np.c_[x, np.full(len(x), 3.0)]

    for threshold in (0.05, 0.0):  # even without pruning (dlib would let it win every vote)
        r = run_quiet(factor_vae_score, data, with_dead, **FV_SMALL, prune_threshold=threshold)
        assert r.score == 1.0 and r.n_active == K and not r.active[3]
        assert r.eval_votes[:, 3].sum() == 0 and r.train_votes[:, 3].sum() == 0


def test_factor_vae_prune_rules(data) -> None:
    # A latent copying factor 0 scaled to std 0.1·sqrt(2/3) ≈ 0.082 (variance ≈ 0.0067):
    # kept by the std rule at 0.05, pruned by a variance rule at 0.05.
    def scaled(x):
        return np.c_[0.1 * x[:, :1], x[:, 1:]]

    by_std = factor_vae_score(data, scaled, **FV_SMALL)
    assert by_std.n_active == 3 and by_std.score == 1.0
    by_var = factor_vae_score(data, scaled, **FV_SMALL, prune_on="variance")
    assert by_var.n_active == 2 and not by_var.active[0]
    assert by_var.score == pytest.approx(1 - by_var.eval_votes[0].sum() / FV_SMALL["n_eval"])


def test_factor_vae_without_active_latents_scores_zero(data) -> None:
    r = factor_vae_score(data, lambda x: 1e-3 * x, **FV_SMALL)
    assert r.score == 0.0 and r.train_accuracy == 0.0 and r.n_active == 0
    assert "no active latent" in r.reason
    assert r.eval_votes.sum() == 0
    assert r.to_dict()["reason"] == r.reason
    const = factor_vae_score(data, lambda x: np.zeros((len(x), 2)), **FV_SMALL,
                             prune_threshold=0.0)
    assert const.score == 0.0 and const.n_active == 0


def test_factor_vae_invariant_to_latent_scale_and_order(data) -> None:
    noisy = IdentityFactors(SIZES, noise=0.8, transform=MIXING)
    base = factor_vae_score(noisy, identity, **FV_SMALL, seed=5)
    assert 0.4 < base.score < 1.0  # a non-trivial case
    scale = np.array([3.0, 0.5, 7.0, 2.0])
    scaled = factor_vae_score(noisy, lambda x: x * scale, **FV_SMALL, seed=5)
    np.testing.assert_array_equal(scaled.eval_votes, base.eval_votes)
    assert scaled.score == base.score
    perm = np.array([2, 0, 3, 1])
    permuted = factor_vae_score(noisy, lambda x: x[:, perm], **FV_SMALL, seed=5)
    np.testing.assert_array_equal(permuted.eval_votes, base.eval_votes[:, perm])
    assert permuted.score == base.score


def test_factor_vae_matches_a_per_vote_loop() -> None:
    noisy = IdentityFactors(SIZES, noise=0.8, transform=MIXING)
    opts = {"n_train": 300, "n_eval": 270, "batch_size": 6, "n_variance_estimate": 400}
    r = factor_vae_score(noisy, identity, **opts, seed=8)

    rng = as_generator(8)
    z = noisy.images_from_factors(noisy.sample_factors(400, rng))
    global_var = np.var(z, axis=0, ddof=1)

    def classic(n):
        votes = np.zeros((3, 4), dtype=np.int64)
        labels = rng.integers(0, 3, n)
        for start in range(0, n, POINTS_PER_DRAW):
            m = min(POINTS_PER_DRAW, n - start)
            f = noisy.sample_factors(m * 6, rng).reshape(m, 6, 3)
            for i in range(m):  # one vote at a time, as disentanglement_lib does
                k = labels[start + i]
                fi = f[i].copy()
                fi[:, k] = fi[0, k]
                local = np.var(noisy.images_from_factors(fi), axis=0, ddof=1)
                votes[k, np.argmin(local / global_var)] += 1
        return votes

    train = classic(300)
    evals = classic(270)
    np.testing.assert_array_equal(r.train_votes, train)
    np.testing.assert_array_equal(r.eval_votes, evals)
    clf = np.argmax(train, axis=0)
    assert r.score == pytest.approx(evals[clf, np.arange(4)].sum() / 270, abs=1e-12)


def test_factor_vae_is_deterministic_and_batching_free(data) -> None:
    noisy = IdentityFactors(SIZES, noise=1.0)
    a = factor_vae_score(noisy, identity, **FV_SMALL, seed=1)
    b = factor_vae_score(noisy, identity, **FV_SMALL, seed=1, encode_batch_size=33)
    np.testing.assert_array_equal(a.eval_votes, b.eval_votes)
    assert a.scores() == b.scores()
    c = factor_vae_score(noisy, identity, **FV_SMALL, seed=2)
    assert not np.array_equal(a.eval_votes, c.eval_votes)


def test_factor_vae_skips_a_constant_factor() -> None:
    with pytest.warns(DisentkitWarning, match="single value"):
        r = factor_vae_score(IdentityFactors((1, 4, 3)), identity, **FV_SMALL)
    assert r.skipped_factors == (0,) and r.kept_factors == (1, 2)
    assert r.train_votes.shape == (2, 3)
    assert r.score == 1.0 and not r.active[0]  # latent 0 copies the constant factor
