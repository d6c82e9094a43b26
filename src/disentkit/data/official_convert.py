"""Readers and one-time converters for the official dataset files.

Each ``convert_*`` function reads the released file(s) in bounded chunks and writes
``images.npy`` (uint8 ``(N, H, W, C)``, rows in grid order, last factor fastest) and
``factors.npy`` (the class indices of each row) into a prepared-cache folder through
:class:`~disentkit.data._files.NpyWriter` (temporary file + rename). It returns the entries
that :func:`disentkit.data.official.prepare` adds to ``meta.json``. Files whose rows are
not already in grid order (labels tell the order) are written to their grid positions.

Nothing here unpickles: npz members are read with the ``.npy`` header parser and refused
when they hold Python objects, so the dSprites ``metadata`` entry is never touched.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import tarfile
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from disentkit.data._files import (
    NpyWriter,
    NpzMemberStream,
    Progress,
    grid_factors,
    npz_members,
    require,
)
from disentkit.data._norb import iter_norb_rows, read_norb
from disentkit.data.official_specs import NORB_SPLITS

_CHUNK_BYTES = 64 << 20
RESAMPLE = ("lanczos", "bicubic", "bilinear", "box", "nearest")


def _rows_per_chunk(row_bytes: int, aligned_to: int | None = None) -> int:
    rows = max(1, _CHUNK_BYTES // max(1, row_bytes))
    if aligned_to:  # whole HDF5 chunks: each is decompressed once
        rows = max(1, rows // aligned_to) * aligned_to
    return rows


def _report(progress: Progress | None, done: int, total: int) -> None:
    if progress is not None:
        progress("convert", done, total)


# -- shared helpers ---------------------------------------------------------------------------
def resize_images(images: np.ndarray, size: int, resample: str = "lanczos") -> np.ndarray:
    """Resize a batch ``uint8 (B, H, W, C)`` to ``(B, size, size, C)`` with Pillow.

    Pillow's filters widen with the scale factor when shrinking, so every filter except
    ``"nearest"`` is antialiased. Used at prepare time only (one image at a time).

    Example:
        >>> resize_images(np.full((2, 8, 8, 3), 7, np.uint8), 4).shape
        (2, 4, 4, 3)
    """
    if resample not in RESAMPLE:
        raise ValueError(f"resample must be one of {RESAMPLE}; received {resample!r}")
    b, h, w, c = images.shape
    if (h, w) == (size, size):
        return np.ascontiguousarray(images)
    image_mod = require("PIL.Image", "resizing official images", "pillow")
    flt = getattr(image_mod.Resampling, resample.upper())
    out = np.empty((b, size, size, c), np.uint8)
    for i in range(b):  # prepare-time conversion, not the loading hot path
        img = images[i, :, :, 0] if c == 1 else images[i]
        small = image_mod.fromarray(np.ascontiguousarray(img)).resize((size, size), flt)
        out[i] = np.asarray(small).reshape(size, size, c)
    return out


def classes_from_values(
    labels: np.ndarray, values: Sequence[Sequence[float]], names: Sequence[str], where: str
) -> np.ndarray:
    """Map factor *values* ``(N, K)`` to class indices by the nearest documented value.

    A value farther than 1 % of the spacing from every documented value is an error.

    Example:
        >>> classes_from_values(np.array([[0.75], [1.25]]), [np.linspace(0.75, 1.25, 8)],
        ...                     ["scale"], "x").ravel().tolist()
        [0, 7]
    """
    out = np.empty(labels.shape, np.int64)
    for k, (vals, name) in enumerate(zip(values, names, strict=True)):
        v = np.asarray(vals, np.float64)
        order = np.argsort(v)
        vs = v[order]
        col = labels[:, k].astype(np.float64)
        pos = np.clip(np.searchsorted(vs, col), 1, len(vs) - 1) if len(vs) > 1 else None
        if pos is None:
            nearest = np.zeros(len(col), np.int64)
        else:
            left_closer = np.abs(col - vs[pos - 1]) <= np.abs(vs[pos] - col)
            nearest = np.where(left_closer, pos - 1, pos)
        spacing = float(np.min(np.diff(vs))) if len(vs) > 1 else 1.0
        bad = ~(np.abs(col - vs[nearest]) <= 0.01 * spacing)
        if bad.any():
            row = int(np.argmax(bad))
            raise ValueError(
                f"{where}: factor {name!r} (label column {k}) holds {col[row]!r} at row {row}; "
                f"expected one of {np.round(v, 6).tolist()}"
            )
        out[:, k] = order[nearest]
    return out


def classes_from_ranks(
    labels: np.ndarray, sizes: Sequence[int], names: Sequence[str], where: str
) -> tuple[np.ndarray, list[list[float]]]:
    """Map factor values ``(N, K)`` to class indices by their rank among the column's
    distinct values (rounded to 6 decimals); each column must hold ``sizes[k]`` of them.

    Returns:
        class indices int64 ``(N, K)`` and the sorted distinct values of each column.
    """
    out = np.empty(labels.shape, np.int64)
    found: list[list[float]] = []
    for k, (size, name) in enumerate(zip(sizes, names, strict=True)):
        uniq, inverse = np.unique(np.round(labels[:, k].astype(np.float64), 6),
                                  return_inverse=True)
        if len(uniq) != size:
            raise ValueError(
                f"{where}: factor {name!r} (label column {k}) should take {size} distinct "
                f"values; received {len(uniq)}"
            )
        out[:, k] = inverse.reshape(-1)
        found.append(uniq.tolist())
    return out, found


def grid_targets(classes: np.ndarray, sizes: Sequence[int], where: str) -> np.ndarray:
    """Grid index of each row; checks every grid cell occurs exactly once."""
    target = np.ravel_multi_index(tuple(classes.T), tuple(sizes)).astype(np.int64)
    n = int(np.prod(sizes, dtype=np.int64))
    counts = np.bincount(target, minlength=n)
    if (counts != 1).any():
        missing = int((counts == 0).sum())
        raise ValueError(
            f"{where}: the labels do not form the complete factor grid "
            f"{'×'.join(map(str, sizes))}: {missing} combination(s) missing, "
            f"{int((counts > 1).sum())} repeated"
        )
    return target


class _Out:
    """``images.npy`` + ``factors.npy`` writers for one prepared cache."""

    def __init__(self, out_dir: Path, n: int, image_shape: Sequence[int]) -> None:
        self.images = NpyWriter(out_dir / "images.npy", (n, *image_shape), np.uint8)
        self.out_dir = out_dir

    def put(self, target: np.ndarray | slice, block: np.ndarray) -> None:
        assert self.images.array is not None
        self.images.array[target] = block

    def finish(self, factors: np.ndarray) -> None:
        self.images.commit()
        with NpyWriter(self.out_dir / "factors.npy", factors.shape, factors.dtype) as w:
            assert w.array is not None
            w.array[...] = factors
            w.commit()

    def __enter__(self) -> _Out:
        return self

    def __exit__(self, *exc: object) -> None:
        self.images.__exit__(*exc)


@contextmanager
def open_hdf5(h5py: Any, path: Path) -> Iterator[Any]:
    """``h5py.File(path, "r")`` whose read errors name the file and say what to do.

    h5py reports a truncated or corrupt file (or chunk) as an ``OSError`` without an errno
    (and without the file's name); such errors become a ``ValueError`` naming the file.
    Operating-system errors (with an errno, e.g. a full disk while writing the prepared
    cache) pass through unchanged.
    """
    try:
        with h5py.File(path, "r") as f:
            yield f
    except OSError as exc:
        if exc.errno is not None:
            raise
        raise ValueError(
            f"{path}: cannot read it as HDF5 ({exc}); the file is damaged or incomplete (an "
            "interrupted download?): delete it and download it again"
        ) from None


def _check_image_array(shape: Sequence[int], dtype: np.dtype, n: int, channels: int | None,
                       where: str, what: str) -> None:
    ndim = 3 if channels is None else 4
    expected = f"uint8 ({n:,}, H, W{'' if channels is None else f', {channels}'})"
    if (
        dtype != np.uint8
        or len(shape) != ndim
        or shape[0] != n
        or (channels is not None and shape[3] != channels)
    ):
        raise ValueError(
            f"{where}: {what} should be {expected}; received {np.dtype(dtype)} {tuple(shape)}"
        )


# -- dSprites ---------------------------------------------------------------------------------
@contextmanager
def _dsprites_arrays(
    path: Path,
) -> Iterator[tuple[tuple[int, ...], np.dtype, np.ndarray, Callable[[int], Iterator[np.ndarray]]]]:
    """Yield ``(imgs shape, imgs dtype, latents_classes, chunks(rows) -> iterator)`` for the
    npz or the hdf5 release, without reading the images yet (and never the pickled
    ``metadata``)."""
    where = str(path)
    if path.suffix == ".npz":
        names = npz_members(path)
        missing = [m for m in ("imgs", "latents_classes") if m not in names]
        if missing:
            raise ValueError(
                f"{where}: expected arrays 'imgs' and 'latents_classes'; missing "
                f"{', '.join(missing)}; the file holds: {', '.join(names) or '(none)'}"
            )
        with NpzMemberStream(path, "latents_classes") as s:
            classes = s.read_all()
        with NpzMemberStream(path, "imgs") as imgs:
            yield imgs.shape, imgs.dtype, classes, imgs.chunks
        return
    h5py = require("h5py", "reading the dSprites .hdf5 file")
    with open_hdf5(h5py, path) as f:
        missing = [m for m in ("imgs", "latents/classes") if m not in f]
        if missing:
            raise ValueError(
                f"{where}: expected datasets 'imgs' and 'latents/classes'; missing "
                f"{', '.join(missing)}; the file holds: {', '.join(f.keys())}"
            )
        classes = f["latents/classes"][()]
        dset = f["imgs"]

        def chunks(rows: int) -> Iterator[np.ndarray]:
            if dset.chunks:  # whole HDF5 chunks (the release uses (23040, 2, 4))
                rows = max(1, rows // dset.chunks[0]) * dset.chunks[0]
            for s in range(0, dset.shape[0], rows):
                yield dset[s : s + rows]

        yield tuple(dset.shape), dset.dtype, classes, chunks


def _check_dsprites(shape: Sequence[int], dtype: np.dtype, classes: np.ndarray,
                    sizes: Sequence[int], where: str) -> None:
    n = int(np.prod(sizes, dtype=np.int64))
    _check_image_array(shape, dtype, n, None, where, "'imgs'")
    if classes.shape != (n, len(sizes) + 1) or classes.dtype.kind not in "iu":
        raise ValueError(
            f"{where}: 'latents_classes' should be integer ({n:,}, {len(sizes) + 1}) (colour "
            f"and the {len(sizes)} factors); received {classes.dtype} {classes.shape}"
        )
    if (classes[:, 0] != 0).any():
        raise ValueError(f"{where}: the colour latent should be constant 0")
    expected = np.ravel_multi_index(tuple(classes[:, 1:].T), tuple(sizes))
    if not np.array_equal(expected, np.arange(n)):
        row = int(np.argmax(expected != np.arange(n)))
        raise ValueError(
            f"{where}: rows are not in grid order (last factor fastest): row {row} has "
            f"classes {classes[row, 1:].tolist()}"
        )


def _binary(chunk: np.ndarray, where: str) -> np.ndarray:
    if chunk.size and chunk.max() > 1:
        raise ValueError(f"{where}: 'imgs' should hold 0/1 pixels; received max {chunk.max()}")
    return chunk


def load_dsprites_packed(path: Path, sizes: Sequence[int],
                         progress: Progress | None = None) -> tuple[np.ndarray, tuple[int, int]]:
    """Read dSprites images into memory as packed bits: ``uint8 (N, ceil(H·W/8))`` (an
    eighth of the 3 GB the 0/1 bytes take), streaming the file in chunks.

    Returns:
        the packed rows and ``(H, W)``.
    """
    where = str(path)
    with _dsprites_arrays(path) as (shape, dtype, classes, chunks):
        _check_dsprites(shape, dtype, classes, sizes, where)
        n, h, w = shape
        packed = np.empty((n, (h * w + 7) // 8), np.uint8)
        start = 0
        for chunk in chunks(_rows_per_chunk(h * w)):
            r = len(chunk)
            packed[start : start + r] = np.packbits(_binary(chunk, where).reshape(r, -1), axis=1)
            start += r
            _report(progress, start, n)
    return packed, (h, w)


def convert_dsprites(spec: Any, found: dict[str, Path], out_dir: Path,
                     progress: Progress | None) -> dict[str, Any]:
    path = next(iter(found.values()))
    where = str(path)
    with _dsprites_arrays(path) as (shape, dtype, classes, chunks):
        _check_dsprites(shape, dtype, classes, spec.factor_sizes, where)
        n, h, w = shape
        with _Out(out_dir, n, (h, w, 1)) as out:
            start = 0
            for chunk in chunks(_rows_per_chunk(h * w)):
                r = len(chunk)
                out.put(slice(start, start + r), _binary(chunk, where)[..., None])
                start += r
                _report(progress, start, n)
            out.finish(grid_factors(spec.factor_sizes))
    return {"image_shape": [h, w, 1], "pixel_values": "binary 0/1 as in the file"}


# -- Shapes3D ---------------------------------------------------------------------------------
def convert_shapes3d(spec: Any, found: dict[str, Path], out_dir: Path,
                     progress: Progress | None) -> dict[str, Any]:
    path = next(iter(found.values()))
    where = str(path)
    h5py = require("h5py", "reading 3dshapes.h5")
    sizes = spec.factor_sizes
    n = int(np.prod(sizes, dtype=np.int64))
    with open_hdf5(h5py, path) as f:
        missing = [m for m in ("images", "labels") if m not in f]
        if missing:
            raise ValueError(
                f"{where}: expected datasets 'images' and 'labels'; missing "
                f"{', '.join(missing)}; the file holds: {', '.join(f.keys())}"
            )
        images, labels_ds = f["images"], f["labels"]
        _check_image_array(images.shape, images.dtype, n, 3, where, "'images'")
        if labels_ds.shape != (n, len(sizes)):
            raise ValueError(
                f"{where}: 'labels' should be ({n:,}, {len(sizes)}) factor values "
                f"({', '.join(spec.factor_names)}); received {labels_ds.shape}"
            )
        classes = classes_from_values(labels_ds[()], spec.factor_values, spec.factor_names,
                                      where)
        target = grid_targets(classes, sizes, where)
        identity = bool(np.array_equal(target, np.arange(n)))
        h, w = images.shape[1:3]
        chunk0 = images.chunks[0] if images.chunks else None
        rows = _rows_per_chunk(h * w * 3, chunk0)
        with _Out(out_dir, n, (h, w, 3)) as out:
            for s in range(0, n, rows):
                block = images[s : s + rows]  # contiguous, increasing: h5py reads in order
                out.put(slice(s, s + len(block)) if identity else target[s : s + len(block)],
                        block)
                _report(progress, s + len(block), n)
            out.finish(grid_factors(sizes))
    return {"image_shape": [h, w, 3], "rows_reordered": not identity}


# -- MPI3D ------------------------------------------------------------------------------------
def check_mpi3d(shape: Sequence[int], dtype: np.dtype, sizes: Sequence[int], where: str) -> None:
    n = int(np.prod(sizes, dtype=np.int64))
    if len(shape) == 4 and shape[0] != n and shape[0] in (460_800, 1_036_800):
        other = "(4, 4, 2, 3, 3, 40, 40)" if shape[0] == 460_800 else "(6, 6, 2, 3, 3, 40, 40)"
        raise ValueError(
            f"{where}: 'images' holds {shape[0]:,} images, the grid {other}; this dataset "
            f"expects {n:,} ({'×'.join(map(str, sizes))}). Is the file in the right folder?"
        )
    _check_image_array(shape, dtype, n, 3, where, "'images'")


def open_npz_images(path: Path) -> NpzMemberStream:
    names = npz_members(path)
    if "images" not in names:
        raise ValueError(
            f"{path}: expected an array named 'images'; the file holds: "
            f"{', '.join(names) or '(none)'}"
        )
    return NpzMemberStream(path, "images")


def convert_mpi3d(spec: Any, found: dict[str, Path], out_dir: Path,
                  progress: Progress | None) -> dict[str, Any]:
    path = next(iter(found.values()))
    with open_npz_images(path) as stream:
        check_mpi3d(stream.shape, stream.dtype, spec.factor_sizes, str(path))
        n, h, w, c = stream.shape
        with _Out(out_dir, n, (h, w, c)) as out:
            start = 0
            for chunk in stream.chunks(_rows_per_chunk(stream.row_bytes)):
                out.put(slice(start, start + len(chunk)), chunk)
                start += len(chunk)
                _report(progress, start, n)
            out.finish(grid_factors(spec.factor_sizes))
    return {"image_shape": [h, w, c]}


# -- SmallNORB --------------------------------------------------------------------------------
def convert_smallnorb(spec: Any, found: dict[str, Path], out_dir: Path,
                      progress: Progress | None) -> dict[str, Any]:
    """Both splits, left camera, resized to ``spec.image_size``; stored on the grid
    category × instance × elevation × azimuth × lighting (5 × 10 × 9 × 18 × 6)."""
    sizes = spec.factor_sizes  # storage grid, instance included
    n = int(np.prod(sizes, dtype=np.int64))
    size = spec.image_size
    parts = []
    for split, template in NORB_SPLITS.items():
        cat_path, info_path, dat_path = (found[template.format(k)] for k in ("cat", "info", "dat"))
        cat = read_norb(cat_path)
        info = read_norb(info_path)
        m = len(cat)
        if cat.ndim != 1 or info.shape != (m, 4):
            raise ValueError(
                f"{info_path}: the {split} '-cat' should be (N,) and '-info' (N, 4) "
                f"[instance, elevation, azimuth, lighting]; received {cat.shape} and {info.shape}"
            )
        if (info[:, 2] % 2).any():
            raise ValueError(f"{info_path}: azimuth values should be even (0, 2, …, 34)")
        classes = np.stack([cat, info[:, 0], info[:, 1], info[:, 2] // 2, info[:, 3]], axis=1)
        bad = (classes < 0) | (classes >= np.asarray(sizes))
        if bad.any():
            row, col = np.argwhere(bad)[0]
            raise ValueError(
                f"{info_path}: factor {spec.factor_names[col]!r} takes values in "
                f"[0, {sizes[col]}); received {classes[row, col]} at row {row}"
            )
        parts.append((dat_path, classes, m))
    all_classes = np.concatenate([p[1] for p in parts])
    grid_targets(all_classes.astype(np.int64), sizes, "SmallNORB -cat/-info files")
    done = 0
    with _Out(out_dir, n, (size, size, 1)) as out:
        for dat_path, classes, m in parts:
            target = np.ravel_multi_index(tuple(classes.T), sizes)
            for header, start, chunk in iter_norb_rows(dat_path, 512):
                if header.dtype != np.uint8 or len(header.shape) != 4 or header.shape[:2] != (m, 2):
                    raise ValueError(
                        f"{dat_path}: '-dat' should be uint8 ({m}, 2, H, W) stereo pairs; "
                        f"received {header.dtype} {header.shape}"
                    )
                left = chunk[:, 0, :, :, None]  # (r, H, W, 1), camera 0
                out.put(target[start : start + len(chunk)],
                        resize_images(left, size, spec.resample))
                done += len(chunk)
                _report(progress, done, n)
        out.finish(grid_factors(sizes))
    return {"image_shape": [size, size, 1], "camera": "left",
            "resize": {"size": size, "resample": spec.resample}}


# -- Cars3D -----------------------------------------------------------------------------------
_CAR_MAT = re.compile(r"(?:^|/)cars/([^/]+)\.mat$")
_CAR_LIST = re.compile(r"(?:^|/)cars/list\.txt$")


def convert_cars3d(spec: Any, found: dict[str, Path], out_dir: Path,
                   progress: Progress | None) -> dict[str, Any]:
    """Stream the tarball once; objects ordered as in ``data/cars/list.txt``."""
    sio = require("scipy.io", "reading the Cars3D .mat files", "scipy")
    path = next(iter(found.values()))
    n_elev, n_azim, n_obj = spec.factor_sizes
    size = spec.image_size
    cars: dict[str, np.ndarray] = {}
    order: list[str] | None = None
    try:
        tar = tarfile.open(path, "r|*")
    except tarfile.TarError as exc:
        raise ValueError(f"{path}: not a readable tar archive ({exc})") from None
    with tar:
        for member in tar:
            if not member.isfile():
                continue
            if _CAR_LIST.search(member.name):
                text = tar.extractfile(member).read().decode()  # type: ignore[union-attr]
                order = [line.strip() for line in text.splitlines() if line.strip()]
                continue
            match = _CAR_MAT.search(member.name)
            if not match:
                continue
            raw = tar.extractfile(member).read()  # type: ignore[union-attr]
            try:
                mat = sio.loadmat(io.BytesIO(raw))
            except Exception as exc:  # scipy raises several types for unreadable files
                raise ValueError(f"{path}: {member.name} is not a readable .mat ({exc})") from None
            im = mat.get("im")
            if (
                not isinstance(im, np.ndarray)
                or im.dtype != np.uint8
                or im.ndim != 5
                or im.shape[2:] != (3, n_azim, n_elev)
            ):
                got = f"{im.dtype} {im.shape}" if isinstance(im, np.ndarray) else "no 'im'"
                raise ValueError(
                    f"{path}: {member.name} should hold 'im' uint8 (H, W, 3, {n_azim}, "
                    f"{n_elev}); received {got}"
                )
            views = np.transpose(im, (4, 3, 0, 1, 2))  # (elev, azim, H, W, 3)
            flat = views.reshape(n_elev * n_azim, *views.shape[2:])
            cars[match.group(1)] = resize_images(flat, size, spec.resample).reshape(
                n_elev, n_azim, size, size, 3
            )
            _report(progress, len(cars) * n_elev * n_azim, n_elev * n_azim * n_obj)
    if order is None:
        raise ValueError(f"{path}: no data/cars/list.txt in the archive")
    if len(order) != n_obj:
        raise ValueError(f"{path}: list.txt should name {n_obj} cars; received {len(order)}")
    missing = [name for name in order if name not in cars]
    if missing:
        raise ValueError(f"{path}: list.txt names cars with no .mat file: {missing[:5]}")
    with _Out(out_dir, n_elev * n_azim * n_obj, (size, size, 3)) as out:
        assert out.images.array is not None
        grid = out.images.array.reshape(n_elev, n_azim, n_obj, size, size, 3)
        for o, name in enumerate(order):
            grid[:, :, o] = cars[name]
        out.finish(grid_factors(spec.factor_sizes))
    return {"image_shape": [size, size, 3], "object_order": order,
            "resize": {"size": size, "resample": spec.resample}}


# -- PNG folders (Falcor3D, Isaac3D) ----------------------------------------------------------
def _read_png(path: Path, size: int, resample: str) -> tuple[np.ndarray, bytes]:
    image_mod = require("PIL.Image", "reading PNG images", "pillow")
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise FileNotFoundError(
            f"missing image {path} (expected images/000000.png … one per grid index)"
        ) from None
    with image_mod.open(io.BytesIO(data)) as img:
        rgb = img.convert("RGB")
        if rgb.size != (size, size):
            rgb = rgb.resize((size, size), getattr(image_mod.Resampling, resample.upper()))
        return np.asarray(rgb), hashlib.sha256(data).digest()


def convert_png_folder(spec: Any, found: dict[str, Path], out_dir: Path,
                       progress: Progress | None, *, workers: int | None = None) -> dict[str, Any]:
    """Labels file + ``images/{idx:06}.png``; images resized to ``spec.image_size``."""
    labels_path, images_dir = (found[f] for f in spec.files)
    sizes = spec.factor_sizes
    n = int(np.prod(sizes, dtype=np.int64))
    try:
        labels = np.load(labels_path, allow_pickle=False)
    except ValueError as exc:
        raise ValueError(f"{labels_path}: not a numeric .npy array ({exc})") from None
    if labels.ndim != 2 or labels.shape != (n, len(sizes)):
        raise ValueError(
            f"{labels_path}: labels should be ({n:,}, {len(sizes)}) factor values "
            f"({', '.join(spec.factor_names)}); received {labels.shape}"
        )
    classes, values = classes_from_ranks(labels, sizes, spec.factor_names, str(labels_path))
    target = grid_targets(classes, sizes, str(labels_path))
    size = spec.image_size
    workers = workers or min(8, os.cpu_count() or 1)
    digest = hashlib.sha256()
    with _Out(out_dir, n, (size, size, 3)) as out, ThreadPoolExecutor(workers) as pool:
        for s in range(0, n, 1024):
            idx = range(s, min(n, s + 1024))
            results = list(pool.map(
                lambda i: _read_png(images_dir / f"{i:06d}.png", size, spec.resample), idx
            ))
            out.put(target[s : s + len(idx)], np.stack([r[0] for r in results]))
            for r in results:
                digest.update(r[1])
            _report(progress, s + len(idx), n)
        out.finish(grid_factors(sizes))
    return {
        "image_shape": [size, size, 3],
        "factor_values": values,
        "images_sha256": digest.hexdigest(),
        "images_sha256_rule": "sha256 over the per-image sha256 digests in index order",
        "resize": {"size": size, "resample": spec.resample},
    }
