"""Tests for DCI on categorical latents (``latent_type="categorical"``).

The reference is scikit-learn's ``GradientBoostingClassifier()`` fitted on every latent's
one-hot columns, with a latent's importance the sum over its columns. The ``"binned"``
backend grows the same trees from per-category histograms.
"""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.ensemble import GradientBoostingClassifier

from disentkit import evaluate
from disentkit.metrics._boost import (
    _OTHER,
    _best_splits,
    _prefix_sum_bins,
    _prepare,
    boost_importance,
)
from disentkit.metrics.dci import dci


def _label_code(seed: int, n: int = 1500) -> tuple[np.ndarray, np.ndarray]:
    """Three latents that are labels: latent 0 names (factor 0, a noise bit) under a
    random numbering, latent 1 names factor 1 (80 % of rows) under another, latent 2 is
    noise; factors with 4, 3 and 2 classes."""
    rng = np.random.default_rng(seed)
    s = np.column_stack([rng.integers(0, 4, n), rng.integers(0, 3, n), rng.integers(0, 2, n)])
    z0 = rng.permutation(8)[s[:, 0] * 2 + rng.integers(0, 2, n)]
    z1 = np.where(rng.random(n) < 0.8, rng.permutation(6)[s[:, 1]], rng.integers(0, 6, n))
    z2 = rng.integers(0, 5, n)
    return np.column_stack([z0, z1, z2]).astype(float), s


def _one_hot_reference(z, s, n_train, random_state=0):
    """GradientBoostingClassifier() on the one-hot columns: grouped importance (D, K),
    train-row decision functions, test accuracies."""
    columns, owner = [], []
    for d in range(z.shape[1]):
        for v in np.unique(z[:, d]):
            columns.append((z[:, d] == v).astype(float))
            owner.append(d)
    x = np.column_stack(columns)
    imp, raw, acc = [], [], []
    for k in range(s.shape[1]):
        clf = GradientBoostingClassifier(random_state=random_state)
        clf.fit(x[:n_train], s[:n_train, k])
        imp.append(np.bincount(owner, weights=clf.feature_importances_, minlength=z.shape[1]))
        raw.append(clf.decision_function(x[:n_train]).reshape(n_train, -1))
        acc.append(np.mean(clf.predict(x[n_train:]) == s[n_train:, k]))
    return np.column_stack(imp), raw, np.array(acc)


def _centred(raw: np.ndarray) -> np.ndarray:
    return raw - raw.mean(axis=1, keepdims=True) if raw.shape[1] > 1 else raw


def test_best_splits_one_category_against_the_rest_match_brute_force():
    rng = np.random.default_rng(4)
    n_bins, d, cols = 16, 3, 4
    counts = rng.integers(0, 5, (n_bins, d, cols)).astype(np.float32)
    sums = (rng.standard_normal((n_bins, d, cols)) * counts).astype(np.float32)
    for c in range(cols):  # one node per column: the same rows, so the same totals
        sums[:, 1:, c] *= sums[:, 0, c].sum() / sums[:, 1:, c].sum(axis=0)
        counts[:, 1:, c] = counts[:, :1, c]
    categorical = np.array([True, False, True])
    latent, b, gain = _best_splits(
        _prefix_sum_bins(sums.copy()), _prefix_sum_bins(counts.copy()),
        np.empty_like(sums), np.empty_like(sums), np.empty_like(sums), categorical,
    )
    for c in range(cols):
        best = (0.0, 0, 255)
        for f in range(d):
            s_all, n_all = sums[:, f, c].sum(dtype=np.float64), counts[:, f, c].sum()
            for j in range(n_bins):
                if categorical[f]:  # bin j against the rest
                    sl, nl = float(sums[j, f, c]), counts[j, f, c]
                else:  # bins <= j against the rest
                    sl, nl = sums[: j + 1, f, c].sum(dtype=np.float64), counts[: j + 1, f, c].sum()
                if nl == 0 or nl == n_all:
                    continue
                g = sl**2 / nl + (s_all - sl) ** 2 / (n_all - nl) - s_all**2 / n_all
                if g > best[0] * (1 + 1e-5):
                    best = (g, f, j)
        assert best[0] > 0
        assert gain[c] == pytest.approx(best[0], rel=1e-4)
        assert (latent[c], b[c]) == best[1:]


@pytest.mark.parametrize(("seed", "random_state"), [(4, 0), (4, 1), (6, 0), (6, 1)])
def test_booster_reproduces_gradient_boosting_on_one_hot_columns(seed, random_state):
    # Category splits are exact, so the booster is GradientBoostingClassifier() on the
    # one-hot columns up to float32 histograms and ties. For these seeds no two different
    # partitions tie and the train rows' raw scores match (measured ≤ 8e-6). In seeds 0-7
    # a tie sends one tree elsewhere in about a third of the (seed, random_state) pairs,
    # and which pairs depends on the reference's random_state, which only orders features.
    z, s = _label_code(seed)
    n_train = 1200
    imp, raw, _ = boost_importance(z[:n_train], s[:n_train], z[n_train:],
                                   categorical=np.ones(3, dtype=bool))
    ref_imp, ref_raw, _ = _one_hot_reference(z, s, n_train, random_state)
    for k in range(s.shape[1]):
        np.testing.assert_allclose(_centred(raw[k]), _centred(ref_raw[k]), atol=1e-4)
    np.testing.assert_allclose(imp, ref_imp, atol=1e-5)


def test_dci_gbt_categorical_is_the_one_hot_reference():
    z, s = _label_code(1)
    r = dci(z, s, latent_type="categorical", seed=0)
    n_train = 1200  # the first 80 % of 1,500 rows
    fits = [_one_hot_reference(z, s[:, [k]], n_train, r.options["random_states"][k])
            for k in range(3)]  # each factor with its own random_state
    ref_imp = np.column_stack([f[0][:, 0] for f in fits])
    np.testing.assert_allclose(r.importance, ref_imp / ref_imp.sum(axis=0), rtol=1e-12)
    np.testing.assert_array_equal(r.per_factor_test_accuracy, [f[2][0] for f in fits])
    assert r.metric_id == "dci/gbt-categorical@1"
    assert r.options["latent_type"] == "categorical"


@pytest.mark.parametrize("backend", ["gbt", "binned"])
def test_categorical_scores_do_not_depend_on_the_numbering(backend):
    z, s = _label_code(2)
    rng = np.random.default_rng(3)
    renumbered = np.column_stack([rng.permutation(20)[z[:, d].astype(int)] for d in range(3)])
    a = dci(z, s, backend=backend, latent_type="categorical")
    b = dci(renumbered.astype(float), s, backend=backend, latent_type="categorical")
    for name in ("disentanglement", "completeness", "informativeness_train",
                 "informativeness_test"):
        assert getattr(b, name) == pytest.approx(getattr(a, name), abs=1e-6)
    np.testing.assert_allclose(b.importance, a.importance, atol=1e-6)
    # read as numbers, the same labels give other importances (measured: 0.046 apart)
    c = dci(z, s, backend=backend)
    d = dci(renumbered.astype(float), s, backend=backend)
    assert np.abs(c.importance - d.importance).max() > 0.02


def test_binned_categorical_within_tolerance_of_gbt_on_a_wide_codebook():
    # 120 categories per latent, noisy: D and C as the numeric binned backend promises
    rng = np.random.default_rng(5)
    n = 2500
    s = rng.integers(0, 6, (n, 2))
    z = np.column_stack([
        np.where(rng.random(n) < 0.7, rng.permutation(120)[s[:, 0] * 20 + rng.integers(0, 20, n)],
                 rng.integers(0, 120, n)),
        rng.permutation(120)[s[:, 1] * 20 + rng.integers(0, 20, n)],
    ]).astype(float)
    ref = dci(z, s, backend="gbt", latent_type="categorical")
    fast = dci(z, s, backend="binned", latent_type="categorical")
    assert fast.disentanglement == pytest.approx(ref.disentanglement, abs=0.02)
    assert fast.completeness == pytest.approx(ref.completeness, abs=0.02)
    assert fast.informativeness_test == pytest.approx(ref.informativeness_test, abs=0.02)


def test_binned_categorical_is_independent_of_threads():
    z, s = _label_code(6)
    one = dci(z, s, backend="binned", latent_type="categorical", n_jobs=1)
    two = dci(z, s, backend="binned", latent_type="categorical", n_jobs=2)
    np.testing.assert_array_equal(one.importance, two.importance)
    np.testing.assert_array_equal(one.per_factor_test_accuracy, two.per_factor_test_accuracy)


def test_constant_and_test_only_categories():
    # a constant latent gets no importance; a category seen only in test rows goes with
    # the rest at every split of its latent
    z, s = _label_code(7)
    z = np.column_stack([z, np.full(len(z), 3.0)])
    z[-5:, 0] = 99.0  # only among the test rows
    for backend in ("gbt", "binned"):
        r = dci(z, s, backend=backend, latent_type="categorical")
        assert r.importance[3].sum() == 0
        assert np.isfinite(r.informativeness_test)


def test_categorical_bad_input():
    z, s = _label_code(8)
    with pytest.raises(ValueError, match=r"backend 'gbt' or 'binned'.*received backend='hist'"):
        dci(z, s, backend="hist", latent_type="categorical")
    wide = np.column_stack([np.repeat(z, 3, axis=0), np.arange(4500.0)])  # continuous
    with pytest.raises(ValueError, match=r"at most 4096 distinct values; latent\(s\) \[3\] "
                                         r"take \[4500\]"):
        dci(wide, np.repeat(s, 3, axis=0), latent_type="categorical")
    with pytest.raises(ValueError, match="latent_type"):
        dci(z, s, latent_type="ordinal")


def test_evaluate_passes_the_option_and_names_it():
    z, s = _label_code(9)
    ev = evaluate(z, s, metrics=["dci"], mode="fast",
                  options={"dci": {"latent_type": "categorical"}})
    assert ev.results["dci"].metric_id == "dci/binned-categorical@1"


def test_a_wide_codebook_is_spread_over_columns_of_255_categories():
    x = np.arange(600.0)[:, None]  # 600 categories
    data, owner = _prepare(x[::2], x[1::2], 256, np.ones(1, dtype=bool))
    assert owner.tolist() == [0, 0, 0] and data.n_active == 3
    assert data.categorical.tolist() == [True, True, True]
    category = np.concatenate([x[::2, 0], x[1::2, 0]]).astype(int)  # train, then test rows
    codes = data.codes_t.astype(int)  # (3, 600)
    for part in range(3):  # part p codes categories 255p … 255p + 254, the rest _OTHER
        inside = (category >= 255 * part) & (category < 255 * (part + 1))
        np.testing.assert_array_equal(codes[part, inside], category[inside] - 255 * part)
        assert (codes[part, ~inside] == _OTHER).all()
    # a column whose categories occur only among the test rows is dropped
    data, owner = _prepare(x[:500], x[500:], 256, np.ones(1, dtype=bool))
    assert owner.tolist() == [0, 0]


def test_binned_on_a_wide_codebook_within_tolerance_of_gbt():
    # 300 categories per latent (two columns each), about 13 rows per category: many
    # categories tie, so the trees may differ; D, C and accuracy stay close
    rng = np.random.default_rng(12)
    n = 4000
    s = rng.integers(0, 3, (n, 2))
    z = np.column_stack([
        rng.permutation(300)[s[:, k] * 100 + rng.integers(0, 100, n)] for k in range(2)
    ]).astype(float)
    z[rng.random(n) < 0.3, 1] = 7.0  # a noisy second latent
    ref = dci(z, s, backend="gbt", latent_type="categorical", n_jobs=-1)
    fast = dci(z, s, backend="binned", latent_type="categorical")
    assert fast.disentanglement == pytest.approx(ref.disentanglement, abs=0.02)
    assert fast.completeness == pytest.approx(ref.completeness, abs=0.02)
    assert fast.informativeness_test == pytest.approx(ref.informativeness_test, abs=0.02)
