"""Writers of tiny files in each official dataset format, for offline loader tests.

Every writer produces the real layout (array names, dtypes, header formats, archive paths)
with the full factor grid, but with tiny images, so the loaders run their real code path.
Images encode where they belong, so a test can check the index rule pixel by pixel:

- dSprites: 4×5 binary images whose 20 pixels are the bits of the image's index.
- Shapes3D, MPI3D: 2×2×3 images holding the factor classes and the index bytes.
- SmallNORB, Cars3D, PNG folders: constant images (they survive resizing exactly) whose
  value is a code of the image's grid position.

Nothing here reads with disentkit, so a reader bug cannot hide behind a matching writer bug.
"""

from __future__ import annotations

import gzip
import io
import pickle
import struct
import tarfile
import zipfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

DSPRITES_SIZES = (3, 6, 40, 32, 32)
DSPRITES_NAME = "dsprites_ndarray_co1sh3sc6or40x32y32_64x64"
DSPRITES_HW = (4, 5)
SHAPES3D_SIZES = (10, 10, 10, 8, 4, 15)
MPI3D_SIZES = (6, 6, 2, 3, 3, 40, 40)
MPI3D_COMPLEX_SIZES = (4, 4, 2, 3, 3, 40, 40)
NORB_GRID = (5, 10, 9, 18, 6)  # category, instance, elevation, azimuth, lighting
NORB_INSTANCES = {"training": (4, 6, 7, 8, 9), "testing": (0, 1, 2, 3, 5)}
NORB_FILES = {
    "training": "smallnorb-5x46789x9x18x6x2x96x96-training-{}.mat.gz",
    "testing": "smallnorb-5x01235x9x18x6x2x96x96-testing-{}.mat.gz",
}
CARS_SIZES = (4, 24, 183)


def _grid(sizes: Sequence[int]) -> np.ndarray:
    n = int(np.prod(sizes))
    return np.stack(np.unravel_index(np.arange(n), tuple(sizes)), axis=1)


def _npy_bytes(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.lib.format.write_array(buf, np.asarray(arr), allow_pickle=False)
    return buf.getvalue()


# -- a pickle that must never be loaded ---------------------------------------------------------
class _Trap:
    """Unpickling this runs code that writes ``marker``: proof that something unpickled."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):  # type: ignore[override]
        return (exec, (f"open({self.marker!r}, 'w').write('unpickled')",))


def trap_metadata_npy(marker: Path) -> bytes:
    """A ``metadata.npy`` member like the dSprites one: a 0-d object array holding a
    py2-style (protocol 2) pickled dict, here with a payload that writes ``marker``."""
    meta = {
        "latents_sizes": np.array([1, 3, 6, 40, 32, 32]),
        "latents_names": ("color", "shape", "scale", "orientation", "posX", "posY"),
        "trap": _Trap(marker),
    }
    header = {"descr": "|O", "fortran_order": False, "shape": ()}
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, header)
    pickle.dump(meta, buf, protocol=2)
    return buf.getvalue()


def write_trap_npz(path: Path, marker: Path) -> Path:
    """An npz holding only the booby-trapped ``metadata`` (to show the trap works)."""
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("metadata.npy", trap_metadata_npy(marker))
    return path


# -- dSprites -----------------------------------------------------------------------------------
def dsprites_images() -> np.ndarray:
    """``uint8 (737280, 4, 5)``: pixel ``j`` is bit ``j`` of the image's index."""
    n = int(np.prod(DSPRITES_SIZES))
    bits = (np.arange(n)[:, None] >> np.arange(20)[None, :]) & 1
    return bits.astype(np.uint8).reshape(n, *DSPRITES_HW)


def decode_dsprites(images: np.ndarray) -> np.ndarray:
    """Index encoded in ``(B, 4, 5, 1)`` images with values 0/1 or 0/255."""
    bits = (images.reshape(len(images), 20) > 0).astype(np.int64)
    return (bits << np.arange(20)).sum(axis=1)


def _dsprites_latents() -> tuple[np.ndarray, np.ndarray]:
    f = _grid(DSPRITES_SIZES)
    classes = np.concatenate([np.zeros((len(f), 1), np.int64), f], axis=1)
    values = np.stack([
        np.ones(len(f)), f[:, 0] + 1.0, np.linspace(0.5, 1, 6)[f[:, 1]],
        np.linspace(0, 2 * np.pi, 40)[f[:, 2]], np.linspace(0, 1, 32)[f[:, 3]],
        np.linspace(0, 1, 32)[f[:, 4]],
    ], axis=1)
    return classes, values


def write_dsprites_npz(path: Path, marker: Path, *, drop: Sequence[str] = (),
                       imgs: np.ndarray | None = None) -> Path:
    """The released npz layout (deflated): ``imgs``, ``latents_classes``,
    ``latents_values`` and a pickled ``metadata`` that writes ``marker`` if unpickled."""
    classes, values = _dsprites_latents()
    members = {
        "imgs": dsprites_images() if imgs is None else imgs,
        "latents_classes": classes,
        "latents_values": values,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
        for name, arr in members.items():
            if name not in drop:
                zf.writestr(f"{name}.npy", _npy_bytes(arr))
        zf.writestr("metadata.npy", trap_metadata_npy(marker))
    return path


def write_dsprites_hdf5(path: Path) -> Path:
    """The released hdf5 layout: ``imgs`` (chunks (23040, 2, 4)), ``latents/classes`` and
    ``latents/values``."""
    import h5py

    classes, values = _dsprites_latents()
    path.parent.mkdir(parents=True, exist_ok=True)
    with h5py.File(path, "w") as f:
        f.create_dataset("imgs", data=dsprites_images(), chunks=(23040, 2, 4),
                         compression="gzip", compression_opts=1)
        f.create_dataset("latents/classes", data=classes)
        f.create_dataset("latents/values", data=values)
    return path


# -- Shapes3D -----------------------------------------------------------------------------------
SHAPES3D_VALUES = (
    np.linspace(0, 0.9, 10), np.linspace(0, 0.9, 10), np.linspace(0, 0.9, 10),
    np.linspace(0.75, 1.25, 8), np.arange(4.0), np.linspace(-30, 30, 15),
)


def coded_images(sizes: Sequence[int]) -> np.ndarray:
    """``uint8 (N, 2, 2, 3)``: bytes 0…K-1 are the factor classes, bytes 9–11 the index."""
    f = _grid(sizes)
    n = len(f)
    flat = np.zeros((n, 12), np.uint8)
    flat[:, : f.shape[1]] = f
    idx = np.arange(n)
    flat[:, 9], flat[:, 10], flat[:, 11] = idx & 255, (idx >> 8) & 255, idx >> 16
    return flat.reshape(n, 2, 2, 3)


def decode_coded(images: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(factors ``(B, k)``, index ``(B,)``) stored by :func:`coded_images`."""
    flat = images.reshape(len(images), 12).astype(np.int64)
    return flat[:, :k], flat[:, 9] + (flat[:, 10] << 8) + (flat[:, 11] << 16)


def write_shapes3d(path: Path, *, permutation: np.ndarray | None = None,
                   labels: np.ndarray | None = None) -> Path:
    """``3dshapes.h5``: ``images`` (480000, 2, 2, 3) uint8 and ``labels`` (480000, 6)
    float64 factor values; rows optionally permuted (images and labels together)."""
    import h5py

    f = _grid(SHAPES3D_SIZES)
    values = np.stack([v[f[:, k]] for k, v in enumerate(SHAPES3D_VALUES)], axis=1)
    images = coded_images(SHAPES3D_SIZES)
    if permutation is not None:
        images, values = images[permutation], values[permutation]
    path.parent.mkdir(parents=True, exist_ok=True)
    with h5py.File(path, "w") as h:
        h.create_dataset("images", data=images, chunks=(4096, 2, 2, 3), compression="gzip",
                         compression_opts=1)
        h.create_dataset("labels", data=values if labels is None else labels)
    return path


# -- MPI3D --------------------------------------------------------------------------------------
def write_mpi3d(path: Path, sizes: Sequence[int] = MPI3D_SIZES, *,
                compressed: bool = False) -> Path:
    """An MPI3D npz with the single array ``images`` (N, 2, 2, 3)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    (np.savez_compressed if compressed else np.savez)(path, images=coded_images(sizes))
    return path


# -- SmallNORB ----------------------------------------------------------------------------------
def _norb_bytes(arr: np.ndarray) -> bytes:
    magic = {np.dtype(np.uint8): 0x1E3D4C55, np.dtype(np.int32): 0x1E3D4C54}[arr.dtype]
    dims = list(arr.shape) + [1] * max(0, 3 - arr.ndim)
    header = struct.pack(f"<ii{len(dims)}i", magic, arr.ndim, *dims)
    return header + np.ascontiguousarray(arr).astype(arr.dtype.newbyteorder("<")).tobytes()


def norb_code(storage_index: np.ndarray) -> np.ndarray:
    """Grey value of the (constant) left image at a grid position."""
    return ((np.asarray(storage_index) * 7 + 3) % 251).astype(np.uint8)


def write_smallnorb(folder: Path, hw: tuple[int, int] = (4, 4), *, seed: int = 0,
                    compress: bool = True) -> Path:
    """The six SmallNORB files (gzip-compressed NORB binary matrices), rows shuffled as in
    the release. Left image: constant :func:`norb_code`; right image: 255 minus it."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for split, template in NORB_FILES.items():
        cat, inst, el, az, li = np.meshgrid(
            np.arange(5), np.asarray(NORB_INSTANCES[split]), np.arange(9), np.arange(18),
            np.arange(6), indexing="ij",
        )
        rows = np.stack([a.ravel() for a in (cat, inst, el, az, li)], axis=1)
        rows = rows[rng.permutation(len(rows))]
        code = norb_code(np.ravel_multi_index(tuple(rows.T), NORB_GRID))
        dat = np.empty((len(rows), 2, *hw), np.uint8)
        dat[:, 0] = code[:, None, None]
        dat[:, 1] = 255 - code[:, None, None]
        info = np.stack([rows[:, 1], rows[:, 2], 2 * rows[:, 3], rows[:, 4]], axis=1)
        arrays = {"dat": dat, "cat": rows[:, 0].astype(np.int32), "info": info.astype(np.int32)}
        for kind, arr in arrays.items():
            data = _norb_bytes(arr)
            packed = gzip.compress(data, 1) if compress else data
            (folder / template.format(kind)).write_bytes(packed)
    return folder


# -- Cars3D -------------------------------------------------------------------------------------
def cars_list_order(seed: int = 0) -> list[str]:
    """The order of car names in ``list.txt`` (deliberately not sorted)."""
    names = [f"car_{k:03d}_mesh" for k in range(1, CARS_SIZES[2] + 1)]
    return [names[i] for i in np.random.default_rng(seed).permutation(len(names))]


def write_cars3d(path: Path, hw: tuple[int, int] = (8, 8), *, seed: int = 0) -> Path:
    """``nips2015-analogy-data.tar.gz`` with ``data/cars/car_XXX_mesh.mat`` (``im`` uint8
    (H, W, 3, 24, 4) and ``mask``), a decoy ``data/shapes48.mat`` and, last,
    ``data/cars/list.txt``. View (elevation e, azimuth a) of the car at list position o is
    the constant colour (60·e, 10·a, o)."""
    import scipy.io

    order = cars_list_order(seed)
    position = {name: o for o, name in enumerate(order)}
    path.parent.mkdir(parents=True, exist_ok=True)

    def add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
        info = tarfile.TarInfo(name)
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))

    e = np.arange(4)[None, :]
    a = np.arange(24)[:, None]
    with tarfile.open(path, "w:gz", compresslevel=1) as tar:
        for name in sorted(order):
            im = np.empty((*hw, 3, 24, 4), np.uint8)
            im[:, :, 0] = (60 * e + 0 * a).astype(np.uint8)
            im[:, :, 1] = (10 * a + 0 * e).astype(np.uint8)
            im[:, :, 2] = position[name]
            buf = io.BytesIO()
            scipy.io.savemat(buf, {"im": im, "mask": np.ones((*hw, 24, 4), np.uint8)})
            add(tar, f"data/cars/{name}.mat", buf.getvalue())
        buf = io.BytesIO()
        scipy.io.savemat(buf, {"shapes": np.zeros((2, 2))})
        add(tar, "data/shapes48.mat", buf.getvalue())
        add(tar, "data/cars/list.txt", ("\n".join(order) + "\n").encode())
    return path


# -- PNG folders (Falcor3D, Isaac3D) ------------------------------------------------------------
def png_colour(file_index: np.ndarray) -> np.ndarray:
    """Constant RGB colour of image file ``i`` (``i < 256``)."""
    i = np.asarray(file_index)
    return np.stack([i, (i * 7 + 1) % 256, 255 - i], axis=-1).astype(np.uint8)


def write_png_dataset(folder: Path, labels_name: str, sizes: Sequence[int],
                      hw: tuple[int, int] = (8, 8), *, seed: int = 0) -> np.ndarray:
    """``images/{i:06}.png`` plus a labels ``.npy`` (written under ``labels_name``) whose row
    ``i`` holds the values (``class / (size - 1)``) of image ``i``. Rows are assigned to grid
    cells by a seeded permutation.

    Returns:
        for each grid index, the file index holding it.
    """
    from PIL import Image

    grid = _grid(sizes)
    n = len(grid)
    assert n <= 256
    cell_of_file = np.random.default_rng(seed).permutation(n)
    denom = np.maximum(np.asarray(sizes) - 1, 1)
    labels = grid[cell_of_file] / denom
    (folder / "images").mkdir(parents=True, exist_ok=True)
    for i in range(n):
        img = np.broadcast_to(png_colour(np.array(i)), (*hw, 3)).copy()
        Image.fromarray(img).save(folder / "images" / f"{i:06d}.png")
    with open(folder / labels_name, "wb") as f:
        np.save(f, labels)
    file_of_cell = np.empty(n, np.int64)
    file_of_cell[cell_of_file] = np.arange(n)
    return file_of_cell
