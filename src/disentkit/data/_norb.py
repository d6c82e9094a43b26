"""Reader for the NORB binary matrix format (the SmallNORB ``.mat`` / ``.mat.gz`` files).

Despite the extension these are not MATLAB files. Layout (little-endian, from the NORB
dataset page, cs.nyu.edu/~ylclab/data/norb-v1.0-small/):

- ``int32`` magic number giving the element type (table :data:`NORB_DTYPES`);
- ``int32`` number of dimensions ``ndim``;
- ``max(3, ndim)`` ``int32`` dimension sizes (unused trailing ones are 1);
- the elements, C order.

The SmallNORB files are ``-dat`` ``uint8 (24300, 2, 96, 96)`` (stereo pairs), ``-cat``
``int32 (24300,)`` and ``-info`` ``int32 (24300, 4)``. Files may be gzip-compressed (the
released ``.mat.gz``) or not; the reader tells them apart by their first bytes and streams
either, so a 448 MB ``-dat`` file is read in bounded chunks.
"""

from __future__ import annotations

import gzip
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

import numpy as np

NORB_DTYPES: dict[int, np.dtype] = {
    0x1E3D4C51: np.dtype("<f4"),
    0x1E3D4C53: np.dtype("<f8"),
    0x1E3D4C54: np.dtype("<i4"),
    0x1E3D4C55: np.dtype("u1"),
    0x1E3D4C56: np.dtype("<i2"),
}
"""Magic number → element type of a NORB binary matrix."""

_GZIP_MAGIC = b"\x1f\x8b"


@dataclass(frozen=True)
class NorbHeader:
    """What the header of a NORB binary matrix says.

    Attributes:
        dtype: element type.
        shape: array shape (``ndim`` entries).
        header_bytes: size of the header; the data follow it.
    """

    dtype: np.dtype
    shape: tuple[int, ...]
    header_bytes: int

    @property
    def row_bytes(self) -> int:
        """Bytes of one entry along the first axis."""
        return int(np.prod(self.shape[1:], dtype=np.int64)) * self.dtype.itemsize


def _read_exact(f: BinaryIO, n: int, what: str) -> bytes:
    parts = []
    remaining = n
    while remaining > 0:
        chunk = f.read(remaining)
        if not chunk:
            break
        parts.append(chunk)
        remaining -= len(chunk)
    data = b"".join(parts)
    if len(data) != n:
        raise ValueError(f"{what} ends early: expected {n} more bytes, received {len(data)}")
    return data


def read_norb_header(f: BinaryIO, *, name: str = "NORB matrix") -> NorbHeader:
    """Read the header of a NORB binary matrix from an open (uncompressed) stream.

    Args:
        f: binary stream positioned at the start of the matrix.
        name: how to call the file in error messages.

    Returns:
        :class:`NorbHeader`; ``f`` is left at the first data byte.

    Raises:
        ValueError: unknown magic number, implausible dimensions, or a truncated header.

    Example:
        >>> import io, struct
        >>> raw = struct.pack("<5i", 0x1E3D4C54, 1, 3, 1, 1) + struct.pack("<3i", 7, 8, 9)
        >>> header = read_norb_header(io.BytesIO(raw))
        >>> header.dtype, header.shape, header.header_bytes
        (dtype('int32'), (3,), 20)
    """
    magic, ndim = np.frombuffer(_read_exact(f, 8, f"{name} header"), "<i4").tolist()
    if magic not in NORB_DTYPES:
        known = ", ".join(f"0x{m:08X}" for m in NORB_DTYPES)
        raise ValueError(
            f"{name} is not a NORB binary matrix: magic number 0x{magic & 0xFFFFFFFF:08X}; "
            f"expected one of {known}"
        )
    if not 1 <= ndim <= 16:
        raise ValueError(f"{name}: expected 1 to 16 dimensions in the header; received {ndim}")
    n_dims = max(3, ndim)
    dims = np.frombuffer(_read_exact(f, 4 * n_dims, f"{name} header"), "<i4")
    shape = tuple(int(d) for d in dims[:ndim])
    if any(d < 0 for d in shape):
        raise ValueError(f"{name}: negative dimension in the header: {shape}")
    return NorbHeader(dtype=NORB_DTYPES[magic], shape=shape, header_bytes=8 + 4 * n_dims)


def open_norb(path: str | os.PathLike[str]) -> BinaryIO:
    """Open a NORB file for reading, decompressing on the fly if it is gzip-compressed."""
    with open(path, "rb") as probe:
        head = probe.read(2)
    if head == _GZIP_MAGIC:
        return gzip.open(path, "rb")  # type: ignore[return-value]
    return open(path, "rb")


def iter_norb_rows(
    path: str | os.PathLike[str], rows_per_chunk: int = 1024
) -> Iterator[tuple[NorbHeader, int, np.ndarray]]:
    """Stream a NORB matrix in chunks along its first axis.

    Yields:
        ``(header, start, chunk)`` with ``chunk`` of shape ``(r, *shape[1:])`` holding rows
        ``start … start + r - 1``; at most ``rows_per_chunk`` rows are in memory at once.

    Raises:
        ValueError: a malformed header or a file shorter than its header says.
    """
    name = os.fspath(path)
    with open_norb(path) as f:
        header = read_norb_header(f, name=name)
        n = header.shape[0]
        start = 0
        while start < n:
            r = min(rows_per_chunk, n - start)
            raw = _read_exact(f, r * header.row_bytes, name)
            chunk = np.frombuffer(raw, header.dtype).reshape((r, *header.shape[1:]))
            yield header, start, chunk.astype(header.dtype.newbyteorder("="), copy=False)
            start += r


def read_norb(path: str | os.PathLike[str]) -> np.ndarray:
    """Read a whole NORB matrix (for the small ``-cat`` and ``-info`` files).

    Returns:
        array of the header's shape and (native-endian) type.
    """
    name = os.fspath(path)
    with open_norb(path) as f:
        header = read_norb_header(f, name=name)
        size = int(np.prod(header.shape, dtype=np.int64)) * header.dtype.itemsize
        raw = _read_exact(f, size, name)
    arr = np.frombuffer(raw, header.dtype).reshape(header.shape)
    return arr.astype(header.dtype.newbyteorder("="))
