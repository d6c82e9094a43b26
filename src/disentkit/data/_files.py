"""File machinery for the official datasets: checksums, atomic writes, downloads, caches.

- **Checksums.** :func:`cached_sha256` hashes a file once and remembers the digest in a
  ``.sha256.json`` next to it, keyed by file name, size and modification time, so opening a
  12 GB file twice does not read it twice.
- **Atomic writes.** Everything is written to a temporary file in the destination folder
  (:func:`disentkit._atomic.temporary_file`) and moved into place with :func:`os.replace`;
  a crash leaves a stray ``.<name>.*.tmp`` file that nothing reads (and
  :func:`~disentkit._atomic.remove_stale_temporaries` deletes), never a half-written file
  under the final name.
- **Prepared caches.** ``<root>/<name>/prepared/`` holds ``images.npy`` (uint8
  ``(N, H, W, C)``, grid order), ``factors.npy`` and ``meta.json``. ``meta.json`` is removed
  first and written last, so a cache without it (an interrupted conversion) is never used.
- **npz members.** Arrays inside an ``.npz`` are read by streaming the zip member (bounded
  memory, no pickles) or, when stored uncompressed, memory-mapped where they lie.
- **Rows on demand.** :func:`read_rows` reads rows of an array stored in a file with
  positional reads straight into the output, so reading a batch holds the batch in memory
  and nothing else (the file's pages stay in the shared page cache).
- **Downloads.** :func:`download_file` streams a URL into a hidden ``.<name>.part`` file
  (:class:`ResumableDownloader`: HTTP Range resume, retries with backoff, progress),
  checks its sha256 against known releases and only then renames it; a mismatch removes
  it.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import http.client
import importlib
import os
import socket
import struct
import time
import urllib.error
import urllib.request
import zipfile
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any, BinaryIO

import numpy as np

from disentkit._atomic import temporary_file, write_json
from disentkit._version import __version__
from disentkit.rundir import read_json_or_none

Progress = Callable[[str, int, "int | None"], None]
"""``progress(stage, done, total)``: ``stage`` is ``"hash"`` or ``"download"`` (bytes) or
``"convert"`` (images); ``total`` is ``None`` when unknown."""

HASH_CACHE = ".sha256.json"
PREPARED_DIR = "prepared"
META_FORMAT = 1
_CHUNK = 8 << 20


def _report(progress: Progress | None, stage: str, done: int, total: int | None) -> None:
    if progress is not None:
        progress(stage, done, total)


def require(module: str, purpose: str, package: str | None = None) -> ModuleType:
    """Import an optional dependency or fail with how to install it."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise ImportError(
            f"{purpose} needs the '{package or module}' package: pip install {package or module}"
        ) from None


def disentkit_version() -> str:
    return __version__


# -- checksums --------------------------------------------------------------------------------
def sha256_file(path: str | os.PathLike[str], *, progress: Progress | None = None) -> str:
    """sha256 hex digest of a file, read in 8 MiB chunks.

    Example:
        >>> import tempfile, pathlib
        >>> p = pathlib.Path(tempfile.mkdtemp()) / "x.bin"
        >>> _ = p.write_bytes(b"abc")
        >>> sha256_file(p)[:16]
        'ba7816bf8f01cfea'
    """
    digest = hashlib.sha256()
    total = os.path.getsize(path)
    done = 0
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
            done += len(chunk)
            _report(progress, "hash", done, total)
    return digest.hexdigest()


def _stat_key(st: os.stat_result) -> dict[str, int]:
    return {"size": int(st.st_size), "mtime_ns": int(st.st_mtime_ns)}


def remember_sha256(path: str | os.PathLike[str], digest: str) -> None:
    """Record ``digest`` for ``path`` (at its current size and mtime) in the folder's
    ``.sha256.json``. Failing to write (a read-only folder) only costs a re-hash later."""
    path = Path(path)
    cache_file = path.parent / HASH_CACHE
    cache = read_json_or_none(cache_file) or {}
    cache[path.name] = {**_stat_key(path.stat()), "sha256": digest}
    with contextlib.suppress(OSError):
        write_json(cache_file, cache)


def cached_sha256(path: str | os.PathLike[str], *, progress: Progress | None = None) -> str:
    """sha256 of ``path``, computed once per (size, mtime) and remembered next to the file.

    Example:
        >>> import tempfile, pathlib
        >>> p = pathlib.Path(tempfile.mkdtemp()) / "x.bin"
        >>> _ = p.write_bytes(b"abc")
        >>> cached_sha256(p) == sha256_file(p)
        True
        >>> (p.parent / HASH_CACHE).exists()
        True
    """
    path = Path(path)
    cache = read_json_or_none(path.parent / HASH_CACHE) or {}
    entry = cache.get(path.name)
    key = _stat_key(path.stat())
    if (
        isinstance(entry, dict)
        and all(entry.get(k) == v for k, v in key.items())
        and isinstance(entry.get("sha256"), str)
    ):
        return entry["sha256"]
    digest = sha256_file(path, progress=progress)
    remember_sha256(path, digest)
    return digest


# -- atomic writes ----------------------------------------------------------------------------
def _fsync(path: Path) -> None:
    with contextlib.suppress(OSError), open(path, "rb") as f:
        os.fsync(f.fileno())


class NpyWriter:
    """Write a ``.npy`` file of known shape and dtype piece by piece, then move it into place.

    The array is a writable memory map of a temporary file in the destination folder
    (``writer.array``); :meth:`commit` flushes it and renames it to ``path``; leaving the
    ``with`` block without committing (an exception) deletes the temporary file.

    Example:
        >>> import tempfile, pathlib
        >>> out = pathlib.Path(tempfile.mkdtemp()) / "a.npy"
        >>> with NpyWriter(out, (4, 2), np.uint8) as w:
        ...     w.array[:2] = 1
        ...     w.array[2:] = 2
        ...     _ = w.commit()
        >>> np.load(out).sum()
        np.uint64(12)
    """

    def __init__(self, path: str | os.PathLike[str], shape: Sequence[int], dtype: Any) -> None:
        self.path = Path(path)
        self.tmp = temporary_file(self.path)
        self.array: np.memmap | None = np.lib.format.open_memmap(
            self.tmp, mode="w+", dtype=np.dtype(dtype), shape=tuple(int(s) for s in shape)
        )
        self.committed = False

    def commit(self) -> Path:
        assert self.array is not None, "commit() called twice"
        self.array.flush()
        self.array = None  # close the map before renaming
        _fsync(self.tmp)
        os.replace(self.tmp, self.path)
        self.committed = True
        return self.path

    def __enter__(self) -> NpyWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        if not self.committed:
            self.array = None
            self.tmp.unlink(missing_ok=True)


# -- npz members ------------------------------------------------------------------------------
def npz_members(path: str | os.PathLike[str]) -> list[str]:
    """Array names in an ``.npz`` file (without ``.npy``).

    Raises:
        ValueError: the file is not a zip archive.
    """
    try:
        with zipfile.ZipFile(path) as zf:
            names = zf.namelist()
    except zipfile.BadZipFile:
        raise ValueError(f"{os.fspath(path)} is not an .npz (zip) file") from None
    return [n[: -len(".npy")] for n in names if n.endswith(".npy")]


def _read_npy_header(f: BinaryIO, where: str) -> tuple[tuple[int, ...], bool, np.dtype]:
    try:
        version = np.lib.format.read_magic(f)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(f)
        elif version == (2, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(f)
        else:
            raise ValueError(f"unsupported .npy format version {version}")
    except ValueError as exc:
        raise ValueError(f"{where}: not a readable .npy array ({exc})") from None
    if dtype.hasobject:
        raise ValueError(
            f"{where}: holds Python objects (dtype {dtype}); disentkit never unpickles them"
        )
    return tuple(int(s) for s in shape), bool(fortran), dtype


class NpzMemberStream:
    """Read one array of an ``.npz`` file in chunks along its first axis, decompressing as
    it goes; never unpickles (object arrays are refused).

    Attributes:
        shape, dtype: of the whole array.

    Example:
        >>> import tempfile, pathlib
        >>> p = pathlib.Path(tempfile.mkdtemp()) / "a.npz"
        >>> np.savez_compressed(p, x=np.arange(10).reshape(5, 2))
        >>> with NpzMemberStream(p, "x") as s:
        ...     [c[:, 0].tolist() for c in s.chunks(2)]
        [[0, 2], [4, 6], [8]]
    """

    def __init__(self, path: str | os.PathLike[str], member: str) -> None:
        self.path = Path(path)
        self.member = member
        where = f"{self.path} (array {member!r})"
        try:
            self._zip = zipfile.ZipFile(self.path)
        except zipfile.BadZipFile:
            raise ValueError(f"{self.path} is not an .npz (zip) file") from None
        try:
            self._f = self._zip.open(member + ".npy")
        except KeyError:
            self._zip.close()
            held = ", ".join(npz_members(self.path)) or "(none)"
            raise ValueError(
                f"{self.path}: no array named {member!r}; the file holds: {held}"
            ) from None
        self.shape, fortran, self.dtype = _read_npy_header(self._f, where)  # type: ignore[arg-type]
        if fortran and len(self.shape) > 1:
            self.close()
            raise ValueError(f"{where}: Fortran-ordered arrays are not supported")

    @property
    def row_bytes(self) -> int:
        return int(np.prod(self.shape[1:], dtype=np.int64)) * self.dtype.itemsize

    def chunks(self, rows: int) -> Iterator[np.ndarray]:
        """Yield consecutive blocks of at most ``rows`` rows."""
        n = self.shape[0] if self.shape else 1
        for start in range(0, n, rows):
            r = min(rows, n - start)
            want = r * self.row_bytes
            buf = self._f.read(want)
            if len(buf) != want:
                raise ValueError(
                    f"{self.path} (array {self.member!r}) ends early: expected {want} bytes "
                    f"for rows {start}–{start + r - 1}, received {len(buf)}"
                )
            yield np.frombuffer(buf, self.dtype).reshape((r, *self.shape[1:]))

    def read_all(self) -> np.ndarray:
        """The whole array (for small members)."""
        parts = list(self.chunks(max(1, (64 << 20) // max(1, self.row_bytes))))
        if not self.shape:
            return parts[0].reshape(())
        if not parts:
            return np.empty(self.shape, self.dtype)
        return np.concatenate(parts, axis=0)

    def close(self) -> None:
        self._f.close()
        self._zip.close()

    def __enter__(self) -> NpzMemberStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def npz_member_memmap(path: str | os.PathLike[str], member: str) -> np.memmap | None:
    """Memory-map an array stored *uncompressed* inside an ``.npz`` file (``np.savez``).

    The bytes of a stored zip member lie contiguously in the archive, so the array can be
    mapped where it is, without a copy. Returns ``None`` when the member is compressed
    (``np.savez_compressed``), encrypted or Fortran-ordered; the caller then streams it.

    Example:
        >>> import tempfile, pathlib
        >>> p = pathlib.Path(tempfile.mkdtemp()) / "a.npz"
        >>> np.savez(p, x=np.arange(6, dtype=np.uint8).reshape(3, 2))
        >>> npz_member_memmap(p, "x")[2].tolist()
        [4, 5]
        >>> np.savez_compressed(p, x=np.arange(6))
        >>> npz_member_memmap(p, "x") is None
        True
    """
    path = Path(path)
    try:
        with zipfile.ZipFile(path) as zf:
            info = zf.getinfo(member + ".npy")
    except (zipfile.BadZipFile, KeyError):
        return None
    if info.compress_type != zipfile.ZIP_STORED or info.flag_bits & 0x1:
        return None
    with open(path, "rb") as f:
        f.seek(info.header_offset)
        local = f.read(30)
        if len(local) != 30 or local[:4] != b"PK\x03\x04":
            return None
        name_len, extra_len = struct.unpack("<HH", local[26:30])
        f.seek(info.header_offset + 30 + name_len + extra_len)
        try:
            shape, fortran, dtype = _read_npy_header(f, f"{path} (array {member!r})")
        except ValueError:
            return None
        offset = f.tell()
    if fortran and len(shape) > 1:
        return None
    return np.memmap(path, dtype=dtype, mode="r", shape=shape, offset=offset)


# -- prepared caches --------------------------------------------------------------------------
def prepared_dir(dataset_dir: str | os.PathLike[str]) -> Path:
    return Path(dataset_dir) / PREPARED_DIR


def read_prepared_meta(directory: str | os.PathLike[str], name: str) -> dict[str, Any] | None:
    """``meta.json`` of a complete prepared cache for dataset ``name``, else ``None``.

    A cache counts only when ``meta.json`` parses, names this dataset and format, and both
    ``images.npy`` and ``factors.npy`` exist with the shapes it records. Anything else (no
    meta: an interrupted conversion; leftover temporary files) is ignored.
    """
    directory = Path(directory)
    meta = read_json_or_none(directory / "meta.json")
    if meta is None:
        return None
    if meta.get("format") != META_FORMAT or meta.get("dataset") != name:
        return None
    try:
        images = np.load(directory / "images.npy", mmap_mode="r")
        factors = np.load(directory / "factors.npy", mmap_mode="r")
    except (OSError, ValueError):
        return None
    n = int(meta.get("n_images", -1))
    if (
        images.dtype != np.uint8
        or images.ndim != 4
        or images.shape[0] != n
        or list(images.shape[1:]) != list(meta.get("image_shape", []))
        or factors.shape != (n, len(meta.get("factor_sizes", [])))
    ):
        return None
    return meta


def begin_prepared(directory: str | os.PathLike[str]) -> Path:
    """Create the cache folder and invalidate any previous cache (remove ``meta.json``)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "meta.json").unlink(missing_ok=True)
    return directory


def finish_prepared(directory: str | os.PathLike[str], meta: dict[str, Any]) -> None:
    """Write ``meta.json`` last, making the cache valid."""
    write_json(Path(directory) / "meta.json", {"format": META_FORMAT, **meta})


def factor_dtype(sizes: Sequence[int]) -> np.dtype:
    """Smallest unsigned type holding every class index of ``sizes``."""
    top = max(sizes)
    return np.dtype(np.uint8 if top <= 256 else np.uint16 if top <= 65536 else np.int64)


def grid_factors(sizes: Sequence[int]) -> np.ndarray:
    """All factor vectors of the grid ``sizes`` in index order (last factor fastest)."""
    idx = np.arange(int(np.prod(sizes, dtype=np.int64)))
    return np.stack(np.unravel_index(idx, tuple(sizes)), axis=1).astype(factor_dtype(sizes))


# -- downloads --------------------------------------------------------------------------------
PART_SUFFIX = ".part"
_RETRY_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})
_OFFLINE_ERRNOS = frozenset({errno.ENETUNREACH, errno.EHOSTUNREACH, -2, -3, -5})


def partial_file(dest: str | os.PathLike[str]) -> Path:
    """Where the bytes of ``dest`` collect while it downloads: ``.<name>.part`` beside it.

    The name is hidden and never the final name, so a partial file is never taken for a
    complete one; the next download of ``dest`` resumes from it.

    Example:
        >>> partial_file("/data/shapes3d/3dshapes.h5").name
        '.3dshapes.h5.part'
    """
    dest = Path(dest)
    return dest.with_name(f".{dest.name}{PART_SUFFIX}")


class _Transient(Exception):
    """A failure worth another attempt (dropped connection, timeout, 429/5xx); ``wait``:
    the seconds the server asked for (``Retry-After``), if it did."""

    def __init__(self, message: str, wait: float | None = None) -> None:
        super().__init__(message)
        self.wait = wait


def _retry_after(headers: Any) -> float | None:
    value = (headers.get("Retry-After") or "").strip() if headers is not None else ""
    return float(value) if value.isdigit() else None


def _offline(reason: object) -> bool:
    return isinstance(reason, socket.gaierror) or (
        isinstance(reason, OSError) and reason.errno in _OFFLINE_ERRNOS
    )


def _content_range_total(value: str | None) -> int | None:
    """Total size from a ``Content-Range: bytes a-b/total`` header."""
    if value and "/" in value:
        total = value.rsplit("/", 1)[1].strip()
        if total.isdigit():
            return int(total)
    return None


class ResumableDownloader:
    """Download over HTTP(S) into a ``.part`` file that survives interruptions.

    Each attempt asks the server for the bytes after those already in the ``.part`` file
    (``Range: bytes=N-``) and appends them; a server that ignores the range sends the whole
    file, which then replaces the partial one. Dropped connections, timeouts and HTTP
    408/425/429/5xx are retried up to ``retries`` times, waiting what the server asks for
    (``Retry-After`` in seconds) or else ``backoff * 2**attempt`` seconds (at most 60) in
    between; client errors (404) and no network at all (name resolution fails, network
    unreachable) fails at once. The sha256 is computed as the bytes arrive. Only when
    the transfer is complete and the checksum matches a known release (when any are given)
    is the ``.part`` file renamed to the final name; a mismatch deletes it.

    The call signature is pooch's downloader protocol, so an instance also serves
    ``pooch.retrieve(url, known_hash, downloader=ResumableDownloader())``.

    Args:
        known_sha256: checksums of known releases; any other digest is refused.
        progress: ``progress("download", bytes_done, bytes_total_or_None)``.
        timeout: seconds to wait for the connection and for each read.
        retries: further attempts after a transient failure.
        backoff: seconds before the first retry (doubling each time).

    Attributes:
        sha256: digest of the last completed download.
        attempts: requests made by the last call (for logs and tests).
    """

    def __init__(self, *, known_sha256: Sequence[str] = (), progress: Progress | None = None,
                 timeout: float = 15.0, retries: int = 5, backoff: float = 1.0) -> None:
        if retries < 0 or backoff < 0:
            raise ValueError(f"retries and backoff must be >= 0; received retries={retries}, "
                             f"backoff={backoff}")
        self.known_sha256 = tuple(known_sha256)
        self.progress = progress
        self.timeout = timeout
        self.retries = int(retries)
        self.backoff = float(backoff)
        self.sha256: str | None = None
        self.attempts = 0
        self._digest: Any = hashlib.sha256()
        self._hashed = 0

    def __call__(self, url: str, output_file: str | os.PathLike[str], pooch: object = None,
                 check_only: bool = False) -> bool | None:
        dest = Path(output_file)
        if check_only:  # pooch asks whether the file is reachable
            try:
                request = urllib.request.Request(url, method="HEAD", headers=_headers())
                with urllib.request.urlopen(request, timeout=self.timeout):
                    return True
            except (urllib.error.URLError, OSError, ValueError):
                return False
        part = partial_file(dest)
        manual = f"download {url} by other means and put the file at {dest}"
        part.parent.mkdir(parents=True, exist_ok=True)
        # sha256 of the first ``_hashed`` bytes of the .part file, kept across attempts
        self._digest, self._hashed = hashlib.sha256(), 0
        self.attempts = 0
        while True:
            self.attempts += 1
            try:
                self._attempt(url, part, manual)
                break
            except _Transient as exc:
                if self.attempts > self.retries:
                    have = part.stat().st_size if part.exists() else 0
                    kept = (f"The {have} bytes received are kept in {part}; running the "
                            "download again resumes from there. Or " if have else "Try again "
                            "later, or ")
                    raise ConnectionError(
                        f"download of {url} failed after {self.attempts} attempt(s): {exc}. "
                        f"{kept}{manual}"
                    ) from None
                wait = self.backoff * 2 ** (self.attempts - 1) if exc.wait is None else exc.wait
                time.sleep(min(60.0, wait))
        sha = self._digest.hexdigest()
        if self.known_sha256 and sha not in self.known_sha256:
            part.unlink(missing_ok=True)
            raise ValueError(
                f"checksum mismatch for {url}: expected sha256 "
                f"{' or '.join(self.known_sha256)}, received {sha}; the download was "
                "corrupted or the release changed, and the file was removed. Run the "
                f"download again, or {manual}"
            )
        _fsync(part)
        os.replace(part, dest)
        self.sha256 = sha
        return None

    def _attempt(self, url: str, part: Path, manual: str) -> None:
        """One request, appending to ``part`` and to the digest; returns once complete."""
        have = part.stat().st_size if part.exists() else 0
        headers = _headers()
        if have:
            headers["Range"] = f"bytes={have}-"
        request = urllib.request.Request(url, headers=headers)
        try:
            response = urllib.request.urlopen(request, timeout=self.timeout)
        except urllib.error.HTTPError as exc:
            if exc.code == 416 and have:  # nothing after our bytes
                if _content_range_total(exc.headers.get("Content-Range")) == have:
                    self._digest, self._hashed = _hash_prefix(part, have)  # complete:
                    return  # a run killed before the rename
                part.unlink(missing_ok=True)  # not a prefix of this file: start again
                raise _Transient(f"the server refused to resume at byte {have}") from None
            if exc.code in _RETRY_STATUS:
                raise _Transient(f"HTTP {exc.code} {exc.reason}",
                                 _retry_after(exc.headers)) from None
            raise ConnectionError(
                f"could not download {url}: HTTP {exc.code} {exc.reason}. {manual}"
            ) from None
        except (urllib.error.URLError, OSError, ValueError) as exc:
            reason = getattr(exc, "reason", exc)
            if _offline(reason) or isinstance(exc, ValueError):
                raise ConnectionError(
                    f"could not download {url}: {reason}. Offline? {manual}"
                ) from None
            raise _Transient(str(reason)) from None
        with response:
            ctype = (response.headers.get("Content-Type") or "").lower()
            if ctype.startswith("text/html"):
                raise ValueError(
                    f"{url} answered with a web page (Content-Type {ctype}), not the data "
                    f"file; the host may ask for a confirmation in a browser: {manual}"
                )
            length = response.headers.get("Content-Length")
            length_n = int(length) if length and length.isdigit() else None
            if getattr(response, "status", 200) == 206 and have:
                total = _content_range_total(response.headers.get("Content-Range"))
                if total is None and length_n is not None:
                    total = have + length_n
                mode = "ab"
            else:  # the whole file: start again
                have, total, mode = 0, length_n, "wb"
            if self._hashed != have:  # hash what is on disk (a resumed earlier run)
                self._digest, self._hashed = _hash_prefix(part, have)
            done = have
            _report(self.progress, "download", done, total)
            # read1: whatever has arrived, so a stalled transfer still lands on disk
            read = getattr(response, "read1", response.read)
            with open(part, mode) as out:  # write errors (a full disk) are not retried
                if mode == "ab":
                    out.truncate(have)
                while True:
                    try:
                        chunk = read(1 << 20)
                    except (TimeoutError, OSError, http.client.HTTPException) as exc:
                        raise _Transient(
                            f"the transfer stopped after {done} bytes ({exc!r})") from None
                    if not chunk:
                        break
                    out.write(chunk)
                    self._digest.update(chunk)
                    done += len(chunk)
                    self._hashed = done
                    _report(self.progress, "download", done, total)
                out.flush()
                os.fsync(out.fileno())
        if total is not None and done < total:
            raise _Transient(f"the transfer stopped after {done} of {total} bytes")


def _hash_prefix(path: Path, size: int) -> tuple[Any, int]:
    """sha256 state of the first ``size`` bytes of ``path``, and that size."""
    digest, done = hashlib.sha256(), 0
    if size:
        with open(path, "rb") as f:
            while done < size and (chunk := f.read(min(_CHUNK, size - done))):
                digest.update(chunk)
                done += len(chunk)
    return digest, done


def _headers() -> dict[str, str]:
    return {"User-Agent": f"disentkit/{disentkit_version()}"}


def download_file(
    url: str,
    dest: str | os.PathLike[str],
    *,
    known_sha256: Sequence[str] = (),
    progress: Progress | None = None,
    timeout: float = 15.0,
    retries: int = 5,
    backoff: float = 1.0,
) -> str:
    """Download ``url`` to ``dest``, resuming and retrying; return its sha256.

    Bytes collect in :func:`partial_file` (``.<name>.part``) with
    :class:`ResumableDownloader`; the file appears under ``dest`` only once complete and
    checksum-verified, and its digest is remembered (:func:`remember_sha256`) so opening
    it does not hash it again. An interrupted download (dropped connection, killed
    process) resumes from the ``.part`` file the next time.

    Args:
        url: address of the file.
        dest: final path; its folder is created.
        known_sha256: checksums of known releases; when given, any other digest is refused.
        progress: ``progress("download", bytes_done, bytes_total_or_None)``.
        timeout: seconds to wait for the connection and for each read.
        retries: further attempts after a transient failure (see
            :class:`ResumableDownloader`).
        backoff: seconds before the first retry, doubling each time.

    Raises:
        ConnectionError: no network, DNS failure, HTTP error, or still failing after the
            retries (the message names the URL, the ``.part`` file kept for resuming and
            where to put a file fetched by other means).
        ValueError: the checksum matches no known release (the file is removed), or the
            server sent a web page.
    """
    downloader = ResumableDownloader(known_sha256=known_sha256, progress=progress,
                                     timeout=timeout, retries=retries, backoff=backoff)
    dest = Path(dest)
    downloader(url, dest)
    assert downloader.sha256 is not None
    remember_sha256(dest, downloader.sha256)
    return downloader.sha256


# -- rows on demand ---------------------------------------------------------------------------
def read_rows(fd: int, offset: int, rows: np.ndarray, out: np.ndarray, *,
              where: str = "file") -> np.ndarray:
    """Read rows ``rows`` of a C-ordered array stored at byte ``offset`` of open file ``fd``
    into ``out`` ``(len(rows), ...)``, one positional read per run of consecutive rows.

    Nothing is mapped: the process holds ``out`` and no file pages (a memory map counts every
    page it faults in, plus the kernel's read-ahead around it, in the process's RSS).
    ``os.preadv`` reads into ``out`` directly where it exists; elsewhere ``os.pread`` and a
    copy. Safe across threads and forked processes (no shared file position).

    Args:
        fd: file descriptor open for reading.
        offset: byte offset of row 0.
        rows: int64 ``(B,)`` row indices, any order (sorted runs read in one call).
        out: C-contiguous ``(B, ...)`` array; each row has ``out[0].nbytes`` bytes.
        where: the file's name, for the error message.

    Returns:
        ``out``.

    Raises:
        ValueError: the file ends before a row (a truncated file).

    Example:
        >>> import tempfile, pathlib
        >>> path = pathlib.Path(tempfile.mkdtemp()) / "a.bin"
        >>> _ = path.write_bytes(b"header" + np.arange(12, dtype=np.uint8).tobytes())
        >>> fd = os.open(path, os.O_RDONLY)
        >>> read_rows(fd, 6, np.array([3, 0, 1]), np.empty((3, 3), np.uint8)).tolist()
        [[9, 10, 11], [0, 1, 2], [3, 4, 5]]
        >>> os.close(fd)
    """
    n = len(rows)
    if n == 0:
        return out
    row_bytes = out.nbytes // n
    flat = out.reshape(n, -1).view(np.uint8)  # (B, row_bytes), shares out's memory
    r = np.asarray(rows, dtype=np.int64)
    breaks = np.flatnonzero(r[1:] != r[:-1] + 1) + 1
    starts = [0, *breaks.tolist()]
    ends = [*breaks.tolist(), n]
    firsts = r[starts].tolist()
    for a, b, first in zip(starts, ends, firsts, strict=True):
        _read_exact(fd, memoryview(flat[a:b]).cast("B"), offset + first * row_bytes, where)
    return out


def _read_exact(fd: int, buf: memoryview, pos: int, where: str) -> None:
    done, size = 0, len(buf)
    while done < size:
        if hasattr(os, "preadv"):
            got = os.preadv(fd, [buf[done:]], pos + done)
        else:  # pragma: no cover - platforms without preadv
            data = os.pread(fd, size - done, pos + done)
            got = len(data)
            buf[done:done + got] = data
        if got == 0:
            raise ValueError(f"{where} ends at byte {pos + done}, before the {size} bytes "
                             f"asked for at byte {pos}: the file is truncated; prepare or "
                             "download it again")
        done += got
