"""Factor grid pictures of datasets and PNG writing."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from disentkit.data import DatasetSource, FactorDataset, get_dataset
from disentkit.data.show import (
    BACKGROUND,
    factor_grid,
    factor_steps,
    max_pixel_value,
    save_png,
    to_rgb,
)

H, W = 3, 4  # image size of the test dataset


class Pixels(FactorDataset):
    """Images whose column ``k`` holds factor ``k`` (value 20·(f_k + 1)), all channels."""

    name = "pixels"
    factor_names = ("a", "bb", "c")
    factor_sizes = (3, 12, 5)
    image_shape = (H, W, 3)
    source = DatasetSource(name="pixels", kind="procedural", version="test")

    def images_from_factors(self, factors: object) -> np.ndarray:
        f = self.check_factors(factors)
        out = np.zeros((len(f), H, W, 3), np.uint8)
        out[:, :, : f.shape[1], :] = (20 * (f + 1))[:, None, :, None]
        return out


class Binary(Pixels):
    """One-channel images with values 0/1, as dSprites stores them."""

    name = "binary"
    image_shape = (H, W, 1)
    max_pixel_value = 1

    def images_from_factors(self, factors: object) -> np.ndarray:
        f = self.check_factors(factors)
        return (super().images_from_factors(f)[..., :1] > 60).astype(np.uint8)


def _cells(grid: np.ndarray, n_rows: int, n_cols: int, gap: int) -> np.ndarray:
    """Cut a grid back into cells: (n_rows, n_cols, H, W, 3)."""
    out = np.empty((n_rows, n_cols, H, W, 3), np.uint8)
    for r in range(n_rows):
        for c in range(n_cols):
            top, left = gap + r * (H + gap), gap + c * (W + gap)
            out[r, c] = grid[top : top + H, left : left + W]
    return out


def test_grid_shape_follows_the_factors():
    ds = Pixels()
    grid = factor_grid(ds, seed=0, n_per_factor=10, gap=2)
    # 3 rows; widest row: factor bb shows 10 of its 12 values
    assert grid.shape == (3 * (H + 2) + 2, 10 * (W + 2) + 2, 3) and grid.dtype == np.uint8
    assert factor_grid(ds, n_per_factor=None, gap=1).shape == (3 * (H + 1) + 1, 12 * (W + 1) + 1, 3)
    assert factor_grid(ds, n_per_factor=4, gap=0, zoom=3).shape == (3 * 3 * H, 4 * 3 * W, 3)


def test_each_row_varies_only_its_factor():
    ds = Pixels()
    base = np.array([1, 7, 2])
    grid = factor_grid(ds, base=base, n_per_factor=10, gap=1)
    cells = _cells(grid, 3, 10, 1)
    for k, size in enumerate(ds.factor_sizes):
        steps = factor_steps(size, 10)
        row = cells[k, : len(steps)]  # (n, H, W, 3)
        for j in range(3):  # column j of every cell encodes factor j
            values = row[:, 0, j, 0].astype(int) // 20 - 1
            if j == k:
                np.testing.assert_array_equal(values, steps)
            else:
                assert (values == base[j]).all()
        expected = np.repeat(base[None], len(steps), axis=0)
        expected[:, k] = steps
        np.testing.assert_array_equal(row, ds.images_from_factors(expected))
        assert (cells[k, len(steps) :] == BACKGROUND).all()  # padding of short rows
    # gaps are background
    assert (grid[0] == BACKGROUND).all() and (grid[:, 0] == BACKGROUND).all()


def test_base_is_random_per_seed_and_deterministic():
    ds = get_dataset("shapes3d_procedural", image_size=8, cache_dir=False)
    a = factor_grid(ds, seed=3, n_per_factor=5)
    np.testing.assert_array_equal(a, factor_grid(ds, seed=3, n_per_factor=5))
    assert not np.array_equal(a, factor_grid(ds, seed=4, n_per_factor=5))
    assert a.shape == (6 * 10 + 2, 5 * 10 + 2, 3)
    # rows differ within themselves: every factor visibly changes the picture
    for k in range(6):
        row = a[2 + k * 10 : 10 + k * 10, 2:]
        assert row.std(axis=(0, 2)).max() > 0


def test_factor_steps_are_evenly_spaced_with_both_ends():
    s = factor_steps(40, 10)
    assert s[0] == 0 and s[-1] == 39 and len(s) == 10
    assert np.ptp(np.diff(s)) <= 1
    assert factor_steps(15, 1).tolist() == [0]
    assert factor_steps(5, None).tolist() == [0, 1, 2, 3, 4]


def test_labels_add_a_column_with_text():
    ds = Pixels()
    plain = factor_grid(ds, base=[0, 0, 0], gap=2)
    labelled = factor_grid(ds, base=[0, 0, 0], gap=2, label=True)
    extra = labelled.shape[1] - plain.shape[1]
    assert labelled.shape[0] == plain.shape[0] and extra > 0
    np.testing.assert_array_equal(labelled[:, extra:], plain)
    column = labelled[:, :extra]
    assert (column < 128).any()  # dark text on the white column
    rows_with_ink = (column < 128).any(axis=(1, 2))
    assert rows_with_ink[: 2 + H + 2].any() and rows_with_ink[-(H + 2) :].any()


def test_binary_images_are_stretched_to_white():
    ds = Binary()
    assert max_pixel_value(ds) == 1
    grid = factor_grid(ds, base=[2, 11, 4], gap=1, n_per_factor=3)
    cell = grid[1 : 1 + H, 1 : 1 + W]
    assert set(np.unique(cell).tolist()) <= {0, 255} and cell.max() == 255
    assert (cell[..., 0] == cell[..., 2]).all()  # grey: one channel repeated


def test_max_pixel_value_reads_the_dataset_attribute():
    assert max_pixel_value(Pixels()) == 255
    assert max_pixel_value(get_dataset("dsprites_procedural", pixel_range="01")) == 1

    class Wrong(Pixels):
        max_pixel_value = 300

    with pytest.raises(ValueError, match="max_pixel_value"):
        max_pixel_value(Wrong())


def test_to_rgb_checks_input():
    with pytest.raises(TypeError, match="uint8"):
        to_rgb(np.zeros((1, 2, 2, 3), np.float32))
    with pytest.raises(ValueError, match="C in"):
        to_rgb(np.zeros((1, 2, 2, 2), np.uint8))
    assert to_rgb(np.zeros((1, 2, 2, 4), np.uint8)).shape == (1, 2, 2, 3)


def test_png_round_trip(tmp_path):
    ds = get_dataset("shapes3d_procedural", image_size=8, cache_dir=False)
    grid = factor_grid(ds, seed=1, n_per_factor=3, label=True)
    path = save_png(grid, tmp_path / "sub" / "grid.png")
    assert path == tmp_path / "sub" / "grid.png"
    with Image.open(path) as img:
        assert img.format == "PNG" and img.mode == "RGB"
        np.testing.assert_array_equal(np.asarray(img), grid)
    grey = np.arange(12, dtype=np.uint8).reshape(3, 4)
    with Image.open(save_png(grey, tmp_path / "g.png")) as img:
        np.testing.assert_array_equal(np.asarray(img), grey)


@pytest.mark.parametrize(
    ("array", "error"),
    [
        (np.zeros((4, 4, 3), np.float32), TypeError),
        (np.zeros((4, 4, 2), np.uint8), ValueError),
        (np.zeros((1, 4, 4, 3), np.uint8), ValueError),
    ],
)
def test_save_png_rejects_non_images(tmp_path, array, error):
    with pytest.raises(error):
        save_png(array, tmp_path / "x.png")


def test_bad_options():
    ds = Pixels()
    with pytest.raises(ValueError, match="base"):
        factor_grid(ds, base=[0, 0])
    with pytest.raises(ValueError, match="zoom"):
        factor_grid(ds, zoom=0)
    with pytest.raises(ValueError, match="n_per_factor"):
        factor_grid(ds, n_per_factor=0)
