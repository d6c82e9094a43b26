"""A picture of a dataset's factors: one row per factor, that factor varied from a base.

:func:`factor_grid` draws a random base configuration (seeded) and, for each factor ``k``,
one row of images in which only factor ``k`` changes, over up to ``n_per_factor`` evenly
spaced class indices. Cells are separated by a small gap; rows of factors with fewer values
than the widest row are padded with the background. With ``label=True`` the factor names
are drawn at the left of their rows (Pillow's default font). :func:`save_png` writes the
result. ``disentkit data show NAME`` does both.

Everything is rendered in one call of ``images_from_factors`` (one batch for the whole
grid). Images are converted to RGB for display: one-channel images are repeated over three
channels and binary images (values 0/1, as in dSprites) are stretched to 0/255, see
:func:`max_pixel_value`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from disentkit._random import SeedLike, as_generator
from disentkit._validation import check_positive_int

__all__ = ["factor_grid", "factor_steps", "max_pixel_value", "save_png", "to_rgb"]

BACKGROUND = 255
"""Grey level of the gaps, the padding and the label column (white)."""


def max_pixel_value(dataset: Any) -> int:
    """The value of a fully-on pixel in ``dataset``'s uint8 images: 255, or 1 for binary.

    Read from the dataset's ``max_pixel_value`` (:class:`FactorDataset` gives 255; dSprites
    with ``pixel_range="01"`` gives 1); objects without it are taken as 0–255.

    Example:
        >>> from disentkit.data import get_dataset
        >>> max_pixel_value(get_dataset("shapes3d_procedural", image_size=4, cache_dir=False))
        255
    """
    explicit = getattr(dataset, "max_pixel_value", None)
    if explicit is not None:
        value = int(explicit)
        if not 1 <= value <= 255:
            raise ValueError(
                f"{getattr(dataset, 'name', type(dataset).__name__)}: max_pixel_value must lie "
                f"in [1, 255]; received {explicit!r}"
            )
        return value
    return 255


def factor_steps(size: int, n: int | None = None) -> np.ndarray:
    """Up to ``n`` evenly spaced class indices of a factor with ``size`` values, both ends
    included (all of them when ``size <= n`` or ``n`` is ``None``).

    Example:
        >>> factor_steps(40, 10).tolist()
        [0, 4, 9, 13, 17, 22, 26, 30, 35, 39]
        >>> factor_steps(3, 10).tolist()
        [0, 1, 2]
    """
    size = check_positive_int(size, "size")
    if n is None or size <= n:
        return np.arange(size)
    n = check_positive_int(n, "n_per_factor")
    if n == 1:
        return np.zeros(1, dtype=np.int64)
    return np.unique(np.round(np.linspace(0, size - 1, n)).astype(np.int64))


def to_rgb(images: np.ndarray, max_value: int = 255) -> np.ndarray:
    """uint8 ``(B, H, W, C)`` with C = 1 or 3 (or 4: alpha dropped) → uint8 ``(B, H, W, 3)``
    with values stretched from ``[0, max_value]`` to ``[0, 255]``.

    Example:
        >>> to_rgb(np.ones((1, 2, 2, 1), np.uint8), max_value=1)[0, 0, 0].tolist()
        [255, 255, 255]
    """
    x = np.asarray(images)
    if x.ndim != 4 or x.shape[-1] not in (1, 3, 4):
        raise ValueError(
            f"images must have shape (B, H, W, C) with C in (1, 3, 4); received {x.shape}"
        )
    if x.dtype != np.uint8:
        raise TypeError(f"images must be uint8; received {x.dtype}")
    x = x[..., :3]
    if x.shape[-1] == 1:
        x = np.repeat(x, 3, axis=-1)  # (B, H, W, 3)
    if max_value != 255:
        x = (np.minimum(x.astype(np.uint16) * 255 // max_value, 255)).astype(np.uint8)
    return np.ascontiguousarray(x)


def factor_grid(
    dataset: Any,
    *,
    seed: SeedLike = 0,
    n_per_factor: int | None = 10,
    gap: int = 2,
    zoom: int = 1,
    label: bool = False,
    base: object = None,
) -> np.ndarray:
    """One row per factor, varying that factor over evenly spaced values from a base.

    The base configuration is ``dataset.sample_factors(1, seed)`` (or ``base``). Row ``k``
    holds the images of the base with factor ``k`` set to each of
    :func:`factor_steps` ``(size_k, n_per_factor)``, so within a row only factor ``k``
    changes. The grid is ``max_k len(steps_k)`` cells wide; shorter rows are padded.

    Args:
        dataset: a :class:`~disentkit.data.FactorDataset` (``factor_sizes``,
            ``sample_factors``, ``images_from_factors`` and, for labels, ``factor_names``).
        seed: seed (or generator) of the base configuration.
        n_per_factor: most values shown per factor (evenly spaced, ends included);
            ``None`` shows every value.
        gap: background pixels between cells (and around the grid).
        zoom: integer nearest-neighbour enlargement of every image (for small images).
        label: draw each factor's name at the left of its row (Pillow's default font).
        base: a base factor vector ``(K,)`` to use instead of a random one.

    Returns:
        uint8 ``(H', W', 3)`` with ``H' = K·(h + gap) + gap`` and
        ``W' = L + n·(w + gap) + gap`` (``h``, ``w`` the zoomed image size, ``n`` the widest
        row, ``L`` the label column, 0 without labels).

    Example:
        >>> from disentkit.data import get_dataset
        >>> ds = get_dataset("shapes3d_procedural", image_size=8, cache_dir=False)
        >>> factor_grid(ds, seed=0, n_per_factor=4).shape  # 6 rows of ≤ 4 cells of 8 px
        (62, 42, 3)
    """
    sizes = [int(s) for s in dataset.factor_sizes]
    k = len(sizes)
    gap = check_positive_int(gap, "gap", minimum=0)
    zoom = check_positive_int(zoom, "zoom")
    if n_per_factor is not None:
        n_per_factor = check_positive_int(n_per_factor, "n_per_factor")
    if base is None:
        base_f = np.asarray(dataset.sample_factors(1, as_generator(seed))).reshape(k)
    else:
        base_f = np.asarray(base).reshape(-1)
        if base_f.shape != (k,):
            raise ValueError(f"base must hold {k} factor values; received {np.shape(base)}")
    steps = [factor_steps(s, n_per_factor) for s in sizes]
    # Every cell's factor vector, row by row: (sum of row lengths, K).
    cells = np.repeat(base_f[None, :], sum(len(s) for s in steps), axis=0).astype(np.int64)
    rows = np.repeat(np.arange(k), [len(s) for s in steps])  # (n_cells,) row of each cell
    cols = np.concatenate([np.arange(len(s)) for s in steps])  # (n_cells,) column
    cells[np.arange(len(cells)), rows] = np.concatenate(steps)
    images = to_rgb(dataset.images_from_factors(cells), max_pixel_value(dataset))
    if zoom > 1:
        images = images.repeat(zoom, axis=1).repeat(zoom, axis=2)
    _, h, w, _ = images.shape
    width = max(len(s) for s in steps)
    grid = np.full((k * (h + gap) + gap, width * (w + gap) + gap, 3), BACKGROUND, np.uint8)
    # Place all cells at once through a (K, n, h, w, 3) view of the grid's cell area.
    top = gap + rows * (h + gap)  # (n_cells,)
    left = gap + cols * (w + gap)
    yy = top[:, None, None] + np.arange(h)[None, :, None]  # (n_cells, h, 1)
    xx = left[:, None, None] + np.arange(w)[None, None, :]  # (n_cells, 1, w)
    grid[yy, xx] = images
    if label:
        names = tuple(getattr(dataset, "factor_names", ())) or tuple(
            f"factor_{i}" for i in range(k)
        )
        grid = _with_labels(grid, names, h, gap)
    return grid


def _with_labels(grid: np.ndarray, names: tuple[str, ...], h: int, gap: int) -> np.ndarray:
    """Prepend a column with ``names[k]`` vertically centred on row ``k``."""
    from PIL import Image, ImageDraw, ImageFont

    font = ImageFont.load_default()
    widths = [font.getbbox(n)[2] - font.getbbox(n)[0] for n in names]
    column = int(max(widths, default=0)) + 2 * max(gap, 2)
    out = np.full((grid.shape[0], column + grid.shape[1], 3), BACKGROUND, np.uint8)
    out[:, column:] = grid
    img = Image.fromarray(out)
    draw = ImageDraw.Draw(img)
    for i, name in enumerate(names):
        x0, y0, _, y1 = draw.textbbox((0, 0), name, font=font)
        y = gap + i * (h + gap) + (h - (y1 - y0)) / 2 - y0
        draw.text((max(gap, 2) - x0, y), name, fill=(0, 0, 0), font=font)
    return np.asarray(img)


def save_png(array: np.ndarray, path: str | os.PathLike[str]) -> Path:
    """Write a uint8 image ``(H, W)``, ``(H, W, 3)`` or ``(H, W, 4)`` to ``path`` as PNG.

    Creates the parent folder. Returns the path written.

    Example:
        >>> import tempfile
        >>> p = save_png(np.zeros((2, 3, 3), np.uint8), Path(tempfile.mkdtemp()) / "x.png")
        >>> p.name
        'x.png'
    """
    a = np.asarray(array)
    if a.dtype != np.uint8:
        raise TypeError(f"save_png needs a uint8 image; received dtype {a.dtype}")
    if not (a.ndim == 2 or (a.ndim == 3 and a.shape[-1] in (1, 3, 4))):
        raise ValueError(
            f"save_png needs an image (H, W), (H, W, 3) or (H, W, 4); received shape {a.shape}"
        )
    if a.ndim == 3 and a.shape[-1] == 1:
        a = a[..., 0]
    from PIL import Image

    out = Path(path).expanduser()
    out.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.ascontiguousarray(a)).save(out, format="PNG")
    return out
