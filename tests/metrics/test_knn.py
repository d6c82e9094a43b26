"""The vectorised Ross (2014) kNN estimator against scikit-learn's and a naive loop."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import digamma
from sklearn.feature_selection import mutual_info_classif
from sklearn.preprocessing import scale

from disentkit._validation import encode_labels
from disentkit.metrics._knn import jitter_latents, knn_mutual_info, mi_cd_from_jittered

try:  # scikit-learn's private per-column estimator; the public comparison below remains
    from sklearn.feature_selection._mutual_info import _compute_mi_cd
except ImportError:  # pragma: no cover - a scikit-learn that moved it
    _compute_mi_cd = None


def sklearn_jitter(latents: np.ndarray, random_state: int) -> np.ndarray:
    """sklearn's ``_estimate_mi`` preprocessing of continuous features: same operations (the
    masked copy decides the memory layout, hence the summation order of the std) and the
    same ``RandomState`` draws."""
    rng = np.random.RandomState(random_state)
    x = np.array(latents, dtype=np.float64)
    mask = np.ones(x.shape[1], dtype=bool)
    x[:, mask] = scale(x[:, mask], with_mean=False, copy=False)
    means = np.maximum(1, np.mean(np.abs(x[:, mask]), axis=0))
    x[:, mask] += 1e-10 * means * rng.standard_normal(size=(x.shape[0], int(mask.sum())))
    return x


def awkward_inputs(seed: int, n: int = 150) -> tuple[np.ndarray, np.ndarray]:
    """Latents with ties and duplicates; factors with tiny and singleton classes.

    sklearn fits one neighbour search per class, so class counts are kept small.
    """
    rng = np.random.default_rng(seed)
    f_many = rng.integers(0, 12, n)  # classes of ~12: brute force for k = 10, trees for 1, 3
    f_few = rng.integers(0, 3, n)
    f_skew = np.where(rng.random(n) < 0.9, 0, rng.integers(1, 6, n))  # tiny classes
    f_skew[:3] = [100, 101, 102]  # singleton classes: dropped by the estimator
    factors = np.stack([f_many, f_few, f_skew], axis=1)
    latents = np.stack(
        [
            rng.standard_normal(n),
            np.round(rng.standard_normal(n), 1),  # heavy ties
            f_few + 0.3 * rng.standard_normal(n),  # informative
            np.repeat(rng.standard_normal(n // 5), 5),  # exact duplicates
            rng.integers(0, 3, n) * 2.0 + 5.0,  # three values, large offset
            np.full(n, 3.0),  # constant
        ],
        axis=1,
    )
    return latents, factors


@pytest.mark.parametrize(("seed", "k"), [(0, 1), (0, 3), (1, 3), (1, 10)])
@pytest.mark.skipif(_compute_mi_cd is None, reason="scikit-learn moved _compute_mi_cd")
def test_matches_sklearn_compute_mi_cd_on_the_same_jittered_columns(seed: int, k: int) -> None:
    latents, factors = awkward_inputs(seed)
    z = sklearn_jitter(latents, random_state=seed)
    codes, _ = encode_labels(factors)
    got = mi_cd_from_jittered(z, codes, n_neighbors=k)
    expected = np.array(
        [[_compute_mi_cd(z[:, d], factors[:, j], k) for j in range(factors.shape[1])]
         for d in range(z.shape[1])]
    )
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-12)


@pytest.mark.parametrize("k", [3, 10])
def test_matches_mutual_info_classif_given_its_jitter(k: int) -> None:
    latents, factors = awkward_inputs(5)
    codes, _ = encode_labels(factors)
    got = mi_cd_from_jittered(sklearn_jitter(latents, random_state=7), codes, n_neighbors=k)
    for j in range(factors.shape[1]):
        expected = mutual_info_classif(latents, factors[:, j], n_neighbors=k, random_state=7)
        np.testing.assert_allclose(got[:, j], expected, rtol=0, atol=1e-12)


def naive_exact(c: np.ndarray, d: np.ndarray, k: int) -> float:
    """Ross (2014) with exact |x − y| distances, one sample at a time."""
    labels, counts = np.unique(d, return_counts=True)
    size = dict(zip(labels.tolist(), counts.tolist(), strict=True))
    keep = np.array([size[v] > 1 for v in d.tolist()])
    c, d = c[keep], d[keep]
    if c.size == 0:
        return 0.0
    terms = []
    for i in range(c.size):
        same = np.abs(c[d == d[i]] - c[i])
        same = np.sort(same)[1:]  # drop one zero: the sample itself
        ki = min(k, same.size)
        radius = np.nextafter(same[ki - 1], 0)
        m = np.count_nonzero(np.abs(c - c[i]) <= radius)
        terms.append((digamma(ki), digamma(same.size + 1), digamma(m)))
    t = np.array(terms)
    return max(0.0, digamma(c.size) + t[:, 0].mean() - t[:, 1].mean() - t[:, 2].mean())


@pytest.mark.parametrize("k", [2, 5])
def test_exact_mode_matches_a_naive_loop(k: int) -> None:
    latents, factors = awkward_inputs(3, n=120)
    z = jitter_latents(latents, seed=3)
    codes, _ = encode_labels(factors)
    got = mi_cd_from_jittered(z, codes, n_neighbors=k, match_sklearn=False)
    expected = np.array(
        [[naive_exact(z[:, d], codes[:, j], k) for j in range(codes.shape[1])]
         for d in range(z.shape[1])]
    )
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-12)


def test_sklearn_mode_differs_from_exact_only_in_tiny_classes() -> None:
    rng = np.random.default_rng(4)
    n = 2000
    factors = rng.integers(0, 4, (n, 1))  # classes of ~500: tree path only
    latents = np.round(rng.standard_normal((n, 2)), 1)
    a = knn_mutual_info(latents, factors, match_sklearn=True)
    b = knn_mutual_info(latents, factors, match_sklearn=False)
    np.testing.assert_array_equal(a, b)


def test_public_function_agrees_with_sklearn_up_to_the_jitter_draw() -> None:
    rng = np.random.default_rng(8)
    factors = rng.integers(0, 5, (600, 2))
    latents = factors @ rng.standard_normal((2, 3)) + rng.standard_normal((600, 3))
    got = knn_mutual_info(latents, factors, n_neighbors=3, seed=1)
    for j in range(2):
        expected = mutual_info_classif(latents, factors[:, j], random_state=0)
        np.testing.assert_allclose(got[:, j], expected, rtol=0, atol=1e-9)


def test_latents_in_threads_equal_latents_one_at_a_time(monkeypatch) -> None:
    # Large enough for the thread pool (work above _SERIAL_WORK); each column alone is not.
    from disentkit.metrics import _threads

    calls = []
    real = _threads.ThreadPoolExecutor

    def spy(*args, **kwargs):
        calls.append(kwargs.get("max_workers"))
        return real(*args, **kwargs)

    monkeypatch.setattr(_threads, "ThreadPoolExecutor", spy)
    monkeypatch.setattr(_threads, "n_threads", lambda: 2)
    rng = np.random.default_rng(4)
    s = rng.integers(0, 6, (5000, 3))
    z = jitter_latents(s @ rng.standard_normal((3, 8)) + rng.standard_normal((5000, 8)))
    together = mi_cd_from_jittered(z, s, n_neighbors=10)
    assert calls == [2]  # the latents did run in threads
    alone = np.vstack([mi_cd_from_jittered(z[:, [d]], s, n_neighbors=10) for d in range(8)])
    assert calls == [2]  # ... and each single column serially
    np.testing.assert_array_equal(together, alone)


def test_informative_and_independent_latents() -> None:
    rng = np.random.default_rng(0)
    s = rng.integers(0, 4, (3000, 1))
    latents = np.hstack([s + 0.05 * rng.standard_normal((3000, 1)), rng.random((3000, 1))])
    mi = knn_mutual_info(latents, s, n_neighbors=10)
    assert mi[0, 0] == pytest.approx(np.log(4), abs=0.02)
    assert 0 <= mi[1, 0] < 0.01


def test_shift_and_scale_invariance() -> None:
    rng = np.random.default_rng(1)
    s = rng.integers(0, 3, (500, 2))
    z = s @ rng.standard_normal((2, 2)) + rng.standard_normal((500, 2))
    base = knn_mutual_info(z, s, standardize=True)
    moved = knn_mutual_info(3.0 * z - 7.0, s, standardize=True)
    np.testing.assert_allclose(moved, base, atol=1e-9)
    # Without centring, sklearn's scaling still removes the scale.
    np.testing.assert_allclose(knn_mutual_info(4.0 * z, s), knn_mutual_info(z, s), atol=1e-9)


def test_jitter_is_seeded_and_matters_only_for_ties() -> None:
    rng = np.random.default_rng(2)
    s = rng.integers(0, 3, (400, 1))
    tied = np.round(s + rng.standard_normal((400, 1)), 0)  # a handful of values
    a = knn_mutual_info(tied, s, seed=0)
    np.testing.assert_array_equal(a, knn_mutual_info(tied, s, seed=0))
    assert not np.array_equal(a, knn_mutual_info(tied, s, seed=1))


def test_documented_jitter() -> None:
    z = np.array([[1.0, 5.0], [3.0, 5.0], [5.0, 5.0]])
    got = jitter_latents(z, seed=4)
    scaled = z / np.where(z.std(axis=0) > 0, z.std(axis=0), 1.0)
    noise = np.random.default_rng(4).standard_normal(z.shape)
    expected = scaled + 1e-10 * np.maximum(1, np.abs(scaled).mean(axis=0)) * noise
    np.testing.assert_array_equal(got, expected)


def test_degenerate_factors_give_zero() -> None:
    z = np.random.default_rng(0).standard_normal((50, 2))
    all_singletons = np.arange(50)[:, None]
    np.testing.assert_array_equal(knn_mutual_info(z, all_singletons), np.zeros((2, 1)))
    pairs = np.repeat(np.arange(25), 2)[:, None]  # classes of two: k = 1
    assert np.all(knn_mutual_info(z, pairs, n_neighbors=10) >= 0)


def test_bad_n_neighbors() -> None:
    z = np.zeros((10, 1))
    s = np.zeros((10, 1), dtype=int)
    with pytest.raises(ValueError, match="n_neighbors"):
        knn_mutual_info(z, s, n_neighbors=0)
