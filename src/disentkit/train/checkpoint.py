"""The resume checkpoint of a run: ``checkpoints/last.ckpt`` (and ``previous.ckpt``).

The trainer's full state (model, optimisers, mixed-precision scaler, RNG states, step) for
resuming a run **on the machine that wrote it**. Written with ``torch.save`` and read with
``torch.load(weights_only=True)`` (tensors, numbers, strings and containers only; no
arbitrary objects are unpickled). The weights to share are another file for another
audience: see :mod:`disentkit.models.saved`.

A good checkpoint always exists. :func:`save_checkpoint` serialises and reads the state
back in memory before anything reaches the disk, writes it atomically
(:func:`disentkit._atomic.atomic_write`: a temporary file in the same folder, flushed,
then moved over the target with ``os.replace``), and keeps the checkpoint it replaces as
``previous.ckpt``. A crash, ``kill -9``, a full disk or an interrupted copy leaves at
least one readable checkpoint (and at most a stray ``.<name>.*.tmp`` file, which
:func:`~disentkit._atomic.remove_stale_temporaries` deletes);
:func:`load_latest_checkpoint` falls back to the previous one.
"""

from __future__ import annotations

import errno
import io
import os
import shutil
from collections.abc import Mapping
from contextlib import suppress
from pathlib import Path
from typing import Any

from disentkit._atomic import atomic_write
from disentkit.rundir import PREVIOUS_CHECKPOINT_NAME, RunDir

__all__ = [
    "CHECKPOINT_FORMAT",
    "CHECKPOINT_VERSION",
    "CheckpointWriteError",
    "checkpoint_step",
    "has_checkpoint",
    "load_checkpoint",
    "load_latest_checkpoint",
    "previous_checkpoint",
    "save_checkpoint",
]

CHECKPOINT_FORMAT = "disentkit-checkpoint"
CHECKPOINT_VERSION = 1


class CheckpointWriteError(ValueError):
    """A checkpoint could not be written (disk full, I/O error); the previous one is intact."""


def previous_checkpoint(path: str | os.PathLike[str]) -> Path:
    """Where :func:`save_checkpoint` keeps the checkpoint that ``path`` replaced."""
    return Path(path).with_name(PREVIOUS_CHECKPOINT_NAME)


def _write_file(tmp: Path, data: bytes) -> None:
    with open(tmp, "wb") as fh:
        fh.write(data)


def save_checkpoint(path: str | os.PathLike[str], state: Mapping[str, Any]) -> Path:
    """Write the trainer state ``state`` to ``path`` so that a good checkpoint always exists.

    The state is serialised (``torch.save``) and read back in memory first, so only a
    verified checkpoint reaches the disk. It is then written to a temporary file, flushed,
    and renamed over ``path``; just before that rename, the checkpoint being replaced is
    kept as ``previous.ckpt`` beside it (a hard link, or a copy where links are not
    supported).

    ``state`` must hold only what ``torch.load(weights_only=True)`` accepts: tensors,
    numbers, strings, ``None`` and lists/tuples/dicts of them.

    Raises:
        CheckpointWriteError: (a ``ValueError``) the disk is full or the write failed; the
            message names the file and says which checkpoint is intact.
    """
    import torch

    target = Path(path)
    payload = {"format": CHECKPOINT_FORMAT, "format_version": CHECKPOINT_VERSION, **state}
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    data = buffer.getvalue()
    _check_state(torch.load(io.BytesIO(data), map_location="cpu", weights_only=True), target)

    def write(tmp: Path) -> None:
        _write_file(tmp, data)
        if tmp.stat().st_size != len(data):
            raise OSError(f"short write: {tmp.stat().st_size} of {len(data)} bytes")
        if target.is_file():  # keep the last good checkpoint until the new one is in place
            previous = previous_checkpoint(target)
            staged = previous.with_name(f".{previous.name}.link.tmp")
            with suppress(FileNotFoundError):
                staged.unlink()
            try:
                os.link(target, staged)
            except OSError:
                shutil.copyfile(target, staged)
            os.replace(staged, previous)

    try:
        return atomic_write(target, write)
    except OSError as exc:
        kept = [p.name for p in (target, previous_checkpoint(target)) if p.is_file()]
        intact = (f"the previous checkpoint ({', '.join(kept)}) is intact" if kept
                  else "no earlier checkpoint exists")
        reason = "no space left on device" if exc.errno == errno.ENOSPC else str(exc)
        raise CheckpointWriteError(
            f"cannot write checkpoint {str(target)!r}: {reason}; {intact}. Free space and "
            "continue the run with --resume"
        ) from None


def _check_state(state: Any, p: Path) -> dict[str, Any]:
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"{str(p)!r} is not a disentkit checkpoint")
    if state.get("format_version", 0) > CHECKPOINT_VERSION:
        raise ValueError(
            f"{str(p)!r} was written by a newer disentkit (checkpoint format "
            f"{state['format_version']}; this version reads up to {CHECKPOINT_VERSION})"
        )
    return state


def load_checkpoint(path: str | os.PathLike[str], map_location: Any = "cpu") -> dict[str, Any]:
    """Read a checkpoint written by :func:`save_checkpoint` (``weights_only=True``).

    Raises:
        FileNotFoundError: no file at ``path``.
        ValueError: the file is not a disentkit checkpoint or cannot be read (truncated,
            corrupt).
    """
    import torch

    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"no checkpoint at {str(p)!r}")
    try:
        state = torch.load(p, map_location=map_location, weights_only=True)
    except Exception as exc:  # pickle.UnpicklingError, RuntimeError (truncated zip), ...
        raise ValueError(f"cannot read checkpoint {str(p)!r}: {exc}") from None
    return _check_state(state, p)


def load_latest_checkpoint(
    path: str | os.PathLike[str], map_location: Any = "cpu"
) -> tuple[dict[str, Any], Path, list[str]]:
    """The newest readable checkpoint: ``path``, else the ``previous.ckpt`` beside it.

    Returns:
        ``(state, path_read, problems)``: ``problems`` holds one line per checkpoint that
        could not be read (empty when ``path`` itself was read), for the caller to show.

    Raises:
        FileNotFoundError: neither file exists.
        ValueError: no readable checkpoint; the message lists why each was refused.
    """
    target = Path(path)
    problems: list[str] = []
    candidates = [target, previous_checkpoint(target)]
    if not any(c.is_file() for c in candidates):
        raise FileNotFoundError(f"no checkpoint at {str(target)!r}")
    for candidate in candidates:
        if not candidate.is_file():
            continue
        try:
            return load_checkpoint(candidate, map_location), candidate, problems
        except ValueError as exc:
            problems.append(str(exc))
    raise ValueError("no readable checkpoint: " + "; ".join(problems))


def has_checkpoint(run_dir: str | os.PathLike[str]) -> bool:
    """Whether the run holds a resume checkpoint (``last.ckpt`` or ``previous.ckpt``)."""
    path = RunDir(run_dir).checkpoint
    return path.is_file() or previous_checkpoint(path).is_file()


def checkpoint_step(run_dir: str | os.PathLike[str]) -> int:
    """The step the run resumes from (its newest readable checkpoint's); 0 when it has none.

    Raises:
        ValueError: checkpoints exist but none can be read.

    Example:
        >>> checkpoint_step("no/such/run")
        0
    """
    if not has_checkpoint(run_dir):
        return 0
    return int(load_latest_checkpoint(RunDir(run_dir).checkpoint)[0]["step"])
