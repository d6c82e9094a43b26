"""The sampling metrics (BetaVAE, FactorVAE scores) run on real FactorDatasets.

A representation function receives what ``images_from_factors`` returns — uint8 numpy
``(b, H, W, C)`` — and returns numpy latents ``(b, D)``; these tests write three kinds:
image statistics, a random projection, and a lookup that recovers the true factors.
"""

from __future__ import annotations

import numpy as np
import pytest

from disentkit.data import DATASETS, FactorDataset, get_dataset
from disentkit.metrics import beta_vae_score, factor_vae_score

FAST_BETA = {"batch_size": 8, "n_train": 300, "n_eval": 100}
FAST_FACTOR = {"batch_size": 8, "n_train": 300, "n_eval": 100, "n_variance_estimate": 500}


@pytest.fixture(scope="module")
def shapes16() -> FactorDataset:
    return get_dataset("shapes3d_procedural", image_size=16, cache_dir=False)


@pytest.fixture(scope="module")
def shapes8() -> FactorDataset:
    return get_dataset("shapes3d_procedural", image_size=8, cache_dir=False)


def region_means(images: np.ndarray) -> np.ndarray:
    """Mean colour of the floor (bottom rows), wall (top rows) and object (centre): (b, 9)."""
    x = images.astype(np.float64) / 255.0  # (b, 16, 16, 3)
    floor = x[:, -3:].mean(axis=(1, 2))
    wall = x[:, :3].mean(axis=(1, 2))
    obj = x[:, 5:9, 6:10].mean(axis=(1, 2))
    return np.concatenate([floor, wall, obj], axis=1)


def random_projection(dim: int, n_latents: int = 10, seed: int = 0):
    w = np.random.default_rng(seed).standard_normal((dim, n_latents)) / np.sqrt(dim)

    def represent(images: np.ndarray) -> np.ndarray:
        return (images.reshape(len(images), -1).astype(np.float64) / 255.0) @ w  # (b, D)

    return represent


class FactorLookup:
    """Reads the true factors back from the images: image → index → ``dataset.factors``.

    Every image of the dataset is hashed once (an exact integer hash of its bytes, wrapping
    uint64 arithmetic), in chunks; a batch is looked up with ``searchsorted``.
    """

    def __init__(self, dataset: FactorDataset, chunk: int = 20_000) -> None:
        self.dataset = dataset
        dim = int(np.prod(dataset.image_shape))
        self.weights = np.random.default_rng(0).integers(1, 2**63, dim, dtype=np.uint64)
        keys = np.concatenate([
            self._hash(dataset.images(np.arange(a, min(a + chunk, len(dataset)))))
            for a in range(0, len(dataset), chunk)
        ])
        self.order = np.argsort(keys, kind="stable")
        self.sorted_keys = keys[self.order]
        self.n_unique = np.unique(keys).size

    def _hash(self, images: np.ndarray) -> np.ndarray:
        flat = images.reshape(len(images), -1).astype(np.uint64)  # (b, H·W·C)
        return (flat * self.weights).sum(axis=1, dtype=np.uint64)

    def indices(self, images: np.ndarray) -> np.ndarray:
        keys = self._hash(images)
        pos = np.minimum(np.searchsorted(self.sorted_keys, keys), len(self.sorted_keys) - 1)
        if not (self.sorted_keys[pos] == keys).all():
            raise ValueError("an image that is not in the dataset")
        return self.order[pos]

    def __call__(self, images: np.ndarray) -> np.ndarray:
        return self.dataset.factors(self.indices(images)).astype(np.float64)  # (b, K)


@pytest.fixture(scope="module")
def lookup8(shapes8) -> FactorLookup:
    return FactorLookup(shapes8)


def _same(a, b) -> bool:
    da, db = a.to_dict(), b.to_dict()
    return da.keys() == db.keys() and all(
        np.array_equal(np.asarray(da[k]), np.asarray(db[k])) for k in da
    )


@pytest.mark.parametrize("metric", ["beta_vae", "factor_vae"])
@pytest.mark.parametrize("rep", ["region_means", "projection"])
def test_metrics_run_on_a_dataset_deterministically(shapes16, metric, rep):
    fn = region_means if rep == "region_means" else random_projection(16 * 16 * 3)
    score, opts = (
        (beta_vae_score, FAST_BETA) if metric == "beta_vae" else (factor_vae_score, FAST_FACTOR)
    )
    r = score(shapes16, fn, seed=3, **opts)
    assert 0.0 <= r.score <= 1.0 and 0.0 <= r.train_accuracy <= 1.0
    assert r.kept_factors == tuple(range(6))
    assert _same(r, score(shapes16, fn, seed=3, **opts))  # same seed, same numbers


def test_image_statistics_beat_chance_on_the_hue_factors(shapes16):
    r = beta_vae_score(shapes16, region_means, seed=0, **FAST_BETA)
    assert r.score > 1 / 6 + 0.2  # hue changes move region means: well above chance
    hue_recall = np.diag(r.confusion)[:3] / np.maximum(r.confusion[:3].sum(axis=1), 1)
    assert hue_recall.mean() > 0.5


def test_lookup_is_exact(shapes8, lookup8):
    assert lookup8.n_unique == len(shapes8)  # every image is distinct at 8 px
    idx = np.random.default_rng(0).integers(0, len(shapes8), 500)
    np.testing.assert_array_equal(lookup8.indices(shapes8.images(idx)), idx)
    f = shapes8.sample_factors(300, np.random.default_rng(1))
    np.testing.assert_array_equal(lookup8(shapes8.images_from_factors(f)), f)


@pytest.mark.parametrize("metric", ["beta_vae", "factor_vae"])
def test_true_factors_score_near_one(shapes8, lookup8, metric):
    if metric == "beta_vae":
        r = beta_vae_score(shapes8, lookup8, seed=0, **FAST_BETA)
    else:
        r = factor_vae_score(shapes8, lookup8, seed=0, **FAST_FACTOR)
    assert r.score >= 0.95


def test_a_random_projection_scores_below_the_true_factors(shapes8, lookup8):
    proj = random_projection(8 * 8 * 3)
    fv_proj = factor_vae_score(shapes8, proj, seed=0, **FAST_FACTOR)
    fv_true = factor_vae_score(shapes8, lookup8, seed=0, **FAST_FACTOR)
    assert fv_proj.score < fv_true.score - 0.2


def test_xyobject_tiny_with_true_factors():
    if "xyobject_tiny" not in DATASETS:
        pytest.skip("xyobject_tiny is not registered")
    ds = get_dataset("xyobject_tiny")
    lookup = FactorLookup(ds)
    if lookup.n_unique < len(ds):
        pytest.skip("xyobject_tiny has duplicate images; a lookup cannot be exact")
    r = beta_vae_score(ds, lookup, seed=1, **FAST_BETA)
    assert r.score >= 0.95


def test_a_torch_encoder_through_as_representation(shapes16):
    torch = pytest.importorskip("torch")
    from disentkit.data.torch import as_representation

    torch.manual_seed(0)
    net = torch.nn.Sequential(
        torch.nn.Conv2d(3, 4, 4, stride=2), torch.nn.ReLU(), torch.nn.Flatten(),
        torch.nn.Linear(4 * 7 * 7, 5),
    )
    rep = as_representation(net)
    r1 = beta_vae_score(shapes16, rep, seed=2, **FAST_BETA)
    r2 = beta_vae_score(shapes16, rep, seed=2, **FAST_BETA)
    assert 0.0 <= r1.score <= 1.0 and r1.n_latents == 5 and _same(r1, r2)
