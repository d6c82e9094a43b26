"""Atomic file writes: a reader never sees a half-written file.

Content goes to a temporary file in the target's folder, is flushed to disk, and is then
renamed over the target (``os.replace``). A crash or ``kill -9`` mid-write leaves the
previous file intact (and at most a stray hidden temporary file, which
:func:`remove_stale_temporaries` deletes).
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import tempfile
from collections.abc import Callable, Mapping
from contextlib import suppress
from pathlib import Path
from typing import Any

__all__ = [
    "atomic_write",
    "jsonable",
    "remove_stale_temporaries",
    "temporary_file",
    "write_json",
]

_TMP_SUFFIX = ".tmp"


def _fsync_dir(directory: Path) -> None:
    with suppress(OSError, AttributeError):  # not every platform can open a directory
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def temporary_file(target: str | os.PathLike[str]) -> Path:
    """Create an empty temporary file beside ``target`` and return its path.

    The name is ``.<target name>.<random>.tmp`` in ``target``'s folder (created if needed):
    hidden, on the same file system (so ``os.replace`` onto ``target`` is atomic), and
    matched by :func:`remove_stale_temporaries`. Every writer of the package that moves a
    file into place takes its temporary name from here.

    Example:
        >>> import tempfile
        >>> tmp = temporary_file(Path(tempfile.mkdtemp()) / "images.npy")
        >>> tmp.name.startswith(".images.npy.") and tmp.name.endswith(".tmp")
        True
        >>> remove_stale_temporaries(tmp.parent) == [tmp]
        True
    """
    target = Path(target).expanduser()
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=_TMP_SUFFIX, dir=target.parent)
    os.close(fd)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(name, 0o666 & ~umask)  # mkstemp's 0600 would be the final file's mode
    return Path(name)


def atomic_write(path: str | os.PathLike[str], write: Callable[[Path], None]) -> Path:
    """Create or replace ``path`` atomically.

    ``write(tmp)`` writes the content to a temporary file ``tmp`` in the same folder; the
    file is then flushed to disk and renamed over ``path`` (``os.replace``). If ``write``
    raises (or the process dies), ``path`` keeps its previous content.

    Example:
        >>> import tempfile
        >>> target = Path(tempfile.mkdtemp()) / "x.txt"
        >>> _ = atomic_write(target, lambda tmp: tmp.write_text("one"))
        >>> def broken(tmp):
        ...     tmp.write_text("half")
        ...     raise OSError("disk full")
        >>> atomic_write(target, broken)
        Traceback (most recent call last):
        ...
        OSError: disk full
        >>> target.read_text(), sorted(p.name for p in target.parent.iterdir())
        ('one', ['x.txt'])
    """
    target = Path(path).expanduser()
    tmp = temporary_file(target)
    try:
        write(tmp)
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        with suppress(FileNotFoundError):
            tmp.unlink()
        raise
    _fsync_dir(target.parent)
    return target


def remove_stale_temporaries(directory: str | os.PathLike[str]) -> list[Path]:
    """Delete temporary files left in ``directory`` by writes that were killed."""
    removed = []
    folder = Path(directory)
    if folder.is_dir():
        for p in folder.glob(f".*{_TMP_SUFFIX}"):
            with suppress(FileNotFoundError):
                p.unlink()
                removed.append(p)
    return removed


def jsonable(value: Any) -> Any:
    """``value`` with every part converted to what :func:`json.dumps` writes as strict JSON.

    Mappings become dicts with string keys, tuples and lists become lists, numpy and torch
    arrays and scalars go through ``tolist()``, dataclass instances become dicts, paths
    become strings, and non-finite floats (NaN, ±inf) become ``None`` (JSON ``null``).

    Example:
        >>> import numpy as np
        >>> jsonable({"a": np.float32("nan"), "b": (1, np.int64(2)), 3: Path("x")})
        {'a': None, 'b': [1, 2], '3': 'x'}
    """
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Path):
        return str(value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return jsonable(dataclasses.asdict(value))
    if hasattr(value, "tolist") and callable(value.tolist):  # numpy / torch arrays, scalars
        return jsonable(value.tolist())
    return value


def write_json(path: str | os.PathLike[str], payload: Mapping[str, Any]) -> Path:
    """Write ``payload`` as indented JSON, atomically (non-finite floats become null)."""
    text = json.dumps(jsonable(payload), indent=2, allow_nan=False) + "\n"
    return atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))
