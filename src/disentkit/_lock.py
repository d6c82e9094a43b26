"""One writer per directory: an exclusive OS lock that a killed holder releases by itself.

A run directory (or a study directory) is written by one process at a time. Two processes
that resume the same run would otherwise write the same checkpoint, log and model files.
:func:`hold_directory` takes an exclusive ``fcntl.flock`` on a ``.lock`` file inside the
directory for as long as its ``with`` block runs. The kernel drops the lock when the holder
exits for any reason, ``kill -9`` included, so a crash never leaves a stale lock behind;
the file itself stays (an unlocked ``.lock`` file means nothing).

The holder writes who it is (pid, host, start time) into the file, and a refused process
names it::

    run directory 'runs/qlae' is in use by pid 4121 on host gpu-3 since
    2026-12-06T08:01:12+00:00; wait for it to finish or stop it (a killed holder releases
    the lock by itself)

Locks are advisory and per open file: a second ``hold_directory`` on the same directory is
refused even inside the same process. On a platform without ``fcntl`` (Windows) the lock
is not taken and :func:`hold_directory` only records the holder.
"""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

try:  # POSIX
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

from disentkit.rundir import LOCK_NAME

__all__ = ["LOCK_NAME", "DirectoryInUseError", "hold_directory"]



class DirectoryInUseError(ValueError):
    """Another live process holds the directory's lock (its pid, host and start time are
    in the message and in :attr:`holder`)."""

    def __init__(self, message: str, holder: dict[str, Any]) -> None:
        super().__init__(message)
        self.holder = holder


def _describe(holder: dict[str, Any]) -> str:
    parts = []
    if holder.get("pid") is not None:
        parts.append(f"pid {holder['pid']}")
    if holder.get("host"):
        parts.append(f"on host {holder['host']}")
    if holder.get("started"):
        parts.append(f"since {holder['started']}")
    return " ".join(parts) or "another process"


@contextmanager
def hold_directory(
    path: str | os.PathLike[str], *, what: str = "directory", shared: bool = False
) -> Iterator[Path]:
    """Hold an exclusive lock on ``path`` (created if missing) for the ``with`` block.

    Args:
        path: the directory to own.
        what: how the error message names it (``"run directory"``, ``"study directory"``).
        shared: take a shared lock instead: any number of shared holders coexist (e.g.
            the processes of a job array, each running its own runs of one study), and
            they exclude an exclusive holder (a driver running the whole study).

    Yields:
        the lock file's path.

    Raises:
        DirectoryInUseError: (a ``ValueError``) another process holds the lock; the message
            names its pid, host and start time.

    Example:
        >>> import tempfile
        >>> d = tempfile.mkdtemp()
        >>> with hold_directory(d, what="run directory"):
        ...     try:
        ...         with hold_directory(d, what="run directory"):
        ...             pass
        ...     except DirectoryInUseError as exc:
        ...         print(str(exc).split(" by ")[0])
        run directory ... is in use
        >>> with hold_directory(d):  # released when the block ends
        ...     pass
    """
    folder = Path(path).expanduser()
    folder.mkdir(parents=True, exist_ok=True)
    lock_path = folder / LOCK_NAME
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        if fcntl is not None:
            try:
                fcntl.flock(fd, (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | fcntl.LOCK_NB)
            except OSError:
                holder = _read_holder(fd)
                raise DirectoryInUseError(
                    f"{what} {str(folder)!r} is in use by {_describe(holder)}; wait for it to "
                    "finish or stop it (a killed holder releases the lock by itself)",
                    holder,
                ) from None
        me = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "started": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        }
        if not shared:  # shared holders leave the record of whoever wrote it last
            os.ftruncate(fd, 0)
        os.pwrite(fd, (json.dumps(me) + "\n").encode("utf-8"), 0)
        yield lock_path
    finally:
        with suppress(OSError):
            os.close(fd)  # closing the descriptor releases the flock


def _read_holder(fd: int) -> dict[str, Any]:
    with suppress(OSError, ValueError):
        text = os.pread(fd, 4096, 0).decode("utf-8", errors="replace")
        record = json.loads(text or "{}")
        if isinstance(record, dict):
            return record
    return {}
