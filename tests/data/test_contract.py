"""The dataset interface, checked for every registered dataset.

Parametrised over :data:`disentkit.data.DATASETS`, so a dataset is checked the day it is
registered: procedural ones as built by default, official ones on the tiny released files
of :mod:`tests.data.official_small` (an official dataset without a writer there fails here,
it is not skipped). Checks: names and sizes agree with the registry, ``images`` are uint8
``(B, H, W, C)`` within the pixel range, ``factors`` lie in range, ``index`` inverts
``factors``, ``sample_factors`` is reproducible with a seed, and ``images_from_factors``
agrees with ``images(index(f))`` (on two fresh instances: an observation may draw a
nuisance, e.g. SmallNORB's instance, from the dataset's own seeded generator).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest

from disentkit import DisentkitWarning
from disentkit.data import DATASETS, FactorDataset, PrepareRequiredError, get_dataset, prepare
from tests.data.official_small import SMALL, WRITERS, small

N_IMAGES = 6


@contextmanager
def built(name: str, root: Path) -> Iterator[Callable[[], FactorDataset]]:
    """A maker of fresh instances of ``name``: procedural as registered, official from
    tiny released files."""
    if DATASETS[name].kind == "procedural":
        yield lambda: get_dataset(name)
        return
    if name not in WRITERS:
        pytest.fail(f"official dataset {name!r} has no fixture writer in "
                    "tests/data/official_small.py: add one so the contract covers it")
    WRITERS[name](root / name)
    with small(name), warnings.catch_warnings():
        warnings.simplefilter("ignore", DisentkitWarning)  # fixture files: unknown checksums
        try:
            get_dataset(name, data_dir=root)
        except PrepareRequiredError:
            prepare(name, data_dir=root)
        yield lambda: get_dataset(name, data_dir=root)


@pytest.mark.parametrize("name", sorted(DATASETS))
def test_dataset_contract(name: str, tmp_path: Path) -> None:
    info = DATASETS[name]
    with built(name, tmp_path) as make:
        ds, twin = make(), make()
        # rendering from factors agrees with reading by index (first requests of both)
        some = ds.sample_factors(N_IMAGES, np.random.default_rng(3))
        np.testing.assert_array_equal(ds.images_from_factors(some),
                                      twin.images(twin.index(some)))

        # names and sizes: the registry's (the fixtures of PNG datasets use a smaller grid)
        assert ds.name == name
        assert tuple(ds.factor_names) == info.factor_names
        expected = SMALL.get(name, {}).get("factor_sizes", info.factor_sizes)
        assert tuple(ds.factor_sizes) == tuple(expected)
        k = len(ds.factor_sizes)
        assert ds.n_factors == k and len(ds.factor_names) == k
        assert all(isinstance(s, int | np.integer) and s >= 1 for s in ds.factor_sizes)
        assert len(ds) == int(np.prod(ds.factor_sizes, dtype=np.int64))
        assert [len(v) for v in ds.factor_values] == list(ds.factor_sizes)

        # images at indices, both ends of the grid included
        rng = np.random.default_rng(0)
        idx = np.concatenate([[0, len(ds) - 1], rng.integers(0, len(ds), N_IMAGES - 2)])
        images = ds.images(idx)
        h, w, c = ds.image_shape
        assert images.dtype == np.uint8 and images.shape == (N_IMAGES, h, w, c)
        assert c in (1, 3) and int(images.max()) <= ds.max_pixel_value

        # factors in range, and index inverts them
        factors = ds.factors(idx)
        assert factors.dtype == np.int64 and factors.shape == (N_IMAGES, k)
        assert np.all((factors >= 0) & (factors < np.asarray(ds.factor_sizes)))
        np.testing.assert_array_equal(ds.index(factors), idx)

        # sampling is reproducible with a seed and stays on the grid
        a = ds.sample_factors(64, np.random.default_rng(7))
        b = ds.sample_factors(64, np.random.default_rng(7))
        np.testing.assert_array_equal(a, b)
        assert a.shape == (64, k) and a.dtype.kind in "iu"
        assert np.all((a >= 0) & (a < np.asarray(ds.factor_sizes)))
        assert not np.array_equal(a, ds.sample_factors(64, np.random.default_rng(8)))


def test_every_official_writer_names_a_registered_dataset() -> None:
    official = {n for n, i in DATASETS.items() if i.kind == "official"}
    assert set(WRITERS) == official
