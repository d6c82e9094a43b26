"""Vectorised helpers shared by the procedural 2-D datasets.

Two kinds of helper, both batch-first with no Python loop per image:

- **Sprite windows.** A small sprite covers a few hundred pixels of a 64×64 frame, so it is
  evaluated on a square window around it (``window_grid``) and pasted into the frame
  (``paste_windows``), which is several times cheaper than testing every pixel.
- **Counter-based randomness.** Nuisance colours and noise must be a pure function of the
  image index (so that ``images_from_factors`` gives the same picture whatever batch it is
  in). A splitmix64 hash of ``(seed, index, counter)`` gives uniform numbers for a whole
  batch at once (``hash_uniform``, ``hash_bytes``); nothing depends on the platform's byte
  order.
"""

from __future__ import annotations

import numpy as np

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)


def splitmix64(x: np.ndarray) -> np.ndarray:
    """The splitmix64 finaliser applied elementwise (uint64 in, uint64 out, wrapping).

    Example:
        >>> splitmix64(np.arange(3, dtype=np.uint64)).dtype
        dtype('uint64')
    """
    z = np.asarray(x, dtype=np.uint64) + _GOLDEN  # a fresh array, updated in place below
    t = z >> np.uint64(30)
    z ^= t
    z *= _MIX1
    np.right_shift(z, np.uint64(27), out=t)
    z ^= t
    z *= _MIX2
    np.right_shift(z, np.uint64(31), out=t)
    z ^= t
    return z


def image_keys(indices: np.ndarray, seed: int, stream: int) -> np.ndarray:
    """One uint64 key ``(B,)`` per image index, for a given ``seed`` and named ``stream``.

    Different streams (e.g. colour vs noise) give unrelated numbers for the same index.
    """
    base = splitmix64(np.array([seed], dtype=np.uint64) * _MIX1 + np.uint64(stream))
    return splitmix64(np.asarray(indices, dtype=np.uint64) ^ base)


def hash_uniform(keys: np.ndarray, n: int) -> np.ndarray:
    """``n`` uniform floats in ``[0, 1)`` per key: float64 ``(B, n)``.

    Example:
        >>> u = hash_uniform(image_keys(np.arange(4), seed=0, stream=1), 3)
        >>> u.shape, bool(((u >= 0) & (u < 1)).all())
        ((4, 3), True)
    """
    counters = np.arange(1, n + 1, dtype=np.uint64) * _GOLDEN  # (n,)
    bits = splitmix64(keys[:, None] + counters[None, :])  # (B, n)
    return (bits >> np.uint64(11)).astype(np.float64) * 2.0**-53


def hash_bytes(keys: np.ndarray, n: int) -> np.ndarray:
    """``n`` uniform bytes per key: uint8 ``(B, n)``, eight bytes per hash evaluation.

    Example:
        >>> hash_bytes(image_keys(np.arange(2), seed=0, stream=2), 10).shape
        (2, 10)
    """
    n_words = -(-n // 8)
    counters = np.arange(1, n_words + 1, dtype=np.uint64) * _GOLDEN  # (W,)
    words = splitmix64(keys[:, None] + counters[None, :])  # (B, W)
    as_bytes = words.astype("<u8").view(np.uint8)  # (B, 8 W), little-endian on any host
    return as_bytes[:, :n]


def window_origins(centres: np.ndarray, radius: float, window: int, size: int) -> np.ndarray:
    """Integer top-left pixel ``(B,)`` of a ``window``-pixel span around each centre.

    Pixel ``k`` has its centre at ``k + 0.5``. The span starts at the first pixel whose centre
    can lie within ``radius`` of the centre, clipped so the window stays inside ``size``.
    """
    start = np.floor(np.asarray(centres) - radius - 0.5).astype(np.int64)
    return np.clip(start, 0, size - window)


def window_grid(
    origins_y: np.ndarray, origins_x: np.ndarray, centres_y: np.ndarray,
    centres_x: np.ndarray, window: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Pixel-centre offsets from each sprite centre over its window.

    Returns:
        ``dy`` float32 ``(B, window, 1)`` and ``dx`` float32 ``(B, 1, window)``: the
        offsets (in pixels, rows downward) of pixel centres from the sprite centre.
    """
    k = np.arange(window, dtype=np.float64) + 0.5  # (w,)
    dy = (origins_y[:, None] + k[None, :]) - centres_y[:, None]  # (B, w)
    dx = (origins_x[:, None] + k[None, :]) - centres_x[:, None]  # (B, w)
    return dy.astype(np.float32)[:, :, None], dx.astype(np.float32)[:, None, :]


def paste_windows(
    canvas: np.ndarray, windows: np.ndarray, origins_y: np.ndarray, origins_x: np.ndarray
) -> None:
    """Write ``windows`` ``(B, w, w)`` into ``canvas`` ``(B, H, W)`` at the given origins.

    Example:
        >>> canvas = np.zeros((2, 5, 5), np.uint8)
        >>> paste_windows(canvas, np.ones((2, 2, 2), np.uint8), np.array([0, 3]),
        ...               np.array([1, 0]))
        >>> int(canvas[0, 0, 1]), int(canvas[1, 4, 1]), int(canvas.sum())
        (1, 1, 8)
    """
    if not canvas.flags.c_contiguous:
        raise ValueError("paste_windows needs a C-contiguous canvas (it writes through a view)")
    b, w, _ = windows.shape
    _, h, width = canvas.shape
    k = np.arange(w)
    start = np.arange(b) * (h * width) + origins_y * width + origins_x  # (B,) flat offsets
    within = (k[:, None] * width + k[None, :]).reshape(-1)  # (w*w,) offsets in a window
    # flat indices are much faster than three broadcast index arrays
    canvas.reshape(-1)[start[:, None] + within[None, :]] = windows.reshape(b, -1)


def tint(mask: np.ndarray, rgb: np.ndarray) -> np.ndarray:
    """Colour a binary mask per image: ``mask`` {0, 1} ``(B, H, W)``, ``rgb`` uint8 ``(B, 3)``.

    Returns:
        uint8 ``(B, H, W, 3)``: ``rgb[b]`` where the mask is 1, else 0. Written one channel at
        a time, which is several times faster than broadcasting over a trailing axis of 3.

    Example:
        >>> tint(np.ones((1, 1, 2), np.uint8), np.array([[1, 2, 3]], np.uint8)).tolist()
        [[[[1, 2, 3], [1, 2, 3]]]]
    """
    b, h, w = mask.shape
    out = np.empty((b, h, w, 3), dtype=np.uint8)
    for c in range(3):
        np.multiply(mask, rgb[:, c, None, None], out=out[..., c])
    return out


def hsv_to_rgb(hue: np.ndarray, saturation: float = 1.0, value: float = 1.0) -> np.ndarray:
    """RGB in ``[0, 1]`` ``(..., 3)`` for hues in ``[0, 1)`` at fixed saturation and value.

    Example:
        >>> hsv_to_rgb(np.array([0.0, 1 / 3])).round(6).tolist()
        [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]
    """
    h = np.asarray(hue, dtype=np.float64)[..., None]  # (..., 1)
    k = (np.array([5.0, 3.0, 1.0]) + h * 6.0) % 6.0  # (..., 3)
    return value - value * saturation * np.clip(np.minimum(k, 4.0 - k), 0.0, 1.0)
