"""Tests of the procedural 2-D datasets: dSprites-like sprites (and variants) and XYObject."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from disentkit.data import DATASETS, FactorDataset, get_dataset
from disentkit.data import procedural as proc
from disentkit.data.procedural import DSpritesProcedural, XYObject, render_sprites
from disentkit.metrics.sampling import GroundTruthSampler, check_sampler

NAMES = [
    "dsprites_procedural",
    "color_dsprites_procedural",
    "noisy_dsprites_procedural",
    "xyobject",
    "xyobject_tiny",
]
SHAPE, SCALE, ORIENT, POSX, POSY = range(5)
_CACHE: dict[str, FactorDataset] = {}


def dataset(name: str) -> FactorDataset:
    if name not in _CACHE:
        _CACHE[name] = get_dataset(name)
    return _CACHE[name]


def centroid(images: np.ndarray) -> np.ndarray:
    """Row and column centre of mass of the non-zero pixels: ``(B, 2)``."""
    mask = images.reshape((*images.shape[:3], -1)).max(-1) > 0  # (B, H, W)
    rows, cols = np.indices(mask.shape[1:])
    area = mask.sum((1, 2))
    return np.stack([(mask * rows).sum((1, 2)) / area, (mask * cols).sum((1, 2)) / area], 1)


def dsprite(shape: int, scale: int, orient: int, px: int, py: int) -> np.ndarray:
    """One binary dSprites image ``(64, 64)`` with values 0/1."""
    ds = get_dataset("dsprites_procedural", pixel_range="01")
    return ds.images_from_factors([[shape, scale, orient, px, py]])[0, ..., 0]


# -- registry and the interface ----------------------------------------------------------------
@pytest.mark.parametrize("name", NAMES)
def test_registered_and_consistent(name: str) -> None:
    info = DATASETS[name]
    ds = dataset(name)
    assert info.kind == "procedural" and info.procedural_alternative is None
    assert isinstance(ds, FactorDataset) and isinstance(ds, GroundTruthSampler)
    assert ds.name == name and ds.source.kind == "procedural" and ds.source.version
    assert ds.factor_names == info.factor_names
    assert ds.factor_sizes == info.factor_sizes
    assert len(ds) == math.prod(info.factor_sizes)
    assert [len(v) for v in ds.factor_values] == list(ds.factor_sizes)
    assert check_sampler(ds, metric="test").tolist() == list(ds.factor_sizes)


@pytest.mark.parametrize("name", NAMES)
@settings(max_examples=8, deadline=None)
@given(data=st.data())
def test_index_image_properties(name: str, data: st.DataObject) -> None:
    ds = dataset(name)
    idx = np.array(data.draw(st.lists(st.integers(0, len(ds) - 1), min_size=1, max_size=5)))
    f = ds.factors(idx)
    assert f.dtype == np.int64 and f.shape == (idx.size, ds.n_factors)
    np.testing.assert_array_equal(ds.index(f), idx)
    images = ds.images(idx)
    assert images.dtype == np.uint8 and images.shape == (idx.size, *ds.image_shape)
    # a pure function of the index: alone, in a batch, twice, from a fresh instance
    np.testing.assert_array_equal(images, ds.images_from_factors(f))
    np.testing.assert_array_equal(images[:1], ds.images(idx[:1]))
    np.testing.assert_array_equal(images, get_dataset(name).images(idx))
    assert (images.reshape(idx.size, -1).max(1) > 0).all()  # an object is always drawn


@pytest.mark.parametrize("name", ["dsprites_procedural", "xyobject_tiny"])
def test_complete_grid(name: str) -> None:
    ds = dataset(name)
    f = ds.factors(np.arange(len(ds)))
    assert len(np.unique(ds.index(f))) == len(ds)
    for k, size in enumerate(ds.factor_sizes):
        assert np.array_equal(np.unique(f[:, k]), np.arange(size))
    np.testing.assert_array_equal(f[:3, -1], [0, 1, 2])  # last factor fastest


def test_dsprites_factor_values_are_the_official_ones() -> None:
    shape, scale, orient, px, py = dataset("dsprites_procedural").factor_values
    np.testing.assert_array_equal(shape, [1, 2, 3])
    np.testing.assert_allclose(scale, [0.5, 0.6, 0.7, 0.8, 0.9, 1.0])
    assert len(orient) == 40 and orient[0] == 0 and orient[-1] == pytest.approx(2 * np.pi)
    np.testing.assert_allclose(px, np.linspace(0, 1, 32))
    np.testing.assert_allclose(py, np.linspace(0, 1, 32))


# -- dSprites geometry -------------------------------------------------------------------------
def test_binary_output_and_pixel_range() -> None:
    ds = dataset("dsprites_procedural")
    f = ds.sample_factors(200, 3)
    x255 = ds.images_from_factors(f)  # default: 0/255, so /255 maps every dataset to [0, 1]
    assert set(np.unique(x255).tolist()) == {0, 255} and x255.shape[-1] == 1
    x = get_dataset("dsprites_procedural", pixel_range="01").images_from_factors(f)
    assert set(np.unique(x).tolist()) == {0, 1}
    np.testing.assert_array_equal(x255, x * 255)


@pytest.mark.parametrize("shape", [0, 1, 2])
@pytest.mark.parametrize("orient", [0, 7, 23])
def test_centroid_moves_monotonically_with_position(shape: int, orient: int) -> None:
    ds = dataset("dsprites_procedural")
    steps = np.arange(32)
    for scale in (0, 5):
        along_x = np.stack([np.full(32, shape), np.full(32, scale), np.full(32, orient),
                            steps, np.full(32, 16)], 1)
        c = centroid(ds.images_from_factors(along_x))
        assert (np.diff(c[:, 1]) > 0).all()  # column strictly increases with posX
        assert np.ptp(c[:, 0]) < 0.5  # the row stays put (up to pixel jitter)
        along_y = along_x[:, [0, 1, 2, 4, 3]]
        c = centroid(ds.images_from_factors(along_y))
        assert (np.diff(c[:, 0]) > 0).all()  # row strictly increases with posY (downward)
        assert np.ptp(c[:, 1]) < 0.5
    # pos 0 and 1 put the centre at the margin (pixel k has its centre at k + 0.5); the
    # heart's centre of mass sits up to 2 px off its bounding-box centre
    ends = centroid(ds.images_from_factors([[shape, 5, orient, 0, 0],
                                            [shape, 5, orient, 31, 31]]))
    low, high = proc.POSITION_MARGIN_PX - 0.5, 64 - proc.POSITION_MARGIN_PX - 0.5
    np.testing.assert_allclose(ends, [[low, low], [high, high]], atol=2.5)


@pytest.mark.parametrize("shape", [0, 1, 2])
def test_area_increases_with_scale(shape: int) -> None:
    ds = dataset("dsprites_procedural")
    for orient in (0, 5, 13, 30):
        f = np.stack([np.full(6, shape), np.arange(6), np.full(6, orient), np.full(6, 11),
                      np.full(6, 20)], 1)
        area = ds.images_from_factors(f).reshape(6, -1).sum(1)
        assert (np.diff(area) > 0).all(), area


def test_shapes_differ_and_have_expected_areas() -> None:
    for scale in range(6):
        sq, el, he = (dsprite(s, scale, 0, 16, 16) for s in range(3))
        assert (sq != el).any() and (sq != he).any() and (el != he).any()
    sq, el, he = (dsprite(s, 5, 0, 16, 16).sum() for s in range(3))
    # the square is 2 (unit radius)^2, the 2:1 ellipse pi/2, the heart about 2.04
    r2 = proc.SPRITE_RADIUS_PX**2
    assert sq == pytest.approx(2 * r2, rel=0.15)
    assert el == pytest.approx(np.pi / 2 * r2, rel=0.15)
    assert he == pytest.approx(2.04 * r2, rel=0.15)
    # the heart is upright: its widest row lies above its centre of mass (lobes up)
    heart = dsprite(2, 5, 0, 16, 16)
    assert np.argmax(heart.sum(1)) < centroid(heart[None, :, :, None])[0, 0] - 2
    # the ellipse's long axis is horizontal at orientation 0
    ys, xs = np.nonzero(dsprite(1, 5, 0, 16, 16))
    assert np.ptp(xs) > 1.8 * np.ptp(ys)


def test_orientation_rotates_the_heart() -> None:
    hearts = dataset("dsprites_procedural").images_from_factors(
        np.stack([np.full(40, 2), np.full(40, 5), np.arange(40), np.full(40, 16),
                  np.full(40, 16)], 1)
    )[..., 0]
    flat = hearts.reshape(40, -1)
    # the 39 distinct angles in [0, 2π) give 39 different hearts
    assert len(np.unique(flat[:39], axis=0)) == 39
    # at the frame's centre (a pixel corner), quarter turns are exact array rotations, and
    # the direction is anticlockwise on screen (np.rot90 with rows downward)
    turns = render_sprites(np.full(4, 2), np.ones(4), np.arange(4) * np.pi / 2,
                           np.full(4, 0.5), np.full(4, 0.5))
    for k in range(1, 4):
        np.testing.assert_array_equal(turns[k], np.rot90(turns[0], k))
    assert (turns[1] != np.rot90(turns[0], -1)).any()


def test_documented_orientation_quirks() -> None:
    ds = dataset("dsprites_procedural")
    f = ds.sample_factors(300, 11)
    first, last = f.copy(), f.copy()
    first[:, ORIENT], last[:, ORIENT] = 0, 39  # orientations 0 and 2π
    np.testing.assert_array_equal(ds.images_from_factors(first), ds.images_from_factors(last))
    # the square repeats every π/2 and the ellipse every π (at any scale and position)
    n = 64
    rng = np.random.default_rng(5)
    scale = rng.choice(ds.factor_values[SCALE], n)
    px, py = rng.choice(ds.factor_values[POSX], (2, n))
    for shape, period in ((0, np.pi / 2), (1, np.pi)):
        s = np.full(n, shape)
        np.testing.assert_array_equal(
            render_sprites(s, scale, np.zeros(n), px, py),
            render_sprites(s, scale, np.full(n, period), px, py),
        )
    # while the heart does not repeat at π/2 or π
    s = np.full(n, 2)
    for turn in (np.pi / 2, np.pi):
        a, b = render_sprites(s, scale, np.zeros(n), px, py), render_sprites(
            s, scale, np.full(n, turn), px, py)
        assert (a != b).reshape(n, -1).any(1).all()


@pytest.mark.parametrize("name", ["dsprites_procedural", "xyobject", "xyobject_tiny"])
def test_each_factor_changes_the_image(name: str) -> None:
    ds = dataset(name)
    base = ds.sample_factors(50, 2)
    if name == "dsprites_procedural":
        base[:, SHAPE] = 2  # the heart has no rotational symmetry
    images = ds.images_from_factors(base)
    for k, size in enumerate(ds.factor_sizes):
        moved = base.copy()
        moved[:, k] = (moved[:, k] + 1 + np.arange(50) % (size - 1)) % size
        if name == "dsprites_procedural" and k == ORIENT:
            # 0 and 2π are the same image; keep away from that pair
            same = ((moved[:, k] == 39) & (base[:, k] == 0)) | (
                (moved[:, k] == 0) & (base[:, k] == 39))
            moved[same, k] = 20
        changed = (ds.images_from_factors(moved) != images).reshape(50, -1).any(1)
        assert changed.all(), (ds.factor_names[k], base[~changed], moved[~changed])


def test_no_pixel_leaves_the_frame() -> None:
    """The largest sprites at the extreme positions, every shape and orientation, never
    touch the frame's border pixels (so nothing is cut off)."""
    ds = dataset("dsprites_procedural")
    grid = np.array(np.meshgrid([0, 1, 2], [5], np.arange(40), [0, 31], [0, 31],
                                indexing="ij")).reshape(5, -1).T
    x = ds.images_from_factors(grid)[..., 0]
    border = np.concatenate([x[:, 0], x[:, -1], x[:, :, 0], x[:, :, -1]], axis=1)
    assert border.sum() == 0
    assert (x.reshape(len(grid), -1).sum(1) > 100).all()


def test_heart_constants_fit_the_unit_disc() -> None:
    t = np.linspace(-1.5, 1.5, 1501)
    u, v = np.meshgrid(t, t)
    inside = proc._shape_mask(2, u, v)
    assert inside.any()
    assert np.hypot(u[inside], v[inside]).max() <= 1.0
    # and it is centred on its bounding box
    assert abs(v[inside].max() + v[inside].min()) < 0.01


def test_rendering_in_chunks_is_exact(monkeypatch: pytest.MonkeyPatch) -> None:
    ds = dataset("dsprites_procedural")
    f = ds.sample_factors(50, 9)
    whole = ds.images_from_factors(f)
    monkeypatch.setattr(proc, "RENDER_CHUNK", 7)
    np.testing.assert_array_equal(ds.images_from_factors(f), whole)


# -- nuisance variants -------------------------------------------------------------------------
def test_color_variant() -> None:
    ds = dataset("color_dsprites_procedural")
    binary = dataset("dsprites_procedural")
    idx = np.arange(0, len(ds), 4099)
    x = ds.images(idx)
    mask = binary.images(idx)[..., 0].astype(bool)
    assert x.shape == (idx.size, 64, 64, 3)
    np.testing.assert_array_equal(x.max(-1) > 0, mask)  # same sprite, black background
    colours = []
    for img, m in zip(x, mask, strict=True):
        pix = img[m]
        assert (pix == pix[0]).all()  # one colour per sprite
        colours.append(pix[0])
    colours = np.array(colours)
    assert colours.min() >= 127 and colours.max() <= 255  # from [0.5, 1]^3
    assert len(np.unique(colours, axis=0)) == len(colours)
    assert colours.std(0).min() > 20  # spread over the range, each channel independently
    other_seed = get_dataset("color_dsprites_procedural", seed=1).images(idx)
    assert (other_seed != x).any()
    np.testing.assert_array_equal(get_dataset("color_dsprites_procedural", seed=0).images(idx), x)


def test_noisy_variant() -> None:
    ds = dataset("noisy_dsprites_procedural")
    binary = dataset("dsprites_procedural")
    idx = np.array([0, 5, 77_777, 500_000, len(ds) - 1])
    x = ds.images(idx)
    mask = binary.images(idx)[..., 0].astype(bool)
    assert (x[mask] == 255).all()  # the sprite is white
    background = x[~mask].astype(np.float64)
    assert background.mean() == pytest.approx(127.5, abs=3)  # uniform bytes
    assert background.std() == pytest.approx(np.sqrt((256**2 - 1) / 12), rel=0.05)
    assert len(np.unique(x.reshape(len(idx), -1), axis=0)) == len(idx)  # noise per image
    # the same index gives the same noise, in any batch
    np.testing.assert_array_equal(ds.images(idx[::-1])[::-1], x)
    assert (get_dataset("noisy_dsprites_procedural", seed=3).images(idx) != x).any()


# -- options and errors ------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "options", "error", "match"),
    [
        ("dsprites_procedural", {"pixel_range": "0-1"}, ValueError, "pixel_range must be"),
        ("dsprites_procedural", {"pixel_range": 255}, ValueError, "pixel_range must be"),
        ("dsprites_procedural", {"colour": True}, TypeError, "accepted options: pixel_range"),
        ("color_dsprites_procedural", {"pixel_range": "255"}, TypeError, "accepted options"),
        ("color_dsprites_procedural", {"seed": -1}, ValueError, "non-negative"),
        ("noisy_dsprites_procedural", {"seed": 1.5}, TypeError, "seed must be"),
        ("xyobject", {"image_size": 28}, ValueError, "at most .* distinct positions"),
        ("xyobject", {"image_size": 16}, ValueError, "distinct scales"),
        ("xyobject", {"image_size": 0}, ValueError, "positive int"),
        ("xyobject_tiny", {"n_colours": 3}, TypeError, "accepted options: image_size"),
        ("xyobject_tiny", {"image_size": 6}, ValueError, "distinct"),
    ],
)
def test_bad_options(name: str, options: dict, error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        get_dataset(name, **options)


def test_bad_factors_and_variant() -> None:
    ds = dataset("dsprites_procedural")
    with pytest.raises(ValueError, match="'orientation' takes values in"):
        ds.images_from_factors([[0, 0, 40, 0, 0]])
    with pytest.raises(ValueError, match="shape"):
        ds.images_from_factors([[0, 0, 0, 0]])
    with pytest.raises(ValueError, match="variant must be one of"):
        DSpritesProcedural(variant="colour")
    one = np.ones(1)
    with pytest.raises(ValueError, match="shape must be 0, 1 or 2"):
        render_sprites(np.array([3]), one, one, one, one)
    with pytest.raises(ValueError, match="scale must lie in"):
        render_sprites(np.array([0]), 2 * one, one, one, one)
    with pytest.raises(ValueError, match="pos_y must lie in"):
        render_sprites(np.array([0]), one, one, one, -one)
    with pytest.raises(ValueError, match="five 1-D arrays"):
        render_sprites(np.array([0, 1]), one, one, one, one)


# -- XYObject ----------------------------------------------------------------------------------
def test_xyobject_geometry() -> None:
    ds = dataset("xyobject")
    assert ds.image_shape == (64, 64, 3) and len(ds) == 75_000
    np.testing.assert_array_equal(ds.factor_values[2], [7, 9, 11, 13, 15])
    for scale in range(5):
        f = np.stack([np.arange(25), np.full(25, 12), np.full(25, scale), np.full(25, 3)], 1)
        x = ds.images_from_factors(f)
        c = centroid(x)
        assert (np.diff(c[:, 1]) > 0).all() and np.ptp(c[:, 0]) == 0
        np.testing.assert_allclose(c[:, 1] + 0.5, ds.factor_values[0], atol=0.5)
        area = (x.max(-1) > 0).reshape(25, -1).sum(1)
        assert (area == ds.factor_values[2][scale] ** 2).all()
        c = centroid(ds.images_from_factors(f[:, [1, 0, 2, 3]]))
        assert (np.diff(c[:, 0]) > 0).all() and np.ptp(c[:, 1]) == 0


def test_xyobject_colours_and_sizes() -> None:
    ds = dataset("xyobject")
    f = np.stack([np.full(24, 12), np.full(24, 12), np.full(24, 2), np.arange(24)], 1)
    x = ds.images_from_factors(f)
    centre = x[:, 32, 32]  # (24, 3)
    assert len(np.unique(centre, axis=0)) == 24
    np.testing.assert_array_equal(centre[0], [255, 0, 0])
    assert (centre.max(1) == 255).all()  # full value
    small = get_dataset("xyobject", image_size=32)
    assert small.image_shape == (32, 32, 3) and small.factor_sizes == ds.factor_sizes
    np.testing.assert_array_equal(small.factor_values[2], [4, 5, 6, 7, 8])


def test_xyobject_tiny_every_image_distinct_and_in_frame() -> None:
    ds = dataset("xyobject_tiny")
    assert len(ds) == 512 and ds.image_shape == (32, 32, 3)
    x = ds.images(np.arange(len(ds)))
    assert len(np.unique(x.reshape(len(ds), -1), axis=0)) == len(ds)
    area = (x.max(-1) > 0).reshape(len(ds), -1).sum(1)
    expected = ds.factor_values[2][ds.factors(np.arange(len(ds)))[:, 2]] ** 2
    np.testing.assert_array_equal(area, expected)  # never cut by the frame


def test_xyobject_custom_grid_validation() -> None:
    with pytest.raises(ValueError, match="distinct scales"):
        XYObject(image_size=32, n_scales=9)
    with pytest.raises(ValueError, match="n_colours must be a positive int"):
        XYObject(n_colours=0)
