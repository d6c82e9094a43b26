"""The resume checkpoint of a run: ``checkpoints/last.ckpt``.

The trainer's full state (model, optimisers, mixed-precision scaler, RNG states, step) for
resuming a run **on the machine that wrote it**. Written with ``torch.save`` and read with
``torch.load(weights_only=True)`` (tensors, numbers, strings and containers only; no
arbitrary objects are unpickled). The weights to share are another file for another
audience: see :mod:`disentkit.models.saved`.

The file is written atomically (:func:`disentkit._atomic.atomic_write`): to a temporary
file in the same folder, flushed to disk, then moved over the target with ``os.replace``.
A crash (or ``kill -9``) mid-write leaves the previous file intact and at most a stray
``.<name>.*.tmp`` file, which :func:`~disentkit._atomic.remove_stale_temporaries` deletes.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from disentkit._atomic import atomic_write
from disentkit.rundir import RunDir

__all__ = [
    "CHECKPOINT_FORMAT",
    "CHECKPOINT_VERSION",
    "checkpoint_step",
    "load_checkpoint",
    "save_checkpoint",
]

CHECKPOINT_FORMAT = "disentkit-checkpoint"
CHECKPOINT_VERSION = 1


def save_checkpoint(path: str | os.PathLike[str], state: Mapping[str, Any]) -> Path:
    """Write the trainer state ``state`` to ``path`` atomically (``torch.save``).

    ``state`` must hold only what ``torch.load(weights_only=True)`` accepts: tensors,
    numbers, strings, ``None`` and lists/tuples/dicts of them.
    """
    import torch

    payload = {"format": CHECKPOINT_FORMAT, "format_version": CHECKPOINT_VERSION, **state}
    return atomic_write(path, lambda tmp: torch.save(payload, tmp))


def load_checkpoint(path: str | os.PathLike[str], map_location: Any = "cpu") -> dict[str, Any]:
    """Read a checkpoint written by :func:`save_checkpoint` (``weights_only=True``).

    Raises:
        FileNotFoundError: no file at ``path``.
        ValueError: the file is not a disentkit checkpoint or cannot be read.
    """
    import torch

    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"no checkpoint at {str(p)!r}")
    try:
        state = torch.load(p, map_location=map_location, weights_only=True)
    except Exception as exc:  # pickle.UnpicklingError, RuntimeError (truncated zip), ...
        raise ValueError(f"cannot read checkpoint {str(p)!r}: {exc}") from None
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"{str(p)!r} is not a disentkit checkpoint")
    if state.get("format_version", 0) > CHECKPOINT_VERSION:
        raise ValueError(
            f"{str(p)!r} was written by a newer disentkit (checkpoint format "
            f"{state['format_version']}; this version reads up to {CHECKPOINT_VERSION})"
        )
    return state


def checkpoint_step(run_dir: str | os.PathLike[str]) -> int:
    """The step of the run's resume checkpoint; 0 when it has none yet.

    Raises:
        ValueError: the checkpoint exists but cannot be read.

    Example:
        >>> checkpoint_step("no/such/run")
        0
    """
    path = RunDir(run_dir).checkpoint
    if not path.is_file():
        return 0
    return int(load_checkpoint(path)["step"])
