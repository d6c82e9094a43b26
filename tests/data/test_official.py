"""Official-file loaders, run on tiny files written in each real format (tests/data/fixtures).

The fixtures hold the full factor grids with tiny images that encode their own grid
position, so these tests check the index rule pixel by pixel. SmallNORB, Cars3D and the PNG
datasets are prepared at a reduced output size (and the PNG datasets on reduced grids) by
replacing their spec's constants; the code path is the real one.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import shutil
import time
import urllib.error
import urllib.request
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from disentkit import DisentkitWarning
from disentkit.data import DATASETS, get_dataset, official
from disentkit.data import official_convert as conv
from disentkit.data.official import (
    ManualDownloadError,
    PrepareRequiredError,
    download,
    prepare,
    status,
)
from tests.data import fixtures as fx
from tests.data.official_small import FALCOR_SMALL, ISAAC_SMALL, SMALL, patched
from tests.data.official_small import small as small_specs

DSP_NPZ = f"{fx.DSPRITES_NAME}.npz"
DSP_H5 = f"{fx.DSPRITES_NAME}.hdf5"
OFFICIAL = ["dsprites", "shapes3d", "mpi3d_toy", "mpi3d_realistic", "mpi3d_real",
            "mpi3d_complex", "smallnorb", "cars3d", "falcor3d", "isaac3d"]


@pytest.fixture
def small() -> Iterator[None]:
    with small_specs():
        yield


@pytest.fixture(scope="module")
def src(tmp_path_factory) -> Path:
    """Every released file, written once."""
    d = tmp_path_factory.mktemp("src")
    fx.write_dsprites_npz(d / DSP_NPZ, d / "UNPICKLED")
    fx.write_dsprites_hdf5(d / DSP_H5)
    fx.write_shapes3d(d / "3dshapes.h5")
    fx.write_shapes3d(d / "shuffled" / "3dshapes.h5",
                      permutation=np.random.default_rng(1).permutation(480_000))
    fx.write_mpi3d(d / "mpi3d_toy.npz")
    fx.write_mpi3d(d / "compressed" / "mpi3d_toy.npz", compressed=True)
    fx.write_mpi3d(d / "real3d_complicated_shapes_ordered.npz", fx.MPI3D_COMPLEX_SIZES)
    fx.write_smallnorb(d / "norb")
    fx.write_cars3d(d / "nips2015-analogy-data.tar.gz")
    return d


def place(root: Path, name: str, *sources: Path, sub: str = "") -> Path:
    """Hard-link released files (or folders) into ``<root>/<name>/<sub>``."""
    folder = root / name / sub
    folder.mkdir(parents=True, exist_ok=True)
    for s in sources:
        if s.is_dir():
            shutil.copytree(s, folder / s.name, copy_function=os.link, dirs_exist_ok=True)
        else:
            os.link(s, folder / s.name)
    return root


@pytest.fixture(scope="module")
def norb_root(src, tmp_path_factory) -> Path:
    root = place(tmp_path_factory.mktemp("norb"), "smallnorb", *(src / "norb").iterdir())
    with patched("smallnorb", **SMALL["smallnorb"]), warnings.catch_warnings():
        warnings.simplefilter("error")  # no checksum is recorded for NORB: no release check
        prepare("smallnorb", data_dir=root)
    return root


@pytest.fixture(scope="module")
def cars_root(src, tmp_path_factory) -> Path:
    root = place(tmp_path_factory.mktemp("cars"), "cars3d", src / "nips2015-analogy-data.tar.gz")
    with patched("cars3d", **SMALL["cars3d"]):
        prepare("cars3d", data_dir=root)
    return root


# -- registry and missing files -------------------------------------------------------------
def test_every_official_dataset_is_registered() -> None:
    for name in OFFICIAL:
        info = DATASETS[name]
        assert info.kind == "official" and info.licence and info.files and info.urls
        for digests in info.sha256.values():
            assert all(len(d) == 64 and int(d, 16) >= 0 for d in digests)
    assert DATASETS["dsprites"].procedural_alternative == "dsprites_procedural"
    assert DATASETS["shapes3d"].procedural_alternative == "shapes3d_procedural"
    assert DATASETS["smallnorb"].factor_sizes == (5, 9, 18, 6)
    assert DATASETS["mpi3d_real"].factor_sizes == (6, 6, 2, 3, 3, 40, 40)
    assert DATASETS["mpi3d_complex"].factor_sizes == (4, 4, 2, 3, 3, 40, 40)
    assert DATASETS["cars3d"].factor_sizes == (4, 24, 183)
    assert DATASETS["isaac3d"].factor_sizes == (3, 8, 5, 4, 4, 4, 6, 4, 4)
    assert len(DATASETS["shapes3d"].sha256["3dshapes.h5"]) == 1


@pytest.mark.parametrize("name", OFFICIAL)
def test_missing_files_fail_at_once_with_everything_needed(name: str, tmp_path: Path) -> None:
    t0 = time.perf_counter()
    with pytest.raises(FileNotFoundError) as err:
        get_dataset(name, data_dir=tmp_path)
    assert time.perf_counter() - t0 < 5
    msg = str(err.value)
    spec = official._SPECS[name]
    assert str(tmp_path / name / spec.files[0].rstrip("/")) in msg
    assert f"disentkit data download {name}" in msg
    assert next(iter(spec.urls.values())) in msg
    if spec.procedural_alternative:
        assert spec.procedural_alternative in msg
    with pytest.raises(FileNotFoundError, match=f"disentkit data download {name}"):
        prepare(name, data_dir=tmp_path)
    assert status(name, data_dir=tmp_path)["present"] is False


def test_unknown_name_and_options(src, tmp_path: Path) -> None:
    with pytest.raises(KeyError, match="known datasets"):
        prepare("nope", data_dir=tmp_path)
    place(tmp_path, "mpi3d_toy", src / "mpi3d_toy.npz")
    with pytest.raises(TypeError, match="unknown option"):
        get_dataset("mpi3d_toy", data_dir=tmp_path, colour=True)


# -- dSprites -----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def dsprites_direct(src, tmp_path_factory):
    root = place(tmp_path_factory.mktemp("dsp"), "dsprites", src / DSP_NPZ)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no checksum is published for the npz: no warning
        return get_dataset("dsprites", data_dir=root)


def test_dsprites_npz_loads_directly(dsprites_direct, src) -> None:
    ds = dsprites_direct
    assert len(ds) == 737_280 and ds.factor_sizes == (3, 6, 40, 32, 32)
    assert ds.factor_names == ("shape", "scale", "orientation", "posX", "posY")
    assert ds.image_shape == (4, 5, 1)
    idx = np.array([737_279, 5, 0, 5, 123_456])  # unsorted, with a repeat
    x = ds.images(idx)
    assert x.dtype == np.uint8 and x.shape == (5, 4, 5, 1) and set(np.unique(x)) <= {0, 255}
    assert ds.max_pixel_value == 255  # 0/255 by default, like every dataset
    np.testing.assert_array_equal(fx.decode_dsprites(x), idx)
    np.testing.assert_array_equal(ds.images_from_factors(ds.factors(idx)), x)
    assert ds.source.sha256 == hashlib.sha256((src / DSP_NPZ).read_bytes()).hexdigest()
    assert ds.source.known_release is None and ds.source.kind == "official"
    np.testing.assert_allclose(ds.factor_values[1], np.linspace(0.5, 1, 6))
    assert not (src / "UNPICKLED").exists()  # the pickled metadata was never loaded


def test_the_metadata_trap_would_fire_if_unpickled(tmp_path: Path) -> None:
    marker = tmp_path / "fired"
    path = fx.write_trap_npz(tmp_path / "t.npz", marker)
    with np.load(path, allow_pickle=True, encoding="latin1") as z:
        z["metadata"]
    assert marker.exists()  # so its absence above means nothing was unpickled


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(0, 737_279), min_size=1, max_size=20))
def test_dsprites_index_rule(dsprites_direct, indices) -> None:
    ds = dsprites_direct
    idx = np.asarray(indices)
    np.testing.assert_array_equal(ds.index(ds.factors(idx)), idx)
    np.testing.assert_array_equal(fx.decode_dsprites(ds.images(idx)), idx)


def test_dsprites_pixel_range_255(src, tmp_path: Path) -> None:
    place(tmp_path, "dsprites", src / DSP_NPZ)
    x = get_dataset("dsprites", data_dir=tmp_path, pixel_range="255").images([1, 2, 3])
    assert set(np.unique(x)) == {0, 255}
    with pytest.raises(ValueError, match="pixel_range"):
        get_dataset("dsprites", data_dir=tmp_path, pixel_range="1")


def test_dsprites_hdf5_with_an_unknown_checksum_warns_and_records_it(src, tmp_path) -> None:
    place(tmp_path, "dsprites", src / DSP_H5)
    with patched("dsprites", sha256={DSP_H5: ("1" * 64,)}), pytest.warns(
        DisentkitWarning, match="matches no known release"
    ):
        ds = get_dataset("dsprites", data_dir=tmp_path)
    assert ds.source.known_release is False
    assert ds.source.sha256 == hashlib.sha256((src / DSP_H5).read_bytes()).hexdigest()
    np.testing.assert_array_equal(fx.decode_dsprites(ds.images([7, 99_999])), [7, 99_999])


def test_dsprites_hdf5_matching_a_known_release_is_silent(src, tmp_path) -> None:
    place(tmp_path, "dsprites", src / DSP_H5)
    sha = hashlib.sha256((src / DSP_H5).read_bytes()).hexdigest()
    with patched("dsprites", sha256={DSP_H5: ("1" * 64, sha)}), warnings.catch_warnings():
        warnings.simplefilter("error")
        assert get_dataset("dsprites", data_dir=tmp_path).source.known_release is True


def test_dsprites_prepare_round_trip_and_meta(src, tmp_path: Path, dsprites_direct) -> None:
    place(tmp_path, "dsprites", src / DSP_NPZ)
    stages = set()
    out = prepare("dsprites", data_dir=tmp_path, progress=lambda s, d, t: stages.add(s))
    assert out == tmp_path / "dsprites" / "prepared" and "convert" in stages
    images = np.load(out / "images.npy", mmap_mode="r")
    assert images.shape == (737_280, 4, 5, 1) and images.dtype == np.uint8
    assert np.load(out / "factors.npy").shape == (737_280, 5)
    meta = json.loads((out / "meta.json").read_text())
    assert meta["sources"][0]["file"] == DSP_NPZ
    assert meta["sources"][0]["sha256"] == dsprites_direct.source.sha256
    assert meta["factor_sizes"] == [3, 6, 40, 32, 32]
    assert meta["disentkit_version"] == __import__("disentkit").__version__
    ds = get_dataset("dsprites", data_dir=tmp_path)
    assert isinstance(ds._storage, official._Mapped)  # memory-mapped cache
    idx = np.random.default_rng(0).integers(0, len(ds), 300)
    np.testing.assert_array_equal(ds.images(idx), dsprites_direct.images(idx))
    assert len(pickle.dumps(ds)) < 100_000  # pickles the path, not the images
    before = (out / "images.npy").stat().st_mtime_ns
    prepare("dsprites", data_dir=tmp_path)  # up to date: nothing rewritten
    assert (out / "images.npy").stat().st_mtime_ns == before
    prepare("dsprites", data_dir=tmp_path, force=True)
    assert (out / "images.npy").stat().st_mtime_ns != before


def test_crashed_prepare_leaves_no_usable_cache(src, tmp_path: Path, monkeypatch) -> None:
    place(tmp_path, "shapes3d", src / "3dshapes.h5")
    out = tmp_path / "shapes3d" / "prepared"
    with pytest.warns(DisentkitWarning):
        prepare("shapes3d", data_dir=tmp_path)

    def crash(chunk: object, where: str) -> None:
        raise KeyboardInterrupt  # the process dies mid-conversion

    real = conv.classes_from_values
    monkeypatch.setattr(conv, "classes_from_values", lambda *a: (crash(None, ""), real(*a)))
    with pytest.raises(KeyboardInterrupt):
        prepare("shapes3d", data_dir=tmp_path, force=True)
    assert not (out / "meta.json").exists()  # the old cache was invalidated first
    assert not [p for p in out.iterdir() if p.name.endswith(".tmp")]  # temporaries removed
    with pytest.raises(PrepareRequiredError, match="disentkit data prepare shapes3d"):
        get_dataset("shapes3d", data_dir=tmp_path)


def test_leftover_temp_files_and_missing_meta_are_ignored(src, tmp_path: Path) -> None:
    place(tmp_path, "dsprites", src / DSP_NPZ)
    out = prepare("dsprites", data_dir=tmp_path)
    (out / ".images.npy.tmp-99-dead").write_bytes(b"garbage from a killed run")
    (out / ".meta.json.tmp-99-dead").write_text("{}")
    assert isinstance(get_dataset("dsprites", data_dir=tmp_path)._storage, official._Mapped)
    (out / "meta.json").unlink()  # a cache without meta is never used
    ds = get_dataset("dsprites", data_dir=tmp_path)
    assert isinstance(ds._storage, official._Packed)  # fell back to the file
    np.testing.assert_array_equal(fx.decode_dsprites(ds.images([42])), [42])


def test_checksums_are_computed_once(src, tmp_path: Path, monkeypatch) -> None:
    from disentkit.data import _files

    place(tmp_path, "mpi3d_toy", src / "mpi3d_toy.npz")
    calls = []
    real = _files.sha256_file
    monkeypatch.setattr(_files, "sha256_file", lambda p, **kw: calls.append(p) or real(p, **kw))
    for _ in range(3):
        get_dataset("mpi3d_toy", data_dir=tmp_path)
    assert len(calls) == 1


def test_a_replaced_source_file_makes_the_cache_stale(src, tmp_path: Path) -> None:
    place(tmp_path, "mpi3d_toy", src / "mpi3d_toy.npz")
    prepare("mpi3d_toy", data_dir=tmp_path)
    target = tmp_path / "mpi3d_toy" / "mpi3d_toy.npz"
    target.unlink()
    shutil.copy(src / "compressed" / "mpi3d_toy.npz", target)  # same images, other bytes
    with pytest.raises(ValueError, match="--force"):
        get_dataset("mpi3d_toy", data_dir=tmp_path)
    target.unlink()  # sources may be deleted once prepared
    assert len(get_dataset("mpi3d_toy", data_dir=tmp_path)) == 1_036_800


# -- Shapes3D -----------------------------------------------------------------------------------
@pytest.mark.parametrize("sub", ["", "shuffled"])
def test_shapes3d_labels_map_to_grid_positions(src, tmp_path: Path, sub: str) -> None:
    place(tmp_path, "shapes3d", src / sub / "3dshapes.h5")
    with pytest.raises(PrepareRequiredError, match="disentkit data prepare shapes3d"):
        get_dataset("shapes3d", data_dir=tmp_path)
    with pytest.warns(DisentkitWarning):
        prepare("shapes3d", data_dir=tmp_path)
        ds = get_dataset("shapes3d", data_dir=tmp_path)
    assert ds.factor_sizes == (10, 10, 10, 8, 4, 15) and ds.image_shape == (2, 2, 3)
    idx = np.array([479_999, 0, 48_000, 17, 17, 333_333])
    factors, index = fx.decode_coded(ds.images(idx), 6)
    np.testing.assert_array_equal(index, idx)
    np.testing.assert_array_equal(factors, ds.factors(idx))
    np.testing.assert_allclose(ds.factor_values[3], np.linspace(0.75, 1.25, 8))


def test_shapes3d_wrong_files(tmp_path: Path) -> None:
    f = fx._grid(fx.SHAPES3D_SIZES)
    values = np.stack([v[f[:, k]] for k, v in enumerate(fx.SHAPES3D_VALUES)], axis=1)
    values[10, 3] = 0.8  # between two documented scales
    fx.write_shapes3d(tmp_path / "shapes3d" / "3dshapes.h5", labels=values)
    with pytest.raises(ValueError, match=r"'scale'.*0\.8.*expected one of"):
        prepare("shapes3d", data_dir=tmp_path)
    fx.write_shapes3d(tmp_path / "shapes3d" / "3dshapes.h5", labels=values[:, :5])
    with pytest.raises(ValueError, match=r"\(480,000, 6\).*received \(480000, 5\)"):
        prepare("shapes3d", data_dir=tmp_path)


# -- MPI3D --------------------------------------------------------------------------------------
def test_mpi3d_uncompressed_npz_is_mapped_in_place(src, tmp_path: Path) -> None:
    place(tmp_path, "mpi3d_toy", src / "mpi3d_toy.npz")
    ds = get_dataset("mpi3d_toy", data_dir=tmp_path)
    assert isinstance(ds._storage, official._Mapped)
    assert ds._storage.path.endswith("mpi3d_toy.npz")  # no copy was made
    assert not (tmp_path / "mpi3d_toy" / "prepared").exists()
    idx = np.array([1_036_799, 3, 0, 500_000])
    factors, index = fx.decode_coded(ds.images(idx), 7)
    np.testing.assert_array_equal(index & 0xFFFFFF, idx & 0xFFFFFF)
    np.testing.assert_array_equal(factors, ds.factors(idx))
    assert ds.factor_values[1][0] == "cone"


def test_released_pages_read_the_same_images(src, tmp_path: Path, monkeypatch) -> None:
    place(tmp_path, "mpi3d_toy", src / "mpi3d_toy.npz")
    plain = get_dataset("mpi3d_toy", data_dir=tmp_path, reader="mmap")
    lean = get_dataset("mpi3d_toy", data_dir=tmp_path, reader="mmap", release_pages_every=2)
    released = []
    idx = np.random.default_rng(0).integers(0, len(plain), (5, 64))
    first = lean.images(idx[0])  # opens the map
    monkeypatch.setattr(lean._storage, "_mm", _Spy(lean._storage._mm, released))
    batches = [first] + [lean.images(i) for i in idx[1:]]
    for i, batch in zip(idx, batches, strict=True):
        np.testing.assert_array_equal(batch, plain.images(i))
    assert len(released) == 2  # reads 2 and 4 of the 4 spied reads (every 2nd overall)
    with pytest.raises(ValueError, match="release_pages_every"):
        get_dataset("mpi3d_toy", data_dir=tmp_path, release_pages_every=0)


@pytest.mark.parametrize("name", ["mpi3d_toy", "shapes3d"])
def test_large_files_are_read_into_the_batch_without_a_map(
    src, tmp_path: Path, monkeypatch, name
) -> None:
    # By default official images beyond MAP_LIMIT bytes are read with positional reads
    # (bounded RSS): no memory map is made, and the images equal those read through a map.
    if name == "shapes3d":  # a prepared cache
        place(tmp_path, "shapes3d", src / "3dshapes.h5")
    else:  # a released .npz read in place
        place(tmp_path, name, src / f"{name}.npz")
    calls = []
    real = official.read_rows
    monkeypatch.setattr(official, "read_rows", lambda *a, **k: calls.append(a[2]) or real(*a, **k))
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "shapes3d: .* matches no known release")
        if name == "shapes3d":
            prepare("shapes3d", data_dir=tmp_path)
        small = get_dataset(name, data_dir=tmp_path)
        monkeypatch.setattr(official, "MAP_LIMIT", small._storage.nbytes - 1)
        ds = get_dataset(name, data_dir=tmp_path)
        mapped = get_dataset(name, data_dir=tmp_path, reader="mmap")
        forced = get_dataset(name, data_dir=tmp_path, reader="pread")
    assert small._storage.reader == "mmap"  # a file within MAP_LIMIT is mapped
    assert ds._storage.reader == "pread" and mapped._storage.reader == "mmap"
    rng = np.random.default_rng(1)
    for idx in (rng.integers(0, len(ds), 64), np.array([5, 6, 7, 2, 7, 0]), np.arange(3)):
        np.testing.assert_array_equal(ds.images(idx), mapped.images(idx))
    assert len(calls) == 3 and ds._storage._mm is None  # every batch read, nothing mapped
    assert calls[1].tolist() == [0, 2, 5, 6, 7]  # a sorted unique index; repeats restored
    clone = pickle.loads(pickle.dumps(ds))  # reopens the file in the new object
    np.testing.assert_array_equal(clone.images([9, 1]), mapped.images([9, 1]))
    np.testing.assert_array_equal(forced.images([4, 2]), small.images([4, 2]))
    with pytest.raises(ValueError, match=r"reader must be one of \['auto', 'pread', 'mmap'\]"):
        get_dataset(name, data_dir=tmp_path, reader="fast")


class _Spy:
    """Wraps an mmap and records madvise calls."""

    def __init__(self, inner, calls: list) -> None:
        self._inner, self._calls = inner, calls

    def madvise(self, *args) -> None:
        self._calls.append(args)
        self._inner.madvise(*args)


def test_mpi3d_compressed_npz_needs_prepare(src, tmp_path: Path) -> None:
    place(tmp_path, "mpi3d_toy", src / "compressed" / "mpi3d_toy.npz")
    with pytest.raises(PrepareRequiredError, match="disentkit data prepare mpi3d_toy"):
        get_dataset("mpi3d_toy", data_dir=tmp_path)
    prepare("mpi3d_toy", data_dir=tmp_path)
    ds = get_dataset("mpi3d_toy", data_dir=tmp_path)
    factors, _ = fx.decode_coded(ds.images([123_456]), 7)
    np.testing.assert_array_equal(factors, ds.factors([123_456]))


def test_mpi3d_complex(src, tmp_path: Path) -> None:
    place(tmp_path, "mpi3d_complex", src / "real3d_complicated_shapes_ordered.npz")
    ds = get_dataset("mpi3d_complex", data_dir=tmp_path)
    assert len(ds) == 460_800 and ds.factor_sizes == (4, 4, 2, 3, 3, 40, 40)
    factors, _ = fx.decode_coded(ds.images([460_799, 9]), 7)
    np.testing.assert_array_equal(factors, ds.factors([460_799, 9]))


def test_mpi3d_wrong_files(src, tmp_path: Path) -> None:
    folder = tmp_path / "mpi3d_toy"
    folder.mkdir()
    os.link(src / "real3d_complicated_shapes_ordered.npz", folder / "mpi3d_toy.npz")
    with pytest.raises(ValueError, match=r"460,800 images.*expects 1,036,800"):
        get_dataset("mpi3d_toy", data_dir=tmp_path)
    (folder / "mpi3d_toy.npz").unlink()
    np.savez(folder / "mpi3d_toy.npz", imgs=np.zeros((2, 2)))
    with pytest.raises(ValueError, match=r"'images'; the file holds: imgs"):
        get_dataset("mpi3d_toy", data_dir=tmp_path)
    (folder / "mpi3d_toy.npz").write_bytes(b"junk")
    with pytest.raises(ValueError, match=r"not an \.npz"):
        get_dataset("mpi3d_toy", data_dir=tmp_path)


# -- SmallNORB ----------------------------------------------------------------------------------
def test_smallnorb_grid_and_left_camera(norb_root, small) -> None:
    ds = get_dataset("smallnorb", data_dir=norb_root, instance="factor")
    assert ds.factor_names == ("category", "instance", "elevation", "azimuth", "lighting")
    assert ds.factor_sizes == (5, 10, 9, 18, 6) and ds.image_shape == (16, 16, 1)
    x = ds.images(np.arange(len(ds)))
    assert (x == x[:, :1, :1]).all()  # constant images stay constant
    np.testing.assert_array_equal(x[:, 0, 0, 0], fx.norb_code(np.arange(len(ds))))
    assert ds.source.known_release is None and len(ds.source_files) == 6  # none recorded


def test_smallnorb_instance_is_a_nuisance_by_default(norb_root, small) -> None:
    ds = get_dataset("smallnorb", data_dir=norb_root, seed=3)
    fixed = get_dataset("smallnorb", data_dir=norb_root, instance=6, split="train")
    again = get_dataset("smallnorb", data_dir=norb_root, seed=3)
    assert ds.factor_names == ("category", "elevation", "azimuth", "lighting")
    assert len(ds) == 4860
    f = np.repeat(ds.factors([1234]), 200, axis=0)
    first = ds.images_from_factors(f)
    codes = first[:, 0, 0, 0]
    cat, el, az, li = f[0]
    expected = {int(fx.norb_code(np.ravel_multi_index((cat, i, el, az, li), fx.NORB_GRID)))
                for i in range(10)}
    assert set(codes.tolist()) == expected  # all ten instances, nothing else
    np.testing.assert_array_equal(again.images_from_factors(f), first)  # same seed, same draws
    assert not np.array_equal(ds.images_from_factors(f), first)  # a new request, new draws
    one = fixed.images_from_factors(f)[:, 0, 0, 0]
    assert set(one.tolist()) == {int(fx.norb_code(np.ravel_multi_index((cat, 6, el, az, li),
                                                                        fx.NORB_GRID)))}
    with pytest.raises(ValueError, match="not in split 'train'"):
        get_dataset("smallnorb", data_dir=norb_root, instance=0, split="train")


def test_smallnorb_wrong_file(src, tmp_path: Path) -> None:
    place(tmp_path, "smallnorb", *(src / "norb").iterdir())
    bad = tmp_path / "smallnorb" / fx.NORB_FILES["testing"].format("info")
    bad.unlink()
    bad.write_bytes(b"\x00" * 40)
    with pytest.raises(ValueError, match="not a NORB binary matrix"):
        prepare("smallnorb", data_dir=tmp_path)


# -- Cars3D -------------------------------------------------------------------------------------
def test_cars3d_order_follows_list_txt(cars_root, small) -> None:
    ds = get_dataset("cars3d", data_dir=cars_root)
    assert ds.factor_sizes == (4, 24, 183) and ds.image_shape == (16, 16, 3)
    f = ds.factors(np.arange(len(ds)))
    x = ds.images(np.arange(len(ds)))[:, 5, 5]
    np.testing.assert_array_equal(x, np.stack([60 * f[:, 0], 10 * f[:, 1], f[:, 2]], axis=1))
    assert list(ds.factor_values[2]) == fx.cars_list_order()
    assert ds.source.known_release is None


# -- PNG folders --------------------------------------------------------------------------------
@pytest.mark.parametrize("name,labels,sizes,sub", [
    ("falcor3d", "train-rec.labels", FALCOR_SMALL, ""),
    ("isaac3d", "labels.npy", ISAAC_SMALL, "Isaac3D_down128"),  # the archive's own folder
])
def test_png_folders(tmp_path: Path, small, name, labels, sizes, sub) -> None:
    folder = tmp_path / name / sub
    file_of_cell = fx.write_png_dataset(folder, labels, sizes)
    with pytest.raises(PrepareRequiredError):
        get_dataset(name, data_dir=tmp_path)
    prepare(name, data_dir=tmp_path)
    ds = get_dataset(name, data_dir=tmp_path)
    assert ds.factor_sizes == sizes and ds.image_shape == (64, 64, 3)
    x = ds.images(np.arange(len(ds)))
    np.testing.assert_array_equal(x[:, 31, 31], fx.png_colour(file_of_cell))
    meta = json.loads((tmp_path / name / "prepared" / "meta.json").read_text())
    assert meta["resize"] == {"size": 64, "resample": "bicubic"} and meta["images_sha256"]
    (folder / "images" / "000003.png").unlink()
    with pytest.raises(FileNotFoundError, match=r"000003\.png"):
        prepare(name, data_dir=tmp_path, force=True)


def test_png_labels_must_form_the_grid(tmp_path: Path, small) -> None:
    fx.write_png_dataset(tmp_path / "falcor3d", "train-rec.labels", FALCOR_SMALL)
    path = tmp_path / "falcor3d" / "train-rec.labels"
    lab = np.load(path)
    lab[0] = lab[1]  # one grid cell twice, another missing
    with open(path, "wb") as f:
        np.save(f, lab)
    with pytest.raises(ValueError, match="complete factor grid"):
        prepare("falcor3d", data_dir=tmp_path)


# -- downloads ----------------------------------------------------------------------------------
class _Response:
    def __init__(self, data: bytes) -> None:
        self._data, self._pos = data, 0
        self.headers = {"Content-Type": "application/octet-stream",
                        "Content-Length": str(len(data))}

    def read(self, n: int) -> bytes:
        out = self._data[self._pos : self._pos + n]
        self._pos += len(out)
        return out

    def __enter__(self):
        return self

    def __exit__(self, *a):
        return None


def _serve_from(monkeypatch, folder: Path) -> list[str]:
    """urllib serving each URL's file name from ``folder``."""
    seen: list[str] = []

    def fake(request, timeout=None):
        seen.append(request.full_url)
        return _Response((folder / request.full_url.rsplit("/", 1)[-1]).read_bytes())

    monkeypatch.setattr(urllib.request, "urlopen", fake)
    return seen


def test_download_rejects_files_that_match_no_known_release(src, tmp_path, monkeypatch) -> None:
    seen = _serve_from(monkeypatch, src / "norb")
    known = {f.name: ("1" * 64,) for f in (src / "norb").iterdir()}
    with patched("smallnorb", sha256=known), pytest.raises(ValueError, match="checksum mismatch"):
        download("smallnorb", data_dir=tmp_path)
    assert seen and seen[0].startswith("https://cs.nyu.edu/~ylclab/data/norb-v1.0-small/")
    leftovers = [p.name for p in (tmp_path / "smallnorb").iterdir() if p.name != ".sha256.json"]
    assert leftovers == []


def test_download_accepts_known_releases_then_opens(src, tmp_path, monkeypatch) -> None:
    _serve_from(monkeypatch, src / "norb")
    known = {f.name: (hashlib.sha256(f.read_bytes()).hexdigest(),)
             for f in (src / "norb").iterdir()}
    with patched("smallnorb", sha256=known, image_size=8):
        paths = download("smallnorb", data_dir=tmp_path)
        assert sorted(p.name for p in paths) == sorted(known)
        assert download("smallnorb", data_dir=tmp_path) == paths  # present: kept
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            prepare("smallnorb", data_dir=tmp_path)
            ds = get_dataset("smallnorb", data_dir=tmp_path)
    assert ds.source.known_release is True


def test_download_without_known_checksum(src, tmp_path, monkeypatch) -> None:
    _serve_from(monkeypatch, src)
    (path,) = download("cars3d", data_dir=tmp_path)
    assert path == tmp_path / "cars3d" / "nips2015-analogy-data.tar.gz" and path.is_file()


def test_download_offline_fails_fast(tmp_path, monkeypatch) -> None:
    def offline(request, timeout=None):
        raise urllib.error.URLError(OSError(101, "Network is unreachable"))

    monkeypatch.setattr(urllib.request, "urlopen", offline)
    t0 = time.perf_counter()
    with pytest.raises(ConnectionError) as err:
        download("shapes3d", data_dir=tmp_path)
    assert time.perf_counter() - t0 < 5
    assert "https://storage.googleapis.com/3d-shapes/3dshapes.h5" in str(err.value)
    assert str(tmp_path / "shapes3d" / "3dshapes.h5") in str(err.value)


def test_manual_releases_say_how(tmp_path) -> None:
    with pytest.raises(ManualDownloadError, match=r"drive\.google\.com.*Falcor3D_down128"):
        download("falcor3d", data_dir=tmp_path)


@pytest.mark.slow
def test_smallnorb_and_cars3d_at_the_reference_size(src, tmp_path: Path) -> None:
    place(tmp_path, "smallnorb", *(src / "norb").iterdir())
    place(tmp_path, "cars3d", src / "nips2015-analogy-data.tar.gz")
    prepare("smallnorb", data_dir=tmp_path)  # no checksum recorded for NORB: no warning
    norb = get_dataset("smallnorb", data_dir=tmp_path, instance="factor")
    assert norb.image_shape == (64, 64, 1)
    np.testing.assert_array_equal(norb.images(np.arange(len(norb)))[:, 40, 20, 0],
                                  fx.norb_code(np.arange(len(norb))))
    prepare("cars3d", data_dir=tmp_path)
    cars = get_dataset("cars3d", data_dir=tmp_path)
    assert cars.image_shape == (64, 64, 3)
    f = cars.factors(np.arange(len(cars)))
    np.testing.assert_array_equal(cars.images(np.arange(len(cars)))[:, 10, 50],
                                  np.stack([60 * f[:, 0], 10 * f[:, 1], f[:, 2]], axis=1))
