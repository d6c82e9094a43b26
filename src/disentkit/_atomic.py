"""Atomic file writes: a reader never sees a half-written file.

Content goes to a temporary file in the target's folder, is flushed to disk, and is then
renamed over the target (``os.replace``). A crash or ``kill -9`` mid-write leaves the
previous file intact (and at most a stray hidden temporary file, which
:func:`remove_stale_temporaries` deletes).
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections.abc import Callable, Mapping
from contextlib import suppress
from pathlib import Path
from typing import Any

_TMP_SUFFIX = ".tmp"


def _fsync_dir(directory: Path) -> None:
    with suppress(OSError, AttributeError):  # not every platform can open a directory
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


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
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=_TMP_SUFFIX, dir=target.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        write(tmp)
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
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


def _jsonable(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Path):
        return str(value)
    if hasattr(value, "tolist") and callable(value.tolist):  # numpy / torch arrays, scalars
        return _jsonable(value.tolist())
    return value


def write_json(path: str | os.PathLike[str], payload: Mapping[str, Any]) -> Path:
    """Write ``payload`` as indented JSON, atomically (non-finite floats become null)."""
    text = json.dumps(_jsonable(payload), indent=2, allow_nan=False) + "\n"
    return atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))
