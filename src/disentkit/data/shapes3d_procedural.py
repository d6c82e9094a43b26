"""A Shapes3D-like room scene rendered in numpy: one object on a floor in front of walls.

The official Shapes3D (Burgess & Kim 2018, deepmind/3d-shapes) was rendered in the GQN
MuJoCo environment with a renderer that is not public. This module builds a dataset with the
same factors, cardinalities, order, factor values, dtype and image shape, whose pixels
resemble but do not reproduce the original:

=============  ====  ============================================================
factor         size  values (``factor_values``, the official labels)
=============  ====  ============================================================
floor_hue      10    ``linspace(0, 0.9, 10)``: hue of the floor
wall_hue       10    ``linspace(0, 0.9, 10)``: hue of the walls
object_hue     10    ``linspace(0, 0.9, 10)``: hue of the object
scale          8     ``linspace(0.75, 1.25, 8)``: object size multiplier
shape          4     ``0, 1, 2, 3``: cube, cylinder, sphere, capsule (:data:`SHAPE_NAMES`)
orientation    15    ``linspace(-30, 30, 15)``: camera azimuth in degrees
=============  ====  ============================================================

480,000 RGB images, ``uint8 (64, 64, 3)`` by default, indexed with the last factor fastest.

**Orientation is the camera azimuth.** The camera orbits the vertical axis through the
object at a fixed elevation and always looks at the object, so the object stays in the
centre while the walls (and, at large angles, the room's corner) move behind it. This
follows disentanglement_lib's name for the original array (``…Xview-azi``); a positive
angle moves the camera towards ``+x`` (it sees more of the object's ``+x`` side).

**Deferred shading.** The three hue factors only tint fixed regions, so geometry and colour
are separated. :func:`render_geometry` renders each of the 4 × 8 × 15 = 480 views
(shape, scale, orientation) once into a buffer ``G (3, H, W)`` holding, for the floor, the
walls and the object, the fraction of each pixel the region covers times its shading.
An image is then a weighted sum of three colours, for a whole batch at once::

    img = Σ_r G[shape, scale, orientation, r] · rgb(hsv(hue_r, SATURATION, VALUE))

Rendering: pinhole camera, :data:`SUPERSAMPLE` ² rays per pixel, the floor plane ``y = 0``
and three walls intersected analytically, the object (a signed distance function: box,
capped cylinder, sphere or capsule) sphere-traced for at most :data:`MAX_STEPS` steps, a
directional light with Lambert + ambient shading and a soft shadow of the object on the
floor and walls, then a box filter down to the image size. All rays of all views are
batched in numpy, in chunks of :data:`CHUNK_RAYS`.

**Caching.** The 480 buffers take about 24 MB at 64×64 (float32) and several seconds to
render, once. They are kept in memory per process (keyed by image size and
:data:`RENDERER_VERSION`) and, unless ``cache_dir=False``, in
``<data root>/shapes3d_procedural/geometry-v1-64.npy``, written atomically (temporary file,
then ``os.replace``) and checked on load (shape, dtype, finite, values in range); a file
that fails the check is re-rendered and replaced.

Example:
    >>> ds = Shapes3DProcedural(image_size=8, cache_dir=False)
    >>> len(ds), ds.factor_sizes
    (480000, (10, 10, 10, 8, 4, 15))
    >>> ds.images([0, 479_999]).shape
    (2, 8, 8, 3)
"""

from __future__ import annotations

import os
import threading
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from disentkit._atomic import atomic_write
from disentkit._validation import DisentkitWarning
from disentkit.data._base import DatasetSource, FactorDataset, data_root, register_dataset
from disentkit.data._raster import hsv_to_rgb as _hsv_to_rgb

__all__ = [
    "FACTOR_NAMES",
    "FACTOR_SIZES",
    "RENDERER_VERSION",
    "SHAPE_NAMES",
    "Shapes3DProcedural",
    "geometry_buffers",
    "hsv_to_rgb",
    "render_geometry",
]

# -- factors (the official order, sizes and label values) ---------------------------------
FACTOR_NAMES: tuple[str, ...] = (
    "floor_hue",
    "wall_hue",
    "object_hue",
    "scale",
    "shape",
    "orientation",
)
FACTOR_SIZES: tuple[int, ...] = (10, 10, 10, 8, 4, 15)
HUES: np.ndarray = np.linspace(0.0, 0.9, 10)
"""Hue (in turns, HSV) of each hue class; the official labels."""
SCALES: np.ndarray = np.linspace(0.75, 1.25, 8)
"""Object size multiplier of each scale class; the official labels."""
SHAPE_NAMES: tuple[str, ...] = ("cube", "cylinder", "sphere", "capsule")
"""Names of the shape classes 0..3 (the official labels are the class indices)."""
ORIENTATIONS_DEG: np.ndarray = np.linspace(-30.0, 30.0, 15)
"""Camera azimuth in degrees of each orientation class; the official labels."""

RENDERER_VERSION = "1"
"""Bumped whenever rendered pixels change; part of the cache file name and the source."""

# -- colour ---------------------------------------------------------------------------------
SATURATION = 0.85
"""HSV saturation of every region colour."""
VALUE = 1.0
"""HSV value (brightness) of every region colour before shading."""

# -- camera (world units: y up, floor at y = 0, object on the floor at the origin) ---------
DEFAULT_IMAGE_SIZE = 64
CAMERA_TARGET: tuple[float, float, float] = (0.0, 0.6, 0.0)
"""The point the camera looks at, on the vertical axis it orbits."""
CAMERA_DISTANCE = 4.6
"""Distance from the camera to :data:`CAMERA_TARGET`."""
CAMERA_ELEVATION_DEG = 18.0
"""Angle of the camera above the horizontal plane through the target (fixed)."""
FIELD_OF_VIEW_DEG = 38.0
"""Full vertical (= horizontal) field of view of the square image."""
SUPERSAMPLE = 2
"""Rays per pixel along each axis (2 × 2 supersampling, then a box filter)."""

# -- room --------------------------------------------------------------------------------------
BACK_WALL_Z = -4.0
"""The back wall is the plane ``z = BACK_WALL_Z`` (behind the object at orientation 0)."""
SIDE_WALL_X = 4.5
"""The side walls are the planes ``x = ±SIDE_WALL_X``; at large azimuths a corner shows."""

# -- light ---------------------------------------------------------------------------------------
LIGHT_DIRECTION: tuple[float, float, float] = (-0.35, 0.8, 0.5)
"""Direction towards the directional light (normalised before use): above, left, front."""
AMBIENT = 0.45
"""Shading of a surface facing away from the light or in full shadow."""
DIFFUSE = 0.55
"""Lambert weight: shading = AMBIENT + DIFFUSE · max(0, n·l) · shadow ≤ 1."""
SHADOW_SOFTNESS = 10.0
"""Penumbra sharpness ``k`` of the soft shadow ``min_t k·d(t)/t`` (larger is harder)."""

# -- objects (unit scale; each sits on the floor, centred on the vertical axis) -------------
CUBE_HALF_SIZE = 0.5
"""Half the edge of the cube."""
CYLINDER_RADIUS = 0.5
CYLINDER_HALF_HEIGHT = 0.5
"""The cylinder stands upright (axis vertical)."""
SPHERE_RADIUS = 0.6
CAPSULE_RADIUS = 0.4
CAPSULE_HALF_LENGTH = 0.45
"""Half the length of the capsule's axis segment; the capsule lies along ``x`` (sideways)."""

# -- sphere tracing --------------------------------------------------------------------------------
MAX_STEPS = 48
"""Sphere-tracing steps per camera ray (shadow rays use the same bound)."""
HIT_EPSILON = 1e-3
"""A ray hits the object where the distance falls below this (unit-scale object units)."""
NORMAL_EPSILON = 1e-3
"""Step of the finite-difference (tetrahedron) gradient used for object normals."""
CHUNK_RAYS = 1 << 18
"""Rays traced at once; bounds the renderer's memory (about 20 arrays of this length)."""

_DTYPE = np.float32


# ===================================================================================== colour
def hsv_to_rgb(h: object, s: float = SATURATION, v: float = VALUE) -> np.ndarray:
    """Convert hues to RGB colours with a fixed saturation and value.

    Args:
        h: hues in turns, any shape ``(...)``; values are taken modulo 1.
        s: saturation in ``[0, 1]``.
        v: value in ``[0, 1]``.

    Returns:
        float64 ``(..., 3)`` RGB in ``[0, 1]``.

    Example:
        >>> hsv_to_rgb([0.0, 1 / 3], s=1.0, v=1.0).round(6).tolist()
        [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]
    """
    return _hsv_to_rgb(np.mod(np.asarray(h, dtype=np.float64), 1.0), s, v)


# ======================================================================= signed distances
# Each takes the coordinates of points in the unit-scale object frame (object centre at the
# origin) and returns the exact Euclidean signed distance to the surface.
def _sdf_box(x: np.ndarray, y: np.ndarray, z: np.ndarray) -> np.ndarray:
    b = CUBE_HALF_SIZE
    qx, qy, qz = np.abs(x) - b, np.abs(y) - b, np.abs(z) - b
    outside = np.sqrt(np.maximum(qx, 0) ** 2 + np.maximum(qy, 0) ** 2 + np.maximum(qz, 0) ** 2)
    return outside + np.minimum(np.maximum(np.maximum(qx, qy), qz), 0)


def _sdf_cylinder(x: np.ndarray, y: np.ndarray, z: np.ndarray) -> np.ndarray:
    dr = np.sqrt(x * x + z * z) - CYLINDER_RADIUS
    dy = np.abs(y) - CYLINDER_HALF_HEIGHT
    outside = np.sqrt(np.maximum(dr, 0) ** 2 + np.maximum(dy, 0) ** 2)
    return outside + np.minimum(np.maximum(dr, dy), 0)


def _sdf_sphere(x: np.ndarray, y: np.ndarray, z: np.ndarray) -> np.ndarray:
    return np.sqrt(x * x + y * y + z * z) - SPHERE_RADIUS


def _sdf_capsule(x: np.ndarray, y: np.ndarray, z: np.ndarray) -> np.ndarray:
    dx = x - np.clip(x, -CAPSULE_HALF_LENGTH, CAPSULE_HALF_LENGTH)
    return np.sqrt(dx * dx + y * y + z * z) - CAPSULE_RADIUS


_SDF = Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]
# Per shape: (signed distance, height of the centre above the floor, bounding radius), at
# unit scale. The centre height is half the object's height, so it rests on the floor.
_SHAPES: tuple[tuple[_SDF, float, float], ...] = (
    (_sdf_box, CUBE_HALF_SIZE, CUBE_HALF_SIZE * np.sqrt(3.0)),
    (_sdf_cylinder, CYLINDER_HALF_HEIGHT, float(np.hypot(CYLINDER_RADIUS, CYLINDER_HALF_HEIGHT))),
    (_sdf_sphere, SPHERE_RADIUS, SPHERE_RADIUS),
    (_sdf_capsule, CAPSULE_RADIUS, CAPSULE_HALF_LENGTH + CAPSULE_RADIUS),
)
_BOUND_MARGIN = 1.02  # bounding spheres are slightly enlarged so that no hit is culled


# ============================================================================== the camera
def _light() -> np.ndarray:
    light = np.asarray(LIGHT_DIRECTION, dtype=np.float64)
    return light / np.linalg.norm(light)


def _camera_rays(image_size: int) -> tuple[np.ndarray, np.ndarray]:
    """Origins ``(A, 3)`` and unit directions ``(A, R, 3)`` of every sample ray.

    ``A`` = number of orientations, ``R = (image_size · SUPERSAMPLE)²`` rays per view in
    row-major order (row 0 at the top of the image).
    """
    azimuth = np.deg2rad(ORIENTATIONS_DEG)  # (A,)
    elevation = np.deg2rad(CAMERA_ELEVATION_DEG)
    target = np.asarray(CAMERA_TARGET, dtype=np.float64)
    offset = np.stack(
        [
            np.cos(elevation) * np.sin(azimuth),
            np.full_like(azimuth, np.sin(elevation)),
            np.cos(elevation) * np.cos(azimuth),
        ],
        axis=1,
    )  # (A, 3)
    origin = target + CAMERA_DISTANCE * offset  # (A, 3)
    forward = -offset  # (A, 3), unit
    right = np.cross(forward, np.array([0.0, 1.0, 0.0]))
    right /= np.linalg.norm(right, axis=1, keepdims=True)
    up = np.cross(right, forward)  # (A, 3)

    n = image_size * SUPERSAMPLE
    half = np.tan(np.deg2rad(FIELD_OF_VIEW_DEG) / 2)
    centres = ((np.arange(n) + 0.5) / n * 2.0 - 1.0) * half  # (n,) left→right
    u = np.tile(centres, n)  # (R,) column coordinate
    v = np.repeat(-centres, n)  # (R,) row coordinate, top row first
    direction = (
        forward[:, None, :]
        + u[None, :, None] * right[:, None, :]
        + v[None, :, None] * up[:, None, :]
    )  # (A, R, 3)
    direction /= np.linalg.norm(direction, axis=2, keepdims=True)
    return origin, direction


def _room_hits(
    origin: np.ndarray, direction: np.ndarray, light: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Intersect every ray with the floor and the walls.

    Returns:
        ``t`` ``(A, R)`` distance to the first plane, ``is_floor`` bool ``(A, R)``,
        ``lambert`` ``(A, R)`` = ``max(0, n·l)`` there, ``point`` ``(A, R, 3)`` and the
        plane's ``normal`` ``(A, R, 3)``.
    """
    # Planes n·p = c with n pointing into the room: floor, back wall, left and right walls.
    normals = np.array(
        [[0.0, 1.0, 0.0], [0.0, 0.0, 1.0], [1.0, 0.0, 0.0], [-1.0, 0.0, 0.0]]
    )  # (P, 3)
    offsets = np.array([0.0, BACK_WALL_Z, -SIDE_WALL_X, -SIDE_WALL_X])  # (P,)
    denom = direction @ normals.T  # (A, R, P)
    numer = offsets[None, :] - origin @ normals.T  # (A, P)
    with np.errstate(divide="ignore", invalid="ignore"):
        t = numer[:, None, :] / denom  # (A, R, P)
    t = np.where((denom < -1e-9) & (t > 0), t, np.inf)
    plane = np.argmin(t, axis=2)  # (A, R)
    t_hit = np.take_along_axis(t, plane[..., None], axis=2)[..., 0]  # (A, R)
    assert np.isfinite(t_hit).all(), "a camera ray left the room"
    normal = normals[plane]  # (A, R, 3)
    lambert = np.maximum(normal @ light, 0.0)  # (A, R)
    point = origin[:, None, :] + t_hit[..., None] * direction  # (A, R, 3)
    return t_hit, plane == 0, lambert, point, normal


def _sphere_entry(
    origin: np.ndarray, direction: np.ndarray, centre_y: np.ndarray, radius: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Entry and exit distances of rays through spheres centred at ``(0, centre_y, 0)``.

    ``origin``, ``direction``: ``(..., 3)``; ``centre_y``, ``radius``: broadcastable to
    ``(...)``. Returns ``(t0, t1)``, both ``inf`` where a ray misses.
    """
    ox, oy, oz = origin[..., 0], origin[..., 1] - centre_y, origin[..., 2]
    dx, dy, dz = direction[..., 0], direction[..., 1], direction[..., 2]
    b = ox * dx + oy * dy + oz * dz
    c = ox * ox + oy * oy + oz * oz - radius * radius
    disc = b * b - c
    root = np.sqrt(np.maximum(disc, 0.0))
    miss = disc <= 0
    return np.where(miss, np.inf, -b - root), np.where(miss, np.inf, -b + root)


# ======================================================================== sphere tracing
def _march(
    sdf: _SDF,
    o: np.ndarray,
    d: np.ndarray,
    t0: np.ndarray,
    t1: np.ndarray,
    *,
    shadow: bool,
) -> np.ndarray:
    """Sphere-trace rays ``o + t·d`` (unit object frame) for ``t`` in ``[t0, t1]``.

    Args:
        sdf: the object's signed distance.
        o, d: ``(M, 3)`` origins and unit directions.
        t0, t1: ``(M,)`` where to start and give up.
        shadow: ``False``: return the hit distance (``inf`` for a miss). ``True``: return
            the soft-shadow visibility ``clip(min_t k·sdf/t, 0, 1)`` (0 where blocked).

    Returns:
        ``(M,)`` float.
    """
    m = o.shape[0]
    out = np.full(m, np.inf if not shadow else 1.0, dtype=_DTYPE)
    for lo in range(0, m, CHUNK_RAYS):
        hi = min(lo + CHUNK_RAYS, m)
        ids = np.arange(lo, hi)
        ox, oy, oz = (o[lo:hi, k].astype(_DTYPE) for k in range(3))
        dx, dy, dz = (d[lo:hi, k].astype(_DTYPE) for k in range(3))
        t = t0[lo:hi].astype(_DTYPE)
        tmax = t1[lo:hi].astype(_DTYPE)
        vis = np.ones(hi - lo, dtype=_DTYPE)
        for _ in range(MAX_STEPS):
            dist = sdf(ox + t * dx, oy + t * dy, oz + t * dz)
            if shadow:
                vis = np.minimum(vis, SHADOW_SOFTNESS * dist / t)
            hit = dist < HIT_EPSILON
            t = t + dist
            done = hit | (t > tmax)
            if hit.any():
                out[ids[hit]] = 0.0 if shadow else t[hit] - dist[hit]
            if done.any():
                if shadow:  # left the bounding sphere unblocked: record the penumbra
                    free = done & ~hit
                    out[ids[free]] = np.clip(vis[free], 0.0, 1.0)
                keep = ~done
                ids, ox, oy, oz, dx, dy, dz, t, tmax, vis = (
                    a[keep] for a in (ids, ox, oy, oz, dx, dy, dz, t, tmax, vis)
                )
                if ids.size == 0:
                    break
        if shadow and ids.size:  # still unresolved: keep the darkest estimate so far
            out[ids] = np.clip(vis, 0.0, 1.0)
    return out


def _normals(sdf: _SDF, p: np.ndarray) -> np.ndarray:
    """Unit surface normals ``(M, 3)`` at points ``p`` ``(M, 3)`` (tetrahedron gradient)."""
    h = NORMAL_EPSILON
    k = np.array([[1, -1, -1], [-1, -1, 1], [-1, 1, -1], [1, 1, 1]], dtype=np.float64)
    g = np.zeros_like(p)
    for kk in k:
        q = p + h * kk
        g += sdf(q[:, 0], q[:, 1], q[:, 2])[:, None] * kk
    return g / np.maximum(np.linalg.norm(g, axis=1, keepdims=True), 1e-12)


# ============================================================================ the renderer
def render_geometry(image_size: int = DEFAULT_IMAGE_SIZE) -> np.ndarray:
    """Render the 480 geometry buffers of the scene (no caching; see :func:`geometry_buffers`).

    Args:
        image_size: side of the square images in pixels.

    Returns:
        float32 ``(4, 8, 15, 3, image_size, image_size)`` indexed by (shape, scale,
        orientation, region, row, column). Region 0 is the floor, 1 the walls, 2 the object;
        each holds coverage × shading, so the three regions of a pixel sum to a value in
        ``[AMBIENT, 1]``.

    Example:
        >>> g = render_geometry(4)
        >>> g.shape, g.dtype
        ((4, 8, 15, 3, 4, 4), dtype('float32'))
    """
    image_size = _check_image_size(image_size)
    light = _light()
    origin, direction = _camera_rays(image_size)  # (A, 3), (A, R, 3)
    n_azi, n_rays = direction.shape[:2]
    t_room, is_floor, room_lambert, room_point, room_normal = _room_hits(origin, direction, light)
    # Shadow rays start a little above the surface they leave (floor or wall).
    shadow_origin = room_point + 1e-3 * room_normal  # (A, R, 3)
    scales = SCALES[:, None, None]  # (S, 1, 1)
    n_scales = scales.shape[0]

    out = np.empty((len(_SHAPES), n_scales, n_azi, 3, image_size, image_size), dtype=_DTYPE)
    for shape, (sdf, centre, bound) in enumerate(_SHAPES):
        centre_y = scales * centre  # (S, 1, 1)
        radius = scales * bound * _BOUND_MARGIN
        # -- camera rays against the object: only those through its bounding sphere ----
        t0, t1 = _sphere_entry(
            origin[None, :, None, :], direction[None], centre_y, radius
        )  # (S, A, R)
        cand = (t0 < t_room[None]) & (t1 > 0)
        si, ai, ri = np.nonzero(cand)
        s = SCALES[si]
        o_unit = (origin[ai] - [0.0, 1.0, 0.0] * (s * centre)[:, None]) / s[:, None]
        d_cand = direction[ai, ri]
        t_hit = _march(
            sdf,
            o_unit,
            d_cand,
            np.maximum(t0[si, ai, ri], 0.0) / s,
            np.minimum(t1[si, ai, ri], t_room[ai, ri]) / s,
            shadow=False,
        )
        hit = np.isfinite(t_hit)
        p_hit = o_unit[hit] + t_hit[hit, None] * d_cand[hit]
        obj_lambert = np.maximum(_normals(sdf, p_hit) @ light, 0.0)
        on_object = np.zeros((n_scales, n_azi, n_rays), dtype=bool)
        on_object[si[hit], ai[hit], ri[hit]] = True
        object_shade = np.zeros((n_scales, n_azi, n_rays), dtype=_DTYPE)
        object_shade[si[hit], ai[hit], ri[hit]] = AMBIENT + DIFFUSE * obj_lambert

        # -- shadow rays from the visible floor and walls towards the light -------------
        t0, t1 = _sphere_entry(shadow_origin[None], light, centre_y, radius)  # (S, A, R)
        cand = (t1 > 0) & np.isfinite(t0) & ~on_object & (room_lambert[None] > 0)
        si, ai, ri = np.nonzero(cand)
        s = SCALES[si]
        o_unit = (shadow_origin[ai, ri] - [0.0, 1.0, 0.0] * (s * centre)[:, None]) / s[:, None]
        vis = _march(
            sdf,
            o_unit,
            np.broadcast_to(light, o_unit.shape),
            np.maximum(t0[si, ai, ri], 1e-3) / s,
            t1[si, ai, ri] / s,
            shadow=True,
        )
        visibility = np.ones((n_scales, n_azi, n_rays), dtype=_DTYPE)
        visibility[si, ai, ri] = vis
        room_shade = AMBIENT + DIFFUSE * room_lambert[None] * visibility  # (S, A, R)

        # -- assemble the regions and box-filter the samples down to pixels -------------
        buf = np.zeros((n_scales, n_azi, 3, n_rays), dtype=_DTYPE)
        room = ~on_object
        buf[:, :, 0] = np.where(room & is_floor[None], room_shade, 0.0)
        buf[:, :, 1] = np.where(room & ~is_floor[None], room_shade, 0.0)
        buf[:, :, 2] = object_shade
        buf = buf.reshape(n_scales, n_azi, 3, image_size, SUPERSAMPLE, image_size, SUPERSAMPLE)
        out[shape] = buf.mean(axis=(4, 6))
    return out


def _check_image_size(image_size: object) -> int:
    if isinstance(image_size, bool) or not isinstance(image_size, int | np.integer):
        raise TypeError(f"image_size must be a positive int; received {type(image_size).__name__}")
    if image_size < 1:
        raise ValueError(f"image_size must be a positive int; received {image_size}")
    return int(image_size)


# ================================================================================== caching
_MEMORY: dict[tuple[int, str], np.ndarray] = {}
"""Geometry buffers rendered or loaded by this process, keyed by (image size, version)."""
_LOCK = threading.Lock()


def _geometry_shape(image_size: int) -> tuple[int, ...]:
    """Shape of the geometry array for ``image_size``: ``(4, 8, 15, 3, size, size)``."""
    return (len(SHAPE_NAMES), len(SCALES), len(ORIENTATIONS_DEG), 3, image_size, image_size)


def _cache_file(image_size: int, cache_dir: str | os.PathLike[str]) -> Path:
    """Path of the geometry cache file for ``image_size`` in ``cache_dir``."""
    return Path(cache_dir) / f"geometry-v{RENDERER_VERSION}-{image_size}.npy"


def _check_geometry(g: np.ndarray, image_size: int) -> str | None:
    """Why ``g`` is not a valid geometry array for ``image_size``, or ``None`` if it is."""
    expected = _geometry_shape(image_size)
    if g.shape != expected or g.dtype != _DTYPE:
        return f"expected float32 {expected}, found {g.dtype} {g.shape}"
    total = g.sum(axis=3)  # every pixel sees something lit by at least the ambient term
    if not np.isfinite(g).all() or g.min() < 0:
        return "values are not finite and non-negative"
    if total.min() < AMBIENT - 1e-4 or total.max() > 1 + 1e-4:
        return f"pixel totals lie outside [{AMBIENT}, 1]"
    return None


def _read_cache(path: Path, image_size: int) -> np.ndarray | None:
    """The cached geometry at ``path`` if it exists and is valid; warn and return ``None``
    for a file that cannot be read or fails the checks."""
    if not path.is_file():
        return None
    try:
        g = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as exc:
        problem = f"unreadable ({exc})"
    else:
        problem = _check_geometry(g, image_size) if isinstance(g, np.ndarray) else "not an array"
        if problem is None:
            return g
    warnings.warn(
        f"ignoring invalid shapes3d_procedural geometry cache {path}: {problem}; re-rendering",
        DisentkitWarning,
        stacklevel=3,
    )
    return None


def _write_cache(path: Path, g: np.ndarray) -> None:
    """Write ``g`` to ``path`` atomically (temporary file in the same folder, then
    ``os.replace``); warn instead of failing when the folder is not writable."""
    def save(tmp: Path) -> None:
        with open(tmp, "wb") as fh:  # a handle: np.save would append ".npy" to a path
            np.save(fh, g, allow_pickle=False)

    try:
        atomic_write(path, save)
    except OSError as exc:
        warnings.warn(
            f"could not write the shapes3d_procedural geometry cache {path}: {exc}",
            DisentkitWarning,
            stacklevel=3,
        )


def _resolve_cache_dir(
    cache_dir: str | os.PathLike[str] | bool | None, data_dir: str | os.PathLike[str] | None
) -> Path | None:
    if cache_dir is None:
        return data_root(data_dir) / "shapes3d_procedural"
    if cache_dir is False:
        return None
    if isinstance(cache_dir, str | os.PathLike):
        return Path(cache_dir).expanduser()
    raise TypeError(
        "cache_dir must be None (the data root), False (memory only) or a folder path; "
        f"received {cache_dir!r}"
    )


def geometry_buffers(
    image_size: int = DEFAULT_IMAGE_SIZE,
    *,
    cache_dir: str | os.PathLike[str] | bool | None = None,
    data_dir: str | os.PathLike[str] | None = None,
) -> np.ndarray:
    """The scene's geometry buffers, rendered once per process and cached on disk.

    Looks in this process's memory, then in the cache file, and renders
    (:func:`render_geometry`) only when neither holds them. A cache file that cannot be
    read or fails the checks (shape, dtype, finite, every pixel's total shading in
    ``[AMBIENT, 1]``) is reported with a :class:`~disentkit.DisentkitWarning`, re-rendered
    and replaced. A missing file is written (atomically) even when memory already holds
    the buffers.

    Args:
        image_size: side of the square images in pixels.
        cache_dir: folder of the cache file ``geometry-v{RENDERER_VERSION}-{size}.npy``;
            ``None``: ``<data root>/shapes3d_procedural``; ``False``: memory only.
        data_dir: data root for ``cache_dir=None`` (see :func:`disentkit.data.data_root`).

    Returns:
        read-only float32 ``(4, 8, 15, 3, image_size, image_size)``; see
        :func:`render_geometry`.

    Example:
        >>> g = geometry_buffers(4, cache_dir=False)
        >>> g.shape, g.flags.writeable
        ((4, 8, 15, 3, 4, 4), False)
    """
    image_size = _check_image_size(image_size)
    folder = _resolve_cache_dir(cache_dir, data_dir)
    path = None if folder is None else _cache_file(image_size, folder)
    key = (image_size, RENDERER_VERSION)
    with _LOCK:
        g = _MEMORY.get(key)
        if g is None:
            g = None if path is None else _read_cache(path, image_size)
            if g is None:
                g = render_geometry(image_size)
                if path is not None:
                    _write_cache(path, g)
            g.flags.writeable = False
            _MEMORY[key] = g
        elif path is not None and not path.exists():
            _write_cache(path, g)
    return g


# ================================================================================ dataset
class Shapes3DProcedural(FactorDataset):
    """The Shapes3D-like room scene: 480,000 images of one object in a room (see module doc).

    Geometry is rendered (or loaded from the cache) on first use; after that, images for a
    batch of factors are composed at once from the cached buffers and three colours.

    Args:
        image_size: side of the square images in pixels (official: 64).
        cache_dir: where the geometry cache file lives: ``None`` = ``<data root>/
            shapes3d_procedural``, ``False`` = memory only, or a folder.
        data_dir: data root used when ``cache_dir`` is ``None``.

    Example:
        >>> ds = Shapes3DProcedural(image_size=8, cache_dir=False)
        >>> f = ds.sample_factors(5, rng=0)
        >>> img = ds.images_from_factors(f)
        >>> img.shape, img.dtype
        ((5, 8, 8, 3), dtype('uint8'))
        >>> bool((ds.index(f) == ds.index(ds.factors(ds.index(f)))).all())
        True
    """

    name = "shapes3d_procedural"
    factor_names = FACTOR_NAMES
    factor_sizes = FACTOR_SIZES

    def __init__(
        self,
        image_size: int = DEFAULT_IMAGE_SIZE,
        *,
        cache_dir: str | os.PathLike[str] | bool | None = None,
        data_dir: str | os.PathLike[str] | None = None,
    ) -> None:
        self.image_size = _check_image_size(image_size)
        _resolve_cache_dir(cache_dir, data_dir)  # fail early on a bad option
        self.cache_dir = cache_dir
        self.data_dir = data_dir
        self.image_shape = (self.image_size, self.image_size, 3)
        self.source = DatasetSource(name=self.name, kind="procedural", version=RENDERER_VERSION)
        # Colour of each hue class, shared by the three regions: (10, 3).
        self._palette = hsv_to_rgb(HUES).astype(_DTYPE)
        self._geometry: np.ndarray | None = None

    @property
    def factor_values(self) -> tuple[np.ndarray, ...]:
        """The official label values: hues, scale, shape index, orientation in degrees."""
        return (
            HUES.copy(),
            HUES.copy(),
            HUES.copy(),
            SCALES.copy(),
            np.arange(4, dtype=np.float64),
            ORIENTATIONS_DEG.copy(),
        )

    @property
    def geometry(self) -> np.ndarray:
        """Read-only float32 ``(4, 8, 15, 3, H, W)`` buffers (rendered on first access)."""
        if self._geometry is None:
            self._geometry = geometry_buffers(
                self.image_size, cache_dir=self.cache_dir, data_dir=self.data_dir
            )
        return self._geometry

    def images_from_factors(self, factors: object) -> np.ndarray:
        """Images ``uint8 (B, H, W, 3)`` for factor vectors ``(B, 6)``.

        ``img = Σ_r G[shape, scale, orientation, r] · palette[hue_r]`` over the regions
        floor, wall, object, scaled to ``[0, 255]`` and rounded.

        Example:
            >>> ds = Shapes3DProcedural(image_size=8, cache_dir=False)
            >>> ds.images_from_factors([[0, 3, 6, 7, 2, 14]]).shape
            (1, 8, 8, 3)
        """
        f = self.check_factors(factors)  # (B, 6)
        b, size = f.shape[0], self.image_size
        g = self.geometry[f[:, 4], f[:, 3], f[:, 5]].reshape(b, 3, size * size)  # (B, 3, HW)
        colours = self._palette[f[:, :3]] * np.float32(255)  # (B, 3 regions, 3 channels)
        img = np.matmul(g.transpose(0, 2, 1), colours)  # (B, HW, 3)
        np.add(img, 0.5, out=img)
        np.clip(img, 0, 255, out=img)
        return img.astype(np.uint8).reshape(b, size, size, 3)

    def info(self) -> dict[str, Any]:
        out = super().info()
        out["shape_names"] = list(SHAPE_NAMES)
        out["renderer_version"] = RENDERER_VERSION
        return out


@register_dataset(
    "shapes3d_procedural",
    kind="procedural",
    description=(
        "Shapes3D-like room scene rendered in numpy: floor, walls and one object; same "
        "factors, values and image shape as Shapes3D, different pixels"
    ),
    factor_names=FACTOR_NAMES,
    factor_sizes=FACTOR_SIZES,
    licence="Apache-2.0 (rendered by disentkit)",
)
def _make_shapes3d_procedural(
    data_dir: str | os.PathLike[str] | None = None,
    *,
    image_size: int = DEFAULT_IMAGE_SIZE,
    cache_dir: str | os.PathLike[str] | bool | None = None,
) -> Shapes3DProcedural:
    """Registry factory: ``get_dataset("shapes3d_procedural", image_size=64, cache_dir=None)``."""
    return Shapes3DProcedural(image_size, cache_dir=cache_dir, data_dir=data_dir)
