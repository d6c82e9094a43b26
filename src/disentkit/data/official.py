"""Loaders for the official dataset files: dSprites, Shapes3D, MPI3D, SmallNORB, Cars3D,
Falcor3D and Isaac3D.

Files live under ``<data_root>/<name>/`` (see :func:`disentkit.data.data_root`) with their
released names. Asking for a dataset whose files are missing fails at once with a
``FileNotFoundError`` naming the expected path, ``disentkit data download NAME``, the URL
and the procedural alternative.

- :func:`download` fetches the released files (resumable, retried, checksum-verified
  when a release checksum is known); ``get_dataset(name, download=True)`` does so first
  when files are missing. :func:`fetch_advice` is the one place that says how to get a
  release (and that Falcor3D and Isaac3D must be fetched by hand).
- :func:`prepare` converts them once to ``<root>/<name>/prepared/images.npy`` (uint8
  ``(N, H, W, C)``, grid order, last factor fastest), ``factors.npy`` and ``meta.json``;
  the dataset then memory-maps ``images.npy``. Without a cache, dSprites loads directly
  (as packed bits, 0.37 GB) and an MPI3D ``.npz`` written uncompressed is memory-mapped in
  place; the others say to run ``disentkit data prepare NAME``.
- Loaders are batch-first: :meth:`OfficialDataset.images` reads a sorted unique index and
  restores the requested order.

A file whose sha256 matches no known release still loads, with a
:class:`~disentkit.DisentkitWarning` (releases get re-issued: MPI3D real was in 2025); the
checksum is recorded in the dataset's ``source``. Checksums are computed once per file
(size, mtime) and cached.
"""

from __future__ import annotations

import dataclasses
import hashlib
import mmap
import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from disentkit._random import SeedLike, as_generator
from disentkit._validation import DisentkitWarning
from disentkit.data import official_convert as conv
from disentkit.data._base import (
    DATASETS,
    DatasetSource,
    FactorDataset,
    data_root,
    register_dataset,
)
from disentkit.data._files import (
    Progress,
    begin_prepared,
    cached_sha256,
    disentkit_version,
    download_file,
    finish_prepared,
    npz_member_memmap,
    prepared_dir,
    read_prepared_meta,
    read_rows,
)
from disentkit.data.official_specs import SPECS as _SPECS
from disentkit.data.official_specs import OfficialSpec


class PrepareRequiredError(FileNotFoundError):
    """The official files are present but the prepared cache this dataset needs is not."""


class ManualDownloadError(RuntimeError):
    """The release cannot be fetched automatically; the message says how to get it."""


_CONVERTERS = {
    "dsprites": conv.convert_dsprites, "shapes3d": conv.convert_shapes3d,
    "mpi3d": conv.convert_mpi3d, "smallnorb": conv.convert_smallnorb,
    "cars3d": conv.convert_cars3d, "png": conv.convert_png_folder,
}


def _spec(name: str) -> OfficialSpec:
    info = DATASETS[name]  # unknown names fail with the list of known ones
    if name not in _SPECS:
        raise ValueError(f"{name!r} is a {info.kind} dataset, not an official one; "
                         f"official datasets: {', '.join(sorted(_SPECS))}")
    return _SPECS[name]


# -- locating files ---------------------------------------------------------------------------
def _dataset_dir(name: str, data_dir: str | os.PathLike[str] | None) -> Path:
    return data_root(data_dir) / name


def _locate(spec: OfficialSpec, base: Path) -> dict[str, Path] | None:
    """Paths of every needed file (first subfolder holding all of them), else ``None``."""
    for sub in spec.subdirs:
        folder = base / sub if sub else base
        found: dict[str, Path] = {}
        for f in spec.files:
            for cand in (f, *spec.alternatives.get(f, ())):
                p = folder / cand.rstrip("/")
                if p.is_dir() if cand.endswith("/") else p.is_file():
                    found[f] = p
                    break
        if len(found) == len(spec.files):
            return found
    return None


def fetch_advice(name: str, data_dir: str | os.PathLike[str] | None = None) -> str:
    """How to get the official files of ``name``: the one sentence every message uses.

    For a release that :func:`download` can fetch, the download command (and
    ``get_dataset(name, download=True)``) with the URLs; for one it cannot (Falcor3D,
    Isaac3D: an archive behind a confirmation page), that it must be fetched by hand and how.

    Example:
        >>> "disentkit data download shapes3d" in fetch_advice("shapes3d")
        True
        >>> "cannot fetch" in fetch_advice("falcor3d")
        True
    """
    spec = _spec(name)
    base = _dataset_dir(name, data_dir)
    if spec.manual:
        return (f"`disentkit data download {name}` cannot fetch this release (nor can "
                f"get_dataset(..., download=True)); get it by hand: {spec.manual}.")
    urls = [spec.urls[f] for f in spec.files if not (base / f).exists()] or [
        spec.urls[f] for f in spec.files]
    return (f"Run `disentkit data download {name}` (or get_dataset({name!r}, download=True)) "
            f"to fetch {' '.join(urls)}, or download by hand and put the files there.")


def _missing_error(spec: OfficialSpec, base: Path) -> FileNotFoundError:
    lines = [f"{spec.name}: the official files are not in {base}."]
    for f in spec.files:
        if not (base / f.rstrip("/")).exists():
            alt = spec.alternatives.get(f, ())
            also = f" (or {', '.join(str(base / a) for a in alt)})" if alt else ""
            lines.append(f"  expected {base / f.rstrip('/')}{also}")
    lines.append(fetch_advice(spec.name, base.parent))
    lines.append("The data root is data_dir, else $DISENTKIT_DATA, else ~/.cache/disentkit.")
    if spec.procedural_alternative:
        alt = spec.procedural_alternative
        lines.append(f"Without the files, use the procedural alternative {alt!r} "
                     f"(get_dataset({alt!r})).")
    else:
        lines.append("There is no procedural alternative for this dataset.")
    return FileNotFoundError("\n".join(lines))


# -- checksums and sources --------------------------------------------------------------------
def _known(spec: OfficialSpec, file_name: str, sha: str | None) -> bool | None:
    known = spec.sha256.get(file_name, ())
    if not known or sha is None:
        return None
    return sha in known


def _record(spec: OfficialSpec, base: Path, path: Path, progress: Progress | None) -> dict:
    rel = path.relative_to(base).as_posix()
    if path.is_dir():
        return {"file": rel, "folder": True}
    st = path.stat()
    sha = cached_sha256(path, progress=progress)
    return {"file": rel, "size": st.st_size, "mtime_ns": st.st_mtime_ns, "sha256": sha,
            "known_release": _known(spec, path.name, sha)}


def _source(spec: OfficialSpec, base: Path, records: list[dict], *,
            stacklevel: int = 5) -> DatasetSource:
    """One :class:`DatasetSource`; warns for each file that matches no known release."""
    flags = []
    for r in records:
        if r.get("folder"):
            continue
        flag = _known(spec, Path(r["file"]).name, r.get("sha256"))
        flags.append(flag)
        if flag is False:
            known = ", ".join(spec.sha256[Path(r["file"]).name])
            warnings.warn(
                f"{spec.name}: {base / r['file']} has sha256 {r['sha256']}, which matches no "
                f"known release ({known}). Loading it anyway (releases are sometimes "
                f"re-issued); the checksum is recorded in the dataset's source.",
                DisentkitWarning, stacklevel=stacklevel,  # the get_dataset / prepare caller
            )
    if len(records) == 1:
        path, sha = base / records[0]["file"], records[0].get("sha256")
    else:  # several files: digest of their sha256sum-style listing
        listing = "".join(f"{r.get('sha256') or r.get('images_sha256', '-')}  {r['file']}\n"
                          for r in sorted(records, key=lambda r: r["file"]))
        path, sha = base, hashlib.sha256(listing.encode()).hexdigest()
    known_release = (False if False in flags
                     else True if flags and all(f is True for f in flags) else None)
    return DatasetSource(name=spec.name, kind="official", path=str(path), sha256=sha,
                         known_release=known_release)


def _meta_fits(meta: dict, spec: OfficialSpec) -> bool:
    return (meta.get("factor_sizes") == list(spec.factor_sizes)
            and (spec.image_size is None or meta.get("image_shape", [0])[0] == spec.image_size))


def _check_fresh(spec: OfficialSpec, base: Path, meta: dict) -> None:
    """The prepared cache must come from the source files still present (if any)."""
    for r in meta.get("sources", []):
        path = base / r["file"]
        if r.get("folder") or not path.is_file():
            continue  # sources may be deleted after preparing
        st = path.stat()
        if (st.st_size, st.st_mtime_ns) == (r.get("size"), r.get("mtime_ns")):
            continue
        if cached_sha256(path) != r.get("sha256"):
            raise ValueError(
                f"{spec.name}: the prepared cache in {prepared_dir(base)} was built from a "
                f"different {path} (sha256 {r.get('sha256')}); run `disentkit data prepare "
                f"{spec.name} --force` (prepare({spec.name!r}, force=True)) to rebuild it"
            )


# -- image storage ----------------------------------------------------------------------------
#: how stored images are read: ``"auto"`` (default: a memory map for files up to
#: ``MAP_LIMIT`` bytes, positional reads for larger ones), ``"pread"`` (positional reads into
#: the batch) or ``"mmap"`` (a memory map: the pages touched count in RSS)
READERS = ("auto", "pread", "mmap")
#: images up to this many bytes are memory-mapped by ``reader="auto"``: a map's RSS never
#: exceeds the file's size, and on a small file it reuses the pages it has mapped
MAP_LIMIT = 512 << 20


def _resolve_reader(reader: str, nbytes: int) -> str:
    """The reader ``reader="auto"`` stands for with ``nbytes`` of images."""
    if reader != "auto":
        return reader
    return "mmap" if nbytes <= MAP_LIMIT or not hasattr(os, "pread") else "pread"


class _Mapped:
    """A read-only ``(N, ...)`` array at byte ``offset`` of a file, read batch by batch.

    ``reader="pread"``: each batch is read with positional reads, one per run of
    consecutive indices, straight into the batch (:func:`~disentkit.data._files.read_rows`):
    nothing is mapped, so the process holds the batch and no file pages, however long it
    iterates; the file's pages stay in the page cache, shared and reclaimable.
    ``reader="mmap"``: a read-only memory map; every page touched, and the kernel's
    read-ahead around it, counts in the process's RSS (up to the file's size) unless
    ``release_every`` drops them (``madvise(MADV_DONTNEED)`` every that many reads).
    ``reader="auto"`` (default): ``"mmap"`` up to :data:`MAP_LIMIT` bytes of images (RSS
    bounded by the file), ``"pread"`` beyond.

    Pickles as (path, offset, dtype, shape, reader) and reopens the file in the new process.
    """

    def __init__(self, path: str | os.PathLike[str], offset: int, dtype: np.dtype,
                 shape: tuple[int, ...], reader: str = "auto") -> None:
        self.path, self.offset, self.dtype, self.shape = os.fspath(path), offset, dtype, shape
        self.nbytes = int(np.prod(shape, dtype=np.int64)) * np.dtype(dtype).itemsize
        self.reader = _resolve_reader(reader, self.nbytes)
        self._file: Any = None  # pread: the open file
        self._mm: mmap.mmap | None = None  # mmap: the map and the array over it
        self._map: np.ndarray | None = None
        #: mmap reader: release the map's resident pages every this many reads (None: never)
        self.release_every: int | None = None
        self._reads = 0

    @classmethod
    def of(cls, m: np.memmap) -> _Mapped:
        """The file region of a ``np.memmap`` (its map is not kept)."""
        return cls(m.filename, m.offset, m.dtype, m.shape)

    def read(self, idx: np.ndarray) -> np.ndarray:
        if self.reader == "pread":
            if self._file is None:
                self._file = open(self.path, "rb", buffering=0)
            out = np.empty((idx.size, *self.shape[1:]), self.dtype)  # (B, H, W, C)
            return read_rows(self._file.fileno(), self.offset, idx, out, where=self.path)
        if self._map is None:
            with open(self.path, "rb") as fh:
                self._mm = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
            count = int(np.prod(self.shape))
            self._map = np.frombuffer(self._mm, self.dtype, count, self.offset).reshape(
                self.shape)
        out = self._map[idx]  # (B, H, W, C), a copy
        if self.release_every is not None:
            self._reads += 1
            if self._reads % self.release_every == 0 and hasattr(self._mm, "madvise"):
                # The pages stay in the page cache; they just stop counting in this RSS.
                self._mm.madvise(mmap.MADV_DONTNEED)
        return out

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_file": None, "_mm": None, "_map": None}


class _Packed:
    """Binary images held as packed bits ``(N, ceil(H·W/8))``, unpacked per batch."""

    def __init__(self, bits: np.ndarray, hw: tuple[int, int]) -> None:
        self.bits, self.hw = bits, hw
        self.shape = (bits.shape[0], *hw, 1)

    def read(self, idx: np.ndarray) -> np.ndarray:
        h, w = self.hw
        return np.unpackbits(self.bits[idx], axis=1, count=h * w).reshape(len(idx), h, w, 1)


class OfficialDataset(FactorDataset):
    """Images of an official release, stored in grid order (last factor fastest).

    Built by :func:`disentkit.data.get_dataset`; ``images(indices)`` reads the storage with
    a sorted unique index (sequential memory-map access) and restores the order asked for.

    Attributes:
        source_files: per released file: name, size, sha256, whether it is a known release.
    """

    @property
    def max_pixel_value(self) -> int:
        return self._max_pixel

    def __init__(self, spec: OfficialSpec, storage: _Mapped | _Packed, source: DatasetSource,
                 records: list[dict], *, scale: int = 1,
                 factor_values: tuple[tuple[Any, ...], ...] | None = None) -> None:
        self.name = spec.name
        self.factor_names = spec.factor_names
        self.factor_sizes = spec.factor_sizes
        self._values = factor_values or spec.factor_values
        if storage.shape[0] != spec.n_images:
            raise ValueError(f"{spec.name}: storage holds {storage.shape[0]} images; "
                             f"expected {spec.n_images}")
        self._storage = storage
        self._scale = scale
        self._max_pixel = 1 if (spec.fmt == "dsprites" and scale == 1) else 255
        self.image_shape = tuple(int(s) for s in storage.shape[1:])  # type: ignore[assignment]
        self.source = source
        self.source_files = tuple(records)

    @property
    def factor_values(self) -> tuple[np.ndarray, ...]:
        return tuple(np.asarray(v) for v in self._values)

    def _take(self, idx: np.ndarray) -> np.ndarray:
        """Images at storage indices ``idx`` (any order, repeats allowed)."""
        if idx.size == 0:
            return np.empty((0, *self._storage.shape[1:]), np.uint8)
        if idx.size == 1 or bool(np.all(idx[1:] > idx[:-1])):
            out = self._storage.read(idx)
        else:
            uniq, inverse = np.unique(idx, return_inverse=True)
            out = self._storage.read(uniq)[inverse.reshape(-1)]
        if self._scale != 1:
            out *= np.uint8(self._scale)
        return out

    def images(self, indices: object) -> np.ndarray:
        """Images ``uint8 (B, H, W, C)`` at ``indices``."""
        return self._take(self._check_indices(indices))

    def images_from_factors(self, factors: object) -> np.ndarray:
        """Images ``uint8 (B, H, W, C)`` for factor vectors ``(B, K)``."""
        return self._take(self.index(factors))


_NORB_SPLIT_INSTANCES = {"both": tuple(range(10)), "train": (4, 6, 7, 8, 9),
                         "test": (0, 1, 2, 3, 5)}


class SmallNORBDataset(OfficialDataset):
    """SmallNORB with the instance either hidden (a nuisance) or a factor.

    ``instance="random"`` (disentanglement_lib): factors category × elevation × azimuth ×
    lighting (5 × 9 × 18 × 6); each image request draws the instance uniformly from the
    split's instances with the dataset's own generator (seeded by ``seed``), so a fixed
    sequence of calls is reproducible but the same index can show different instances.
    ``instance=<id>``: always that instance (a deterministic observation function).
    ``instance="factor"``: instance becomes the second factor (5 × n × 9 × 18 × 6).
    """

    def __init__(self, spec: OfficialSpec, storage: _Mapped, source: DatasetSource,
                 records: list[dict], *, split: str = "both", instance: str | int = "random",
                 seed: SeedLike = 0) -> None:
        super().__init__(spec, storage, source, records)
        if split not in _NORB_SPLIT_INSTANCES:
            raise ValueError(f"smallnorb: split must be one of {sorted(_NORB_SPLIT_INSTANCES)};"
                             f" received {split!r}")
        self._ids = np.asarray(_NORB_SPLIT_INSTANCES[split])
        self._storage_sizes = spec.factor_sizes
        if isinstance(instance, bool) or not (
            instance in ("random", "factor") or isinstance(instance, int | np.integer)
        ):
            raise ValueError(f"smallnorb: instance must be 'random', 'factor' or an instance "
                             f"id; received {instance!r}")
        if not isinstance(instance, str) and int(instance) not in self._ids:
            raise ValueError(f"smallnorb: instance {instance} is not in split {split!r} "
                             f"(instances {self._ids.tolist()})")
        self.instance, self.split = instance, split
        keep = [0, 1, 2, 3, 4] if instance == "factor" else [0, 2, 3, 4]
        self.factor_names = tuple(spec.factor_names[k] for k in keep)
        sizes = list(spec.factor_sizes)
        sizes[1] = len(self._ids)
        self.factor_sizes = tuple(sizes[k] for k in keep)
        values = list(spec.factor_values)
        values[1] = tuple(self._ids.tolist())
        self._values = tuple(values[k] for k in keep)
        self._rng = as_generator(seed)

    def _storage_index(self, f: np.ndarray) -> np.ndarray:
        if self.instance == "factor":
            cat, inst, el, az, li = f.T
            inst = self._ids[inst]
        else:
            cat, el, az, li = f.T
            if self.instance == "random":
                inst = self._ids[self._rng.integers(0, len(self._ids), len(f))]
            else:
                inst = np.full(len(f), int(self.instance))
        return np.ravel_multi_index((cat, inst, el, az, li), self._storage_sizes)

    def images(self, indices: object) -> np.ndarray:
        return self._take(self._storage_index(self.factors(indices)))

    def images_from_factors(self, factors: object) -> np.ndarray:
        return self._take(self._storage_index(self.check_factors(factors)))


# -- opening ----------------------------------------------------------------------------------
def _prepare_hint(spec: OfficialSpec, base: Path, why: str) -> PrepareRequiredError:
    return PrepareRequiredError(
        f"{spec.name}: found the official files in {base}, but {why}. Run `disentkit data "
        f"prepare {spec.name}` once (or disentkit.data.prepare({spec.name!r})): it converts "
        f"them to an uncompressed cache in {prepared_dir(base)} that opens instantly as a "
        f"memory map."
    )


def open_official(name: str, data_dir: str | os.PathLike[str] | None = None,
                  **options: Any) -> OfficialDataset:
    """Open official dataset ``name`` (what the registered factories call).

    Uses the prepared cache when there is one; otherwise dSprites loads directly and an
    uncompressed MPI3D ``.npz`` is memory-mapped in place.

    Stored images (a prepared cache, an MPI3D ``.npz``) larger than :data:`MAP_LIMIT`
    (512 MiB) are read with positional reads into each batch by default (``reader="auto"``
    → ``"pread"``): the process holds the batch and no file pages, so its RSS stays bounded
    however long it iterates (300 random batches of 64 from the full Shapes3D cache: a peak
    of ~0.2 GB instead of 1.5–5.8 GB with a memory map, whose read-ahead maps megabytes
    around every page touched), at the memory map's speed on such files. Smaller files are
    memory-mapped (their RSS is bounded by their size, and a map reuses the pages it holds).
    ``reader="mmap"`` or ``"pread"`` forces one (``"mmap"`` where ``os.pread`` is missing);
    with a map, ``release_pages_every=k`` drops its resident pages every ``k`` reads
    (``madvise(MADV_DONTNEED)``; they stay in the page cache). Positional reads hold no
    pages, so ``release_pages_every`` changes nothing there.

    Raises:
        FileNotFoundError: files missing (message: expected path, download command, URL,
            procedural alternative), or :class:`PrepareRequiredError`.
        ValueError: a file of the wrong format, or a cache built from a different file.

    Example:
        >>> import tempfile, pathlib
        >>> root = pathlib.Path(tempfile.mkdtemp())
        >>> (root / "mpi3d_complex").mkdir()
        >>> images = np.zeros((460_800, 1, 1, 3), np.uint8)  # tiny stand-in images
        >>> np.savez(root / "mpi3d_complex" / "real3d_complicated_shapes_ordered.npz",
        ...          images=images)
        >>> ds = open_official("mpi3d_complex", data_dir=root)  # mapped in place
        >>> ds.factor_sizes, ds.images([460_799, 0]).shape
        ((4, 4, 2, 3, 3, 40, 40), (2, 1, 1, 3))
        >>> open_official("mpi3d_toy", data_dir=root)
        Traceback (most recent call last):
        ...
        FileNotFoundError: mpi3d_toy: the official files are not in .../mpi3d_toy.
        ...
    """
    spec = _spec(name)
    base = _dataset_dir(name, data_dir)
    meta = read_prepared_meta(prepared_dir(base), name)
    found = _locate(spec, base)
    if meta is not None and not _meta_fits(meta, spec):
        if found is None:
            raise _missing_error(spec, base)
        raise _prepare_hint(spec, base, "the prepared cache does not match this disentkit "
                                        "version's layout")
    scale, values = 1, None
    if meta is not None:
        _check_fresh(spec, base, meta)
        m = np.load(prepared_dir(base) / "images.npy", mmap_mode="r")
        storage: _Mapped | _Packed = _Mapped.of(m)
        records = meta["sources"]
        if "factor_values" in meta:
            values = tuple(tuple(v) for v in meta["factor_values"])
        if spec.fmt == "cars3d" and "object_order" in meta:
            values = (*spec.factor_values[:2], tuple(meta["object_order"]))
    elif found is None:
        raise _missing_error(spec, base)
    elif spec.direct == "memory":  # dSprites: packed bits in memory
        path = next(iter(found.values()))
        records = [_record(spec, base, path, None)]
        bits, hw = conv.load_dsprites_packed(path, spec.factor_sizes)
        storage = _Packed(bits, hw)
    elif spec.direct == "mmap":  # MPI3D: np.savez member mapped where it lies
        path = next(iter(found.values()))
        with conv.open_npz_images(path) as stream:
            conv.check_mpi3d(stream.shape, stream.dtype, spec.factor_sizes, str(path))
        mapped = npz_member_memmap(path, "images")
        if mapped is None:
            raise _prepare_hint(spec, base, f"{path.name} is compressed, so it cannot be "
                                            f"memory-mapped")
        records = [_record(spec, base, path, None)]
        storage = _Mapped.of(mapped)
    else:
        raise _prepare_hint(spec, base, "this dataset is converted once before use "
                                        "(resized or decompressed)")
    if spec.fmt == "dsprites":
        pixel_range = options.pop("pixel_range", "255")
        if pixel_range not in ("01", "255"):
            raise ValueError(f"dsprites: pixel_range must be '01' (values 0/1, as in the file) "
                             f"or '255' (values 0/255); received {pixel_range!r}")
        scale = 255 if pixel_range == "255" else 1
    norb = {k: options.pop(k) for k in ("split", "instance", "seed")
            if spec.fmt == "smallnorb" and k in options}
    reader = options.pop("reader", "auto")
    if reader not in READERS:
        raise ValueError(f"{name}: reader must be one of {list(READERS)}; received "
                         f"{reader!r} ('auto': the default; 'pread': positional reads, bounded "
                         "memory; 'mmap': a memory map)")
    if reader == "pread" and not hasattr(os, "pread"):
        raise ValueError(f"{name}: reader='pread' needs os.pread, which this platform lacks; "
                         "use reader='mmap'")
    release = options.pop("release_pages_every", None)
    if release is not None and (
        isinstance(release, bool) or not isinstance(release, int) or release < 1
    ):
        raise ValueError(f"{name}: release_pages_every must be a positive integer or None; "
                         f"received {release!r}")
    if isinstance(storage, _Mapped):
        storage.reader = _resolve_reader(reader, storage.nbytes)
        storage.release_every = release
    if options:
        raise TypeError(f"{name}: unknown option(s) {', '.join(sorted(options))}")
    source = _source(spec, base, records)
    if spec.fmt == "smallnorb":
        assert isinstance(storage, _Mapped)
        return SmallNORBDataset(spec, storage, source, records, **norb)
    return OfficialDataset(spec, storage, source, records, scale=scale, factor_values=values)


# -- prepare / download -----------------------------------------------------------------------
def prepare(name: str, data_dir: str | os.PathLike[str] | None = None,
            progress: Progress | None = None, *, force: bool = False) -> Path:
    """Convert the official files of ``name`` once to a memory-mappable cache.

    Writes ``<root>/<name>/prepared/images.npy`` (uint8 ``(N, H, W, C)``, grid order, last
    factor fastest; resized where the dataset says so), ``factors.npy`` (class indices,
    uint8) and, last, ``meta.json`` (source files with size, mtime and sha256, factor
    names/sizes, image shape, disentkit version). Sources are streamed in chunks; every
    file goes through a temporary name and :func:`os.replace`. An up-to-date cache is kept
    unless ``force``.

    Args:
        name: official dataset name.
        data_dir: data root (see :func:`disentkit.data.data_root`).
        progress: ``progress(stage, done, total)`` with stages ``"hash"`` and ``"convert"``.
        force: rebuild even when the cache is up to date.

    Returns:
        the ``prepared`` folder.

    Raises:
        FileNotFoundError: the files are missing (same message as opening the dataset).
        ValueError: a file of the wrong format.

    Example:
        >>> import tempfile, pathlib
        >>> root = pathlib.Path(tempfile.mkdtemp())
        >>> (root / "mpi3d_complex").mkdir()
        >>> np.savez_compressed(root / "mpi3d_complex" / "real3d_complicated_shapes_ordered.npz",
        ...                     images=np.zeros((460_800, 1, 1, 3), np.uint8))
        >>> out = prepare("mpi3d_complex", data_dir=root)
        >>> sorted(p.name for p in out.iterdir())
        ['factors.npy', 'images.npy', 'meta.json']
        >>> open_official("mpi3d_complex", data_dir=root).images([5]).shape
        (1, 1, 1, 3)
    """
    spec = _spec(name)
    base = _dataset_dir(name, data_dir)
    found = _locate(spec, base)
    if found is None:
        raise _missing_error(spec, base)
    out_dir = prepared_dir(base)
    records = [_record(spec, base, p, progress) for p in found.values()]
    meta = read_prepared_meta(out_dir, name)
    same = meta is not None and _meta_fits(meta, spec) and [
        (r["file"], r.get("sha256")) for r in meta["sources"]
    ] == [(r["file"], r.get("sha256")) for r in records]
    if same and not force:
        return out_dir
    begin_prepared(out_dir)
    extra = _CONVERTERS[spec.fmt](spec, found, out_dir, progress)
    if "images_sha256" in extra:
        for r in records:
            if r.get("folder"):
                r["images_sha256"] = extra["images_sha256"]
    _source(spec, base, records, stacklevel=3)  # warns about unknown releases
    finish_prepared(out_dir, {
        "dataset": name,
        "disentkit_version": disentkit_version(),
        "sources": records,
        "factor_names": list(spec.factor_names),
        "factor_sizes": list(spec.factor_sizes),
        "n_images": spec.n_images,
        **extra,
    })
    return out_dir


def download(name: str, data_dir: str | os.PathLike[str] | None = None, *,
             progress: Progress | None = None, timeout: float = 15.0,
             force: bool = False, retries: int = 5, backoff: float = 1.0) -> list[Path]:
    """Download the official files of ``name`` into ``<root>/<name>/``.

    Each file collects in a hidden ``.<file>.part`` beside its final name, resuming with an
    HTTP Range request after an interruption (also one from an earlier run) and retrying
    transient failures with backoff; it is checked against the known release checksums
    (a mismatch is refused and the bytes removed) and only then renamed (see
    :func:`disentkit.data._files.download_file`). Its sha256 is remembered so opening it
    does not hash it again. Files already present are kept unless ``force``.

    Args:
        name: official dataset name.
        data_dir: data root.
        progress: ``progress("download", bytes_done, bytes_total_or_None)``.
        timeout: seconds to wait for the server (connection and each read).
        force: download again even when the file is present.
        retries: further attempts per file after a transient failure.
        backoff: seconds before the first retry, doubling each time.

    Returns:
        the paths of the dataset's files.

    Raises:
        ConnectionError: offline or unreachable (the message names the URL and the path
            to put the file at).
        ValueError: checksum mismatch (the download is removed) or a web page instead of
            the file.
        ManualDownloadError: the files are missing and the release must be fetched by hand
            (Falcor3D, Isaac3D); the message says how (:func:`fetch_advice`).
    """
    spec = _spec(name)
    base = _dataset_dir(name, data_dir)
    if spec.manual:
        found = _locate(spec, base)
        if found is not None and not force:
            return list(found.values())
        raise ManualDownloadError(f"{name}: {fetch_advice(name, data_dir)} "
                                  f"Dataset folder: {base}")
    paths = []
    for f in spec.files:
        present = _locate(dataclasses.replace(spec, files=(f,), subdirs=("",)), base)
        if present and not force:
            paths.append(present[f])
            continue
        dest = base / f
        download_file(spec.urls[f], dest, known_sha256=spec.sha256.get(f, ()),
                      progress=progress, timeout=timeout, retries=retries, backoff=backoff)
        paths.append(dest)
    return paths


def status(name: str, data_dir: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    """Where ``name``'s files are expected, which are present, and whether it is prepared.

    Example:
        >>> import tempfile
        >>> s = status("shapes3d", data_dir=tempfile.mkdtemp())
        >>> s["present"], s["prepared"]
        (False, False)
    """
    spec = _spec(name)
    base = _dataset_dir(name, data_dir)
    found = _locate(spec, base)
    meta = read_prepared_meta(prepared_dir(base), name)
    return {
        "name": name, "folder": str(base), "files": list(spec.files),
        "present": found is not None,
        "prepared": meta is not None and _meta_fits(meta, spec),
        "needs_prepare": spec.direct is None, "urls": dict(spec.urls),
        "procedural_alternative": spec.procedural_alternative,
        "automatic_download": spec.manual is None, "advice": fetch_advice(name, data_dir),
    }


def _fetch_missing(spec: OfficialSpec, data_dir: str | os.PathLike[str] | None) -> None:
    """``get_dataset(name, download=True)``: download the files unless they are all there."""
    if _locate(spec, _dataset_dir(spec.name, data_dir)) is None:
        download(spec.name, data_dir)


# -- registration -----------------------------------------------------------------------------
def _register(spec: OfficialSpec) -> None:
    names, sizes = spec.factor_names, spec.factor_sizes
    if spec.fmt == "smallnorb":  # default view: instance hidden
        names = tuple(n for n in names if n != "instance")
        sizes = tuple(s for n, s in zip(spec.factor_names, sizes, strict=True) if n != "instance")

    def factory(data_dir: str | os.PathLike[str] | None = None, *, download: bool = False,
                **options: Any) -> FactorDataset:
        if download:
            _fetch_missing(spec, data_dir)
        return open_official(spec.name, data_dir, **options)

    factory.__name__ = factory.__qualname__ = f"open_{spec.name}"
    factory.__doc__ = f"{spec.description}; see :func:`open_official`."
    register_dataset(
        spec.name, kind="official", description=spec.description, factor_names=names,
        factor_sizes=sizes, files=spec.files, urls=dict(spec.urls),
        sha256={k: tuple(v) for k, v in spec.sha256.items()}, licence=spec.licence,
        procedural_alternative=spec.procedural_alternative,
    )(factory)


for _s in _SPECS.values():
    if _s.name not in DATASETS:
        _register(_s)
