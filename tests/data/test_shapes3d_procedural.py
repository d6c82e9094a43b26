"""Tests of the Shapes3D-like procedural room scene."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from disentkit import DisentkitWarning
from disentkit.data import DATASETS, get_dataset
from disentkit.data import shapes3d_procedural as s3d
from disentkit.data.shapes3d_procedural import (
    Shapes3DProcedural,
    geometry_buffers,
    hsv_to_rgb,
    render_geometry,
)
from disentkit.metrics.sampling import GroundTruthSampler, check_sampler

SIZE = 16  # small images keep the file fast; the full size is checked in a slow test
FLOOR, WALL, OBJECT = 0, 1, 2
HUE, SCALE, SHAPE, ORIENT = slice(0, 3), 3, 4, 5


@pytest.fixture(scope="module")
def ds() -> Shapes3DProcedural:
    return Shapes3DProcedural(image_size=SIZE, cache_dir=False)


@pytest.fixture(scope="module")
def geom(ds: Shapes3DProcedural) -> np.ndarray:
    return ds.geometry


@pytest.fixture(scope="module")
def ds32() -> Shapes3DProcedural:
    return Shapes3DProcedural(image_size=32, cache_dir=False)


@pytest.fixture
def fresh_memory(monkeypatch: pytest.MonkeyPatch) -> None:
    """Forget the geometry held in memory, so the cache file is consulted again."""
    monkeypatch.setattr(s3d, "_MEMORY", {})


def rgb_hue(rgb: np.ndarray) -> np.ndarray:
    """Hue in turns of colours ``(..., 3)`` (undefined, returned as 0, for greys)."""
    rgb = rgb.astype(np.float64)
    r, g, b = np.moveaxis(rgb, -1, 0)
    mx, mn = rgb.max(-1), rgb.min(-1)
    delta = np.where(mx > mn, mx - mn, 1.0)
    h = np.where(
        mx == r, ((g - b) / delta) % 6, np.where(mx == g, (b - r) / delta + 2, (r - g) / delta + 4)
    )
    return (h / 6) % 1.0


def hue_distance(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    d = np.abs(np.asarray(a) - np.asarray(b)) % 1.0
    return np.minimum(d, 1 - d)


def with_factor(f: np.ndarray, column: int, value: int) -> np.ndarray:
    g = np.array(f, copy=True)
    g[:, column] = value
    return g


# ----------------------------------------------------------------------- the factor grid
def test_factors_match_official_shapes3d(ds: Shapes3DProcedural) -> None:
    assert ds.factor_names == (
        "floor_hue",
        "wall_hue",
        "object_hue",
        "scale",
        "shape",
        "orientation",
    )
    assert ds.factor_sizes == (10, 10, 10, 8, 4, 15)
    assert len(ds) == 480_000
    assert ds.image_shape == (SIZE, SIZE, 3)
    values = ds.factor_values
    for k in range(3):
        np.testing.assert_allclose(values[k], np.linspace(0, 0.9, 10))
    np.testing.assert_allclose(values[3], np.linspace(0.75, 1.25, 8))
    np.testing.assert_array_equal(values[4], [0, 1, 2, 3])
    np.testing.assert_allclose(values[5], np.linspace(-30, 30, 15))
    assert ds.source.kind == "procedural" and ds.source.version == s3d.RENDERER_VERSION
    info = ds.info()
    assert info["shape_names"] == ["cube", "cylinder", "sphere", "capsule"]
    assert info["factors"]["scale"]["size"] == 8


def test_official_strides(ds: Shapes3DProcedural) -> None:
    strides = np.array([48000, 4800, 480, 60, 15, 1])
    f = ds.sample_factors(200, rng=3)
    np.testing.assert_array_equal(ds.index(f), f @ strides)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(0, 479_999), min_size=1, max_size=20))
def test_index_factors_round_trip(indices: list[int]) -> None:
    ds = Shapes3DProcedural(image_size=SIZE, cache_dir=False)  # no rendering needed here
    idx = np.array(indices)
    f = ds.factors(idx)
    assert f.shape == (len(indices), 6)
    np.testing.assert_array_equal(ds.index(f), idx)
    np.testing.assert_array_equal(ds.factors(ds.index(f)), f)


def test_complete_grid_of_a_sub_block(ds: Shapes3DProcedural) -> None:
    # the last 480 indices run over every (scale, shape, orientation) exactly once
    f = ds.factors(np.arange(480_000 - 480, 480_000))
    assert (f[:, :3] == 9).all()
    assert len({tuple(r) for r in f[:, 3:]}) == 480


def test_sample_factors_deterministic_and_in_range(ds: Shapes3DProcedural) -> None:
    a = ds.sample_factors(500, rng=7)
    np.testing.assert_array_equal(a, ds.sample_factors(500, rng=7))
    assert not np.array_equal(a, ds.sample_factors(500, rng=8))
    assert (a >= 0).all() and (a < np.array(ds.factor_sizes)).all()
    for k, size in enumerate(ds.factor_sizes):
        assert set(np.unique(a[:, k])) == set(range(size))


def test_registered_and_a_ground_truth_sampler(ds: Shapes3DProcedural) -> None:
    info = DATASETS["shapes3d_procedural"]
    assert info.kind == "procedural"
    assert info.factor_sizes == ds.factor_sizes and info.factor_names == ds.factor_names
    built = get_dataset("shapes3d_procedural", image_size=SIZE, cache_dir=False)
    assert isinstance(built, Shapes3DProcedural) and built.image_shape == (SIZE, SIZE, 3)
    assert isinstance(ds, GroundTruthSampler)
    np.testing.assert_array_equal(check_sampler(ds, metric="test"), ds.factor_sizes)


# ----------------------------------------------------------------------------- images
def test_images_shape_dtype_range_determinism(ds: Shapes3DProcedural) -> None:
    f = ds.sample_factors(64, rng=0)
    img = ds.images_from_factors(f)
    assert img.shape == (64, SIZE, SIZE, 3) and img.dtype == np.uint8
    assert img.max() > 200 and img.min() < 60  # bright colours and shaded pixels occur
    np.testing.assert_array_equal(img, ds.images_from_factors(f))
    np.testing.assert_array_equal(img, ds.images(ds.index(f)))
    np.testing.assert_array_equal(img[5:6], ds.images_from_factors(f[5:6]))
    assert ds.images_from_factors(np.zeros((0, 6), dtype=int)).shape == (0, SIZE, SIZE, 3)


def test_rendering_is_deterministic(geom: np.ndarray) -> None:
    np.testing.assert_array_equal(render_geometry(SIZE), geom)


def test_geometry_invariants(geom: np.ndarray) -> None:
    assert geom.shape == (4, 8, 15, 3, SIZE, SIZE) and geom.dtype == np.float32
    assert not geom.flags.writeable
    total = geom.sum(axis=3)
    assert total.min() >= s3d.AMBIENT - 1e-5 and total.max() <= 1 + 1e-5
    # the scene: walls fill the top row, floor the bottom row, the object is always seen
    assert (geom[:, :, :, WALL, 0] > 0).all() and (geom[:, :, :, FLOOR, 0] == 0).all()
    assert (geom[:, :, :, FLOOR, -1] > 0).all() and (geom[:, :, :, WALL, -1] == 0).all()
    assert (geom[:, :, :, OBJECT, [0, -1]] == 0).all()
    assert ((geom[:, :, :, OBJECT] > 0).sum(axis=(-2, -1)) > 4).all()


def test_object_stays_near_the_centre(geom: np.ndarray) -> None:
    mask = geom[:, :, :, OBJECT] > 0  # (4, 8, 15, H, W)
    cols = np.arange(SIZE) + 0.5
    centroid_x = (mask * cols).sum(axis=(-2, -1)) / mask.sum(axis=(-2, -1))
    assert np.abs(centroid_x - SIZE / 2).max() < 0.15 * SIZE


@pytest.mark.parametrize("region", [FLOOR, WALL, OBJECT])
def test_each_hue_changes_only_its_region(
    ds: Shapes3DProcedural, geom: np.ndarray, region: int
) -> None:
    f = ds.sample_factors(40, rng=region)
    a = ds.images_from_factors(with_factor(f, region, 1))
    b = ds.images_from_factors(with_factor(f, region, 6))
    changed = (a != b).any(axis=-1)  # (B, H, W)
    covered = geom[f[:, SHAPE], f[:, SCALE], f[:, ORIENT], region] > 0  # (B, H, W)
    assert not (changed & ~covered).any()  # nothing outside the region changes
    # and the region itself does (a pixel covered by more than a sliver changes colour)
    solid = geom[f[:, SHAPE], f[:, SCALE], f[:, ORIENT], region] > 0.2
    assert (changed | ~solid).all() and solid.any(axis=(1, 2)).all()


def test_pure_region_pixels_have_the_factor_hue(ds: Shapes3DProcedural, geom: np.ndarray) -> None:
    f = ds.sample_factors(64, rng=11)
    img = ds.images_from_factors(f)
    g = geom[f[:, SHAPE], f[:, SCALE], f[:, ORIENT]]  # (B, 3, H, W)
    hues = rgb_hue(img)  # (B, H, W)
    for region in (FLOOR, WALL, OBJECT):
        pure = (g[:, region] > 0) & (g.sum(axis=1) == g[:, region])
        expected = np.broadcast_to(s3d.HUES[f[:, region]][:, None, None], pure.shape)
        assert pure.any()
        assert hue_distance(hues[pure], expected[pure]).max() < 0.01


def test_scale_increases_object_area_monotonically(ds32: Shapes3DProcedural) -> None:
    for shape in range(4):
        for orientation in (0, 7, 14):
            f = np.array([[2, 5, 0, scale, shape, orientation] for scale in range(8)])
            a = ds32.images_from_factors(f)
            b = ds32.images_from_factors(with_factor(f, 2, 5))  # recolour the object only
            area = (a != b).any(axis=-1).sum(axis=(1, 2))
            assert (np.diff(area) > 0).all(), (shape, orientation, area)


def test_four_shapes_have_distinct_silhouettes(ds32: Shapes3DProcedural) -> None:
    masks = ds32.geometry[:, :, :, OBJECT] > 0  # (4 shapes, 8 scales, 15 orientations, H, W)
    for i in range(4):
        for j in range(i + 1, 4):
            differ = (masks[i] ^ masks[j]).sum(axis=(-2, -1))
            union = (masks[i] | masks[j]).sum(axis=(-2, -1))
            # every view differs; a small cube and cylinder seen head-on differ least
            # (4 of 80 pixels at 32×32), on average shapes differ in over 15 % of pixels
            assert (differ >= 2).all(), (i, j, differ.min())
            assert (differ / union).mean() > 0.15, (i, j, (differ / union).mean())


def test_orientation_moves_the_camera_not_the_hues(ds: Shapes3DProcedural) -> None:
    f = np.array([[3, 7, 0, 4, shape, 0] for shape in range(4)])
    images = [ds.images_from_factors(with_factor(f, ORIENT, o)) for o in range(15)]
    for o in range(1, 15):
        assert (images[o] != images[o - 1]).any(axis=(1, 2, 3)).all()
    far = (images[0] != images[14]).any(axis=-1).mean(axis=(1, 2))
    assert (far > 0.05).all()
    # the colours present are the three region hues at every orientation
    for img in images:
        hues = rgb_hue(img)
        near = np.min([hue_distance(hues, s3d.HUES[h]) for h in (3, 7, 0)], axis=0)  # (B, H, W)
        assert np.quantile(near, 0.9) < 0.02  # mixed edge pixels aside


def test_hsv_to_rgb() -> None:
    rgb = hsv_to_rgb(np.linspace(0, 0.9, 10), s=1.0, v=1.0)
    assert rgb.shape == (10, 3) and rgb.min() >= 0 and rgb.max() <= 1
    np.testing.assert_allclose(rgb[0], [1, 0, 0])
    np.testing.assert_allclose(rgb_hue(rgb), np.linspace(0, 0.9, 10), atol=1e-12)
    np.testing.assert_allclose(hsv_to_rgb(0.5, s=0.0, v=0.4), [0.4, 0.4, 0.4])


@pytest.mark.parametrize(
    ("option", "value", "error"),
    [
        ("image_size", 0, ValueError),
        ("image_size", 2.5, TypeError),
        ("image_size", True, TypeError),
        ("cache_dir", 1, TypeError),
        ("cache_dir", True, TypeError),
    ],
)
def test_bad_options(option: str, value: object, error: type[Exception]) -> None:
    with pytest.raises(error, match=option):
        Shapes3DProcedural(**{option: value})


def test_bad_factors(ds: Shapes3DProcedural) -> None:
    with pytest.raises(ValueError, match="orientation"):
        ds.images_from_factors([[0, 0, 0, 0, 0, 15]])
    with pytest.raises(ValueError, match="shape"):
        ds.images_from_factors([[0, 0, 0, 0, 0]])
    with pytest.raises(TypeError, match="integer"):
        ds.images_from_factors([[0.0, 0, 0, 0, 0, 0]])
    with pytest.raises(IndexError):
        ds.images([480_000])


# ------------------------------------------------------------------------------ caching
def test_disk_cache_round_trip(
    tmp_path: Path, geom: np.ndarray, fresh_memory: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    g = geometry_buffers(SIZE, cache_dir=tmp_path)
    path = tmp_path / f"geometry-v{s3d.RENDERER_VERSION}-{SIZE}.npy"
    assert path.is_file() and sorted(os.listdir(tmp_path)) == [path.name]
    np.testing.assert_array_equal(np.load(path), geom)
    np.testing.assert_array_equal(g, geom)

    def no_render(image_size: int) -> np.ndarray:
        raise AssertionError("rendered although a valid cache file exists")

    monkeypatch.setattr(s3d, "_MEMORY", {})
    monkeypatch.setattr(s3d, "render_geometry", no_render)
    np.testing.assert_array_equal(geometry_buffers(SIZE, cache_dir=tmp_path), geom)
    # once in memory, neither the file nor the renderer is needed
    path.unlink()
    g2 = geometry_buffers(SIZE, cache_dir=tmp_path)
    np.testing.assert_array_equal(g2, geom)
    assert path.is_file()  # a missing file is written from memory


def test_default_cache_location_is_the_data_root(
    tmp_path: Path, fresh_memory: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    ds = get_dataset("shapes3d_procedural", data_dir=tmp_path / "root", image_size=4)
    ds.images([0])
    name = f"geometry-v{s3d.RENDERER_VERSION}-4.npy"
    assert (tmp_path / "root" / "shapes3d_procedural" / name).is_file()
    monkeypatch.setenv("DISENTKIT_DATA", str(tmp_path / "env"))
    Shapes3DProcedural(image_size=4).images([0])
    assert (tmp_path / "env" / "shapes3d_procedural" / name).is_file()


def test_memory_only_writes_nothing(
    tmp_path: Path, fresh_memory: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DISENTKIT_DATA", str(tmp_path))
    Shapes3DProcedural(image_size=4, cache_dir=False).images([0, 1])
    assert list(tmp_path.iterdir()) == []


def _truncated(path: Path, good: np.ndarray) -> None:
    np.save(path, good)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _garbage(path: Path, good: np.ndarray) -> None:
    path.write_bytes(np.random.default_rng(0).bytes(5000))


def _zero_filled(path: Path, good: np.ndarray) -> None:
    np.save(path, np.zeros_like(good))  # a valid header over unwritten (zero) data


def _noise(path: Path, good: np.ndarray) -> None:
    np.save(path, np.random.default_rng(1).normal(size=good.shape).astype(np.float32))


def _wrong_shape(path: Path, good: np.ndarray) -> None:
    np.save(path, good[:, :, :, :, :-1])


def _wrong_dtype(path: Path, good: np.ndarray) -> None:
    np.save(path, good.astype(np.float64))


def _pickled(path: Path, good: np.ndarray) -> None:
    np.save(path, np.array([{"a": 1}], dtype=object), allow_pickle=True)


@pytest.mark.parametrize(
    "corrupt",
    [_truncated, _garbage, _zero_filled, _noise, _wrong_shape, _wrong_dtype, _pickled],
)
def test_corrupted_cache_is_detected_and_rerendered(
    tmp_path: Path, geom: np.ndarray, fresh_memory: None, corrupt
) -> None:
    path = tmp_path / f"geometry-v{s3d.RENDERER_VERSION}-{SIZE}.npy"
    corrupt(path, np.asarray(geom))
    with pytest.warns(DisentkitWarning, match="invalid .*geometry cache"):
        g = geometry_buffers(SIZE, cache_dir=tmp_path)
    np.testing.assert_array_equal(g, geom)
    np.testing.assert_array_equal(np.load(path, allow_pickle=False), geom)  # replaced
    assert sorted(os.listdir(tmp_path)) == [path.name]  # no temporary file left behind


def test_unwritable_cache_warns_and_still_renders(
    tmp_path: Path, geom: np.ndarray, fresh_memory: None
) -> None:
    blocker = tmp_path / "not_a_folder"
    blocker.write_text("a file where the cache folder should be")
    with pytest.warns(DisentkitWarning, match="could not write"):
        g = geometry_buffers(SIZE, cache_dir=blocker)
    np.testing.assert_array_equal(g, geom)


@pytest.mark.slow
def test_full_size_geometry(tmp_path: Path, fresh_memory: None) -> None:
    ds = Shapes3DProcedural(cache_dir=tmp_path)
    g = ds.geometry
    assert g.shape == (4, 8, 15, 3, 64, 64)
    total = g.sum(axis=3)
    assert total.min() >= s3d.AMBIENT - 1e-5 and total.max() <= 1 + 1e-5
    assert (tmp_path / f"geometry-v{s3d.RENDERER_VERSION}-64.npy").is_file()
    img = ds.images(np.arange(0, 480_000, 4_801))
    assert img.shape == (100, 64, 64, 3) and img.dtype == np.uint8
