"""Procedural 2-D datasets rendered on the fly: dSprites-like sprites and XYObject squares.

Nothing is downloaded: every image is a pure function of its factor vector (and, for the
nuisance variants, of its index and a seed), rendered for a whole batch at once.

**dSprites (procedural).** The factors, their values, their order, the index rule and the
binary output match the official dSprites file (Matthey et al. 2017,
github.com/deepmind/dsprites-dataset); the pixels cannot, because the official generator
(LÖVE vector drawing with a private camera transform and a private heart mesh) is not
published. Sprites are drawn by an implicit-function rasteriser:

- a sprite is a region of the *sprite frame* ``(u, v)`` (``v`` up) that fits in the unit
  disc: a square ``max(|u|, |v|) ≤ 1/√2``, a 2:1 ellipse ``u² + (2v)² ≤ 1`` and the heart
  ``(x² + y² − 1)³ − x² y³ ≤ 0`` with ``x = HEART_SCALE·u``,
  ``y = HEART_SCALE·v + HEART_CENTRE_Y`` (centred on its bounding box, lobes up);
- a pixel is on when its centre, mapped into the sprite frame, lies in the region: the frame
  is the image plane translated to the sprite's centre, rotated by ``-orientation``
  (sprites turn anticlockwise on screen) and divided by ``SPRITE_RADIUS_PX · scale``;
- the centre is ``POSITION_MARGIN_PX + pos · (64 − 2·POSITION_MARGIN_PX)`` pixels along
  each axis (posX left to right, posY top to bottom), so no pixel ever leaves the frame;
- no supersampling: the output is binary and rotated edges are jagged, as in the original.

As in the original, orientation 0 and 2π give the same image, the square repeats every
π/2 and the ellipse every π.

**Nuisance variants** (Locatello et al. 2019, "Challenging Common Assumptions ..."):
``color_dsprites_procedural`` tints the sprite with an RGB colour drawn uniformly from
``[0.5, 1]³``; ``noisy_dsprites_procedural`` puts the white sprite on uniform noise. Unlike
disentanglement_lib, which draws these from the sampler's random state, the colour and noise
here come from a hash of ``(seed, image index)``, so an image is the same every time it is
asked for. They are nuisances, not factors: ``factor_sizes`` stay those of dSprites.

**XYObject** (after disent's XYObject): a square of one of ``n_scales`` sizes and
``n_colours`` fully saturated hues on black, at ``n_positions × n_positions`` centres.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from disentkit.data._base import DatasetSource, FactorDataset, register_dataset
from disentkit.data._raster import (
    hash_bytes,
    hash_uniform,
    hsv_to_rgb,
    image_keys,
    paste_windows,
    tint,
    window_grid,
    window_origins,
)

# -- dSprites geometry (all lengths in pixels of the 64×64 frame) ------------------------------
DSPRITES_IMAGE_SIZE = 64
"""Side of the dSprites frame in pixels."""
SPRITE_RADIUS_PX = 15.0
"""Radius in pixels of the disc holding a sprite of scale 1 (every shape fits in it at
every orientation): a scale-1 square is 21.2 px wide, a scale-1 ellipse 30 × 15 px. At this
size one scale step (0.1) grows the square's half-side by 1.06 px, so every scale step
changes the image at every position."""
POSITION_MARGIN_PX = 16.0
"""Distance from the frame's edge to a sprite centre at pos 0 or 1. It exceeds
``SPRITE_RADIUS_PX + 0.5``, so no sprite pixel leaves the frame or even touches its border
pixels; one position step is ``(64 − 2·16)/31 = 1.03`` px, so every step moves the sprite."""
SQUARE_HALF_SIDE = 1.0 / math.sqrt(2.0)
"""Half-side of the square in sprite units (its corners touch the unit circle)."""
ELLIPSE_AXES = (1.0, 0.5)
"""Semi-axes of the ellipse in sprite units (aspect ratio 2:1, long axis along u)."""
HEART_SCALE = 1.34
"""Heart-curve units per sprite unit; the centred heart's farthest point is 1.337 from
its centre, so it fits in the unit disc."""
HEART_CENTRE_Y = 0.118
"""The heart curve's bounding-box centre (y spans [-1, 1.236]); the sprite origin."""
RENDER_CHUNK = 4096
"""Images rendered at once; bounds the temporary memory (about 30 MB per chunk)."""

DSPRITES_FACTOR_NAMES = ("shape", "scale", "orientation", "posX", "posY")
DSPRITES_FACTOR_SIZES = (3, 6, 40, 32, 32)
DSPRITES_SHAPES = ("square", "ellipse", "heart")
_DSPRITES_VERSION = "1"
_DSPRITES_VALUES = (
    np.array([1.0, 2.0, 3.0]),  # shape: 1 square, 2 ellipse, 3 heart
    np.linspace(0.5, 1.0, 6),  # scale
    np.linspace(0.0, 2.0 * np.pi, 40),  # orientation, both endpoints (0 and 2π repeat)
    np.linspace(0.0, 1.0, 32),  # posX
    np.linspace(0.0, 1.0, 32),  # posY
)

_COLOUR_STREAM = 1
_NOISE_STREAM = 2


def _check_options(name: str, options: dict[str, Any], allowed: tuple[str, ...]) -> None:
    if options:
        raise TypeError(
            f"{name}: unknown option(s) {sorted(options)}; accepted options: "
            f"{', '.join(allowed) if allowed else '(none)'}"
        )


def _check_seed(name: str, seed: object) -> int:
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer):
        raise TypeError(f"{name}: seed must be a non-negative int; received {seed!r}")
    if seed < 0:
        raise ValueError(f"{name}: seed must be a non-negative int; received {seed}")
    return int(seed)


def _shape_mask(shape: int, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Inside test in the sprite frame for one shape (0 square, 1 ellipse, 2 heart)."""
    if shape == 0:
        return np.maximum(np.abs(u), np.abs(v)) <= SQUARE_HALF_SIDE
    if shape == 1:
        a, b = ELLIPSE_AXES
        return (u / a) ** 2 + (v / b) ** 2 <= 1.0
    x = u * HEART_SCALE
    y = v * HEART_SCALE + HEART_CENTRE_Y
    r = x * x + y * y - 1.0
    return r * r * r - x * x * y * y * y <= 0.0


def render_sprites(
    shape: np.ndarray, scale: np.ndarray, orientation: np.ndarray, pos_x: np.ndarray,
    pos_y: np.ndarray, *, image_size: int = DSPRITES_IMAGE_SIZE,
) -> np.ndarray:
    """Binary dSprites-like masks for a batch of factor *values*.

    Args:
        shape: int ``(B,)`` in {0, 1, 2} (square, ellipse, heart).
        scale: ``(B,)`` sprite scale (1 = radius ``SPRITE_RADIUS_PX``).
        orientation: ``(B,)`` angle in radians, anticlockwise on screen.
        pos_x, pos_y: ``(B,)`` positions in ``[0, 1]`` (left→right, top→bottom).
        image_size: frame side in pixels.

    Returns:
        uint8 ``(B, image_size, image_size)`` with values in {0, 1}.

    Example:
        >>> m = render_sprites(np.array([0]), np.array([1.0]), np.array([0.0]),
        ...                    np.array([0.5]), np.array([0.5]))
        >>> m.shape, int(m.sum())  # a 22 × 22 square
        ((1, 64, 64), 484)
    """
    shape = np.asarray(shape)
    scale, orientation, pos_x, pos_y = (
        np.asarray(a, dtype=np.float64) for a in (scale, orientation, pos_x, pos_y)
    )
    b = shape.shape[0] if shape.ndim == 1 else -1
    if any(a.shape != (b,) for a in (shape, scale, orientation, pos_x, pos_y)):
        raise ValueError(
            "render_sprites takes five 1-D arrays of one length (B,); received shapes "
            f"{[np.shape(a) for a in (shape, scale, orientation, pos_x, pos_y)]}"
        )
    if b and not np.isin(shape, (0, 1, 2)).all():
        raise ValueError(f"shape must be 0, 1 or 2 (square, ellipse, heart); received "
                         f"{np.unique(shape).tolist()}")
    if b and ((scale <= 0) | (scale > 1)).any():
        raise ValueError(f"scale must lie in (0, 1]; received [{scale.min()}, {scale.max()}]")
    for label, pos in (("pos_x", pos_x), ("pos_y", pos_y)):
        if b and ((pos < 0) | (pos > 1)).any():
            raise ValueError(f"{label} must lie in [0, 1]; received [{pos.min()}, {pos.max()}]")
    out = np.zeros((b, image_size, image_size), dtype=np.uint8)
    window = 2 * math.ceil(SPRITE_RADIUS_PX * float(np.max(scale, initial=0.0))) + 2
    window = min(window, image_size)
    span = image_size - 2.0 * POSITION_MARGIN_PX
    for start in range(0, b, RENDER_CHUNK):
        sl = slice(start, start + RENDER_CHUNK)
        cx = POSITION_MARGIN_PX + np.asarray(pos_x[sl], np.float64) * span  # (b,)
        cy = POSITION_MARGIN_PX + np.asarray(pos_y[sl], np.float64) * span
        radius = SPRITE_RADIUS_PX * np.asarray(scale[sl], np.float64)  # (b,)
        oy = window_origins(cy, float(radius.max(initial=0.0)), window, image_size)
        ox = window_origins(cx, float(radius.max(initial=0.0)), window, image_size)
        dy, dx = window_grid(oy, ox, cy, cx, window)  # (b, w, 1), (b, 1, w) pixels
        theta = np.asarray(orientation[sl], np.float64)
        cos, sin = np.cos(theta), np.sin(theta)
        cos[np.abs(cos) < 1e-12] = 0.0  # exact quarter turns, so the square's symmetry holds
        sin[np.abs(sin) < 1e-12] = 0.0
        inv_r = (1.0 / radius).astype(np.float32)[:, None, None]
        c = cos.astype(np.float32)[:, None, None] * inv_r
        s = sin.astype(np.float32)[:, None, None] * inv_r
        # sprite frame, v up: rotate the image-plane offset (dx, -dy) by -theta
        u = dx * c - dy * s  # (b, w, w)
        v = -dx * s - dy * c
        windows = np.zeros(u.shape, dtype=np.uint8)
        shp = np.asarray(shape[sl])
        for k in np.unique(shp):  # at most three shapes
            sel = shp == k
            windows[sel] = _shape_mask(int(k), u[sel], v[sel])
        paste_windows(out[sl], windows, oy, ox)
    return out


class DSpritesProcedural(FactorDataset):
    """dSprites rendered procedurally: 737,280 images of 64×64, factors as the original.

    Factors (class index → value): shape 3 (1 square, 2 ellipse, 3 heart), scale 6
    (``linspace(0.5, 1, 6)``), orientation 40 (``linspace(0, 2π, 40)``, both endpoints),
    posX 32 and posY 32 (``linspace(0, 1, 32)``). See the module docstring for the geometry.

    Args:
        pixel_range: ``"255"`` (default) gives pixel values {0, 255}, so that every dataset
            maps to ``[0, 1]`` by dividing by 255 (what disent stores); ``"01"`` gives
            {0, 1} as in the official file.
        variant: ``"binary"`` (1 channel), ``"color"`` (sprite tinted by a colour from
            ``[0.5, 1]³``, 3 channels) or ``"noisy"`` (white sprite on uniform noise,
            3 channels). The variants always use values 0–255.
        seed: seed of the colour / noise nuisance (variants only).

    Example:
        >>> ds = DSpritesProcedural()
        >>> len(ds), ds.image_shape
        (737280, (64, 64, 1))
        >>> x = ds.images([0, 737279])
        >>> x.dtype, x.shape, sorted(np.unique(x).tolist())
        (dtype('uint8'), (2, 64, 64, 1), [0, 255])
    """

    factor_names = DSPRITES_FACTOR_NAMES
    factor_sizes = DSPRITES_FACTOR_SIZES

    @property
    def max_pixel_value(self) -> int:
        return self._max_pixel

    def __init__(self, *, pixel_range: str = "255", variant: str = "binary",
                 seed: int = 0) -> None:
        names = {"binary": "dsprites_procedural", "color": "color_dsprites_procedural",
                 "noisy": "noisy_dsprites_procedural"}
        if variant not in names:
            raise ValueError(
                f"dSprites variant must be one of {sorted(names)}; received {variant!r}"
            )
        self.name = names[variant]
        if pixel_range not in ("01", "255"):
            raise ValueError(
                f"{self.name}: pixel_range must be '01' (values 0/1, as in the official file) "
                f"or '255' (values 0/255); received {pixel_range!r}"
            )
        if variant != "binary" and pixel_range != "255":
            raise ValueError(f"{self.name}: pixel_range applies to the binary dSprites only")
        self.variant = variant
        self.pixel_range = pixel_range
        self._max_pixel = 1 if pixel_range == "01" else 255
        self.seed = _check_seed(self.name, seed)
        self.image_shape = (
            DSPRITES_IMAGE_SIZE, DSPRITES_IMAGE_SIZE, 1 if variant == "binary" else 3
        )
        self.source = DatasetSource(name=self.name, kind="procedural", version=_DSPRITES_VERSION)

    @property
    def factor_values(self) -> tuple[np.ndarray, ...]:
        """Official values: shape 1–3, scale 0.5–1, orientation 0–2π, posX/posY 0–1."""
        return tuple(v.copy() for v in _DSPRITES_VALUES)

    def images_from_factors(self, factors: object) -> np.ndarray:
        """Images ``uint8 (B, 64, 64, C)`` for factor class indices ``(B, 5)``."""
        f = self.check_factors(factors)
        _, scales, angles, pos, _ = _DSPRITES_VALUES
        masks = render_sprites(
            f[:, 0], scales[f[:, 1]], angles[f[:, 2]], pos[f[:, 3]], pos[f[:, 4]]
        )  # (B, 64, 64) in {0, 1}
        if self.variant == "binary":
            if self.pixel_range == "255":
                masks *= 255
            return masks[..., None]
        keys = image_keys(self.index(f), self.seed,
                          _COLOUR_STREAM if self.variant == "color" else _NOISE_STREAM)
        if self.variant == "color":
            colour = 0.5 + 0.5 * hash_uniform(keys, 3)  # (B, 3) in [0.5, 1)
            rgb = np.round(255.0 * colour).astype(np.uint8)  # (B, 3)
            return tint(masks, rgb)
        b, h, w = masks.shape
        out = hash_bytes(keys, h * w * 3).reshape(b, h, w, 3)  # uniform noise
        masks *= 255
        for c in range(3):  # one channel at a time: faster than broadcasting over 3
            np.maximum(out[..., c], masks, out=out[..., c])
        return out


def _dsprites_factory(
    variant: str, allowed: tuple[str, ...]
) -> Callable[..., DSpritesProcedural]:
    def factory(data_dir: object = None, **options: Any) -> DSpritesProcedural:
        name = {"binary": "dsprites_procedural", "color": "color_dsprites_procedural",
                "noisy": "noisy_dsprites_procedural"}[variant]
        _check_options(name, {k: v for k, v in options.items() if k not in allowed}, allowed)
        return DSpritesProcedural(variant=variant, **options)

    return factory


_DSPRITES_DESCRIPTION = (
    "dSprites-like 2-D sprites (square, ellipse, heart) rendered procedurally; same factors, "
    "order and binary output as the official file, not the same pixels"
)

register_dataset(
    "dsprites_procedural",
    kind="procedural",
    description=_DSPRITES_DESCRIPTION + "; 64×64×1, values 0/255 (0/1: pixel_range=\"01\")",
    factor_names=DSPRITES_FACTOR_NAMES,
    factor_sizes=DSPRITES_FACTOR_SIZES,
    licence="Apache-2.0 (rendered by disentkit)",
    procedural_alternative=None,
)(_dsprites_factory("binary", ("pixel_range",)))

register_dataset(
    "color_dsprites_procedural",
    kind="procedural",
    description=_DSPRITES_DESCRIPTION + "; sprite tinted by a per-image colour in [0.5,1]^3",
    factor_names=DSPRITES_FACTOR_NAMES,
    factor_sizes=DSPRITES_FACTOR_SIZES,
    licence="Apache-2.0 (rendered by disentkit)",
    procedural_alternative=None,
)(_dsprites_factory("color", ("seed",)))

register_dataset(
    "noisy_dsprites_procedural",
    kind="procedural",
    description=_DSPRITES_DESCRIPTION + "; white sprite on per-image uniform noise",
    factor_names=DSPRITES_FACTOR_NAMES,
    factor_sizes=DSPRITES_FACTOR_SIZES,
    licence="Apache-2.0 (rendered by disentkit)",
    procedural_alternative=None,
)(_dsprites_factory("noisy", ("seed",)))


# -- XYObject ------------------------------------------------------------------------------
XYOBJECT_FACTOR_NAMES = ("x", "y", "scale", "colour")
XYOBJECT_MIN_SIDE_FRACTION = 7 / 64
"""Side of the smallest square as a fraction of the image side (7 px at 64)."""
XYOBJECT_MAX_SIDE_FRACTION = 15 / 64
"""Side of the largest square as a fraction of the image side (15 px at 64)."""


def _round_half_up(x: np.ndarray) -> np.ndarray:
    return np.floor(np.asarray(x, np.float64) + 0.5).astype(np.int64)


class XYObject(FactorDataset):
    """A coloured square on black: factors x, y, scale (side) and colour (hue).

    Square sides are ``linspace(min_side, max_side, n_scales)`` pixels, rounded, with
    ``min_side = round(7/64 · image_size)`` and ``max_side = round(15/64 · image_size)``.
    Centres are ``linspace(max_side/2, image_size − max_side/2, n_positions)`` on each axis
    (x left→right, y top→bottom); a square of side ``s`` covers pixels
    ``[round(c − s/2), round(c − s/2) + s)``, so scale does not move the centre (up to half a
    pixel) and every square stays in the frame. Colours are hues
    ``k / n_colours`` at full saturation and value.

    Args:
        name: registry name.
        image_size: side of the RGB image in pixels.
        n_positions: values of x and of y.
        n_scales: square sizes.
        n_colours: hues.

    Raises:
        ValueError: a grid that the image size cannot hold with distinct pixels.

    Example:
        >>> ds = XYObject(image_size=32, n_positions=8, n_scales=2, n_colours=4)
        >>> len(ds), ds.image_shape, ds.images([5]).shape
        (512, (32, 32, 3), (1, 32, 32, 3))
    """

    factor_names = XYOBJECT_FACTOR_NAMES

    def __init__(self, *, name: str = "xyobject", image_size: int = 64, n_positions: int = 25,
                 n_scales: int = 5, n_colours: int = 24) -> None:
        self.name = name
        for label, val in (("image_size", image_size), ("n_positions", n_positions),
                           ("n_scales", n_scales), ("n_colours", n_colours)):
            if isinstance(val, bool) or not isinstance(val, int | np.integer) or val < 1:
                raise ValueError(f"{name}: {label} must be a positive int; received {val!r}")
        min_side = max(1, int(_round_half_up(XYOBJECT_MIN_SIDE_FRACTION * image_size)))
        max_side = int(_round_half_up(XYOBJECT_MAX_SIDE_FRACTION * image_size))
        sides = _round_half_up(np.linspace(min_side, max_side, n_scales))
        if n_scales > 1 and (np.diff(sides) < 1).any():
            raise ValueError(
                f"{name}: image_size {image_size} gives square sides {min_side}..{max_side} px, "
                f"too few for {n_scales} distinct scales; use a larger image_size"
            )
        if n_positions > image_size - max_side + 1:
            raise ValueError(
                f"{name}: image_size {image_size} holds at most {image_size - max_side + 1} "
                f"distinct positions for squares up to {max_side} px; received "
                f"n_positions={n_positions}; use a larger image_size"
            )
        self.image_size = int(image_size)
        self.factor_sizes = (int(n_positions), int(n_positions), int(n_scales), int(n_colours))
        self.image_shape = (self.image_size, self.image_size, 3)
        self.sides = sides  # (n_scales,) pixels
        self.centres = np.linspace(max_side / 2, image_size - max_side / 2, n_positions)
        self.hues = np.arange(n_colours) / n_colours
        self.palette = np.round(255.0 * hsv_to_rgb(self.hues)).astype(np.uint8)  # (n_colours, 3)
        self.source = DatasetSource(name=name, kind="procedural", version="1")

    @property
    def factor_values(self) -> tuple[np.ndarray, ...]:
        """x and y centres in pixels, square side in pixels, hue in [0, 1)."""
        return (self.centres.copy(), self.centres.copy(), self.sides.astype(np.float64),
                self.hues.copy())

    def images_from_factors(self, factors: object) -> np.ndarray:
        """Images ``uint8 (B, S, S, 3)`` for factor class indices ``(B, 4)``."""
        f = self.check_factors(factors)
        side = self.sides[f[:, 2]]  # (B,)
        left = _round_half_up(self.centres[f[:, 0]] - side / 2)  # (B,)
        top = _round_half_up(self.centres[f[:, 1]] - side / 2)
        k = np.arange(self.image_size)
        in_x = (k[None, :] >= left[:, None]) & (k[None, :] < (left + side)[:, None])  # (B, S)
        in_y = (k[None, :] >= top[:, None]) & (k[None, :] < (top + side)[:, None])  # (B, S)
        mask = (in_y[:, :, None] & in_x[:, None, :]).view(np.uint8)  # (B, S, S)
        return tint(mask, self.palette[f[:, 3]])  # (B, S, S, 3)


def _xyobject_factory(name: str, defaults: dict[str, int]) -> Callable[..., XYObject]:
    def factory(data_dir: object = None, **options: Any) -> XYObject:
        _check_options(name, {k: v for k, v in options.items() if k != "image_size"},
                       ("image_size",))
        return XYObject(name=name, image_size=options.get("image_size", defaults["image_size"]),
                        n_positions=defaults["n_positions"], n_scales=defaults["n_scales"],
                        n_colours=defaults["n_colours"])

    return factory


_XYOBJECT = {"image_size": 64, "n_positions": 25, "n_scales": 5, "n_colours": 24}
_XYOBJECT_TINY = {"image_size": 32, "n_positions": 8, "n_scales": 2, "n_colours": 4}

register_dataset(
    "xyobject",
    kind="procedural",
    description="a coloured square on black (after disent's XYObject); 64×64×3, 75,000 images",
    factor_names=XYOBJECT_FACTOR_NAMES,
    factor_sizes=(25, 25, 5, 24),
    licence="Apache-2.0 (rendered by disentkit)",
    procedural_alternative=None,
)(_xyobject_factory("xyobject", _XYOBJECT))

register_dataset(
    "xyobject_tiny",
    kind="procedural",
    description="XYObject for unit tests: 8×8 positions × 2 sizes × 4 hues at 32×32×3, "
    "512 images",
    factor_names=XYOBJECT_FACTOR_NAMES,
    factor_sizes=(8, 8, 2, 4),
    licence="Apache-2.0 (rendered by disentkit)",
    procedural_alternative=None,
)(_xyobject_factory("xyobject_tiny", _XYOBJECT_TINY))
